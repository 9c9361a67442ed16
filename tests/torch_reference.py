"""PyTorch definitions of EDSR, RDN and SwinIR, written from the published code (EDSR-PyTorch src/model,
SwinIR models/network_swinir.py) with the official module names, so their state_dicts carry the official keys.

They exist only to check the Keras ports and the converter; inference-only (no dropout, no drop path).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def conv(in_channels, out_channels, kernel_size=3):
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


def shuffle_upsampler(scale, features):
    """Per factor 2 a conv to 4*features + PixelShuffle(2); for x3 one conv to 9*features + PixelShuffle(3)."""
    factors = [3] if scale == 3 else [2] * int(math.log2(scale))
    modules = []
    for factor in factors:
        modules += [conv(features, features * factor**2), nn.PixelShuffle(factor)]
    return nn.Sequential(*modules)


class MeanShift(nn.Conv2d):
    """EDSR-PyTorch's frozen 1x1 conv that subtracts (sign -1) or adds (sign +1) the mean of [0, 255] pixels."""

    def __init__(self, sign):
        super().__init__(3, 3, 1)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.bias.data = sign * 255 * torch.tensor(DIV2K_RGB_MEAN)
        self.requires_grad_(False)


class ResBlock(nn.Module):
    def __init__(self, features, res_scale):
        super().__init__()
        self.body = nn.Sequential(conv(features, features), nn.ReLU(True), conv(features, features))
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.body(x) * self.res_scale


class EDSR(nn.Module):
    """EDSR-PyTorch naming: sub_mean, head.0, body.{i}.body.{0,2}, body.{n}, tail.0.*, tail.1, add_mean."""

    def __init__(self, scale, num_blocks=16, num_features=64, res_scale=1.0):
        super().__init__()
        self.sub_mean = MeanShift(-1)
        self.head = nn.Sequential(conv(3, num_features))
        self.body = nn.Sequential(
            *[ResBlock(num_features, res_scale) for _ in range(num_blocks)], conv(num_features, num_features)
        )
        self.tail = nn.Sequential(shuffle_upsampler(scale, num_features), conv(num_features, 3))
        self.add_mean = MeanShift(+1)

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        return self.add_mean(self.tail(self.body(x) + x))


def basicsr_edsr_state_dict(edsr):
    """The same weights under BasicSR's EDSR names (conv_first, body.{i}.conv{1,2}, conv_after_body, upsample.*,
    conv_last); BasicSR keeps the mean as a constant, so there are no MeanShift entries."""
    num_blocks = len(edsr.body) - 1
    renames = {
        "head.0.": "conv_first.",
        f"body.{num_blocks}.": "conv_after_body.",
        "tail.0.": "upsample.",
        "tail.1.": "conv_last.",
    }
    for i in range(num_blocks):
        renames[f"body.{i}.body.0."] = f"body.{i}.conv1."
        renames[f"body.{i}.body.2."] = f"body.{i}.conv2."
    state = {}
    for key, tensor in edsr.state_dict().items():
        if key.startswith(("sub_mean.", "add_mean.")):
            continue
        prefix = next(p for p in renames if key.startswith(p))
        state[renames[prefix] + key[len(prefix) :]] = tensor
    return state


class RDBConv(nn.Module):
    def __init__(self, in_channels, growth_rate):
        super().__init__()
        self.conv = nn.Sequential(conv(in_channels, growth_rate), nn.ReLU())

    def forward(self, x):
        return torch.cat([x, self.conv(x)], 1)


class RDB(nn.Module):
    def __init__(self, num_features, growth_rate, num_layers):
        super().__init__()
        self.convs = nn.Sequential(*[RDBConv(num_features + c * growth_rate, growth_rate) for c in range(num_layers)])
        self.LFF = conv(num_features + num_layers * growth_rate, num_features, 1)

    def forward(self, x):
        return self.LFF(self.convs(x)) + x


class RDN(nn.Module):
    """EDSR-PyTorch naming: SFENet1/2, RDBs.{i}.convs.{c}.conv.0, RDBs.{i}.LFF, GFF.{0,1}, UPNet.{0,2(,4)}."""

    def __init__(self, scale, num_blocks=16, num_layers=8, growth_rate=64, num_features=64):
        super().__init__()
        self.SFENet1 = conv(3, num_features)
        self.SFENet2 = conv(num_features, num_features)
        self.RDBs = nn.ModuleList([RDB(num_features, growth_rate, num_layers) for _ in range(num_blocks)])
        self.GFF = nn.Sequential(conv(num_blocks * num_features, num_features, 1), conv(num_features, num_features))
        if scale == 4:
            self.UPNet = nn.Sequential(
                conv(num_features, growth_rate * 4), nn.PixelShuffle(2),
                conv(growth_rate, growth_rate * 4), nn.PixelShuffle(2),
                conv(growth_rate, 3),
            )  # fmt: skip
        else:
            self.UPNet = nn.Sequential(
                conv(num_features, growth_rate * scale**2), nn.PixelShuffle(scale), conv(growth_rate, 3)
            )

    def forward(self, x):
        shallow = self.SFENet1(x)
        x = self.SFENet2(shallow)
        outputs = []
        for block in self.RDBs:
            x = block(x)
            outputs.append(x)
        return self.UPNet(self.GFF(torch.cat(outputs, 1)) + shallow)


def windows_of(x, window_size):
    """(B, H, W, C) -> (B * nW, ws, ws, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c)


def image_of(windows, window_size, h, w):
    c = windows.shape[-1]
    x = windows.view(-1, h // window_size, w // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


class WindowAttention(nn.Module):
    def __init__(self, dim, window_size, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
        coords = coords.flatten(1)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window_size - 1
        self.register_buffer("relative_position_index", relative[..., 0] * (2 * window_size - 1) + relative[..., 1])
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attention = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attention = attention + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            windows = mask.shape[0]
            attention = attention.view(b // windows, windows, self.num_heads, n, n) + mask[None, :, None]
            attention = attention.view(-1, self.num_heads, n, n)
        x = (attention.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    def __init__(self, dim, img_size, num_heads, window_size, shift_size, mlp_ratio):
        super().__init__()
        if img_size <= window_size:  # the official rule: a training patch no larger than a window is one window
            window_size, shift_size = img_size, 0
        self.window_size, self.shift_size = window_size, shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.register_buffer("attn_mask", self.region_mask(img_size, img_size) if shift_size else None)

    def region_mask(self, h, w):
        ws, shift = self.window_size, self.shift_size
        labels = torch.zeros(1, h, w, 1)
        bands = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
        for i, rows in enumerate(bands):
            for j, cols in enumerate(bands):
                labels[:, rows, cols] = 3 * i + j
        labels = windows_of(labels, ws).view(-1, ws * ws)
        different = labels[:, None, :] != labels[:, :, None]
        return torch.zeros(different.shape).masked_fill(different, -100.0)

    def forward(self, x, size):
        h, w = size
        b, _, c = x.shape
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        if self.shift_size:
            x = torch.roll(x, (-self.shift_size, -self.shift_size), (1, 2))
        windows = windows_of(x, self.window_size).view(-1, self.window_size**2, c)
        mask = self.region_mask(h, w) if self.shift_size else None
        x = image_of(self.attn(windows, mask), self.window_size, h, w)
        if self.shift_size:
            x = torch.roll(x, (self.shift_size, self.shift_size), (1, 2))
        x = shortcut + x.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class BasicLayer(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x, size):
        for block in self.blocks:
            x = block(x, size)
        return x


class RSTB(nn.Module):
    def __init__(self, dim, img_size, depth, num_heads, window_size, mlp_ratio):
        super().__init__()
        self.residual_group = BasicLayer(
            [SwinBlock(dim, img_size, num_heads, window_size, (j % 2) * (window_size // 2), mlp_ratio)
             for j in range(depth)]
        )  # fmt: skip
        self.conv = conv(dim, dim)

    def forward(self, x, size):
        b, _, c = x.shape
        y = self.residual_group(x, size).transpose(1, 2).reshape(b, c, *size)
        return self.conv(y).flatten(2).transpose(1, 2) + x


class PatchEmbed(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)


class SwinIR(nn.Module):
    """Official naming: conv_first, patch_embed.norm, layers.{i}.residual_group.blocks.{j}.*, layers.{i}.conv,
    norm, conv_after_body, conv_before_upsample.0, upsample.*, conv_last."""

    def __init__(self, scale, embed_dim, depths, num_heads, window_size=8, mlp_ratio=2.0,
                 upsampler="pixelshuffle", img_size=64):  # fmt: skip
        super().__init__()
        self.scale, self.window_size, self.upsampler = scale, window_size, upsampler
        self.register_buffer("mean", torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.conv_first = conv(3, embed_dim)
        self.patch_embed = PatchEmbed(embed_dim)
        self.layers = nn.ModuleList(
            [RSTB(embed_dim, img_size, d, h, window_size, mlp_ratio) for d, h in zip(depths, num_heads, strict=True)]
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = conv(embed_dim, embed_dim)
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(conv(embed_dim, 64), nn.LeakyReLU(inplace=True))
            self.upsample = shuffle_upsampler(scale, 64)
            self.conv_last = conv(64, 3)
        else:
            self.upsample = nn.Sequential(conv(embed_dim, 3 * scale**2), nn.PixelShuffle(scale))

    def forward_features(self, x):
        b, c, h, w = x.shape
        x = self.patch_embed.norm(x.flatten(2).transpose(1, 2))
        for layer in self.layers:
            x = layer(x, (h, w))
        return self.norm(x).transpose(1, 2).reshape(b, c, h, w)

    def forward(self, x):
        """x: [0, 1] RGB, NCHW; padded (reflect) to a window multiple, output cropped back."""
        h, w = x.shape[2:]
        x = F.pad(x, (0, -w % self.window_size, 0, -h % self.window_size), "reflect")
        x = self.conv_first(x - self.mean)
        x = self.conv_after_body(self.forward_features(x)) + x
        if self.upsampler == "pixelshuffle":
            x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        else:
            x = self.upsample(x)
        return (x + self.mean)[:, :, : h * self.scale, : w * self.scale]
