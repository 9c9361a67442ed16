"""The Keras architectures: any input size, argument checks, config and .keras round trips, TFLite builtins."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from models_tf import build_preset, load_model, model_config, model_from_config, preset_names, save_model
from models_tf.edsr import build_edsr
from models_tf.rdn import build_rdn
from models_tf.swinir import MATMUL_SITES, ShiftedWindowAttention, build_swinir, cyclic_shift

# Small variants: the code paths of the presets at a fraction of the cost.
SMALL = {
    "edsr": lambda scale=2: build_edsr(scale, num_blocks=2, num_features=16, res_scale=0.1),
    "rdn": lambda scale=2: build_rdn(scale, num_blocks=2, num_layers=2, growth_rate=16, num_features=24),
    "swinir": lambda scale=2: build_swinir(scale, embed_dim=12, depths=[2, 2], num_heads=[2, 2], window_size=4),
    "swinir-light": lambda scale=2: build_swinir(
        scale, embed_dim=12, depths=[2], num_heads=[3], window_size=4, upsampler="pixelshuffledirect"
    ),
}


def random_image(height, width, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (1, height, width, 3)).astype(np.float32)


def test_presets_are_registered():
    assert {"edsr-baseline", "edsr", "rdn", "swinir", "swinir-light"} <= set(preset_names())


@pytest.mark.parametrize("scale, millions", [(2, 1.37), (3, 1.55), (4, 1.52)])
def test_edsr_baseline_has_the_published_size(scale, millions):
    assert build_preset("edsr-baseline", scale=scale).count_params() / 1e6 == pytest.approx(millions, abs=0.005)


@pytest.mark.parametrize("arch", SMALL)
@pytest.mark.parametrize("scale", [2, 3])
def test_one_model_takes_any_size(arch, scale):
    model = SMALL[arch](scale)
    for height, width in [(5, 7), (12, 9)]:
        assert model(random_image(height, width)).shape == (1, height * scale, width * scale, 3)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: build_edsr(5), "EDSR supports scale 2, 3, 4, 8, not 5"),
        (lambda: build_edsr(2.0), "not 2.0"),
        (lambda: build_edsr(2, num_blocks=0), "num_blocks >= 1"),
        (lambda: build_rdn(8), "RDN supports scale 2, 3, 4"),
        (lambda: build_swinir(2, upsampler="nearest+conv"), "upsampler must be one of"),
        (lambda: build_swinir(2, embed_dim=60, num_heads=[7] * 6), "divisible"),
        (lambda: build_swinir(2, depths=[6, 6], num_heads=[6]), "one head count per group"),
        (lambda: model_from_config({"arch": "nope", "scale": 2}), "unknown model preset 'nope'"),
    ],
)
def test_bad_arguments_say_what_is_wrong(build, message):
    with pytest.raises(EdgeSRError, match=message):
        build()


@pytest.mark.parametrize("arch", SMALL)
def test_config_round_trips(arch, tmp_path):
    model = SMALL[arch](3)
    image = random_image(6, 5)
    expected = model(image).numpy()

    rebuilt = model_from_config(model_config(model))
    rebuilt.set_weights(model.get_weights())
    assert model_config(rebuilt) == model_config(model)
    np.testing.assert_array_equal(rebuilt(image).numpy(), expected)

    from_keras_config = keras.Model.from_config(model.get_config())
    from_keras_config.set_weights(model.get_weights())
    np.testing.assert_array_equal(from_keras_config(image).numpy(), expected)

    path = tmp_path / "model.keras"
    save_model(model, path)
    loaded = load_model(path)
    assert model_config(loaded) == model_config(model)
    np.testing.assert_array_equal(loaded(image).numpy(), expected)
    np.testing.assert_array_equal(keras.models.load_model(path)(image).numpy(), expected)


def test_models_without_config_are_refused(tmp_path):
    with pytest.raises(EdgeSRError, match="carries no edge_sr config"):
        model_config(keras.Sequential([keras.layers.Dense(1)]))
    with pytest.raises(EdgeSRError, match="no such model file"):
        load_model(tmp_path / "missing.keras")


@pytest.mark.parametrize("shift", [-2, 3])
def test_cyclic_shift_is_roll(shift):
    image = random_image(7, 9)
    np.testing.assert_array_equal(cyclic_shift(image, shift), tf.roll(image, (shift, shift), (1, 2)))


def test_swinir_attention_quantizes_its_matmul_inputs_only_when_asked():
    qkv = tf.random.stateless_normal((1, 8, 8, 36), seed=(0, 0))
    attention = ShiftedWindowAttention(2, 4, shift_size=2)
    expected = attention(qkv).numpy()
    assert attention.matmul_bits is None and attention.weights == [attention.relative_position_bias_table]

    quantized = ShiftedWindowAttention.from_config({**attention.get_config(), "matmul_bits": 8})
    quantized(qkv)
    assert sorted(quantized.matmul_quantizer_vars) == sorted(MATMUL_SITES)
    quantized.relative_position_bias_table.assign(attention.relative_position_bias_table)
    for site, variables in quantized.matmul_quantizer_vars.items():  # ranges spanning each tensor
        variables["lower"].assign(0.0 if site == "attn_probs" else -5.0)
        variables["upper"].assign(1.0 if site == "attn_probs" else 5.0)
    error = np.abs(quantized(qkv).numpy() - expected).mean()
    assert 0 < error < 0.05 * np.abs(expected).mean()

    with pytest.raises(EdgeSRError, match="bits must be"):
        ShiftedWindowAttention(2, 4, matmul_bits=1)


def test_swinir_exports_to_tflite_builtins_at_a_fixed_size():
    """Fixed input shape: shapes and masks fold into constants and no op needs Select TF ops (tf.roll would)."""
    from ai_edge_litert.interpreter import Interpreter

    model = SMALL["swinir"](2)
    image = random_image(7, 10)
    function = tf.function(model).get_concrete_function(tf.TensorSpec(image.shape, tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(output, model(image).numpy(), atol=1e-3)
