"""Which layers get k-bit quantizers, per architecture, and the rewrite that puts them there.

`paper`: the protocol ODM, DAQ, DDTB and 2DQuant report — weights and input activations of the body's
residual-block (EDSR) or dense-block (RDN: block convs and local fusion) convs, and of SwinIR's block linears;
head, tail, upsampler and residual adds stay in float.
"""

import re

import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.quant.layers import InputQuantizeWrapper, UniformQuantizeConfig
from edge_sr.quant.quantizer import check_bits
from models_tf.config import model_config

PLACEMENTS = ("paper",)

# Layer names (models_tf naming) quantized by the paper protocol, per architecture.
PAPER_LAYERS = {
    "edsr": r"body_\d+_conv[12]",
    "rdn": r"rdb_\d+_(conv_\d+|lff)",
    "isr-rdn": r"(F_\d+_\d+|LFF_\d+)",
    "swinir": r"layers_\d+_blocks_\d+_(attn_qkv|attn_proj|mlp_fc1|mlp_fc2)",
}


def quantized_layer_names(model, placement="paper"):
    if placement not in PLACEMENTS:
        raise EdgeSRError(f"unknown placement {placement!r}; choose one of: {', '.join(PLACEMENTS)}")
    arch = model_config(model)["arch"]
    if arch not in PAPER_LAYERS:
        raise EdgeSRError(f"no {placement} placement for architecture {arch!r}")
    names = [layer.name for layer in model.layers if re.fullmatch(PAPER_LAYERS[arch], layer.name)]
    if not names:
        raise EdgeSRError(f"model {model.name!r} has no layer the {placement} placement quantizes")
    return names


def quantize_model(model, bits, placement="paper", per_channel=False, clip_correction=False):
    """A copy of `model` with k-bit weight and input quantizers on the placement's layers, FP weights kept.

    The quantizer ranges start at their defaults: initialise them (percentile, min/max, DOBI) before use.
    """
    check_bits(bits)
    targets = set(quantized_layer_names(model, placement))

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if layer.name not in targets:
            return fresh
        with tf.name_scope(layer.name):  # keep variable names like body_0_conv1/kernel
            fresh.build(layer.input_shape)
        fresh.set_weights(layer.get_weights())  # before wrapping: the wrapper hides the kernel behind its quantizer
        config = UniformQuantizeConfig(
            bits, bits, per_channel=per_channel, clip_correction=clip_correction, quantize_output=False
        )
        return InputQuantizeWrapper(fresh, config, input_bits=bits, name=layer.name)

    quantized = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name not in targets:
            quantized.get_layer(layer.name).set_weights(layer.get_weights())
    quantized.edge_sr_config = model_config(model)
    return quantized
