"""isr-rdn and the idealo/UpscalerJS converter, against an independent rebuild of idealo's Keras topology."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from converters.idealo import isr_rdn_config, load_idealo
from edge_sr.errors import EdgeSRError
from models_tf import build_preset, load_model, model_from_config, save_model

# idealo's format is Keras 2's legacy h5, so saving one is the point here.
pytestmark = pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")

TINY = {"num_layers": 2, "num_blocks": 2, "growth_rate": 8, "num_features": 8}


def idealo_reference(scale, num_layers, num_blocks, growth_rate, num_features, upscaling="ups"):
    """idealo ISR's RDN graph as their rdn.py builds it ([0, 1] in and out), with random weights and biases."""
    init = keras.initializers.RandomUniform(-0.1, 0.1, seed=0)

    def conv(filters, kernel_size, name):
        return keras.layers.Conv2D(
            filters, kernel_size, padding="same", name=name, kernel_initializer=init, bias_initializer=init
        )

    lr = keras.Input((None, None, 3), name="LR")
    f_m1 = conv(num_features, 3, "F_m1")(lr)
    rdb_in = conv(num_features, 3, "F_0")(f_m1)
    rdb_outs = []
    for d in range(1, num_blocks + 1):
        x = rdb_in
        for c in range(1, num_layers + 1):
            f = keras.layers.Activation("relu", name=f"F_{d}_{c}_Relu")(conv(growth_rate, 3, f"F_{d}_{c}")(x))
            x = keras.layers.concatenate([x, f], axis=3, name=f"RDB_Concat_{d}_{c}")
        rdb_in = keras.layers.Add(name=f"LRL_{d}")([conv(num_features, 1, f"LFF_{d}")(x), rdb_in])
        rdb_outs.append(rdb_in)
    x = keras.layers.concatenate(rdb_outs, axis=3, name="LRLs_Concat")
    x = conv(num_features, 3, "GFF_2")(conv(num_features, 1, "GFF_1")(x))
    x = keras.layers.Add(name="FDF")([x, f_m1])
    x = keras.layers.Activation("relu", name="UPN1_Relu")(conv(64, 5, "UPN1")(x))
    x = keras.layers.Activation("relu", name="UPN2_Relu")(conv(32, 3, "UPN2")(x))
    x = conv(3 * scale**2, 3, "UPN3")(x)
    if upscaling == "ups":
        x = keras.layers.UpSampling2D(size=scale, name="UPsample")(x)
    else:
        x = keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, scale), name="PixelShuffle")(x)
    return keras.Model(lr, conv(3, 3, "SR")(x), name="generator")


def reference_weights(model):
    """{'F_0/kernel': array, ...}: the names TF.js manifests use."""
    return {
        f"{layer.name}/{v.name.split('/')[-1].split(':')[0]}": v.numpy()
        for layer in model.layers
        for v in layer.weights
    }


def assert_same_output(reference, ours):
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 12, 10, 3)).astype(np.float32)
    expected = 255 * reference(pixels / 255).numpy()
    np.testing.assert_allclose(ours(pixels).numpy(), expected, atol=1e-3)


def write_tfjs(folder, reference, weights, quantize=False, shards=2):
    """A TF.js layers-model: the topology plus weights split over `shards` files, uint8-quantized if asked."""
    specs, chunks = [], []
    for name, value in weights.items():
        spec = {"name": name, "shape": list(value.shape), "dtype": "float32"}
        if quantize:
            low, high = float(value.min()), float(value.max())
            scale = (high - low) / 255 or 1.0
            value = np.round((value - low) / scale).astype(np.uint8)
            spec["quantization"] = {"dtype": "uint8", "min": low, "scale": scale, "original_dtype": "float32"}
        specs.append(spec)
        chunks.append(value.tobytes())
    data = b"".join(chunks)
    cuts = np.linspace(0, len(data), shards + 1).astype(int)
    paths = [f"group1-shard{i + 1}of{shards}.bin" for i in range(shards)]
    for path, start, end in zip(paths, cuts[:-1], cuts[1:], strict=True):
        (folder / path).write_bytes(data[start:end])
    model_json = folder / "model.json"
    model_json.write_text(
        json.dumps(
            {
                "format": "layers-model",
                "modelTopology": {"keras_version": "2.3.0-tf", "model_config": json.loads(reference.to_json())},
                "weightsManifest": [{"paths": paths, "weights": specs}],
            }
        )
    )
    return model_json


@pytest.mark.parametrize("scale, upscaling", [(2, "ups"), (3, "shuffle")])
def test_full_h5_save_converts_exactly(tmp_path, scale, upscaling):
    reference = idealo_reference(scale, upscaling=upscaling, **TINY)
    reference.save(tmp_path / "idealo.h5")  # like the released file: topology and weights in one h5

    ours = load_idealo(tmp_path / "idealo.h5")

    assert ours.edge_sr_config == {"arch": "isr-rdn", "scale": scale, **TINY, "kernel_size": 3, "upscaling": upscaling}
    assert_same_output(reference, ours)


def test_weights_only_h5_takes_the_topology_beside_it(tmp_path):
    reference = idealo_reference(2, **TINY)
    reference.save_weights(tmp_path / "weights.h5")
    with pytest.raises(EdgeSRError, match="model.json"):
        load_idealo(tmp_path / "weights.h5")

    (tmp_path / "model.json").write_text(reference.to_json())
    assert_same_output(reference, load_idealo(tmp_path / "weights.h5"))


def test_tfjs_float32_shards(tmp_path):
    reference = idealo_reference(2, **TINY)
    model_json = write_tfjs(tmp_path, reference, reference_weights(reference), shards=3)
    assert_same_output(reference, load_idealo(model_json))


def test_tfjs_uint8_shards_are_dequantized(tmp_path):
    reference = idealo_reference(2, **TINY)
    weights = reference_weights(reference)
    model_json = write_tfjs(tmp_path, reference, weights, quantize=True)
    manifest = json.loads(model_json.read_text())["weightsManifest"][0]["weights"]

    ours = reference_weights(load_idealo(model_json))

    for spec in manifest:
        step = spec["quantization"]["scale"]
        stored = np.round((weights[spec["name"]] - spec["quantization"]["min"]) / step)
        dequantized = spec["quantization"]["min"] + step * stored
        np.testing.assert_allclose(ours[spec["name"]], dequantized, rtol=0, atol=1e-7)
        assert np.abs(ours[spec["name"]] - weights[spec["name"]]).max() <= step / 2 + 1e-7


def test_damaged_or_foreign_weights_are_clear_errors(tmp_path):
    reference = idealo_reference(2, **TINY)
    weights = reference_weights(reference)
    model_json = write_tfjs(tmp_path, reference, weights, shards=1)
    shard = tmp_path / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(EdgeSRError, match="its shards hold .* bytes but its manifest declares"):
        load_idealo(model_json)

    weights["SR/bias"] = np.zeros(4, np.float32)
    write_tfjs(tmp_path, reference, weights, shards=1)
    with pytest.raises(EdgeSRError, match=r"SR/bias has shape \(4,\)"):
        load_idealo(model_json)

    weights["UPN4/bias"] = weights.pop("SR/bias")
    write_tfjs(tmp_path, reference, weights, shards=1)
    with pytest.raises(EdgeSRError, match=r"missing \['SR/bias'\], unused \['UPN4/bias'\]"):
        load_idealo(model_json)


def test_non_rdn_topologies_are_refused():
    rrdn_like = {"config": {"layers": [{"class_name": "Conv2D", "config": {"name": "Pre_blocks_conv"}}]}}
    with pytest.raises(EdgeSRError, match="only RDN"):
        isr_rdn_config(rrdn_like)


def test_preset_config_and_keras_file_round_trip(tmp_path):
    model = build_preset("isr-rdn", scale=2, upscaling="shuffle", **TINY)
    pixels = np.random.default_rng(1).uniform(0, 255, (1, 9, 7, 3)).astype(np.float32)
    expected = model(pixels).numpy()
    assert expected.shape == (1, 18, 14, 3)

    rebuilt = model_from_config(model.edge_sr_config)
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_array_equal(rebuilt(pixels).numpy(), expected)

    save_model(model, tmp_path / "isr.keras")
    loaded = load_model(tmp_path / "isr.keras")
    assert loaded.edge_sr_config == model.edge_sr_config
    np.testing.assert_allclose(loaded(pixels).numpy(), expected, atol=1e-4)


def test_bad_sizes_are_refused():
    with pytest.raises(EdgeSRError, match="positive integer"):
        build_preset("isr-rdn", scale=0)
    with pytest.raises(EdgeSRError, match="upscaling"):
        build_preset("isr-rdn", scale=2, upscaling="bilinear")
