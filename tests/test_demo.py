"""`python -m edge_sr.demo --quick`: every step of the demo on tiny photos with the bundled EDSR-small (npm cut off,
so nothing reaches the network); the report must hold the figures of results.json."""

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import run_module
from test_zoo import fake_npm

from edge_sr.demo.report import results_table
from edge_sr.demo.showcase import FULL, ROWS, Steps, demo_checks, resolve_model


class _Report(HTMLParser):
    """The results table's rows (by data-key), and the count of charts and crop images."""

    def __init__(self):
        super().__init__()
        self.rows, self.svgs, self.images, self._row, self._cell = {}, 0, 0, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-key" in attrs:
            self._row = self.rows.setdefault(attrs["data-key"], [])
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "svg":
            self.svgs += 1
        elif tag == "img" and attrs.get("src", "").startswith("data:image/png;base64,"):
            self.images += 1

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One quick demo run shared by the tests below (it takes a minute or two)."""
    tmp_path = tmp_path_factory.mktemp("demo")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("EDGE_SR_CACHE", str(tmp_path / "cache"))  # nothing pulled before
    fake_npm(tmp_path, monkeypatch, 'echo "npm error code ECONNREFUSED" >&2; exit 1')  # the registry is unreachable
    # about 3.5 CPU-minutes; 8 minutes of wall time on 2 cores shared with a training run
    result = run_module("edge_sr.demo", "--quick", "--out", tmp_path / "out", timeout=1800)
    monkeypatch.undo()
    return result, tmp_path / "out"


def test_quick_demo_runs_the_bundled_model_and_says_so(quick_demo):
    result, out = quick_demo
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--quick runs the EDSR-small" in result.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "zoo:edsr-small-x2" and "--quick" in results["note"]
    assert results["failures"] == [] and "wall time:" in result.stdout


def test_demo_falls_back_to_the_bundled_model_when_npm_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_SR_CACHE", str(tmp_path / "cache"))  # nothing pulled before
    fake_npm(tmp_path, monkeypatch, 'echo "npm error code ECONNREFUSED" >&2; exit 1')  # the registry is unreachable
    printed = []
    source, note = resolve_model(None, log=printed.append)
    assert source == "zoo:edsr-small-x2" and "could not be fetched with npm" in note
    assert printed == [f"note: {note}"]


def test_demo_writes_every_model_and_figure(quick_demo):
    _, out = quick_demo
    results = json.loads((out / "results.json").read_text())
    rows = {row["key"]: row for row in results["rows"]}
    assert list(rows) == [key for key, *_ in ROWS]
    for key, row in rows.items():
        assert set(row["scores"]) == {"photos"}
        assert 0 < row["scores"]["photos"]["ssim"] <= 1
        if key == "bicubic":
            continue
        path = Path(row["file"])
        metadata = json.loads(Path(f"{path}.json").read_text())
        assert path.stat().st_size / 1e6 == pytest.approx(row["latency"]["file_mb"])
        assert metadata["precision"] == ("fp32" if key == "fp32" else "int8")
        if row["kind"] == "int8":
            assert metadata["io"] == "uint8" and metadata["bits"]["weights"] == row["bits"]
        assert row["latency"]["median_ms"] > 0
    assert rows["fp32"]["latency"]["ratio_to_fp32"] == 1.0
    for key in ("2dquant-w8", "2dquant-w4", "odm-w4"):
        assert {"delta_psnr", "within_1_lsb", "ok"} <= set(rows[key]["parity"])
        # Every quantized run trained or calibrated the integer graph the file computes, not the papers' subset.
        run = json.loads((Path(rows[key]["run_dir"]) / "run.json").read_text())
        assert run["quantization"]["placement"] == "integer"
    # The bundled model is a real SR model: it beats bicubic on photos it never saw.
    assert rows["fp32"]["scores"]["photos"]["psnr"] > rows["bicubic"]["scores"]["photos"]["psnr"] + 0.5


def test_report_shows_the_figures_of_the_json(quick_demo):
    _, out = quick_demo
    results = json.loads((out / "results.json").read_text())
    report = _Report()
    report.feed((out / "report.html").read_text(encoding="utf-8"))
    _, expected = results_table(results)
    assert report.rows == {key: cells for key, cells in expected}
    assert report.svgs == len(results["eval_sets"]) + 1  # a PSNR-vs-bits chart per set, and the latency chart
    photos = len(list((out / "data" / "photos").glob("*.png")))
    assert report.images == photos * (len(ROWS) + 2)  # LR, every result, HR


def test_steps_reuse_results_only_for_the_same_inputs(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    assert Steps(tmp_path, {"model": "a"}).run("step", compute)["value"] == 1
    assert Steps(tmp_path, {"model": "a"}).run("step", compute)["value"] == 1  # reused: an interrupted demo resumes
    assert Steps(tmp_path, {"model": "b"}).run("step", compute)["value"] == 2  # other inputs: computed again


def demo_results(**changes):
    """A results.json as the demo writes it, on one set, with the given rows' fields changed."""
    row = {"scores": {"photos": {"psnr": 34.0, "ssim": 0.9}}, "latency": {"median_ms": 100.0}}
    rows = [{"key": key, "label": label, "bits": bits, "kind": kind, **row} for key, label, bits, kind in ROWS]
    rows[0].update(scores={"photos": {"psnr": 33.0, "ssim": 0.9}}, latency=None)  # bicubic: no file to time
    for entry in rows:
        if entry["kind"] == "int8" and entry["key"] != "tflite-ptq-w8":
            entry["parity"] = {"delta_psnr": 0.001, "ok": True}
        entry.update(changes.get(entry["key"], {}))
    return {"eval_sets": {"photos": "photos"}, "settings": dict(vars(FULL)), "rows": rows}


def test_the_demo_gate_fails_on_parity_and_missing_figures_and_notes_rows_below_bicubic():
    assert demo_checks(demo_results()) == ([], [])
    failures, _ = demo_checks(demo_results(**{"2dquant-w4": {"parity": {"delta_psnr": -0.05, "ok": False}}}))
    assert failures == [
        "2DQuant W4A4 (.tflite) misses its Keras fake-quant reference by -0.050 dB (parity gate ±0.02 dB)"
    ]
    failures, _ = demo_checks(demo_results(**{"odm-w4": {"latency": None, "scores": {}}}))
    assert failures == ["ODM W4A4 (.tflite) has no photos, latency figure"]
    below = {"psnr": 32.0, "ssim": 0.8}
    _, notes = demo_checks(
        demo_results(**{"odm-w4": {"scores": {"photos": below}}, "fp32": {"scores": {"photos": below}}})
    )
    assert notes == [
        "ODM W4A4 (.tflite) is below bicubic on the photos (32.00 vs 33.00 dB): 40 ODM steps of batch 4 on the CPU "
        "(the paper: 60K of 8)"
    ]  # the float file is no quantized row
