"""Which layers get k-bit quantizers, per architecture, the rewrite that puts them there, and where they live.

`paper`: the protocol ODM, DAQ, DDTB and 2DQuant report — weights and input activations of the body's
residual-block (EDSR) or dense-block (RDN: block convs and local fusion) convs, and of SwinIR's block linears,
plus the inputs of SwinIR's two attention matmuls (2DQuant); head, tail, upsampler and residual adds stay in
float. Those layers get the `uniform` quantizers (ODM, 2DQuant, minmax) or PAMS's (`pams`).

`integer`: `paper` plus, from the start, the 8-bit quantizers and integer arithmetic that the int8 file adds
(`edge_sr.quant.deploy.integer_model`): the model that trains or calibrates is the one the file computes, and
`convert --int8` writes its ranges as they are.

`tfmot8` is tfmot's own default 8-bit QAT (`quantize_apply` with its Default8BitQuantizeScheme) on every layer,
with edge_sr's layers that tfmot does not know annotated: a Rescaling gets tfmot's 8-bit output quantizer (it
makes new values), a DepthToSpace none (it only moves them).
"""

import re
from typing import NamedTuple

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.quant.layers import (
    QUANTIZER_SCHEMES,
    ActivationQuantizer,
    InputQuantizeWrapper,
    OutputQuantizer,
    UniformQuantizeConfig,
)
from edge_sr.quant.quantizer import UniformQuantizer, check_bits
from models_tf.config import model_config
from models_tf.layers import DepthToSpace

PLACEMENTS = ("paper", "integer")
PLACEMENT_HELP = (
    "paper: the papers' k-bit layers, the int8 file's other grids added at export (default); integer: every grid "
    "of the int8 file from the start, so that what ships is what is optimised"
)
SCHEMES = (*QUANTIZER_SCHEMES, "tfmot8")
MID_RISE_DEFAULT_BITS = 4  # the papers' 2^b-level weight grid by default up to here; narrow (int8's own) above


def default_weight_grid(bits, scheme="uniform"):
    """The weight grid a new run gets: the papers' mid-rise 2^b levels for the uniform quantizers at 2–4 bits,
    where it differs from the narrow 2^b − 1 levels most (ternary at 2 bits); narrow above, where the two differ
    little and 8 bits must be narrow for int8, and for PAMS, whose formula is narrow."""
    return "mid-rise" if scheme == "uniform" and bits <= MID_RISE_DEFAULT_BITS else "narrow"


# Layer names (models_tf naming) quantized by the paper protocol, per architecture.
PAPER_LAYERS = {
    "edsr": r"body_\d+_conv[12]",
    "rdn": r"rdb_\d+_(conv_\d+|lff)",
    "isr-rdn": r"(F_\d+_\d+|LFF_\d+)",
    "swinir": r"layers_\d+_blocks_\d+_(attn_qkv|attn_q|attn_k|attn_v|attn_proj|mlp_fc1|mlp_fc2)",
}


def quantized_layer_names(model, placement="paper"):
    """The layers whose weights and input get k-bit quantizers (SwinIR's attention matmuls come on top): the
    paper's, in either placement."""
    if placement not in PLACEMENTS:
        raise EdgeSRError(f"unknown placement {placement!r}; choose one of: {', '.join(PLACEMENTS)}")
    arch = model_config(model)["arch"]
    if arch not in PAPER_LAYERS:
        raise EdgeSRError(f"no {placement} placement for architecture {arch!r}")
    names = [
        layer.name
        for layer in model.layers
        if re.fullmatch(PAPER_LAYERS[arch], layer.name) and isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
    ]  # a split qkv's concatenation keeps the name attn_qkv
    if not names:
        raise EdgeSRError(f"model {model.name!r} has no layer the {placement} placement quantizes")
    return names


def quantize_model(
    model,
    bits,
    placement="paper",
    per_channel=False,
    clip_correction=False,
    scheme="uniform",
    weight_bound="learned",
    weight_grid=None,
    split_qkv=False,
):
    """A copy of `model` with k-bit weight and input quantizers on the placement's layers, and k-bit
    quantizers on the matmul inputs of any attention layer that offers them (SwinIR's `matmul_bits`); FP
    weights kept. `scheme`: which quantizers (see the module docstring); `tfmot8` ignores the placement.
    `weight_bound`: "learned", or "max" (max |W| at every call, ODM's ablation baseline; see WEIGHT_BOUNDS).
    `weight_grid`: "narrow" (2^b − 1 levels, 0 among them) or "mid-rise" (2^b levels ±(i + ½)·s); None: the
    default for the bits and scheme (`default_weight_grid`). `split_qkv` (SwinIR): each qkv linear becomes q, k
    and v, each with its own weight and input quantizer, as 2DQuant quantizes it; the runs made here set it.

    The quantizer ranges start at their defaults: initialise them (percentile, min/max, DOBI, ...) before use.
    """
    check_bits(bits)
    if scheme not in SCHEMES:
        raise EdgeSRError(f"unknown quantizer scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}")
    if placement == "integer" and scheme != "uniform":
        raise EdgeSRError(
            f"the integer placement takes edge_sr's uniform quantizers (odm, minmax, 2dquant), not {scheme}"
        )
    if scheme == "tfmot8":
        if bits != 8 or per_channel or clip_correction or weight_grid not in (None, "narrow"):
            raise EdgeSRError("tfmot8 is tfmot's default 8-bit scheme: 8 bits, its own weight quantizers")
        return tfmot_default_model(model)
    fp_config = model_config(model)
    if split_qkv and fp_config["arch"] == "swinir":
        from models_tf.swinir import split_qkv_model  # models_tf.swinir imports edge_sr.quant itself

        model = split_qkv_model(model)
    targets = set(quantized_layer_names(model, placement))
    weight_grid = weight_grid or default_weight_grid(bits, scheme)

    def clone(layer):
        config = layer.get_config()
        if "matmul_bits" in config:
            config["matmul_bits"] = bits
        fresh = layer.__class__.from_config(config)
        if layer.name not in targets:
            return fresh
        with tf.name_scope(layer.name):  # keep variable names like body_0_conv1/kernel
            fresh.build(layer.input_shape)
        config = UniformQuantizeConfig(
            bits,
            bits,
            per_channel=per_channel,
            clip_correction=clip_correction,
            quantize_output=False,
            scheme=scheme,
            weight_bound=weight_bound,
            weight_grid=weight_grid,
        )
        return InputQuantizeWrapper(fresh, config, input_bits=bits, name=layer.name)

    quantized = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:  # by name: the copies hold the same variables plus their quantizers' ranges
        # The last name component only: a model loaded from a file names some variables without their layer's
        # scope (SwinIR's relative_position_bias_table), a fresh clone with it.
        variables = {_short(variable): variable for variable in quantized.get_layer(layer.name).weights}
        for weight in layer.weights:
            variables[_short(weight)].assign(weight)
    quantized.edge_sr_config = fp_config
    if placement == "integer":
        from edge_sr.quant.deploy import integer_model  # it builds on this module's quantizers

        return integer_model(quantized)
    return quantized


def _short(variable):
    return variable.name.split("/")[-1]


def tfmot_default_model(model):
    """`model` under tfmot's default 8-bit QAT (layer names kept); its ranges start at tfmot's ±6."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs as default_configs,
    )

    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, keras.layers.InputLayer):
            return fresh
        if isinstance(layer, keras.layers.Rescaling):
            return annotate(fresh, default_configs.Default8BitOutputQuantizeConfig())
        if isinstance(layer, DepthToSpace):
            return annotate(fresh, default_configs.NoOpQuantizeConfig())
        return annotate(fresh)

    annotated = keras.models.clone_model(model, clone_function=clone)
    annotated.set_weights(model.get_weights())
    try:
        scope = {
            name: getattr(default_configs, name) for name in ("Default8BitOutputQuantizeConfig", "NoOpQuantizeConfig")
        }
        with tfmot.quantization.keras.quantize_scope(scope):
            quantized = tfmot.quantization.keras.quantize_apply(annotated, quantized_layer_name_prefix="")
    except (RuntimeError, ValueError) as error:
        raise EdgeSRError(f"tfmot's default 8-bit QAT cannot quantize {model.name!r}: {error}") from None
    quantized.edge_sr_config = model_config(model)
    return quantized


class QuantizerSite(NamedTuple):
    """One quantizer of a model: where it sits, what it quantizes and its range variables."""

    layer: str  # the layer holding it
    site: str  # "input", "output", a weight's name ("kernel") or a matmul input ("q_input", "attn_probs", ...)
    quantizer: UniformQuantizer
    variables: dict  # its range variables by role ("lower", "upper" or "gamma"), as quantizer.build made them
    weight: tf.Variable | None  # the weight it quantizes; None for an activation
    one_sided: bool  # a post-softmax or post-GELU activation: 2DQuant's DOBI moves only its upper bound

    @property
    def is_weight(self):
        return self.weight is not None

    @property
    def requantizes(self):
        """A deploy completion's requantisation of a concatenation's input onto the concatenation's range."""
        return self.site.startswith("input_")


def quantizer_sites(model):
    """Every quantizer of a model made by `quantize_model` (or by tfmot with edge_sr's quantize configs), in
    layer order: the one place that knows where each kind of layer keeps its quantizers."""
    return [
        QuantizerSite(layer.name, site, quantizer, variables, weight, _one_sided(layer, site))
        for layer in model.layers
        for site, quantizer, variables, weight in _layer_sites(layer)
    ]


def _layer_sites(layer):
    """(site, quantizer, variables, weight or None) for each quantizer the layer holds."""
    if isinstance(layer, OutputQuantizer):  # the deploy completion: the wrapped layer's own, then its 8-bit ones
        yield from _layer_sites(layer.layer)
        for index, quantizer in layer.input_quantizers.items():
            yield f"input_{index}", quantizer, layer.input_quantizer_vars[index], None
        if layer.kernel_quantizer:
            yield "kernel", layer.kernel_quantizer, layer.kernel_quantizer_vars, layer.layer.kernel
        if layer.output_quantizer:
            yield "output", layer.output_quantizer, layer.output_quantizer_vars, None
    if isinstance(layer, InputQuantizeWrapper):
        yield "input", layer.input_quantizer, layer.input_quantizer_vars, None
    if isinstance(layer, ActivationQuantizer):
        yield "input", layer.quantizer, layer.quantizer_vars, None
    if isinstance(layer, tfmot.quantization.keras.QuantizeWrapper):
        for weight, quantizer, variables in layer._weight_vars:
            yield weight.name.split(":")[0].split("/")[-1], quantizer, variables, weight
        if layer._output_quantizers:
            yield "output", layer._output_quantizers[0], layer._output_quantizer_vars, None
    for site, quantizer in getattr(layer, "matmul_quantizers", {}).items():  # SwinIR's attention
        yield site, quantizer, layer.matmul_quantizer_vars[site], None


def _one_sided(layer, site):
    if site == "attn_probs":
        return True
    producer = layer.inbound_nodes[0].inbound_layers
    gelu = isinstance(producer, keras.layers.Activation) and producer.get_config()["activation"] == "gelu"
    return site == "input" and gelu
