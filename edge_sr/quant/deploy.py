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
- the model output is quantized on [0, 255] with step 1: the uint8 pixels an image file holds (a fixed range);
- layers that XNNPACK would leave to LiteRT's builtin kernels become equivalents that it runs (a concatenation of
  more than 5 inputs → nested ones, nearest-neighbour upsampling → channel repeats + depth-to-space);
- the tensors a concatenation joins share one range (TFLite's int8 CONCATENATION and XNNPACK require it), one
  pair of variables that trains as one: a tensor joins the range of the first concatenation that reads it;
  later ones read a requantised copy (RDN's global fusion reads every block output, each already in its dense
  block's range: one shared range would be wide enough to cost 2 dB).

The completed model is itself a Keras fake-quant model: the reference the exported file must match. For a run of
the `paper` placement, `deploy_model` (edge_sr/export/int8.py) completes it at export, the new 8-bit ranges DOBI's
(2DQuant's least-squared-error bounds) on the FP flow over calibration batches, the k-bit ones as learned; a run
of the `integer` placement trains or calibrates the completed model itself (`integer_model`).
"""

import numpy as np
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.quant.layers import InputQuantizeWrapper, OutputQuantizer, SharedRange
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


def integer_model(model):
    """`model` (k-bit quantized, or FP) completed with 8-bit quantizers everywhere else, sharing its variables:
    the graph the integer file computes. The new ranges start at their defaults (set them with
    `initialize_ranges`), but for the pixel grids, which are fixed."""
    joined, requantized = _concat_membership(model)
    shares_a_range = set(joined) | {source for sources in joined.values() for source in sources}
    groups = _range_groups(joined)
    pixel_ranges = _pixel_ranges(model, shares_a_range)

    def complete(layer):
        plain_weights = isinstance(layer, _WEIGHTED) and not isinstance(layer, InputQuantizeWrapper)
        # OutputQuantizer computes as the file does: a k-bit layer's input and bias, a LayerNorm's integer mean
        as_the_file = isinstance(layer, (InputQuantizeWrapper, keras.layers.LayerNormalization)) or bool(
            getattr(layer, "matmul_quantizers", None)  # SwinIR's attention: its k and v requantisations
        )
        quantize_output = _quantizes_output(layer, shares_a_range)
        name = layer.name
        layer = xnnpack_equivalent(layer) or layer
        if not (quantize_output or plain_weights or as_the_file):
            return layer
        return OutputQuantizer(
            layer,
            quantize_kernel=plain_weights,
            quantize_output=quantize_output,
            requantize_inputs=requantized.get(name, ()),
            shared_range=groups.get(name),
            fixed_output_range=pixel_ranges.get(name),
        )

    deployed = keras.models.clone_model(model, clone_function=complete)
    deployed.edge_sr_config = getattr(model, "edge_sr_config", None)
    _link_input_grids(deployed)
    return deployed


def _quantizes_output(layer, shares_a_range):
    """Whether the completion gives `layer` (of the model being completed) an 8-bit output quantizer."""
    consumers = _consumers(layer)
    weighted = isinstance(getattr(layer, "layer", layer), _WEIGHTED)
    if weighted and consumers and all(_fused_activation(c) for c in consumers):
        return False
    # A tensor only one k-bit input quantizer reads is made on that grid: the converter merges the two fake
    # quants, so an 8-bit rounding first would be one the file never does.
    if len(consumers) == 1 and isinstance(consumers[0], InputQuantizeWrapper) and layer.name not in shares_a_range:
        return False
    return not isinstance(xnnpack_equivalent(layer) or layer, _MOVES_VALUES)


def _link_input_grids(deployed):
    """Tell every completed layer which of its inputs arrive on an 8-bit grid, and whose: what it needs to compute
    the requantisations and int32 biases of the integer file (see OutputQuantizer)."""
    for layer in deployed.layers:
        if isinstance(layer, OutputQuantizer):
            producers = layer.inbound_nodes[0].inbound_layers
            producers = producers if isinstance(producers, list) else [producers]
            layer.input_grids.update(
                {index: _output_grid(producer) for index, producer in enumerate(producers) if _output_grid(producer)}
            )


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


def _pixel_ranges(model, shares_a_range):
    """{layer name: its fixed output range}: the model output on the uint8 pixel grid [0, 255] with step 1, and
    the tensors that only a rescaling separates from it (isr-rdn's [0, 1] image before ×255) on that grid's
    preimage: a step coarser than one pixel level there would cost PSNR that no calibration can win back."""
    layer = model.layers[-1]
    while isinstance(layer, _MOVES_VALUES):  # SwinIR's crop: the pixels are made before it
        layer = _moved(layer)
    if not _quantizes_output(layer, shares_a_range):
        raise EdgeSRError(f"the model's last layer {layer.name} cannot carry the output quantization")
    low, high = PIXEL_RANGE
    fixed = {}
    while True:
        fixed[layer.name] = (low, high)
        if not isinstance(layer, keras.layers.Rescaling) or len(_consumers(layer)) > 1:
            return fixed
        offset = np.asarray(layer.offset, np.float64)
        low, high = float(np.min((low - offset) / layer.scale)), float(np.max((high - offset) / layer.scale))
        layer = _moved(layer)
        while isinstance(layer, _MOVES_VALUES):  # SwinIR's last conv feeds a depth-to-space, then the rescaling
            layer = _moved(layer)
        if not _quantizes_output(layer, shares_a_range) or layer.name in shares_a_range:
            return fixed


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


def _range_groups(joined):
    """{layer name: its SharedRange}: each concatenation, the tensors it joins and its requantised inputs quantize
    onto one range."""
    parent = {}

    def find(name):
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    for concat, sources in joined.items():
        find(concat)
        for source in sources:
            parent[find(source)] = find(concat)
    ranges = {}
    return {name: ranges.setdefault(find(name), SharedRange()) for name in list(parent)}
