"""The one k-bit uniform fake quantizer that QAT (ODM), PTQ (2DQuant) and the TFLite export share.

    q(x; l, u) = round((clip(x, l, u) − l) / s) · s + l,   s = (u − l) / (levels − 1)

with a straight-through round, so gradients reach x inside the range and reach l and u through the clip and
the affine rescale (the LSQ-style formulas: ∂q/∂u = (round(v) − v)/(levels − 1) inside, 1 above; mirrored for l).

Two details make the simulation exactly what an integer TFLite kernel computes:
- an activation grid is shifted (by less than one step) so that 0.0 lies on it, as TFLite's integer zero point
  demands; with a straight-through round this leaves the gradients as above whenever 0 is already on the grid;
  activations are asymmetric with the full 2^b levels on [l, u];
- weights are symmetric on [−u, u] with zero point 0, on one of two grids. `narrow`: 2^b − 1 levels, 0 among them
  (int8's [−127, 127] convention; ternary at 2 bits). `mid-rise`: the papers' 2^b levels ±(i + ½)·s, none at 0,
  which are the odd int8 codes times s/2 (for b ≤ 7), so the integer file stores them exactly with step s/2.
"""

import contextlib
import threading

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from edge_sr.errors import EdgeSRError

MIN_BITS, MAX_BITS = 2, 8
MAX_MID_RISE_BITS = 7  # 2^b levels as odd int8 codes: ±(2^b − 1) ≤ ±127
WEIGHT_GRIDS = ("narrow", "mid-rise")
WEIGHT_GRID_HELP = (
    "weights on the mid-rise grid (the papers' 2^b levels, none at 0; the default up to 4 bits) or the narrow one "
    "(2^b - 1 levels with 0, ternary at 2 bits; the default above)"
)

_observers = threading.local()


@contextlib.contextmanager
def observe_quantizers(callback):
    """Call `callback(quantizer, inputs, weights)` on every quantizer call made inside the block.

    One hook serves every consumer that needs the tensors arriving at the quantizers: range initialisation
    (statistics in eager mode) and ODM's mismatch loss (symbolic terms collected while a train step traces).
    """
    stack = _observers.__dict__.setdefault("stack", [])
    stack.append(callback)
    try:
        yield
    finally:
        stack.remove(callback)


@contextlib.contextmanager
def _quantizer_mode(name, value):
    """Set the thread-local mode `name` (read by every quantizer call) for the block."""
    previous = getattr(_observers, name, None)
    setattr(_observers, name, value)
    try:
        yield
    finally:
        setattr(_observers, name, previous)


def notify_observers(quantizer, inputs, weights):
    """Show the observers (see `observe_quantizers`) `inputs` arriving at `quantizer`."""
    if getattr(_observers, "unobserved", None) is quantizer:
        return
    for observer in getattr(_observers, "stack", ()):
        observer(quantizer, inputs, weights)


def unobserved(quantizer):
    """Inside the block the observers do not see `quantizer`'s calls (None: every call is seen): its input was
    shown to them before an integer kernel moved it onto the quantizer's grid, where the call changes nothing."""
    return _quantizer_mode("unobserved", quantizer)


def bypass_quantizers():
    """Inside the block every quantizer passes its input through: the quantized model computes in FP.

    So a calibration pass sees FP activations everywhere, and a quantized model is its own FP teacher.
    """
    return _quantizer_mode("bypass", True)


def replace_quantizers(function):
    """Inside the block every quantizer returns `function(quantizer, inputs, weights)` instead of its fake
    quantization: how the integer export traces the model with constant TFLite fake-quant ops."""
    return _quantizer_mode("replace", function)


def simulating():
    """True unless quantizers are bypassed or replaced: the fake-quant model computes as its integer file."""
    return not getattr(_observers, "bypass", False) and getattr(_observers, "replace", None) is None


def round_half_up_ste(x):
    """floor(x + 0.5) forward (TFLite's rounding for the non-negative values used here), identity backward."""
    return x + tf.stop_gradient(tf.floor(x + 0.5) - x)


def fake_quant(x, lower, upper, levels, mid_rise=False):
    """Quantize x onto `levels` evenly spaced values spanning [lower, upper]: 0 kept on the grid, or with
    `mid_rise` (a symmetric range) the grid as it is, its levels ±(i + ½)·step."""
    steps = float(levels - 1)
    if mid_rise:
        grid_lower, scale = lower, grid_step(lower, upper, levels)
    else:
        zero_point, scale = _grid(lower, upper, levels)
        grid_lower = -zero_point * scale
    clipped = tf.minimum(tf.maximum(x, grid_lower), grid_lower + steps * scale)
    return round_half_up_ste((clipped - grid_lower) / scale) * scale + grid_lower


def grid_step(lower, upper, levels):
    """The step of the grid `fake_quant` puts on [lower, upper], as a tensor."""
    return tf.maximum((upper - lower) / float(levels - 1), 1e-8)


def _grid(lower, upper, levels):
    """(zero point, step) of that grid: 0 lies on it, `zero point` steps above its bottom."""
    step = grid_step(lower, upper, levels)
    return tf.clip_by_value(round_half_up_ste(-lower / step), 0.0, float(levels - 1)), step


def xnnpack_requantize(x, source_step, target, levels):
    """x, on an 8-bit grid of step `source_step`, moved onto the `levels` grid of the range `target` as XNNPACK's
    int8 QUANTIZE does it: the ratio of the steps is a multiplier with 8 fractional bits,
    M = round(256 · s_in / s_out), and q_out = floor((n · M + 128) / 256) + zp_out for x = n · s_in.

    M is exact only to 1/512 of itself: 0.2 % at W8A8 (ratios near 1), up to 3 % at W4A4 (ratios near 1/16), so
    the file's requantised values differ from a float requantisation's on a few percent of values. The integer
    arithmetic is exact in float32 (|n · M| < 2^24), so ties round as the kernel rounds them.

    The backward pass is the float requantisation's (a fake quant onto `target`), so x and the target range get
    their gradients and the graph that computes what the file computes can be trained."""
    zero_point, step_out = _grid(*target, levels)
    multiplier = tf.round(256.0 * source_step / step_out)
    n = tf.floor(x / source_step + 0.5)
    q = tf.clip_by_value(tf.floor((n * multiplier + 128.0) / 256.0) + zero_point, 0.0, float(levels - 1))
    return straight_through(q * step_out - zero_point * step_out, fake_quant(x, *target, levels))


def straight_through(exact, differentiable):
    """`exact`'s value with `differentiable`'s gradient (the forward pass stays exactly `exact`)."""
    return tf.stop_gradient(exact) + (differentiable - tf.stop_gradient(differentiable))


def xnnpack_mean(x, grid):
    """The mean of x over its last axis as XNNPACK's int8 MEAN computes it when x is on the 8-bit grid of the
    range `grid` (lower, upper): the mean of the stored codes rounded half to even, on the same grid. (A
    LayerNorm's mean in an integer file; a float mean would differ by up to half a step: far more than a step of
    the normalised output where a token's features vary little.)"""
    zero_point, step = _grid(*grid, 256)
    codes = tf.floor(x / step + 0.5) + zero_point  # the parity of a code is that of the int8 value it is stored as
    exact = (tf.round(tf.reduce_mean(codes, -1, keepdims=True)) - zero_point) * step
    return straight_through(exact, tf.reduce_mean(x, -1, keepdims=True))


def integer_grid(lower, upper, levels):
    """(grid_lower, step) of the grid `fake_quant` puts on [lower, upper], in numpy: what integer kernels use."""
    steps = np.float32(levels - 1)
    lower, upper = np.asarray(lower, np.float32), np.asarray(upper, np.float32)
    step = np.maximum((upper - lower) / steps, np.float32(1e-8))  # float32, as fake_quant computes it
    zero_point = np.clip(np.floor(-lower / step + np.float32(0.5)), 0, steps)
    return -zero_point * step, step


def check_bits(bits):
    if not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise EdgeSRError(f"bits must be an integer from {MIN_BITS} to {MAX_BITS}, got {bits!r}")
    return bits


def percentile(values, q):
    """The q-th percentile of all entries (linear interpolation, numpy's default), differentiable-free.

    It reads the two order statistics around the percentile from a partial top-k instead of a full sort: WCC
    takes P99 of every quantized kernel at every step, and sorting them all was a large share of a train step.
    """
    flat = tf.reshape(values, [-1])
    size = tf.size(flat)
    position = q / 100.0 * tf.cast(size - 1, tf.float32)
    below = tf.cast(tf.floor(position), tf.int32)
    above = tf.minimum(below + 1, size - 1)
    fraction = position - tf.floor(position)
    if q >= 50.0:  # the size − below largest, descending: the i-th smallest entry is top[size − 1 − i]
        top = tf.math.top_k(flat, size - below, sorted=True).values
        low, high = top[size - 1 - below], top[size - 1 - above]
    else:  # the above + 1 smallest, ascending
        bottom = -tf.math.top_k(-flat, above + 1, sorted=True).values
        low, high = bottom[below], bottom[above]
    return low * (1.0 - fraction) + high * fraction


@keras.utils.register_keras_serializable(package="edge_sr")
class UniformQuantizer(tfmot.quantization.keras.quantizers.Quantizer):
    """A k-bit fake quantizer with learnable range, speaking tfmot's `Quantizer` interface.

    - `symmetric=False` (activations): learnable `lower`, `upper`; 2^bits levels.
    - `symmetric=True` (weights): learnable `upper` (scalar, or per output channel with `per_channel`);
      range [−upper, upper] with 2^bits − 1 levels, 0 among them, or with `mid_rise` 2^bits levels ±(i + ½)·s
      (bits ≤ 7), none at 0.
    - `clip_correction=True` (ODM's WCC, weights only): upper = percentile(|W|, 99) · gamma, the percentile
      recomputed from the current weights at every call and gamma (init 1) the only learnable range parameter.
    - `zero_centered=True` (8-bit activations): the learned range widened on its shorter side until 0 is the
      middle code, [−128·s, 127·s]: int8 zero point 0, which XNNPACK's int8 attention matmul needs for v.
    """

    def __init__(
        self,
        bits=8,
        symmetric=False,
        per_channel=False,
        clip_correction=False,
        clip_percentile=99.0,
        mid_rise=False,
        zero_centered=False,
    ):
        self.bits = check_bits(bits)
        if (per_channel or clip_correction or mid_rise) and not symmetric:
            raise EdgeSRError("per_channel, clip_correction and mid_rise apply to symmetric (weight) quantizers only")
        if zero_centered and (symmetric or bits != 8):
            raise EdgeSRError("zero_centered applies to 8-bit activation quantizers only (int8 zero point 0)")
        if per_channel and clip_correction:
            raise EdgeSRError("clip correction is layer-wise; it cannot be combined with per_channel")
        if mid_rise and bits > MAX_MID_RISE_BITS:
            raise EdgeSRError(
                f"the mid-rise weight grid holds at most {MAX_MID_RISE_BITS} bits in int8 (its 2^b levels are odd "
                f"codes); use the narrow grid at {bits} bits"
            )
        self.symmetric, self.per_channel, self.mid_rise = symmetric, per_channel, mid_rise
        self.clip_correction, self.clip_percentile, self.zero_centered = clip_correction, clip_percentile, zero_centered

    @property
    def levels(self):
        return 2**self.bits - 1 if self.symmetric and not self.mid_rise else 2**self.bits

    def build(self, tensor_shape, name, layer):
        def add(suffix, value, shape=()):
            initializer = keras.initializers.Constant(value)
            return layer.add_weight(f"{name}_{suffix}", shape=shape, initializer=initializer, trainable=True)

        if self.clip_correction:
            return {"gamma": add("gamma", 1.0)}
        if self.symmetric:
            return {"upper": add("upper", 1.0, (tensor_shape[-1],) if self.per_channel else ())}
        return {"lower": add("lower", -6.0), "upper": add("upper", 6.0)}

    def range(self, inputs, weights):
        """The (lower, upper) the quantizer uses for `inputs` now."""
        if self.clip_correction:
            statistic = tf.stop_gradient(percentile(tf.abs(inputs), self.clip_percentile))
            upper = statistic * weights["gamma"]
            return -upper, upper
        if self.symmetric:
            return -weights["upper"], weights["upper"]
        if self.zero_centered:
            half = self.levels // 2
            step = tf.maximum(tf.maximum(-weights["lower"] / half, weights["upper"] / (half - 1)), 1e-8)
            return -half * step, (half - 1) * step
        return weights["lower"], weights["upper"]

    @property
    def quantizes_weights(self):
        return self.symmetric

    def __call__(self, inputs, training, weights, **kwargs):
        notify_observers(self, inputs, weights)
        if getattr(_observers, "bypass", False):
            return inputs
        if getattr(_observers, "replace", None) is not None:
            return _observers.replace(self, inputs, weights)
        lower, upper = self.range(inputs, weights)
        return fake_quant(inputs, lower, upper, self.levels, self.mid_rise)

    def int8_step(self, inputs, weights):
        """What one int8 code is worth in the integer file: the grid's step, or half of it on the mid-rise grid,
        whose levels are the odd codes."""
        step = grid_step(*self.range(inputs, weights), self.levels)
        return step / 2.0 if self.mid_rise else step

    def get_config(self):
        return {
            "bits": self.bits,
            "symmetric": self.symmetric,
            "per_channel": self.per_channel,
            "clip_correction": self.clip_correction,
            "clip_percentile": self.clip_percentile,
            "mid_rise": self.mid_rise,
            "zero_centered": self.zero_centered,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(other) is type(self) and self.get_config() == other.get_config()

    def __ne__(self, other):
        return not self == other


@keras.utils.register_keras_serializable(package="edge_sr")
class SymmetricActivationQuantizer(UniformQuantizer):
    """PAMS's activation quantizer (Li et al., ECCV 2020): k-bit on [−α, α] with α learnable per layer, the
    2^k − 1 levels of its round(x · (2^(k−1) − 1) / α)."""

    def __init__(self, bits=8):
        super().__init__(bits, symmetric=True)

    @property
    def quantizes_weights(self):
        return False

    def get_config(self):
        return {"bits": self.bits}


@keras.utils.register_keras_serializable(package="edge_sr")
class MaxScaleWeightQuantizer(UniformQuantizer):
    """k-bit symmetric on [−max|W|, max|W|], the max taken from the current weights at every call and held
    constant in the backward pass (as WCC's percentile); nothing learned. PAMS's weight quantizer, and ODM's
    fixed-policy ablation baseline (`weight_bound="max"`), on the paper's mid-rise grid with `mid_rise`."""

    def __init__(self, bits=8, mid_rise=False):
        super().__init__(bits, symmetric=True, mid_rise=mid_rise)

    def build(self, tensor_shape, name, layer):
        return {}

    def range(self, inputs, weights):
        top = tf.stop_gradient(tf.reduce_max(tf.abs(inputs)))
        return -top, top

    def get_config(self):
        return {"bits": self.bits, "mid_rise": self.mid_rise}
