"""What `--model` names: anything that turns an LR uint8 image into an SR uint8 image at a given scale."""

import numpy as np

from edge_sr.data.imresize import imresize
from edge_sr.errors import EdgeSRError


class BicubicUpscaler:
    """The reference every SR paper reports: MATLAB-exact bicubic upsampling."""

    def __init__(self, scale):
        self.name, self.scale = "bicubic", scale

    def __call__(self, lr):
        return imresize(np.asarray(lr, dtype=np.uint8), scale=self.scale)


def load_upscaler(spec, scale):
    """Resolve a `--model` value into an upscaler for `scale`."""
    if spec == "bicubic":
        return BicubicUpscaler(scale)
    raise EdgeSRError(f"unknown model {spec!r}; supported: bicubic")
