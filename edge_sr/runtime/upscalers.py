"""What `--model` names: anything that turns an LR uint8 image into an SR uint8 image at a given scale.

bicubic               MATLAB-exact bicubic upsampling (the baseline every SR table starts from)
zoo:NAME              a pretrained model from `python -m edge_sr.zoo list` (pulled on first use)
path/to/model.tflite  a model exported by `python -m edge_sr.convert`, run in LiteRT
anything else         an FP Keras model, as edge_sr.models.sources.load_source_model reads it (.keras, .pt, .h5, preset)
"""

from pathlib import Path

import numpy as np

from edge_sr.data.imresize import imresize
from edge_sr.errors import EdgeSRError
from edge_sr.runtime.tiling import to_uint8


class BicubicUpscaler:
    def __init__(self, scale):
        self.name, self.scale = "bicubic", scale

    def __call__(self, lr):
        return imresize(np.asarray(lr, dtype=np.uint8), scale=self.scale)


class KerasUpscaler:
    """A models_tf Keras model applied to the whole image, or with `tile` (LR pixels) tile by tile as
    edge_sr.runtime.upscale runs a fixed-tile file: each tile's SR rounded to uint8 as the file's output is."""

    def __init__(self, model, name, scale, tile=None):
        model_scale = getattr(model, "edge_sr_config", {}).get("scale")
        if model_scale is not None and model_scale != scale:
            raise EdgeSRError(f"{name} is a ×{model_scale} model; run it with --scale {model_scale}")
        import tensorflow as tf  # here, so the TFLite-only tools start without TensorFlow

        self.model, self.name, self.scale, self.tile = model, name, scale, tile
        # One graph for every image size: eager execution of quantized models is several times slower.
        self._forward = tf.function(
            lambda x: model(x, training=False), input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)]
        )

    def _whole(self, lr):
        return to_uint8(self._forward(np.asarray(lr, dtype=np.float32)[None])[0].numpy())

    def __call__(self, lr):
        if self.tile is None:
            return self._whole(lr)
        from edge_sr.runtime.tiling import tiling, upscale_tiled

        tile, overlap = tiling(None, self.tile)
        return upscale_tiled(self._whole, lr, self.scale, tile, overlap, fixed=True, uint8=True)


class TFLiteUpscaler:
    """An exported .tflite model run in LiteRT (XNNPACK); fixed-tile models (SwinIR) run tile by tile."""

    def __init__(self, path, scale):
        from edge_sr.runtime.litert import TFLiteModel

        self.model, self.name, self.scale = TFLiteModel(path, scale=scale), Path(path).name, scale

    def __call__(self, lr):
        from edge_sr.runtime.tiling import upscale

        return upscale(self.model, lr)


def load_upscaler(spec, scale):
    """Resolve a `--model` value into an upscaler for `scale`."""
    if spec == "bicubic":
        return BicubicUpscaler(scale)
    if spec.endswith(".tflite"):
        return TFLiteUpscaler(spec, scale)
    from edge_sr.models.sources import load_source_model

    name = spec if spec.startswith("zoo:") else Path(spec).name
    return KerasUpscaler(load_source_model(spec, scale), name, scale)
