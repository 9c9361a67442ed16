"""Keras (tf_keras) SR architectures that load the official pretrained weights exactly."""

from models_tf import edsr, isr_rdn, rdn, swinir  # noqa: F401  (importing registers their presets)
from models_tf.config import load_model, model_config, model_from_config, save_model
from models_tf.registry import build_preset, preset_names, register_preset

__all__ = [
    "build_preset",
    "load_model",
    "model_config",
    "model_from_config",
    "preset_names",
    "register_preset",
    "save_model",
]
