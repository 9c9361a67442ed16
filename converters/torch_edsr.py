"""EDSR as a PyTorch module with EDSR-PyTorch's module names: the network `benchmark onnx` exports to ONNX.

Its state dict is an official EDSR-PyTorch checkpoint's, so official `.pt` files load into it as they are and
`converters.pytorch` reads its weights into the Keras EDSR: one network, two conversion paths to compare.
Built from the published definition (EDSR-PyTorch src/model/edsr.py): mean shift of [0, 255] pixels, head conv,
residual blocks (conv, ReLU, conv, × res_scale), body conv with the long skip, conv + PixelShuffle per factor 2
(one ×3 step), last conv.
"""

import math

import numpy as np
import torch
from torch import nn

from converters.pytorch import describe_checkpoint, load_torch_checkpoint
from edge_sr.errors import EdgeSRError
from models_tf.layers import DIV2K_RGB_MEAN


def _conv(in_channels, out_channels):
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class MeanShift(nn.Conv2d):
    """The frozen 1×1 conv that subtracts (sign −1) or adds (+1) the DIV2K mean of [0, 255] pixels."""

    def __init__(self, sign):
        super().__init__(3, 3, 1)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.bias.data = sign * 255 * torch.tensor(DIV2K_RGB_MEAN, dtype=torch.float32)
        self.requires_grad_(False)


class ResBlock(nn.Module):
    def __init__(self, features, res_scale):
        super().__init__()
        self.body = nn.Sequential(_conv(features, features), nn.ReLU(True), _conv(features, features))
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.body(x) * self.res_scale


class EDSR(nn.Module):
    """NCHW RGB in [0, 255] → ×`scale` NCHW RGB in [0, 255]."""

    def __init__(self, scale, num_blocks=16, num_features=64, res_scale=1.0):
        super().__init__()
        if scale not in (2, 3, 4, 8):
            raise EdgeSRError(f"EDSR upsamples ×2, ×3, ×4 or ×8, not ×{scale}")
        self.scale = scale
        self.sub_mean = MeanShift(-1)
        self.head = nn.Sequential(_conv(3, num_features))
        self.body = nn.Sequential(
            *[ResBlock(num_features, res_scale) for _ in range(num_blocks)], _conv(num_features, num_features)
        )
        upsampler = []
        for factor in [3] if scale == 3 else [2] * int(math.log2(scale)):
            upsampler += [_conv(num_features, num_features * factor**2), nn.PixelShuffle(factor)]
        self.tail = nn.Sequential(nn.Sequential(*upsampler), _conv(num_features, 3))
        self.add_mean = MeanShift(+1)

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        return self.add_mean(self.tail(self.body(x) + x))

    @property
    def config(self):
        """The models_tf builder config of the same network (what converters.pytorch reads from its weights)."""
        return describe_checkpoint(self.state_dict())


def edsr_from_checkpoint(path):
    """The EDSR of an official EDSR-PyTorch `.pt` checkpoint, weights loaded."""
    state = load_torch_checkpoint(path)
    config = describe_checkpoint(state)
    if config["arch"] != "edsr" or "head.0.weight" not in state:
        raise EdgeSRError(f"{path}: not an EDSR-PyTorch EDSR checkpoint (it holds {config['arch']} weights)")
    model = EDSR(config["scale"], config["num_blocks"], config["num_features"], config["res_scale"])
    own = model.state_dict()
    unknown = sorted(set(state) - set(own))
    if unknown:
        raise EdgeSRError(f"{path}: entries EDSR does not have: {', '.join(unknown[:8])}")
    # Checkpoints may leave out the frozen mean shifts; converters.pytorch has checked them when present.
    own.update({key: torch.from_numpy(np.asarray(value)) for key, value in state.items()})
    model.load_state_dict(own)
    return model.eval()
