"""The evaluate CLI as a user meets it: tables, saved images, and one clear line for each bad input."""

import json

import pytest
from conftest import assert_clean_error, run_module

from edge_sr.data import read_rgb, write_image


@pytest.fixture
def bench(tmp_path, photo):
    write_image(tmp_path / "Mini" / "HR" / "a.png", photo[:96, :120])
    write_image(tmp_path / "Mini" / "HR" / "b.png", photo[300:400, 300:380])
    return tmp_path / "Mini"


def test_table_json_and_saved_images(bench, tmp_path):
    result = run_module(
        "edge_sr.evaluate", "--dataset", bench, "--scale", 2, "--json", tmp_path / "r.json",
        "--save-images", tmp_path / "sr",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Mini" in result.stdout and "PSNR" in result.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["name"] for r in report["results"][0]["per_image"]] == ["a", "b"]
    assert read_rgb(tmp_path / "sr" / "Mini" / "x2" / "a.png").shape == (96, 120, 3)


def test_bad_inputs_give_one_clear_error(tmp_path, bench, photo):
    assert_clean_error(run_module("edge_sr.evaluate", "--dataset", tmp_path / "nope", "--scale", 2), "not found")
    (tmp_path / "empty").mkdir()
    assert_clean_error(run_module("edge_sr.evaluate", "--dataset", tmp_path / "empty", "--scale", 2), "no images")

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.png").write_text("hello")
    assert_clean_error(run_module("edge_sr.evaluate", "--dataset", tmp_path / "junk", "--scale", 2), "not an image")

    write_image(tmp_path / "cut" / "whole.png", photo)
    data = (tmp_path / "cut" / "whole.png").read_bytes()
    (tmp_path / "cut" / "whole.png").write_bytes(data[:5000])
    assert_clean_error(run_module("edge_sr.evaluate", "--dataset", tmp_path / "cut", "--scale", 2), "truncated")

    write_image(tmp_path / "tiny" / "dot.png", photo[:2, :2])
    assert_clean_error(run_module("edge_sr.evaluate", "--dataset", tmp_path / "tiny", "--scale", 3), "smaller")

    write_image(bench / "LR_bicubic" / "X4" / "ax4.png", photo[:24, :30])
    assert_clean_error(run_module("edge_sr.evaluate", "--dataset", bench, "--scale", 2), "but not ×2")

    assert_clean_error(
        run_module("edge_sr.evaluate", "--model", "nonsense", "--dataset", bench, "--scale", 2),
        "unknown model",
    )


def test_a_saved_keras_model_is_evaluated_and_its_scale_checked(bench, tmp_path):
    from models_tf import build_preset, save_model

    save_model(build_preset("edsr-baseline", scale=2, num_blocks=1, num_features=8), tmp_path / "tiny.keras")
    result = run_module(
        "edge_sr.evaluate", "--model", tmp_path / "tiny.keras", "--dataset", bench, "--scale", 2,
        "--json", tmp_path / "r.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["model"] == "tiny.keras" and report["results"][0]["n_images"] == 2
    mismatch = run_module("edge_sr.evaluate", "--model", tmp_path / "tiny.keras", "--dataset", bench, "--scale", 3)
    assert_clean_error(mismatch, "is a ×2 model")
    missing = run_module("edge_sr.evaluate", "--model", tmp_path / "none.keras", "--dataset", bench, "--scale", 2)
    assert_clean_error(missing, "not found")
