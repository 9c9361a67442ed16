"""Quantizers shared by ODM QAT, 2DQuant PTQ and the integer TFLite export."""

from edge_sr.quant.layers import ActivationQuantizer, UniformQuantizeConfig, quantize_scope_objects
from edge_sr.quant.quantizer import UniformQuantizer, check_bits, fake_quant, percentile

__all__ = [
    "ActivationQuantizer",
    "UniformQuantizeConfig",
    "UniformQuantizer",
    "check_bits",
    "fake_quant",
    "percentile",
    "quantize_scope_objects",
]
