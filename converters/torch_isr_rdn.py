"""idealo's RDN (models_tf/isr_rdn.py) as a PyTorch module, its weights read from the Keras model: what
litert-torch, a PyTorch → TFLite converter, needs to quantize the same network (`benchmark peers`).

The layers are models_tf's, one to one: ×1/255, F_m1, F_0, dense blocks (3×3 conv + ReLU, concatenated onto the
block's input), 1×1 local fusion, local residual, 1×1 + 3×3 global fusion, global residual, UPN1..3, ×scale
nearest-neighbour upsampling ("ups") or pixel shuffle ("shuffle"), the RGB conv, ×255. The ×1/255 stays a
multiplication of its own, as in idealo's model, not folded into the first conv.
"""

import torch
from torch import nn
from torch.nn import functional

from edge_sr.errors import EdgeSRError
from models_tf import model_config


class DenseBlock(nn.Module):
    def __init__(self, num_features, growth_rate, num_layers, kernel_size):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(num_features + c * growth_rate, growth_rate, kernel_size, padding=kernel_size // 2)
            for c in range(num_layers)
        )
        self.fusion = nn.Conv2d(num_features + num_layers * growth_rate, num_features, 1)

    def forward(self, x):
        dense = x
        for conv in self.convs:
            dense = torch.cat([dense, torch.relu(conv(dense))], dim=1)
        return self.fusion(dense) + x


class ISRRDN(nn.Module):
    """NCHW RGB in [0, 255] → ×`scale` NCHW RGB in [0, 255], as models_tf's isr-rdn."""

    def __init__(self, scale, num_blocks=10, num_layers=3, growth_rate=64, num_features=64, kernel_size=3,
                 upscaling="ups"):  # fmt: skip
        super().__init__()
        same = kernel_size // 2
        self.scale, self.upscaling = scale, upscaling
        self.shallow = nn.Conv2d(3, num_features, kernel_size, padding=same)
        self.first = nn.Conv2d(num_features, num_features, kernel_size, padding=same)
        self.blocks = nn.ModuleList(
            DenseBlock(num_features, growth_rate, num_layers, kernel_size) for _ in range(num_blocks)
        )
        self.global_fusion = nn.Sequential(
            nn.Conv2d(num_blocks * num_features, num_features, 1),
            nn.Conv2d(num_features, num_features, kernel_size, padding=same),
        )
        self.upsampling = nn.Sequential(
            nn.Conv2d(num_features, 64, 5, padding=2), nn.ReLU(), nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 3 * scale**2, 3, padding=1),
        )  # fmt: skip
        self.to_rgb = nn.Conv2d(3 * scale**2 if upscaling == "ups" else 3, 3, kernel_size, padding=same)

    def forward(self, image):
        shallow = self.shallow(image * (1 / 255))
        x = self.first(shallow)
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        x = self.global_fusion(torch.cat(outputs, dim=1)) + shallow
        x = self.upsampling(x)
        if self.upscaling == "ups":
            # nearest-neighbour upsampling that follows the input's size when exported with dynamic shapes
            # (F.interpolate's output size would be frozen at the trace size)
            n, c, h, w = x.shape
            x = x[:, :, :, None, :, None].expand(n, c, h, self.scale, w, self.scale)
            x = x.reshape(n, c, h * self.scale, w * self.scale)
        else:
            x = functional.pixel_shuffle(x, self.scale)
        return self.to_rgb(x) * 255.0  # a float: PT2E observes the constant, and histograms no integers


def isr_rdn_from_keras(model):
    """The PyTorch ISRRDN of a models_tf isr-rdn Keras model, every weight copied (HWIO kernels → OIHW)."""
    config = model_config(model)
    if config.get("arch") != "isr-rdn":
        raise EdgeSRError(f"the PyTorch port is of idealo's RDN (isr-rdn), not of {config.get('arch')}")
    sizes = {key: value for key, value in config.items() if key != "arch"}
    module = ISRRDN(**sizes)
    convs = {
        "F_m1": module.shallow, "F_0": module.first, "GFF_1": module.global_fusion[0],
        "GFF_2": module.global_fusion[1], "UPN1": module.upsampling[0], "UPN2": module.upsampling[2],
        "UPN3": module.upsampling[4], "SR": module.to_rgb,
    }  # fmt: skip
    for d, block in enumerate(module.blocks, 1):
        convs[f"LFF_{d}"] = block.fusion
        convs.update({f"F_{d}_{c}": conv for c, conv in enumerate(block.convs, 1)})
    scale = config["scale"]
    # pixel_shuffle reads channel c·s² + i·s + j where TF's depth_to_space reads (i·s + j)·3 + c
    shuffle_order = [(p % scale**2) * 3 + p // scale**2 for p in range(3 * scale**2)]
    with torch.no_grad():
        for name, conv in convs.items():
            kernel, bias = model.get_layer(name).get_weights()
            if name == "UPN3" and config["upscaling"] == "shuffle":
                kernel, bias = kernel[..., shuffle_order], bias[shuffle_order]
            conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            conv.bias.copy_(torch.from_numpy(bias))
    return module.eval()
