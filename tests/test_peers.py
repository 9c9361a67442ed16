"""`benchmark peers` and its adapters on a tiny idealo RDN; the peers' rows are skipped where their extra
(requirements-peers.txt, `make peers-venv`) is absent, and then must say so."""

import importlib.util
import json

import numpy as np
import pytest
import tf_keras as keras

from edge_sr.bench.peers import NOT_INSTALLED, ROWS
from models_tf import build_preset, save_model

TINY_RDN = {"num_blocks": 2, "num_layers": 2, "growth_rate": 8, "num_features": 8}
HAS_QUANTIZER = importlib.util.find_spec("litert_quantizer") is not None
HAS_LITERT_TORCH = importlib.util.find_spec("litert_torch") is not None
EXTRA_ABSENT = "the peers extra is not installed (make peers-venv)"


@pytest.mark.parametrize("upscaling", ["ups", "shuffle"])
def test_the_pytorch_rdn_port_computes_the_keras_model(upscaling):
    torch = pytest.importorskip("torch", reason="needs torch (requirements-dev.txt)")
    from converters.torch_isr_rdn import isr_rdn_from_keras

    keras.utils.set_random_seed(0)
    model = build_preset("isr-rdn", scale=2, upscaling=upscaling, **TINY_RDN)
    image = np.random.default_rng(0).uniform(0, 255, (1, 20, 24, 3)).astype(np.float32)
    with torch.no_grad():
        ported = isr_rdn_from_keras(model)(torch.from_numpy(image).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    np.testing.assert_allclose(ported.numpy(), model(image).numpy(), atol=1e-3)


@pytest.fixture
def peers_results(tmp_path, train_folder, val_folder):
    from edge_sr.bench.peers import compare

    keras.utils.set_random_seed(0)
    model = tmp_path / "rdn.keras"
    save_model(build_preset("isr-rdn", scale=2, **TINY_RDN), model)
    results = compare(str(model), 2, [str(train_folder)], [str(val_folder)], tmp_path / "peers", patch=24,
                      patches=4, tile=32, size=(32, 32), runs=2, warmup=0)  # fmt: skip
    return {row["key"]: row for row in results}


def test_every_row_is_scored_and_timed_or_says_why_not(peers_results):
    assert list(peers_results) == list(ROWS)
    fp32 = peers_results["fp32"]["psnr"]["val"]
    for key, row in peers_results.items():
        installed = HAS_QUANTIZER if key.startswith("lq-") else HAS_LITERT_TORCH if key.startswith("lt-") else True
        if not installed:
            assert "psnr" not in row and row["note"].endswith(NOT_INSTALLED), row
            continue
        assert np.isfinite(row["psnr"]["val"]) and row["ratio_to_fp32"] > 0 and row["not_delegated"], row
    assert peers_results["fp32"]["ratio_to_fp32"] == 1.0
    # on random weights a float-weight file keeps the fp32 result; integer files lose some
    assert abs(peers_results["edge_sr"]["psnr"]["val"] - fp32) < 3


@pytest.mark.skipif(not HAS_QUANTIZER, reason=EXTRA_ABSENT)
def test_litert_quantizer_files_have_the_recipes_io_and_global_ranges(peers_results):
    from edge_sr.runtime.litert import TFLiteModel

    a16w8 = TFLiteModel(peers_results["lq-a16w8"]["path"], scale=2)
    assert a16w8._input["dtype"] == np.int16 and a16w8._output["dtype"] == np.int16  # the runtime takes int16
    assert TFLiteModel(peers_results["lq-a8w8"]["path"], scale=2)._input["dtype"] == np.int8
    for key in ("lq-weight-only", "lq-dynamic"):
        assert TFLiteModel(peers_results[key]["path"], scale=2)._input["dtype"] == np.float32
    scores = {key: row["psnr"]["val"] for key, row in peers_results.items()}
    assert scores["lq-a16w8"] > scores["lq-a8w8-minmax"] - 0.1  # 16-bit activations lose the least
    assert abs(scores["lq-weight-only"] - scores["fp32"]) < 1


@pytest.mark.skipif(not HAS_LITERT_TORCH, reason=EXTRA_ABSENT)
def test_litert_torch_files_take_the_fixed_tile(peers_results):
    from edge_sr.runtime.litert import TFLiteModel

    static, dynamic = (TFLiteModel(peers_results[key]["path"], scale=2) for key in ("lt-static", "lt-dynamic"))
    assert static.input_size == dynamic.input_size == (32, 32)
    assert static._input["dtype"] == np.int8 and dynamic._input["dtype"] == np.float32


def test_the_cli_prints_the_table_and_writes_json(tmp_path, train_folder, val_folder, capsys):
    from edge_sr.benchmark import main
    from edge_sr.export.tflite import export_float

    keras.utils.set_random_seed(0)
    model, net = tmp_path / "rdn.keras", build_preset("isr-rdn", scale=2, **TINY_RDN)
    save_model(net, model)
    skip = [key for key in ROWS if key not in ("fp32", "tflite-ptq", "lq-weight-only")]
    given = tmp_path / "given.tflite"  # a file made beforehand, scored beside the peers (--files)
    export_float(net, given, "fp16")
    main(["peers", str(model), "--calibration", str(train_folder), "--eval", str(val_folder), "--patches", "4",
          "--patch", "24", "--size", "32", "--runs", "1", "--warmup", "0", "--skip", *skip, "--files", str(given),
          "--out", str(tmp_path / "out"), "--json", str(tmp_path / "peers.json")])  # fmt: skip
    printed = capsys.readouterr().out
    assert "TFLite converter PTQ" in printed and "skipped (--skip)" in printed and "× fp32 time" in printed
    assert "given.tflite (given)" in printed
    rows = {row["key"]: row for row in json.loads((tmp_path / "peers.json").read_text())["results"]}
    assert rows["file:given.tflite"]["ratio_to_fp32"] > 0
    assert abs(rows["file:given.tflite"]["psnr"]["val"] - rows["fp32"]["psnr"]["val"]) < 0.1  # fp16 keeps fp32
    assert rows["lq-weight-only"]["note"] == ("" if HAS_QUANTIZER else f"litert-quantizer {NOT_INSTALLED}")
    assert "psnr" in rows["tflite-ptq"] and rows["edge_sr"]["note"] == "skipped (--skip)"
