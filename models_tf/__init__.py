"""Keras (tf_keras) SR architectures that load the official pretrained weights exactly."""

from models_tf.registry import build_preset, preset_names, register_preset

__all__ = ["build_preset", "preset_names", "register_preset"]
