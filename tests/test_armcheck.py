"""`python -m edge_sr.armcheck`: an int8 file on emulated ARM64 CPUs against x86, and its errors."""

import json
import shutil
import sys

import numpy as np
import pytest
from conftest import assert_clean_error, run_module
from test_int8_export import small_rdn

from edge_sr.bench.arm64_root import arm64_root

SHARED_ROOT = arm64_root()  # at import, before each test gets a private cache: built once for every test run
needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-aarch64") is None, reason="qemu-aarch64 is absent (Debian: apt-get install qemu-user)"
)


@pytest.fixture
def dummy_file(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"not checked before qemu and the arm64 Python are")
    return path


def test_missing_qemu_is_one_clean_error(dummy_file, val_folder):
    result = run_module("edge_sr.armcheck", dummy_file, "--dataset", val_folder, "--scale", 2,
                        env={"EDGE_SR_QEMU": str(dummy_file.with_name("qemu-aarch64"))})  # fmt: skip
    assert_clean_error(result, "install qemu-user (Debian/Ubuntu: apt-get install qemu-user)")


def test_missing_arm64_root_is_one_clean_error(dummy_file, val_folder, tmp_path):
    env = {"EDGE_SR_QEMU": sys.executable, "EDGE_SR_ARM64_ROOT": str(tmp_path / "none")}  # any program will do
    result = run_module("edge_sr.armcheck", dummy_file, "--dataset", val_folder, "--scale", 2, env=env)
    assert_clean_error(result, f"no arm64 Python at {tmp_path / 'none'}: build it with")


def test_every_tensor_output_file_computes_what_the_file_does(tmp_path, photo):
    """The op-by-op comparison runs a copy of the file whose every op output is a graph output: its own output
    is unchanged by that, and each op's output and computed inputs are found in it."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edge_sr.bench.arm64 import _every_tensor_output
    from edge_sr.export.int8 import deploy_model
    from edge_sr.export.tflite import int8_tflite
    from edge_sr.quant import quantize_model
    from edge_sr.quant.ranges import initialize_ranges
    from edge_sr.runtime import litert_run
    from edge_sr.runtime.metadata import build_metadata, write_tflite

    model = quantize_model(small_rdn(), 8)
    batch = photo[None, 100:132, 100:132].astype(np.float32)
    initialize_ranges(model, [batch], "minmax")
    deployed, _ = deploy_model(model, [batch])
    path = tmp_path / "rdn.tflite"
    write_tflite(path, int8_tflite(deployed), build_metadata(model.edge_sr_config, "int8", {"weights": 8,
                 "activations": 8}, "uint8"))  # fmt: skip
    ops = _every_tensor_output(path, tmp_path / "every.tflite")
    lr = photo[200:224, 200:232]
    ((alone,),), _ = litert_run.run_file(path, [lr])
    (every,), _ = litert_run.run_file(tmp_path / "every.tflite", [lr])
    assert len(every) == len(ops) and np.array_equal(every[0], alone)
    sized = Interpreter(str(tmp_path / "every.tflite"))
    sized.resize_tensor_input(sized.get_input_details()[0]["index"], (1, *lr.shape))
    sized.allocate_tensors()
    shapes = [tuple(detail["shape"]) for detail in sized.get_output_details()]
    assert [values.shape for values in every] == shapes  # whole tensors, not their first rows
    plain = Interpreter(
        model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    assert [name for name, *_ in ops] == [op["op_name"] for op in plain._get_ops_details()]
    assert ops[0][:1] == ("QUANTIZE",) and ops[0][3] == [None]  # uint8 image in
    for k, (_, _, _, inputs) in enumerate(ops):  # every computed input is an earlier op's output
        assert inputs and set(inputs) - {None} <= {output for _, _, output, _ in ops[:k]}


@needs_qemu
def test_int8_file_gives_the_x86_values_on_arm_cpus(tmp_path, tiny_model, train_folder, val_folder):
    """A W4A4 EDSR file run under qemu-aarch64 (XNNPACK's NEON and dot-product int8 kernels) gives every output
    value the x86 run gives, and the PSNR of its Keras reference (the parity gate)."""
    setup = run_module("edge_sr.armcheck", "--setup", env={"EDGE_SR_ARM64_ROOT": str(SHARED_ROOT)})
    assert setup.returncode == 0, setup.stderr
    result = run_module(
        "edge_sr.calibrate", "--run-dir", tmp_path / "run", "--model", tiny_model, "--scale", 2, "--calibration",
        train_folder, "--val", val_folder, "--bits", 4, "--method", "dobi", "--init-batch-size", 4, "--patch", 16,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    path = tmp_path / "model.tflite"
    result = run_module("edge_sr.convert", tmp_path / "run", "--int8", "--out", path)
    assert result.returncode == 0, result.stderr
    count = ["--count"] if shutil.which("cc") else []  # the instruction counter is a qemu plugin built with cc
    env = {"EDGE_SR_ARM64_ROOT": str(SHARED_ROOT)}
    result = run_module("edge_sr.armcheck", path, "--dataset", train_folder, "--scale", 2, "--run-dir",
                        tmp_path / "run", "--cpus", "cortex-a53", "cortex-a76", "--images", 2, "--crop", 24,
                        *count, "--json", tmp_path / "arm.json", env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ΔPSNR vs Keras fake-quant reference" in result.stdout and "2 LR crops of 24×24" in result.stdout
    (report,) = json.loads((tmp_path / "arm.json").read_text())["results"]
    host, a53, a76 = report["rows"]
    assert host["cpu"] == "x86-64 (host)" and (a53["cpu"], a76["cpu"]) == ("cortex-a53", "cortex-a76")
    assert a53["features"] == [] and a76["features"] == ["dot product"]
    for row in report["rows"]:
        assert row["equal"] == 1 and row["max_lsb"] == 0 and row["ops"] == []
        assert abs(row["delta_psnr"]) <= 0.02 and row["psnr"] == host["psnr"]
        assert row["delegated"] == host["delegated"] > 0  # XNNPACK ran there too
    if count:  # NEON's int8 kernels take more instructions than the dot-product ones
        assert host["instructions"] is None and a53["instructions"] > a76["instructions"] > 0
