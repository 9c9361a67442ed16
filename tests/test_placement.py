import numpy as np
import pytest
import tensorflow as tf

from edge_sr.errors import EdgeSRError
from edge_sr.quant import InputQuantizeWrapper, quantize_model, quantized_layer_names
from models_tf import build_preset

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


def _set_wide_ranges(model, input_range):
    for layer in model.layers:
        if isinstance(layer, InputQuantizeWrapper):
            layer.input_quantizer_vars["lower"].assign(-input_range)
            layer.input_quantizer_vars["upper"].assign(input_range)
            for weight, _, variables in layer._weight_vars:
                variables["upper"].assign(float(tf.reduce_max(tf.abs(weight))))


def test_more_bits_bring_the_quantized_model_closer_to_float(photo):
    model = build_preset("edsr-baseline", scale=2, **SMALL["edsr-baseline"])
    image = photo[None, :32, :32].astype(np.float32)
    reference = model(image).numpy()
    errors = {}
    for bits in (2, 4, 8):
        quantized = quantize_model(model, bits)
        _set_wide_ranges(quantized, 300.0)
        errors[bits] = np.abs(quantized(image).numpy() - reference).mean()
    assert errors[8] < errors[4] < errors[2]
    assert errors[8] < 0.01 * np.abs(reference).mean()


def test_bad_requests_are_clear_errors():
    model = build_preset("edsr-baseline", scale=2, **SMALL["edsr-baseline"])
    with pytest.raises(EdgeSRError, match="unknown placement"):
        quantize_model(model, 4, placement="everywhere")
    with pytest.raises(EdgeSRError, match="bits must be"):
        quantize_model(model, 1)
