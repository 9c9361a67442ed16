"""What `--model` names: anything that turns an LR uint8 image into an SR uint8 image at a given scale.

bicubic              MATLAB-exact bicubic upsampling (the baseline every SR table starts from)
zoo:NAME             a pretrained model from `python -m edge_sr.zoo list` (pulled on first use)
path/to/model.keras  a model saved by edge_sr (models_tf.save_model)
"""

from pathlib import Path

import numpy as np

from edge_sr.data.imresize import imresize
from edge_sr.errors import EdgeSRError


class BicubicUpscaler:
    def __init__(self, scale):
        self.name, self.scale = "bicubic", scale

    def __call__(self, lr):
        return imresize(np.asarray(lr, dtype=np.uint8), scale=self.scale)


def to_uint8(image):
    """Model output in [0, 255] → uint8 (clipped, rounded half up): what a user's file would hold."""
    return np.clip(np.floor(np.asarray(image, dtype=np.float32) + 0.5), 0, 255).astype(np.uint8)


class KerasUpscaler:
    """A models_tf Keras model applied to the whole image."""

    def __init__(self, model, name, scale):
        model_scale = getattr(model, "edge_sr_config", {}).get("scale")
        if model_scale is not None and model_scale != scale:
            raise EdgeSRError(f"{name} is a ×{model_scale} model; run it with --scale {model_scale}")
        self.model, self.name, self.scale = model, name, scale

    def __call__(self, lr):
        sr = self.model(np.asarray(lr, dtype=np.float32)[None], training=False)[0]
        return to_uint8(sr)


def load_upscaler(spec, scale):
    """Resolve a `--model` value into an upscaler for `scale`."""
    if spec == "bicubic":
        return BicubicUpscaler(scale)
    if spec.startswith("zoo:"):
        from edge_sr.zoo import load_zoo_model

        return KerasUpscaler(load_zoo_model(spec[4:]), spec, scale)
    if spec.endswith(".keras"):
        from models_tf import load_model

        if not Path(spec).is_file():
            raise EdgeSRError(f"model file not found: {spec}")
        return KerasUpscaler(load_model(spec), Path(spec).name, scale)
    raise EdgeSRError(f"unknown model {spec!r}; use bicubic, zoo:NAME or a .keras file")
