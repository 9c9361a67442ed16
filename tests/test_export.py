"""Float TFLite export: the file gives the Keras numbers, its sidecar describes it, and SwinIR runs in fixed tiles."""

import json

import numpy as np
import pytest
import tf_keras as keras
from conftest import assert_clean_error, run_module

from edge_sr.errors import EdgeSRError
from edge_sr.export.tflite import export_float, float_tflite
from edge_sr.runtime.litert import TFLiteModel
from edge_sr.runtime.metadata import read_metadata, sidecar_path, write_tflite
from edge_sr.runtime.tiling import upscale
from models_tf import build_preset, save_model


def keras_sr(model, image):
    return model(np.asarray(image, np.float32)[None], training=False).numpy()[0]


@pytest.fixture(scope="module")
def edsr():
    return build_preset("edsr-baseline", scale=2, num_blocks=1, num_features=8)


@pytest.fixture(scope="module")
def exported(edsr, tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    return {
        precision: (
            folder / f"edsr_{precision}.tflite",
            export_float(edsr, folder / f"edsr_{precision}.tflite", precision, source="tiny"),
        )
        for precision in ("fp32", "fp16", "dynamic")
    }


@pytest.fixture(scope="module")
def swinir():
    return build_preset("swinir-light", scale=2, embed_dim=12, depths=(2,), num_heads=(2,), window_size=4)


def test_fp32_equals_keras_at_any_size(edsr, exported, photo):
    model = TFLiteModel(exported["fp32"][0])
    assert model.input_size is None and model.scale == 2
    for image in (photo[:40, :56], photo[100:133, 200:251], photo[:40, :56]):  # resized up, down and back
        np.testing.assert_allclose(model(image), keras_sr(edsr, image), atol=1e-3)


@pytest.mark.parametrize("precision, tolerance", [("fp16", 0.5), ("dynamic", 8.0)])
def test_smaller_precisions_run_close_to_keras(edsr, exported, photo, precision, tolerance):
    path = exported[precision][0]
    assert path.stat().st_size < exported["fp32"][0].stat().st_size
    image = photo[200:248, 150:214]
    error = np.abs(TFLiteModel(path)(image) - keras_sr(edsr, image))
    assert error.max() < tolerance and error.mean() < tolerance / 4


def test_metadata_round_trips(exported):
    path, metadata = exported["dynamic"]
    assert read_metadata(path) == metadata
    assert sidecar_path(path).name == "edsr_dynamic.tflite.json"
    assert metadata == {
        "format": "edge_sr.tflite",
        "version": 1,
        "arch": "edsr",
        "scale": 2,
        "precision": "dynamic",
        "bits": {"weights": 8, "activations": 32},
        "method": None,
        "pixel_range": [0, 255],
        "tile": None,
        "io": "float32",
        "source": "tiny",
    }


def test_missing_or_malformed_sidecars_are_clear_errors(exported, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(exported["fp32"][0].read_bytes())
    with pytest.raises(EdgeSRError, match="no metadata file model.tflite.json"):
        read_metadata(path)
    for text, message in [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({**exported["fp32"][1], "scale": 0}), "scale 0 is not a positive integer"),
        (json.dumps({k: v for k, v in exported["fp32"][1].items() if k != "tile"}), "missing tile"),
    ]:
        sidecar_path(path).write_text(text)
        with pytest.raises(EdgeSRError, match=message):
            read_metadata(path)
    with pytest.raises(EdgeSRError, match="must end in .tflite"):
        write_tflite(tmp_path / "model.tfl", b"", exported["fp32"][1])


def test_swinir_needs_a_tile_and_runs_tile_by_tile(swinir, tmp_path, photo):
    with pytest.raises(EdgeSRError, match="pass --tile"):
        export_float(swinir, tmp_path / "swinir.tflite")
    metadata = export_float(swinir, tmp_path / "swinir.tflite", tile=32)
    assert metadata["tile"] == 32 and metadata["arch"] == "swinir"
    model = TFLiteModel(tmp_path / "swinir.tflite")
    assert model.input_size == (32, 32)
    np.testing.assert_allclose(model(photo[:32, :32]), keras_sr(swinir, photo[:32, :32]), atol=1e-2)
    with pytest.raises(EdgeSRError, match="takes 32×32 tiles only"):
        model(photo[:20, :20])

    small = photo[:11, :13]  # smaller than a tile: reflect-padded to 32×32, run, cropped
    padded = np.pad(small, ((0, 21), (0, 19), (0, 0)), mode="reflect")
    expected = np.clip(np.floor(keras_sr(swinir, padded)[:22, :26] + 0.5), 0, 255)
    np.testing.assert_allclose(upscale(model, small), expected, atol=1)

    image = photo[200:237, 300:351]  # 37×51: a multiple of neither the tile nor the window
    tiled = upscale(model, image)
    assert tiled.shape == (74, 102, 3)
    # Whole, SwinIR pads 37×51 to 40×52 and attends across tiles, so only the interior compares closely
    # (random weights amplify every difference).
    whole = np.clip(keras_sr(swinir, image), 0, 255)
    assert np.mean(np.abs(tiled - whole)[16:-16, 16:-16]) < 1.0


def test_ops_without_a_builtin_are_a_clear_error():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: __import__("tensorflow").math.bessel_i0e(x))(inputs))
    with pytest.raises(EdgeSRError, match="ops without a TFLite builtin: tf.BesselI0e"):
        float_tflite(model)


def test_convert_cli(edsr, tmp_path):
    save_model(edsr, tmp_path / "tiny.keras")
    result = run_module("edge_sr.convert", tmp_path / "tiny.keras", "--out", tmp_path / "tiny.tflite", "--fp16")
    assert result.returncode == 0, result.stderr
    assert "fp16, ×2, input any size" in result.stdout
    assert read_metadata(tmp_path / "tiny.tflite")["source"] == str(tmp_path / "tiny.keras")

    args = (tmp_path / "tiny.keras", "--out", tmp_path / "x.tflite")
    assert_clean_error(run_module("edge_sr.convert", *args, "--int8"), "--int8 exports a run directory")
    assert_clean_error(run_module("edge_sr.convert", *args[:2], tmp_path / "x.onnx", "--fp32"), "must end in .tflite")


@pytest.mark.parametrize("scale", [2, 3])
def test_xnnpack_equivalents_compute_the_same(scale):
    from models_tf.layers import NearestUpsampling, NestedConcatenate, xnnpack_equivalent

    rng = np.random.default_rng(scale)
    image = rng.normal(size=(1, 5, 7, 4)).astype(np.float32)
    upsampling = keras.layers.UpSampling2D(scale, interpolation="nearest")
    np.testing.assert_array_equal(NearestUpsampling(scale)(image), upsampling(image))
    parts = [rng.normal(size=(1, 3, 3, 2)).astype(np.float32) for _ in range(12)]
    np.testing.assert_array_equal(NestedConcatenate()(parts), np.concatenate(parts, axis=-1))

    inputs = [keras.Input((None, None, 2)) for _ in range(6)]
    long, short = keras.layers.Concatenate(), keras.layers.Concatenate()
    long(inputs), short(inputs[:5])
    assert isinstance(xnnpack_equivalent(long), NestedConcatenate) and xnnpack_equivalent(short) is None
    bilinear = keras.layers.UpSampling2D(2, interpolation="bilinear")
    bilinear(inputs[0])
    assert xnnpack_equivalent(bilinear) is None


def test_float_export_of_idealo_rdn_runs_every_op_in_xnnpack(tmp_path, photo):
    from edge_sr.runtime.litert import delegation_report

    keras.utils.set_random_seed(0)  # 6 blocks: a 6-input global concatenation; nearest-neighbour upsampling
    rdn = build_preset("isr-rdn", scale=2, num_blocks=6, num_layers=2, growth_rate=8, num_features=8)
    export_float(rdn, tmp_path / "rdn.tflite")
    report = delegation_report(tmp_path / "rdn.tflite")
    assert not report["builtin"] and report["delegated"]["DEPTH_TO_SPACE"] == 1
    image = photo[40:73, 60:101]
    np.testing.assert_allclose(TFLiteModel(tmp_path / "rdn.tflite")(image), keras_sr(rdn, image), atol=1e-3)
