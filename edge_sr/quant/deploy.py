"""The `deploy` completion of a quantized model: 8-bit quantizers on every weight and tensor that its k-bit
placement leaves in float, so that the whole model is an integer graph (what `convert --int8` exports).

- every layer output gets an 8-bit quantizer, except where only a ReLU reads a conv's output (the converter fuses
  them, so the range after the ReLU is the one that exists), where only one k-bit input quantizer reads it (the
  converter merges the two: the tensor is made on the k-bit grid), and where the layer only moves values
  (depth-to-space, nearest upsampling, SwinIR's pad and crop: the output stays on the input's grid);
- SwinIR keeps in float what 2DQuant keeps in float and XNNPACK runs only in float: LayerNorm (but for its mean,
  which the converter computes in int8), softmax and the attention scores q·kᵀ; the file dequantizes into them
  and quantizes out. GELU becomes int8 (a lookup table LiteRT's builtin kernel runs);
- the kernels of the convs and linears outside the placement get 8-bit per-channel symmetric quantizers (DOBI's
  least-squared-error clip of each channel: on the idealo RDN's upsampling convs, about half the loss of max |W|);
- what the integer kernels do beyond the fake quants is computed too, so the reference is what the file
  computes: biases on the int32 grid they are added on, and XNNPACK's requantisation with its 8-bit multiplier
  where a tensor moves to another grid (see OutputQuantizer);
- the model output is quantized on [0, 255] with step 1: the uint8 pixels an image file holds;
- an 8-bit attention v range is widened to zero point 0, so that XNNPACK runs the int8 softmax · v matmul;
- layers that XNNPACK would leave to LiteRT's builtin kernels become equivalents that it runs (a concatenation of
  more than 5 inputs → nested ones, nearest-neighbour upsampling → channel repeats + depth-to-space);
- the tensors a concatenation joins share one range (TFLite's int8 CONCATENATION and XNNPACK require it): a
  tensor joins the range of the first concatenation that reads it; later ones read a requantised copy (RDN's
  global fusion reads every block output, each already in its dense block's range: one shared range would be
  wide enough to cost 2 dB).

The 8-bit ranges are DOBI's (2DQuant's least-squared-error bounds) on the FP flow over calibration batches; the
k-bit quantizers keep their learned ranges. The completed model is itself a Keras fake-quant model: the reference
the exported file must match.
"""

import numpy as np
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.quant.layers import InputQuantizeWrapper, OutputQuantizer
from edge_sr.quant.quantizer import bypass_quantizers, observe_quantizers
from edge_sr.quant.ranges import dobi_activation_range, dobi_weight_upper
from models_tf.layers import (
    CropToScaledSize,
    DepthToSpace,
    NearestUpsampling,
    ReflectPadToMultiple,
    xnnpack_equivalent,
)

_WEIGHTED = (keras.layers.Conv2D, keras.layers.Dense)
# Layers that only move values: their output is on their input's grid, and an 8-bit range of its own would cost
# a requantisation (a QUANTIZE op on the largest tensors) that changes nothing but rounding.
_MOVES_VALUES = (DepthToSpace, NearestUpsampling, ReflectPadToMultiple, CropToScaledSize)
PIXEL_RANGE = (0.0, 255.0)


def _fused_activation(layer):
    """Whether the converter fuses `layer` into the conv or linear before it (TFLite's fused ReLU / ReLU6): then
    that layer's output is never a tensor of its own. Other activations (GELU, leaky ReLU) are ops of their own
    whose input needs a range."""
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        return not config["negative_slope"] and not config["threshold"] and config["max_value"] in (None, 6.0)
    return isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] in ("relu", "relu6")


def _consumers(layer):
    return [node.outbound_layer for node in layer.outbound_nodes]


def deploy_model(model, batches):
    """`model` (k-bit quantized, or FP) completed with 8-bit quantizers everywhere else; shares its variables."""
    batches = list(batches)
    if not batches:
        raise EdgeSRError("the integer export needs at least one calibration batch")
    last = model.layers[-1]

    joined, requantized = _concat_membership(model)
    shares_a_range = set(joined) | {source for sources in joined.values() for source in sources}

    def complete(layer):
        consumers = _consumers(layer)
        weighted = isinstance(getattr(layer, "layer", layer), _WEIGHTED)
        only_activations = weighted and bool(consumers) and all(_fused_activation(c) for c in consumers)
        # A tensor only one k-bit input quantizer reads is made on that grid: the converter merges the two
        # fake quants, so an 8-bit rounding first would be one the file never does.
        only_k_bit = (
            len(consumers) == 1 and isinstance(consumers[0], InputQuantizeWrapper) and layer.name not in shares_a_range
        )
        plain_weights = isinstance(layer, _WEIGHTED) and not isinstance(layer, InputQuantizeWrapper)
        # OutputQuantizer computes as the file does: a k-bit layer's input and bias, a LayerNorm's integer mean
        as_the_file = isinstance(layer, (InputQuantizeWrapper, keras.layers.LayerNormalization)) or bool(
            getattr(layer, "matmul_quantizers", None)  # SwinIR's attention: its k and v requantisations
        )
        layer = xnnpack_equivalent(layer) or layer
        quantize_output = not (only_activations or only_k_bit or isinstance(layer, _MOVES_VALUES))
        if not (quantize_output or plain_weights or as_the_file):
            return layer
        return OutputQuantizer(
            layer,
            quantize_kernel=plain_weights,
            quantize_output=quantize_output,
            requantize_inputs=requantized.get(layer.name, ()),
        )

    deployed = keras.models.clone_model(model, clone_function=complete)
    deployed.edge_sr_config = getattr(model, "edge_sr_config", None)
    _link_input_grids(deployed)
    new_sites = _initialize_output_ranges(deployed, batches)
    _share_concat_ranges(deployed, joined)
    _pin_pixel_ranges(deployed, deployed.get_layer(last.name))
    _center_attention_values(deployed)
    return deployed, new_sites


def _link_input_grids(deployed):
    """Tell every completed layer which of its inputs arrive on an 8-bit grid, and whose: what it needs to compute
    the requantisations and int32 biases of the integer file (see OutputQuantizer)."""
    for layer in deployed.layers:
        if isinstance(layer, OutputQuantizer):
            producers = layer.inbound_nodes[0].inbound_layers
            producers = producers if isinstance(producers, list) else [producers]
            layer.input_grids = {
                index: _output_grid(producer) for index, producer in enumerate(producers) if _output_grid(producer)
            }


def _output_grid(layer):
    """The range variables of the 8-bit grid `layer`'s output is on (the model input: uint8 pixels), or None."""
    if isinstance(layer, keras.layers.InputLayer):
        return {"lower": PIXEL_RANGE[0], "upper": PIXEL_RANGE[1]}
    if isinstance(layer, OutputQuantizer) and layer.quantize_output:
        return layer.output_quantizer_vars
    if isinstance(layer, _MOVES_VALUES):
        return _output_grid(_moved(layer))
    return None


def _moved(layer):
    """The layer whose output a _MOVES_VALUES layer moves (a crop's first input: the image it crops)."""
    producers = layer.inbound_nodes[-1].inbound_layers
    return producers[0] if isinstance(producers, list) else producers


def _pin_pixel_ranges(deployed, output):
    """Quantize the output on the uint8 pixel grid, and the tensors that only a rescaling separates from it
    (isr-rdn's [0, 1] image before ×255) on that grid's preimage: a step coarser than one pixel level there
    would cost PSNR that no calibration can win back."""
    while isinstance(output, _MOVES_VALUES):  # SwinIR's crop: the pixels are made before it
        output = _moved(output)
    if not isinstance(output, OutputQuantizer) or not output.quantize_output:
        raise EdgeSRError(f"the model's last layer {output.name} cannot carry the output quantization")
    low, high = PIXEL_RANGE
    layer = output
    while True:
        layer.output_quantizer_vars["lower"].assign(low)
        layer.output_quantizer_vars["upper"].assign(high)
        inner = layer.layer
        if not isinstance(inner, keras.layers.Rescaling) or len(_consumers(layer)) > 1:
            return
        offset = np.asarray(inner.offset, np.float64)
        low, high = float(np.min((low - offset) / inner.scale)), float(np.max((high - offset) / inner.scale))
        layer = _moved(layer)
        while isinstance(layer, _MOVES_VALUES):  # SwinIR's last conv feeds a depth-to-space, then the rescaling
            layer = _moved(layer)
        if not isinstance(layer, OutputQuantizer) or not layer.quantize_output:
            return


def _center_attention_values(deployed):
    """Widen each 8-bit attention v range on its shorter side until 0 sits at the middle code (zero point 0 in
    the int8 file): XNNPACK runs an int8 softmax · v matmul only then; else LiteRT's builtin kernel runs it, 9×
    slower than XNNPACK's fp32 one on SwinIR-light. Below 8 bits the converter stores the k-bit codes at the
    bottom of int8, so no range gives that zero point; v keeps its learned range."""
    for layer in deployed.layers:
        attention = getattr(layer, "layer", layer)
        quantizer = getattr(attention, "matmul_quantizers", {}).get("v_input")
        if quantizer is None or quantizer.bits != 8:
            continue
        bounds = attention.matmul_quantizer_vars["v_input"]
        half = quantizer.levels // 2  # codes −half … half − 1 around 0
        step = max(-float(bounds["lower"].numpy()) / half, float(bounds["upper"].numpy()) / (half - 1), 1e-8)
        bounds["lower"].assign(-half * step)
        bounds["upper"].assign((half - 1) * step)


def _initialize_output_ranges(deployed, batches):
    """DOBI ranges of the FP flow for the new 8-bit quantizers (the learned k-bit ranges stay as they are): the
    candidate with the least squared quantization error, per batch, averaged over the batches. Min/max ranges
    cost 0.4 dB more on the idealo RDN: a few extreme activations stretch the step for all the others."""
    new = {}
    for layer in deployed.layers:
        if isinstance(layer, OutputQuantizer):
            if layer.kernel_quantizer:
                upper = dobi_weight_upper(layer.layer.kernel.numpy(), layer.kernel_quantizer.levels, per_channel=True)
                layer.kernel_quantizer_vars["upper"].assign(np.maximum(upper, 1e-8))
            if layer.output_quantizer:
                new[id(layer.output_quantizer_vars)] = []

    def record(quantizer, inputs, weights):
        if id(weights) in new:
            new[id(weights)].append(dobi_activation_range(inputs.numpy(), quantizer.levels, one_sided=False))

    with bypass_quantizers(), observe_quantizers(record):
        for batch in batches:
            deployed(batch, training=False)
    for layer in deployed.layers:
        if isinstance(layer, OutputQuantizer) and layer.output_quantizer:
            low, high = np.mean(new[id(layer.output_quantizer_vars)], axis=0)  # each holds 0
            layer.output_quantizer_vars["lower"].assign(low)
            layer.output_quantizer_vars["upper"].assign(high if high > low else low + 1.0)
    return len(new)


def _concat_membership(model):
    """({concat: [input layers sharing its range]}, {concat: (input indices to requantise)}) by the rule that a
    tensor joins the first concatenation reading it (in model order)."""
    claimed, joined, requantized = set(), {}, {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Concatenate):
            sources = layer.inbound_nodes[0].inbound_layers
            joined[layer.name] = [source.name for source in sources if source.name not in claimed]
            requantized[layer.name] = tuple(i for i, source in enumerate(sources) if source.name in claimed)
            claimed.update(source.name for source in sources)
    return joined, requantized


def _share_concat_ranges(deployed, joined):
    """Give each concatenation, the tensors it joins and its requantised inputs one range: the union of theirs."""
    parent = {}

    def find(name):
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    for concat, sources in joined.items():
        for source in sources:
            parent[find(source)] = find(concat)
    groups = {}
    for name in list(parent):
        groups.setdefault(find(name), []).append(deployed.get_layer(name))
    for members in groups.values():
        for member in members:
            if not (isinstance(member, OutputQuantizer) and member.quantize_output):
                raise EdgeSRError(f"{member.name} feeds a concatenation but carries no output quantization")
        variables = [member.output_quantizer_vars for member in members]
        low = min(float(v["lower"].numpy()) for v in variables)
        high = max(float(v["upper"].numpy()) for v in variables)
        for member in members:
            for v in (member.output_quantizer_vars, *member.input_quantizer_vars.values()):
                v["lower"].assign(low)
                v["upper"].assign(high)
