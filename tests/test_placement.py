import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.quant import InputQuantizeWrapper, quantize_model, quantized_layer_names
from edge_sr.quant.placement import quantizer_sites
from models_tf import build_preset
from models_tf.swinir import MATMUL_SITES, ShiftedWindowAttention

SMALL = {
    "edsr-baseline": {"num_blocks": 2, "num_features": 8},
    "rdn": {"num_blocks": 2, "num_layers": 2, "growth_rate": 4, "num_features": 8},
    "isr-rdn": {"num_blocks": 2, "num_layers": 2, "growth_rate": 4, "num_features": 8},
    "swinir-light": {"embed_dim": 12, "depths": (2,), "num_heads": (2,), "window_size": 4},
}
EXPECTED = {
    "edsr-baseline": ["body_0_conv1", "body_0_conv2", "body_1_conv1", "body_1_conv2"],
    "rdn": ["rdb_0_conv_0", "rdb_0_conv_1", "rdb_0_lff", "rdb_1_conv_0", "rdb_1_conv_1", "rdb_1_lff"],
    "isr-rdn": ["F_1_1", "F_1_2", "LFF_1", "F_2_1", "F_2_2", "LFF_2"],
    "swinir-light": [
        f"layers_0_blocks_{j}_{n}" for j in (0, 1) for n in ("attn_qkv", "attn_proj", "mlp_fc1", "mlp_fc2")
    ],
}


@pytest.mark.parametrize("preset", sorted(SMALL))
def test_paper_placement_quantizes_exactly_the_body_layers(preset):
    model = build_preset(preset, scale=2, **SMALL[preset])
    assert sorted(quantized_layer_names(model)) == sorted(EXPECTED[preset])
    quantized = quantize_model(model, 4)
    wrapped = sorted(layer.name for layer in quantized.layers if isinstance(layer, InputQuantizeWrapper))
    assert wrapped == sorted(EXPECTED[preset])
    assert quantized.edge_sr_config == model.edge_sr_config
    for layer in model.layers:  # FP weights carried over
        for original in layer.weights:
            copied = quantized.get_layer(layer.name)
            names = {w.name: w for w in copied.weights}
            assert np.array_equal(names[original.name].numpy(), original.numpy())


@pytest.mark.parametrize("preset", sorted(SMALL))
def test_quantizer_sites_list_the_input_and_kernel_of_every_layer_and_the_attention_matmuls(preset):
    quantized = quantize_model(build_preset(preset, scale=2, **SMALL[preset]), 4)
    sites = {(site.layer, site.site): site for site in quantizer_sites(quantized)}
    expected = {(name, site) for name in EXPECTED[preset] for site in ("input", "kernel")}
    if preset == "swinir-light":  # 2DQuant: q (scaled), k, softmax output and v of both blocks
        expected |= {(f"layers_0_blocks_{j}_attn", site) for j in (0, 1) for site in MATMUL_SITES}
    assert set(sites) == expected and len(quantizer_sites(quantized)) == len(expected)

    for (name, site_name), site in sites.items():
        layer = quantized.get_layer(name)
        assert site.is_weight == (site_name == "kernel")
        if site.is_weight:
            assert site.weight.name == f"{name}/kernel:0" and set(site.variables) == {"upper"}
        else:
            assert set(site.variables) == {"lower", "upper"} and site.quantizer.bits == 4
        assert {variable.name for variable in site.variables.values()} <= {weight.name for weight in layer.weights}
    after_softmax_or_gelu = {
        key for key in expected if key[1] == "attn_probs" or key[0].endswith("fc2") and key[1] == "input"
    }
    assert {key for key, site in sites.items() if site.one_sided} == after_softmax_or_gelu


def _set_wide_ranges(model, input_range):
    """Ranges that clip nothing: ±input_range for activations, [0, 1] for softmax outputs, max|W| for weights."""
    for site in quantizer_sites(model):
        if site.is_weight:
            site.variables["upper"].assign(float(tf.reduce_max(tf.abs(site.weight))))
        else:
            lower, upper = (0.0, 1.0) if site.site == "attn_probs" else (-input_range, input_range)
            site.variables["lower"].assign(lower)
            site.variables["upper"].assign(upper)


@pytest.mark.parametrize(
    "preset, size, input_range, tolerance", [("edsr-baseline", 32, 300.0, 0.01), ("swinir-light", 16, 4.0, 0.03)]
)
def test_more_bits_bring_the_quantized_model_closer_to_float(preset, size, input_range, tolerance, photo):
    keras.utils.set_random_seed(0)
    model = build_preset(preset, scale=2, **SMALL[preset])
    image = photo[None, :size, :size].astype(np.float32)
    reference = model(image).numpy()
    errors = {}
    for bits in (2, 4, 8):
        quantized = quantize_model(model, bits)
        _set_wide_ranges(quantized, input_range)
        errors[bits] = np.abs(quantized(image).numpy() - reference).mean()
    assert errors[8] < errors[4] < errors[2]
    assert errors[8] < tolerance * np.abs(reference).mean()


def test_quantized_swinir_attention_round_trips_its_config():
    model = quantize_model(build_preset("swinir-light", scale=2, **SMALL["swinir-light"]), 3)
    attention = model.get_layer("layers_0_blocks_1_attn")
    clone = ShiftedWindowAttention.from_config(attention.get_config())
    qkv = tf.random.stateless_normal((1, 8, 8, 36), seed=(0, 0))
    clone(qkv)
    clone.set_weights(attention.get_weights())
    assert (clone.matmul_bits, clone.shift_size) == (3, 2)
    np.testing.assert_array_equal(clone(qkv).numpy(), attention(qkv).numpy())


def test_bad_requests_are_clear_errors():
    model = build_preset("edsr-baseline", scale=2, **SMALL["edsr-baseline"])
    with pytest.raises(EdgeSRError, match="unknown placement"):
        quantize_model(model, 4, placement="everywhere")
    with pytest.raises(EdgeSRError, match="bits must be"):
        quantize_model(model, 1)
