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


def test_qat_benchmark_trains_each_variant_for_the_same_steps(tmp_path, photo):
    from edge_sr.data import write_image
    from models_tf import build_preset, save_model

    save_model(build_preset("edsr-baseline", scale=2, num_blocks=1, num_features=8), tmp_path / "tiny.keras")
    write_image(tmp_path / "train" / "a.png", photo[:200, :200])
    write_image(tmp_path / "val" / "b.png", photo[300:364, 300:364])
    result = run_module(
        "edge_sr.benchmark", "qat", "--model", tmp_path / "tiny.keras", "--train", tmp_path / "train",
        "--val", tmp_path / "val", "--eval", tmp_path / "val", "--bits", 4, "--variants", "minmax", "odm",
        "--placements", "paper", "integer", "--steps", 3, "--batch-size", 2, "--patch", 24, "--timing-rounds", 1,
        "--out", tmp_path / "runs", "--json", tmp_path / "q.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "q.json").read_text())["results"]
    assert [(r["bits"], r["variant"], r["placement"], r["weight_grid"]) for r in report["runs"]] == [
        (4, "minmax", "paper", "mid-rise"),
        (4, "minmax", "integer", "mid-rise"),
        (4, "odm", "paper", "mid-rise"),
        (4, "odm", "integer", "mid-rise"),
    ]
    for run in report["runs"]:
        assert run["step_s"] > 0 and "val" in run["psnr"]
        name = f"w4a4-{run['variant']}{'-integer' if run['placement'] == 'integer' else ''}"
        assert len((tmp_path / "runs" / name / "history.jsonl").read_text().splitlines()) == 3
    assert "vs minmax" in result.stdout and "FP32" in result.stdout


def test_curve_benchmark_scores_the_int8_file_after_each_segment_and_resumes(tmp_path, photo):
    from edge_sr.data import write_image
    from models_tf import build_preset, save_model

    save_model(build_preset("edsr-baseline", scale=2, num_blocks=1, num_features=8), tmp_path / "tiny.keras")
    write_image(tmp_path / "train" / "a.png", photo[:200, :200])
    write_image(tmp_path / "val" / "b.png", photo[300:364, 300:364])
    args = ["edge_sr.benchmark", "curve", "--model", tmp_path / "tiny.keras", "--train", tmp_path / "train",
            "--val", tmp_path / "val", "--eval", tmp_path / "val", "--bits", 8, "--batch-size", 2, "--patch", 24,
            "--out", tmp_path / "curve", "--steps"]  # fmt: skip
    result = run_module(*args, 0, 2, "--placements", "integer", "--dquant-iterations", 1, "--dquant-batch", 1)
    assert result.returncode == 0, result.stderr
    curve = json.loads((tmp_path / "curve" / "curve.json").read_text())
    assert list(curve["curves"]) == ["odm W8A8 integer", "2dquant W8A8 integer"]
    odm = curve["curves"]["odm W8A8 integer"]
    assert [p["steps"] for p in odm] == [0, 2] and odm[0]["train_minutes"] == 0 < odm[1]["train_minutes"]
    assert all(p["parity_ok"] and set(p["psnr"]) == {"val"} for points in curve["curves"].values() for p in points)
    assert odm[0]["psnr"] != odm[1]["psnr"]  # the file of each step, not one file scored twice
    svg = (tmp_path / "curve" / "curve-val.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 2 and "FP32" in svg and "bicubic" in svg

    assert_clean_error(run_module(*args, 0, 2), "holds a curve already")
    # More steps and the other placement continue the same folder: the integer run resumes from its checkpoint.
    result = run_module(*args, 0, 2, 3, "--resume")
    assert result.returncode == 0, result.stderr
    curve = json.loads((tmp_path / "curve" / "curve.json").read_text())
    assert [p["steps"] for p in curve["curves"]["odm W8A8 integer"]] == [0, 2, 3]
    assert [p["steps"] for p in curve["curves"]["odm W8A8 paper"]] == [0, 2, 3]
    history = (tmp_path / "curve" / "odm-w8-integer" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in history] == [0, 1, 2]
    assert "odm W8A8 paper" in result.stdout and "parity" in result.stdout
