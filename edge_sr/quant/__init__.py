"""Quantizers shared by ODM QAT, 2DQuant PTQ and the integer TFLite export."""

from edge_sr.quant.layers import (
    ActivationQuantizer,
    InputQuantizeWrapper,
    UniformQuantizeConfig,
    quantize_scope_objects,
)
from edge_sr.quant.placement import PLACEMENTS, QuantizerSite, quantize_model, quantized_layer_names, quantizer_sites
from edge_sr.quant.quantizer import UniformQuantizer, check_bits, fake_quant, percentile

__all__ = [
    "PLACEMENTS",
    "ActivationQuantizer",
    "InputQuantizeWrapper",
    "QuantizerSite",
    "UniformQuantizeConfig",
    "UniformQuantizer",
    "check_bits",
    "fake_quant",
    "percentile",
    "quantize_model",
    "quantize_scope_objects",
    "quantized_layer_names",
    "quantizer_sites",
]
