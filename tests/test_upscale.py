"""The upscale CLI as a user meets it: files and folders in, {stem}_x{scale}.png out, alpha kept, bad files skipped."""

import numpy as np
import pytest
from conftest import assert_clean_error, run_module

from edge_sr.data import imresize, read_picture, write_image
from edge_sr.export.tflite import export_float
from edge_sr.runtime.litert import TFLiteModel
from edge_sr.runtime.tiling import upscale
from models_tf import build_preset


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("upscale") / "edsr.tflite"
    export_float(build_preset("edsr-baseline", scale=2, num_blocks=1, num_features=8), path)
    return path


def test_files_and_folders_are_upscaled_with_alpha_and_bad_files_skipped(model_path, tmp_path, photo):
    alpha = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (30, 1))
    write_image(tmp_path / "in" / "clear.png", photo[:30, :40], alpha)
    write_image(tmp_path / "in" / "plain.jpg", photo[100:124, 200:236])
    (tmp_path / "in" / "broken.png").write_text("not an image")
    write_image(tmp_path / "single.png", photo[300:316, 300:320])

    result = run_module(
        "edge_sr.upscale", "--model", model_path, tmp_path / "in", tmp_path / "single.png", "--out", tmp_path / "out",
        "--tile", 16, "--overlap", 4,
    )  # fmt: skip
    assert_clean_error(result, "1 image(s) could not be upscaled")
    assert "skipped" in result.stderr and "broken.png" in result.stderr
    assert "upscaled 3 of 4 images ×2" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clear_x2.png", "plain_x2.png", "single_x2.png"]

    model = TFLiteModel(model_path)
    clear = read_picture(tmp_path / "out" / "clear_x2.png")
    np.testing.assert_array_equal(clear.alpha, imresize(alpha, scale=2))
    np.testing.assert_array_equal(clear.rgb, upscale(model, photo[:30, :40], tile=16, overlap=4))
    assert read_picture(tmp_path / "out" / "plain_x2.png").alpha is None
    assert read_picture(tmp_path / "out" / "single_x2.png").rgb.shape == (32, 40, 3)


def test_usage_errors_stop_before_any_work(model_path, tmp_path, photo):
    write_image(tmp_path / "a" / "x.png", photo[:8, :8])
    write_image(tmp_path / "b" / "x.png", photo[:8, :8])
    out = tmp_path / "out"
    clash = run_module("edge_sr.upscale", "--model", model_path, tmp_path / "a", tmp_path / "b", "--out", out)
    assert_clean_error(clash, "would both be written to")
    (tmp_path / "empty").mkdir()
    assert_clean_error(
        run_module("edge_sr.upscale", "--model", model_path, tmp_path / "empty", "--out", out), "no images"
    )
    bad_overlap = run_module(
        "edge_sr.upscale", "--model", model_path, tmp_path / "a", "--out", out, "--tile", 16, "--overlap", 9
    )
    assert_clean_error(bad_overlap, "overlap from 0 to half the tile")
    assert_clean_error(
        run_module("edge_sr.upscale", "--model", tmp_path / "no.tflite", tmp_path / "a", "--out", out), "not found"
    )
    assert not out.exists()
