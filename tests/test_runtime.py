"""LiteRT runtime: XNNPACK on/off, quantized I/O, seam-free tiling, the benchmark, and a clear error for each
file that is not a usable SR model."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import assert_clean_error, run_module

from edge_sr.data import write_image
from edge_sr.errors import EdgeSRError
from edge_sr.export.tflite import export_float, run_converter, tflite_converter
from edge_sr.runtime.evaluation import evaluate_dataset
from edge_sr.runtime.litert import TFLiteModel
from edge_sr.runtime.metadata import sidecar_path
from edge_sr.runtime.tiling import tiling, to_uint8, upscale, upscale_tiled
from edge_sr.runtime.upscalers import KerasUpscaler, TFLiteUpscaler
from models_tf import build_preset


@pytest.fixture(scope="module")
def edsr():
    return build_preset("edsr-baseline", scale=2, num_blocks=1, num_features=8)


@pytest.fixture(scope="module")
def edsr_tflite(edsr, tmp_path_factory):
    path = tmp_path_factory.mktemp("runtime") / "edsr.tflite"
    export_float(edsr, path)
    return path


def write_tflite_without_metadata(path, converter):
    path.write_bytes(run_converter(converter))
    return path


def test_xnnpack_on_and_off_agree(edsr_tflite, photo):
    image = photo[50:98, 60:130]
    with_xnnpack = TFLiteModel(edsr_tflite, threads=2, xnnpack=True)(image)
    builtin = TFLiteModel(edsr_tflite, threads=1, xnnpack=False)(image)
    np.testing.assert_allclose(with_xnnpack, builtin, atol=1e-3)


def test_uint8_io_is_quantized_and_dequantized(edsr, tmp_path, photo):
    converter = tflite_converter(edsr)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [photo[i : i + 24, i : i + 24][None].astype(np.float32)] for i in range(0, 400, 50)
    )
    converter.inference_input_type = converter.inference_output_type = tf.uint8
    model = TFLiteModel(write_tflite_without_metadata(tmp_path / "u8.tflite", converter), scale=2)
    image = photo[300:340, 200:248]
    sr = model(image)
    assert sr.dtype == np.float32 and sr.shape == (80, 96, 3)
    expected = edsr(image[None].astype(np.float32)).numpy()[0]
    assert np.mean(np.abs(sr - expected)) < 4  # int8 activations of a random-weight net: a few levels


def test_int16_io_scale_and_zero_point_come_from_the_file(edsr, tmp_path, photo):
    # TFLite's own 16-bit-activation mode makes the int16-I/O file that litert-quantizer's a16w8 recipe also writes.
    converter = tflite_converter(edsr)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [photo[i : i + 24, i : i + 24][None].astype(np.float32)] for i in range(0, 400, 50)
    )
    int16 = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
    converter.target_spec.supported_ops = [int16, tf.lite.OpsSet.TFLITE_BUILTINS]  # DEPTH_TO_SPACE stays float
    converter.inference_input_type = converter.inference_output_type = tf.int16
    path = write_tflite_without_metadata(tmp_path / "a16w8.tflite", converter)
    model = TFLiteModel(path, scale=2)
    assert model._input["dtype"] == np.int16 and model._output["dtype"] == np.int16
    image = photo[300:340, 200:248]
    expected = edsr(image[None].astype(np.float32)).numpy()[0]
    assert np.mean(np.abs(model(image) - expected)) < 0.5  # 16-bit activations: well within a level
    write_image(tmp_path / "set" / "crop.png", photo[200:264, 100:180])
    scores = [
        evaluate_dataset(upscaler, tmp_path / "set", 2, show_progress=False)["psnr"]
        for upscaler in (TFLiteUpscaler(path, 2), KerasUpscaler(edsr, "fp", 2))
    ]
    assert abs(scores[0] - scores[1]) < 0.05


@pytest.mark.parametrize("height, width", [(1, 1), (7, 5), (30, 64), (65, 130), (97, 33)])
@pytest.mark.parametrize("fixed", [False, True])
def test_tiles_of_a_pointwise_model_add_up_exactly(height, width, fixed):
    """Nearest-neighbour ×3 looks at one pixel: blended tiles must give exactly the whole image."""
    image = np.random.default_rng(height * width).uniform(0, 255, (height, width, 3)).astype(np.float32)

    def nearest(tile):
        if fixed:
            assert tile.shape[:2] == (16, 24)
        return np.repeat(np.repeat(tile, 3, axis=0), 3, axis=1)

    whole = np.repeat(np.repeat(image, 3, axis=0), 3, axis=1)
    tiled = upscale_tiled(nearest, image, 3, (16, 24), 6, fixed=fixed)
    assert tiled.shape == whole.shape
    np.testing.assert_allclose(tiled, whole, rtol=1e-6)


def test_tiled_equals_whole_within_one_level(edsr_tflite, photo):
    """The CNN sees ~6 LR pixels around each pixel, under a quarter of the 24-pixel overlap."""
    model = TFLiteModel(edsr_tflite)
    image = photo[100:201, 150:303]
    whole = to_uint8(model(image))
    tiled = upscale(model, image, tile=64, overlap=24)
    assert np.abs(tiled.astype(int) - whole).max() <= 1
    assert tiling(model, 64) == ((64, 64), 16) and tiling(model) == (None, 0)
    with pytest.raises(EdgeSRError, match="overlap from 0 to half the tile"):
        upscale(model, image, tile=64, overlap=40)


@pytest.fixture(scope="module")
def int8_rdn(tmp_path_factory, photo):
    """A W8A8 full-integer file of a small random-weight idealo RDN (3 dense blocks of 2 convs)."""
    from edge_sr.export.int8 import deploy_model
    from edge_sr.export.tflite import int8_tflite
    from edge_sr.quant import quantize_model
    from edge_sr.quant.ranges import initialize_ranges
    from edge_sr.runtime.metadata import build_metadata, write_tflite

    keras.utils.set_random_seed(0)
    fp = build_preset("isr-rdn", scale=2, num_blocks=3, num_layers=2, growth_rate=8, num_features=8)
    model = quantize_model(fp, 8)
    batch = photo[None, 100:164, 100:164].astype(np.float32)
    initialize_ranges(model, [batch], "minmax")
    deployed, _ = deploy_model(model, [batch])
    path = tmp_path_factory.mktemp("int8") / "rdn_int8.tflite"
    write_tflite(
        path,
        int8_tflite(deployed),
        build_metadata(model.edge_sr_config, "int8", {"weights": 8, "activations": 8}, "uint8"),
    )
    return path


def test_an_integer_file_tiled_is_whole_image_inference_bit_for_bit(int8_rdn, edsr_tflite, photo):
    """Issue #23 item 9. An int8 file rounds at every layer: where a tile's edge is within the network's reach, the
    small change it makes flips codes that the following layers carry on, so blending as for float files is off by
    several levels. Tiles that meet at a seam in the middle of an overlap of twice the receptive field are not."""
    model = TFLiteModel(int8_rdn)
    # F_m1, F_0, 3 blocks × 2 convs, GFF_2, UPN1 (5×5), UPN2, UPN3 and the SR conv, +1 for the pixel shuffle
    assert (model.radius, model.seam_overlap) == (15, 32)
    float_model = TFLiteModel(edsr_tflite)
    assert (float_model.radius, float_model.seam_overlap) == (7, None)  # float files blend, as before
    image = photo[40:250, 20:300]
    whole = to_uint8(model(image))
    assert tiling(model, 64) == ((64, 64), 32)
    assert np.array_equal(upscale(model, image, tile=64), whole)
    assert np.array_equal(upscale(model, image, tile=100), whole)
    blended = upscale_tiled(model, image, 2, 64, 16, uint8=True)  # the float files' default overlap at this tile
    assert np.abs(blended.astype(int) - whole).max() > 1
    # A tile too small for that overlap, or a smaller overlap asked for, is blended as a float file's tiles are.
    assert tiling(model, 48) == ((48, 48), 12) and tiling(model, 64, overlap=16) == ((64, 64), 16)
    assert np.array_equal(upscale(model, image, tile=64, overlap=16), blended)


def test_broken_and_foreign_files_are_clear_errors(edsr_tflite, tmp_path):
    with pytest.raises(EdgeSRError, match="model file not found"):
        TFLiteModel(tmp_path / "none.tflite", scale=2)

    (tmp_path / "junk.tflite").write_bytes(b"\x00not a flatbuffer" * 10)
    (tmp_path / "cut.tflite").write_bytes(edsr_tflite.read_bytes()[:3000])
    for name in ("junk.tflite", "cut.tflite"):
        with pytest.raises(EdgeSRError, match="is not a valid TFLite model"):
            TFLiteModel(tmp_path / name, scale=2)

    classifier = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    path = write_tflite_without_metadata(tmp_path / "classifier.tflite", tflite_converter(classifier))
    with pytest.raises(EdgeSRError, match=r"returns a \[1, 10\] tensor.*not an SR model"):
        TFLiteModel(path, scale=2)

    function = tf.function(tf.math.special.bessel_i0e).get_concrete_function(tf.TensorSpec([1, 8, 8, 3]))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    converter.allow_custom_ops = True
    path = write_tflite_without_metadata(tmp_path / "custom.tflite", converter)
    with pytest.raises(EdgeSRError, match="uses an op LiteRT has no kernel for.*BesselI0e"):
        TFLiteModel(path, scale=1)

    def reshape_to_four_times(x):  # an SR-shaped file whose reshape has 4× too few values: it fails when run
        shape = tf.shape(x)
        return tf.reshape(x, [1, 2 * shape[1], 2 * shape[2], 3])

    spec = tf.TensorSpec([1, None, None, 3], tf.float32)
    function = tf.function(reshape_to_four_times).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], tf.Module())
    bad_reshape = write_tflite_without_metadata(tmp_path / "bad_reshape.tflite", converter)
    with pytest.raises(EdgeSRError, match="LiteRT failed to run bad_reshape.tflite on a 16×16 image: .*RESHAPE"):
        TFLiteModel(bad_reshape, scale=2)  # its scale is proven on a small image when it is opened


def test_scale_comes_from_metadata_and_is_checked(edsr_tflite, tmp_path, photo):
    with pytest.raises(EdgeSRError, match=r"is a ×2 model; run it with --scale 2"):
        TFLiteModel(edsr_tflite, scale=3)
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(edsr_tflite.read_bytes())
    assert not sidecar_path(bare).exists()
    with pytest.raises(EdgeSRError, match="no metadata file bare.tflite.json.*--scale"):
        TFLiteModel(bare)
    assert TFLiteModel(bare, scale=2)(photo[:8, :8]).shape == (16, 16, 3)
    with pytest.raises(EdgeSRError, match=r"turns a 16×16 image into 32×32, which is not the ×3"):
        TFLiteModel(bare, scale=3)


def test_evaluate_and_benchmark_take_tflite_files(edsr_tflite, tmp_path, photo):
    write_image(tmp_path / "Mini" / "HR" / "a.png", photo[:48, :64])
    result = run_module("edge_sr.evaluate", "--model", edsr_tflite, "--dataset", tmp_path / "Mini", "--scale", 2)
    assert result.returncode == 0, result.stderr
    assert "edsr.tflite" in result.stdout and "Mini" in result.stdout
    mismatch = run_module("edge_sr.evaluate", "--model", edsr_tflite, "--dataset", tmp_path / "Mini", "--scale", 4)
    assert_clean_error(mismatch, "is a ×2 model")

    copy = tmp_path / "copy.tflite"
    copy.write_bytes(edsr_tflite.read_bytes())
    sidecar_path(copy).write_bytes(sidecar_path(edsr_tflite).read_bytes())
    result = run_module(
        "edge_sr.benchmark", "tflite", copy, "--baseline", edsr_tflite, "--size", "24", "40x16",
        "--xnnpack", "both", "--runs", 3, "--warmup", 1, "--json", tmp_path / "b.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "b.json").read_text())["results"]
    assert len(results) == 2 * 2 * 2  # models × sizes × XNNPACK settings
    assert {tuple(r["size"]) for r in results} == {(24, 24), (16, 40)}
    for entry in results:
        assert entry["runs"] == 3 and 0 < entry["median_s"] <= entry["p90_s"]
        assert entry["peak_rss_mib"] > entry["model_rss_mib"] > 0
        if entry["model"] == str(edsr_tflite):
            assert entry["ratio_to_baseline"] == 1.0
    assert "× baseline" in result.stdout
    assert_clean_error(run_module("edge_sr.benchmark", "tflite", tmp_path / "none.tflite"), "model file not found")


def test_int8_benchmark_times_the_model_beside_the_conv_stack(edsr, edsr_tflite, tmp_path, photo):
    from ai_edge_litert.interpreter import Interpreter

    from edge_sr.export.tflite import default_ptq_tflite
    from edge_sr.runtime.litert import conv_filters
    from edge_sr.runtime.metadata import build_metadata, write_tflite
    from models_tf import model_config

    int8 = tmp_path / "edsr_int8.tflite"
    content = default_ptq_tflite(edsr, [photo[i : i + 24, i : i + 24] for i in range(0, 200, 50)])
    write_tflite(int8, content, build_metadata(model_config(edsr), "int8", {"weights": 8, "activations": 8}, "uint8"))
    result = run_module(
        "edge_sr.benchmark", "int8", edsr_tflite, int8, "--size", "16", "--runs", 2, "--warmup", 0, "--profile",
        "--profile-runs", 1, "--memory", "40x24", "--tile", 16, "--json", tmp_path / "b.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "b.json").read_text())["results"]
    filters = conv_filters(edsr_tflite)  # head, 2 body convs, body end, upsampler, tail: mostly 8 channels
    assert results["conv_stack"] == {"width": 8, "depth": len(filters)} and len(filters) == 6
    assert set(results["files"]) == {"model fp32", "model int8", "conv stack fp32", "conv stack int8"}
    assert all(entry["runs"] == 2 and entry["median_s"] > 0 for entry in results["files"].values())
    assert results["files"]["conv stack int8"]["bytes"] < results["files"]["conv stack fp32"]["bytes"]
    ratios = results["int8_over_fp32"]
    assert ratios["model"] > 0 and results["gap"] == pytest.approx(ratios["model"] - ratios["conv stack"])
    for name, path in (("model fp32", edsr_tflite), ("model int8", int8)):  # every op of the file, in order
        ops = [op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()]
        profile = results["op_profile"][name]
        assert [entry["op"] for entry in profile] == ops
        assert all(entry["delegated"] for entry in profile if entry["op"] == "CONV_2D")
        assert all(entry["median_s"] > 0 for entry in profile if entry["op"] == "CONV_2D")
    assert [entry["tile"] for entry in results["memory"]] == [16, 16]
    assert all(entry["peak_rss_mib"] > entry["before_rss_mib"] > 0 for entry in results["memory"])
    assert "conv stack" in result.stdout and "op profile" in result.stdout and "peak memory" in result.stdout
