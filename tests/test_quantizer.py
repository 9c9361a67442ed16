import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.quant import (
    ActivationQuantizer,
    UniformQuantizeConfig,
    UniformQuantizer,
    fake_quant,
    percentile,
    quantize_scope_objects,
)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_activation_grid_has_exactly_2_to_the_b_levels_inside_the_range_and_clips_outside(bits):
    lower, upper = -1.0, 2.0**bits - 2.0  # 0 on the grid, step 1
    x = tf.linspace(-5.0, upper + 5.0, 20001)
    q = fake_quant(x, tf.constant(lower), tf.constant(upper), 2**bits).numpy()
    levels = np.unique(q)
    assert len(levels) == 2**bits
    assert levels.min() == lower and levels.max() == upper
    assert np.allclose(np.diff(levels), 1.0)
    assert np.all(q[x.numpy() < lower] == lower) and np.all(q[x.numpy() > upper] == upper)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_weight_grid_is_symmetric_narrow_range_with_zero(bits):
    quantizer = UniformQuantizer(bits, symmetric=True)
    x = tf.linspace(-3.0, 3.0, 10001)
    q = quantizer(x, True, {"upper": tf.constant(1.5)}).numpy()
    levels = np.unique(q)
    assert len(levels) == 2**bits - 1
    assert np.allclose(levels, -levels[::-1]) and 0.0 in levels and levels.max() == pytest.approx(1.5)


@pytest.mark.parametrize("bits", [2, 3, 4, 7])
def test_mid_rise_weight_grid_has_2_to_the_b_levels_symmetric_and_none_at_zero(bits):
    quantizer = UniformQuantizer(bits, symmetric=True, mid_rise=True)
    x = tf.linspace(-3.0, 3.0, 100001)
    upper = 1.5
    q = quantizer(x, True, {"upper": tf.constant(upper)}).numpy()
    levels = np.unique(q)
    step = 2 * upper / (2**bits - 1)
    assert len(levels) == 2**bits == quantizer.levels
    assert np.allclose(levels, -levels[::-1]) and 0.0 not in levels
    assert np.allclose(levels[levels > 0], (np.arange(2 ** (bits - 1)) + 0.5) * step)  # ±(i + ½)·s
    assert levels.max() == pytest.approx(upper)
    # The odd int8 codes times s/2: what the integer file stores.
    codes = levels / float(quantizer.int8_step(x, {"upper": tf.constant(upper)}))
    assert np.allclose(codes, np.round(codes), atol=1e-4) and np.all(np.round(codes) % 2 == 1)
    assert np.abs(codes).max() == pytest.approx(2**bits - 1, abs=1e-4)


def test_at_two_bits_the_mid_rise_grid_has_four_levels_where_the_narrow_one_is_ternary():
    weights = np.random.default_rng(0).normal(size=20000).astype(np.float32)
    errors = {}
    for mid_rise in (False, True):
        quantizer = UniformQuantizer(2, symmetric=True, mid_rise=mid_rise)
        best = min(  # the best clip of each grid (best-clip SQNR, as the issue measures it)
            float(np.mean((weights - quantizer(weights, True, {"upper": tf.constant(u)}).numpy()) ** 2))
            for u in np.linspace(0.5, 3.0, 51)
        )
        errors[mid_rise] = best
    sqnr = {k: 10 * np.log10(np.mean(weights**2) / v) for k, v in errors.items()}
    assert sqnr[True] - sqnr[False] > 1.5  # about 9.2 against 7.2 dB on Gaussian weights


def test_grid_is_shifted_to_keep_zero_exact():
    q = fake_quant(tf.constant([0.0, 0.05, 0.3]), tf.constant(-0.3), tf.constant(1.2), 4).numpy()
    assert q[0] == 0.0  # step 0.5: the grid becomes {-0.5, 0, 0.5, 1.0}
    assert np.allclose(q, [0.0, 0.0, 0.5])


def test_gradients_follow_the_analytic_straight_through_formulas():
    lower, upper, levels = tf.Variable(-1.0), tf.Variable(2.0), 4  # step 1, zero on the grid
    x = tf.Variable([-1.7, -0.6, 0.2, 0.5, 1.4, 1.9, 2.6])
    with tf.GradientTape() as tape:
        q = fake_quant(x, lower, upper, levels)
    jac_x, jac_l, jac_u = (g.numpy() for g in tape.jacobian(q, [x, lower, upper]))
    xs = x.numpy()
    inside = (xs >= -1.0) & (xs <= 2.0)
    v = xs + 1.0  # (x - l) / s
    residual = (np.floor(v + 0.5) - v) / (levels - 1)
    assert np.allclose(np.diag(jac_x), inside.astype(float))
    assert np.allclose(jac_u, np.where(inside, residual, (xs > 2.0).astype(float)), atol=1e-6)
    assert np.allclose(jac_l, np.where(inside, -residual, (xs < -1.0).astype(float)), atol=1e-6)


def test_clip_correction_follows_the_current_weights():
    quantizer = UniformQuantizer(4, symmetric=True, clip_correction=True)
    layer = keras.layers.Layer()
    weights = quantizer.build((3, 3, 8, 8), "kernel", layer)
    kernel = tf.Variable(np.random.default_rng(0).normal(size=(3, 3, 8, 8)).astype(np.float32))
    for gamma in (1.0, 0.5):
        weights["gamma"].assign(gamma)
        _, upper = quantizer.range(kernel, weights)
        assert upper.numpy() == pytest.approx(np.percentile(np.abs(kernel.numpy()), 99) * gamma, rel=1e-5)
    kernel.assign(kernel * 3.0)
    _, upper = quantizer.range(kernel, weights)
    assert upper.numpy() == pytest.approx(np.percentile(np.abs(kernel.numpy()), 99) * 0.5, rel=1e-5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(quantizer(kernel, True, weights) ** 2)
    grad_gamma, grad_kernel = tape.gradient(loss, [weights["gamma"], kernel])
    assert grad_gamma is not None and grad_kernel is not None


def test_percentile_matches_numpy():
    values = np.random.default_rng(1).normal(size=1013).astype(np.float32)
    for q in (1.0, 50.0, 99.0):
        assert percentile(tf.constant(values), q).numpy() == pytest.approx(np.percentile(values, q), rel=1e-5)


def test_invalid_settings_are_clear_errors():
    for bits in (1, 9, 4.0):
        with pytest.raises(EdgeSRError, match="bits must be an integer from 2 to 8"):
            UniformQuantizer(bits)
    with pytest.raises(EdgeSRError, match="symmetric"):
        UniformQuantizer(4, clip_correction=True)
    with pytest.raises(EdgeSRError, match="symmetric"):
        UniformQuantizer(4, mid_rise=True)
    with pytest.raises(EdgeSRError, match="at most 7 bits"):
        UniformQuantizer(8, symmetric=True, mid_rise=True)


def test_tfmot_quantize_apply_with_our_config_trains_a_step():
    annotate = tfmot.quantization.keras.quantize_annotate_layer
    inputs = keras.Input((8, 8, 3))
    hidden = annotate(keras.layers.Conv2D(4, 3, padding="same", activation="relu"), UniformQuantizeConfig(4, 4))(inputs)
    outputs = annotate(keras.layers.Conv2D(3, 3, padding="same"), UniformQuantizeConfig(4, 8, clip_correction=True))(
        hidden
    )
    with tfmot.quantization.keras.quantize_scope(quantize_scope_objects()):
        model = tfmot.quantization.keras.quantize_apply(keras.Model(inputs, outputs))
    names = [w.name for w in model.trainable_weights]
    assert any("kernel_upper" in n for n in names) and any("kernel_gamma" in n for n in names)
    assert any("output_lower" in n for n in names)

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 8, 8, 3)).astype(np.float32), rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights, strict=True)]
    assert all(changed), [w.name for w, c in zip(model.trainable_weights, changed, strict=True) if not c]


def test_activation_quantizer_layer_round_trips_its_config():
    layer = ActivationQuantizer(3, name="q")
    x = tf.linspace(-10.0, 10.0, 101)[None]
    assert len(np.unique(layer(x).numpy())) == 8
    clone = ActivationQuantizer.from_config(layer.get_config())
    assert clone.bits == 3 and clone.name == "q"
