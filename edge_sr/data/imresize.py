"""MATLAB-exact bicubic `imresize`, the resampler every SR benchmark uses to make its LR images.

MATLAB's rule: antialiased cubic kernel (a = -0.5) whose support widens by 1/scale when shrinking, symmetric
(mirror) padding at the borders, one dimension at a time (the one with the smaller scale first, H on a tie).
On uint8 input each pass is rounded half away from zero back to uint8, which is what makes the result
pixel-identical to the published LR sets. `tf.image.resize` and PIL differ by several dB on Set5.
"""

import math

import numpy as np

from edge_sr.errors import EdgeSRError


def _cubic(x):
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


def _contributions(in_length, out_length, scale):
    """Per output sample: the input indices it reads and their weights (MATLAB's `contributions`)."""
    kernel_width = 4.0
    antialias = scale < 1
    if antialias:
        kernel_width /= scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output sample centre in input coordinates (1-based)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    weights = scale * _cubic(scale * distance) if antialias else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric padding: index sequence 1..n, n..1 repeated.
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    keep = np.any(weights != 0, axis=0)
    return indices[:, keep], weights[:, keep]


def _resize_axis(image, axis, out_length, scale):
    indices, weights = _contributions(image.shape[axis], out_length, scale)
    moved = np.moveaxis(image, axis, 0).astype(np.float64)
    out = np.einsum("ok,ok...->o...", weights, moved[indices])
    return np.moveaxis(out, 0, axis)


def _round_uint8(values):
    # MATLAB rounds half away from zero; values are non-negative after clipping.
    return np.floor(np.clip(values, 0, 255) + 0.5).astype(np.uint8)


def imresize(image, scale=None, size=None):
    """Resize an H×W or H×W×C image like MATLAB `imresize(image, scale|[h w], 'bicubic')`.

    uint8 in → uint8 out (rounded after each pass, as MATLAB does); float in → float64 out, unrounded.
    Give either `scale` (output = ceil(input × scale)) or `size` = (height, width).
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise EdgeSRError(f"imresize expects an H×W or H×W×C image, got shape {image.shape}")
    height, width = image.shape[:2]
    if (scale is None) == (size is None):
        raise EdgeSRError("imresize needs exactly one of scale or size")
    if size is not None:
        out_h, out_w = (int(s) for s in size)
        scales = (out_h / height, out_w / width)
    else:
        if scale <= 0:
            raise EdgeSRError(f"imresize scale must be positive, got {scale}")
        scales = (float(scale), float(scale))
        out_h, out_w = math.ceil(height * scale), math.ceil(width * scale)
    if min(out_h, out_w) < 1:
        raise EdgeSRError(f"resizing {height}×{width} by {scale} leaves no pixels")
    is_uint8 = image.dtype == np.uint8
    if not is_uint8 and not np.issubdtype(image.dtype, np.floating):
        raise EdgeSRError(f"imresize takes uint8 or float images, got {image.dtype}")
    plan = [(0, out_h, scales[0]), (1, out_w, scales[1])]
    plan.sort(key=lambda step: step[2])  # stable: H first on a tie, like MATLAB
    out = image
    for axis, length, axis_scale in plan:
        out = _resize_axis(out, axis, length, axis_scale)
        if is_uint8:
            out = _round_uint8(out)
    return out


def modcrop(image, scale):
    """Crop the bottom/right so both sides are multiples of `scale` (the benchmark convention)."""
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def bicubic_downscale(hr, scale):
    """The standard LR image: MATLAB bicubic of the mod-cropped HR by 1/scale."""
    hr = modcrop(hr, scale)
    # The size form gives the same scale as 1/scale without float ceil() surprises (510 × (1/3)).
    return imresize(hr, size=(hr.shape[0] // scale, hr.shape[1] // scale))
