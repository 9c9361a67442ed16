import json

from conftest import assert_clean_error, run_module


def test_keras_benchmark_reports_measured_figures(tmp_path):
    result = run_module(
        "edge_sr.benchmark", "keras", "--presets", "edsr-baseline", "--size", "16", "--runs", "2",
        "--json", tmp_path / "b.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads((tmp_path / "b.json").read_text())["results"]
    assert entry["preset"] == "edsr-baseline" and entry["params"] == 1_369_859  # EDSR-baseline ×2: 1.37M
    assert 0 < entry["median_s"] <= entry["p90_s"]
    assert entry["lr_pixels_per_s"] == 16 * 16 / entry["median_s"]
    assert "edsr-baseline" in result.stdout


def test_unknown_preset_is_a_clear_error():
    result = run_module("edge_sr.benchmark", "keras", "--presets", "nope", "--runs", "1")
    assert_clean_error(result, "unknown model preset")
