"""Putting the quantizer on layers: a tfmot `QuantizeConfig` for Conv/Dense, and a layer for any tensor."""

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.quant.quantizer import (
    WEIGHT_GRIDS,
    MaxScaleWeightQuantizer,
    SymmetricActivationQuantizer,
    UniformQuantizer,
    check_bits,
    grid_step,
    integer_grid,
    notify_observers,
    simulating,
    straight_through,
    unobserved,
    xnnpack_mean,
    xnnpack_requantize,
)

# How a config quantizes: "uniform" (learnable asymmetric activations, symmetric weights: ODM, 2DQuant, minmax)
# or "pams" (PAMS: learnable symmetric clip α for activations, weights on their current max |W|).
QUANTIZER_SCHEMES = ("uniform", "pams")
# A uniform weight quantizer's bound: "learned" (a trained bound, or WCC's P99 · γ with `clip_correction`) or
# "max" (max |W| of the current weights at every call: ODM's fixed-policy ablation baseline).
WEIGHT_BOUNDS = ("learned", "max")


@keras.utils.register_keras_serializable(package="edge_sr")
class UniformQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """k-bit symmetric kernel and (optionally) k-bit output for a Conv2D or Dense layer.

    Use it with tfmot on your own tf_keras model:
        quantize_annotate_layer(conv, UniformQuantizeConfig(4, 4)), then, inside
        `quantize_scope(quantize_scope_objects())`, `quantize_apply(annotated_model)`.
    """

    def __init__(
        self,
        weight_bits=8,
        activation_bits=8,
        per_channel=False,
        clip_correction=False,
        quantize_output=True,
        scheme="uniform",
        weight_bound="learned",
        weight_grid="narrow",
    ):
        self.weight_bits, self.activation_bits = check_bits(weight_bits), check_bits(activation_bits)
        self.per_channel, self.clip_correction, self.quantize_output = per_channel, clip_correction, quantize_output
        if scheme not in QUANTIZER_SCHEMES:
            raise EdgeSRError(f"unknown quantizer scheme {scheme!r}; choose one of: {', '.join(QUANTIZER_SCHEMES)}")
        if weight_bound not in WEIGHT_BOUNDS:
            raise EdgeSRError(f"unknown weight bound {weight_bound!r}; choose one of: {', '.join(WEIGHT_BOUNDS)}")
        if (scheme == "pams" or weight_bound == "max") and (per_channel or clip_correction):
            raise EdgeSRError("weights on their max |W| are per tensor, unclipped: no per_channel or clip_correction")
        if weight_grid not in WEIGHT_GRIDS:
            raise EdgeSRError(f"unknown weight grid {weight_grid!r}; choose one of: {', '.join(WEIGHT_GRIDS)}")
        if scheme == "pams" and weight_grid != "narrow":
            raise EdgeSRError("PAMS quantizes weights on its narrow 2^b − 1 level grid: no mid-rise weight grid")
        self.scheme, self.weight_bound, self.weight_grid = scheme, weight_bound, weight_grid

    def get_weights_and_quantizers(self, layer):
        mid_rise = self.weight_grid == "mid-rise"
        if self.scheme == "pams" or self.weight_bound == "max":
            return [(layer.kernel, MaxScaleWeightQuantizer(self.weight_bits, mid_rise=mid_rise))]
        quantizer = UniformQuantizer(
            self.weight_bits,
            symmetric=True,
            per_channel=self.per_channel,
            clip_correction=self.clip_correction,
            mid_rise=mid_rise,
        )
        return [(layer.kernel, quantizer)]

    def activation_quantizer(self, bits):
        """The scheme's quantizer for an activation (a layer's output or input) of `bits`."""
        return SymmetricActivationQuantizer(bits) if self.scheme == "pams" else UniformQuantizer(bits)

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [self.activation_quantizer(self.activation_bits)] if self.quantize_output else []

    def get_config(self):
        return {
            "weight_bits": self.weight_bits,
            "activation_bits": self.activation_bits,
            "per_channel": self.per_channel,
            "clip_correction": self.clip_correction,
            "quantize_output": self.quantize_output,
            "scheme": self.scheme,
            "weight_bound": self.weight_bound,
            "weight_grid": self.weight_grid,
        }


@keras.utils.register_keras_serializable(package="edge_sr")
class ActivationQuantizer(keras.layers.Layer):
    """Fake-quantizes the tensor passing through it (k-bit, asymmetric, learnable range)."""

    def __init__(self, bits=8, **kwargs):
        super().__init__(**kwargs)
        self.bits = check_bits(bits)
        self.quantizer = UniformQuantizer(bits)

    def build(self, input_shape):
        self.quantizer_vars = self.quantizer.build(input_shape, "input", self)
        super().build(input_shape)

    def call(self, inputs, training=None):
        return self.quantizer(inputs, training, self.quantizer_vars)

    def get_config(self):
        return {**super().get_config(), "bits": self.bits}


@keras.utils.register_keras_serializable(package="edge_sr")
class InputQuantizeWrapper(tfmot.quantization.keras.QuantizeWrapperV2):
    """tfmot's wrapper plus a k-bit quantizer on the layer's input.

    The SR papers quantize a conv's input, not the tensor where it is produced: in a residual block the same
    tensor also feeds the skip connection, which stays in float.
    """

    def __init__(self, layer, quantize_config, input_bits, **kwargs):
        super().__init__(layer, quantize_config, **kwargs)
        self.input_bits = check_bits(input_bits)
        self.input_quantizer = quantize_config.activation_quantizer(input_bits)

    def build(self, input_shape):
        super().build(input_shape)
        self.input_quantizer_vars = self.input_quantizer.build(input_shape, "input", self)

    def call(self, inputs, training=None, **kwargs):
        quantized = self.input_quantizer(inputs, training, self.input_quantizer_vars)
        return super().call(quantized, training=training, **kwargs)

    def get_config(self):
        return {**super().get_config(), "input_bits": self.input_bits}


def _int8_constant(values):
    """`values` as an int8 constant tensor holds them (8-bit grid on [min, max] widened to 0), as float32: a
    per-channel offset becomes such a constant in TFLite, so the simulation computes with the same values."""
    values = np.asarray(values, np.float32)
    grid_lower, step = integer_grid(min(values.min(), 0.0), max(values.max(), 0.0), 256)
    return (np.floor((values - grid_lower) / step + np.float32(0.5)) * step + grid_lower).tolist()


def integer_bias(bias, input_step, kernel_step):
    """A conv's bias as its integer kernel adds it: an int32 on the grid of the input step times the weight step
    (per output channel). At 4 bits that grid is 256 times coarser than at 8: coarse enough to move 1 % of the
    outputs by a level, and at W4A4 one k-bit input that flips reaches most pixels downstream."""
    step = input_step * kernel_step
    return straight_through(tf.floor(bias / step + 0.5) * step, bias)


def integer_layer_norm(norm, x, grid):
    """LayerNormalization `norm` (over the last axis) as an integer file computes it from x on the 8-bit grid
    of the range `grid`: the int8 MEAN kernel's rounded mean (xnnpack_mean), then float variance and scaling."""
    mean = xnnpack_mean(x, grid)
    variance = tf.reduce_mean(tf.math.squared_difference(x, mean), -1, keepdims=True)
    scale = tf.math.rsqrt(variance + norm.epsilon) * norm.gamma
    return x * scale + (norm.beta - mean * scale)


def _bounds(variables):
    return variables["lower"], variables["upper"]


def _step(quantizer, variables, inputs=None):
    return quantizer.int8_step(inputs, variables)


def _tfmot_quantized(layer):
    from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer

    wrapped = isinstance(layer, tfmot.quantization.keras.QuantizeWrapper) and not isinstance(
        layer, InputQuantizeWrapper
    )
    return wrapped or isinstance(layer, QuantizeLayer)


class CompletionQuantizer(UniformQuantizer):
    """An 8-bit quantizer the deploy completion adds, outside the papers' placement: ranges start at DOBI's,
    and ODM's mismatch loss leaves them out."""


class SharedRange:
    """One 8-bit range that several layers quantize onto (the tensors a concatenation joins, its output and its
    requantised inputs): the first layer to build creates its variables, the others use the same ones, so they
    train as one."""

    def __init__(self):
        self._variables = None

    def variables(self, quantizer, layer):
        if self._variables is None:
            self._variables = quantizer.build(None, "output", layer)
        return self._variables


@keras.utils.register_keras_serializable(package="edge_sr")
class OutputQuantizer(keras.layers.Layer):
    """Runs `layer` (shared, not copied) with an 8-bit quantized kernel (`quantize_kernel`), an 8-bit quantizer
    on its output (`quantize_output`) and 8-bit requantisation of the inputs numbered in `requantize_inputs`
    (a concatenation reading a tensor that keeps another range). `shared_range`: a SharedRange that its output
    and requantised inputs take; `fixed_output_range`: (lower, upper) of an output grid that is not trained.

    `input_grids` ({input index: range variables of the 8-bit grid that input arrives on}, set by the deploy
    completion) lets it compute, while simulating, what the integer kernels do with them: an input moved onto
    another grid (a requantised copy above, or the k-bit input grid of a wrapped `InputQuantizeWrapper`) is
    requantised as XNNPACK does it, and a conv's bias is rounded onto the int32 grid it is added on.
    """

    def __init__(
        self,
        layer,
        quantize_kernel=False,
        quantize_output=True,
        requantize_inputs=(),
        shared_range=None,
        fixed_output_range=None,
        **kwargs,
    ):
        if _tfmot_quantized(layer):
            raise EdgeSRError(
                f"layer {layer.name} carries tfmot's own quantizers (a tfmot8 run): the integer export keeps edge_sr's "
                "quantizer ranges and cannot take tfmot's; evaluate the run in Keras (python -m edge_sr.evaluate "
                "--model RUN_DIR), or for a full-integer file train --method minmax --bits 8 instead"
            )
        if shared_range is not None and fixed_output_range is not None:
            raise EdgeSRError(f"{layer.name}'s output range cannot be both shared and fixed")
        super().__init__(name=layer.name, **kwargs)
        self.layer, self.quantize_kernel, self.quantize_output = layer, quantize_kernel, quantize_output
        self.kernel_quantizer = CompletionQuantizer(8, symmetric=True, per_channel=True) if quantize_kernel else None
        self.output_quantizer = CompletionQuantizer(8) if quantize_output else None
        self.input_quantizers = {index: CompletionQuantizer(8) for index in requantize_inputs}
        self.shared_range, self.fixed_output_range = shared_range, fixed_output_range
        self._untracked("input_grids", {})

    def build(self, input_shape):
        if self.kernel_quantizer:
            self.kernel_quantizer_vars = self.kernel_quantizer.build(self.layer.kernel.shape, "kernel", self)
        if self.output_quantizer:
            self.output_quantizer_vars = self._output_range()
        # A requantised input moves onto the concatenation's range: the one its group shares.
        variables = {i: self.shared_range.variables(q, self) for i, q in self.input_quantizers.items()}
        self._untracked("input_quantizer_vars", variables)
        super().build(input_shape)

    def _untracked(self, name, references):
        """Set an attribute that only refers to variables some layer owns (and checkpoints): Keras would track it
        as a dictionary with integer keys, which a checkpoint cannot hold."""
        object.__setattr__(self, name, references)

    def _output_range(self):
        if self.shared_range is not None:
            return self.shared_range.variables(self.output_quantizer, self)
        if self.fixed_output_range is not None:  # not trained: the pixel grid
            low, high = self.fixed_output_range
            fixed = {"lower": low, "upper": high}
            return {
                bound: self.add_weight(f"output_{bound}", (), initializer=keras.initializers.Constant(value),
                                       trainable=False)
                for bound, value in fixed.items()
            }  # fmt: skip
        return self.output_quantizer.build(None, "output", self)

    @property
    def _k_bit(self):
        return isinstance(self.layer, InputQuantizeWrapper)

    @property
    def _conv(self):
        """The conv or linear layer computed here (inside a k-bit wrapper or not), or None."""
        layer = self.layer.layer if self._k_bit else self.layer
        return layer if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) else None

    def _input_step(self, index):
        return grid_step(*_bounds(self.input_grids[index]), 256)

    def _requantize(self, inputs):
        """The inputs the file requantises, on their new grid as XNNPACK puts them there."""
        inputs = list(inputs)
        for index in self.input_grids:
            if index in self.input_quantizers:
                quantizer, variables = self.input_quantizers[index], self.input_quantizer_vars[index]
            elif self._k_bit:
                quantizer, variables = self.layer.input_quantizer, self.layer.input_quantizer_vars
                notify_observers(quantizer, inputs[index], variables)  # ODM's L_M: what the move onto k bits changes
            else:
                continue
            target = quantizer.range(None, variables)
            inputs[index] = xnnpack_requantize(inputs[index], self._input_step(index), target, quantizer.levels)
        return inputs

    def _integer_bias(self, bias):
        """`bias` on the int32 grid the integer kernel adds it on (as it is where the input grid is unknown)."""
        if self._k_bit:
            (kernel, quantizer, variables), *_ = self.layer._weight_vars
            input_step = _step(self.layer.input_quantizer, self.layer.input_quantizer_vars)
            return integer_bias(bias, input_step, _step(quantizer, variables, kernel))
        if self.kernel_quantizer and 0 in self.input_grids:
            kernel_step = _step(self.kernel_quantizer, self.kernel_quantizer_vars, self._conv.kernel)
            return integer_bias(bias, self._input_step(0), kernel_step)
        return bias

    def _normalizes_last_axis(self, x):
        norm = self.layer
        return isinstance(norm, keras.layers.LayerNormalization) and list(norm.axis) in ([-1], [x.shape.rank - 1])

    def call(self, inputs, training=None):
        single = not isinstance(inputs, (list, tuple))
        inputs = [inputs] if single else list(inputs)
        swaps = {}  # (layer, attribute): the value the integer kernel computes with
        if simulating():
            inputs = self._requantize(inputs)  # on their grids already: the quantizers below keep the values
            if getattr(self._conv, "use_bias", False):
                swaps[self._conv, "bias"] = self._integer_bias(self._conv.bias)
        inputs = [
            self.input_quantizers[i](x, training, self.input_quantizer_vars[i]) if i in self.input_quantizers else x
            for i, x in enumerate(inputs)
        ]
        if self.kernel_quantizer:
            swaps[self.layer, "kernel"] = self.kernel_quantizer(self.layer.kernel, training, self.kernel_quantizer_vars)
        if isinstance(self.layer, keras.layers.Rescaling) and np.size(self.layer.offset) > 1:
            swaps[self.layer, "offset"] = _int8_constant(self.layer.offset)
        originals = {key: getattr(*key) for key in swaps}
        requantized_k_bit = self._k_bit and simulating() and 0 in self.input_grids
        try:
            for (layer, name), value in swaps.items():
                setattr(layer, name, value)
            if simulating() and self._normalizes_last_axis(inputs[0]) and 0 in self.input_grids:
                outputs = integer_layer_norm(self.layer, inputs[0], _bounds(self.input_grids[0]))
            elif hasattr(self.layer, "matmul_quantizers") and 0 in self.input_grids:  # SwinIR's attention
                outputs = self.layer(inputs[0], input_grid=self.input_grids[0])
            else:
                with unobserved(self.layer.input_quantizer if requantized_k_bit else None):
                    outputs = self.layer(inputs[0] if single else inputs)
        finally:
            for (layer, name), value in originals.items():
                setattr(layer, name, value)
        if self.output_quantizer:
            outputs = self.output_quantizer(outputs, training, self.output_quantizer_vars)
        return outputs


def quantize_scope_objects():
    """Custom objects tfmot's `quantize_scope` needs to apply or load models quantized with edge_sr."""
    return {
        "UniformQuantizer": UniformQuantizer,
        "SymmetricActivationQuantizer": SymmetricActivationQuantizer,
        "MaxScaleWeightQuantizer": MaxScaleWeightQuantizer,
        "UniformQuantizeConfig": UniformQuantizeConfig,
        "ActivationQuantizer": ActivationQuantizer,
        "InputQuantizeWrapper": InputQuantizeWrapper,
        "OutputQuantizer": OutputQuantizer,
    }
