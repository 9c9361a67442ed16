"""The int8 files on ARM64 CPUs without a phone: LiteRT + XNNPACK in an aarch64 Python under qemu-aarch64.

XNNPACK picks its int8 kernels by the CPU's features (NEON, dot product, i8mm); qemu's user-mode emulation runs
the aarch64 build of the same LiteRT release as the host with each CPU model's features, so the ARM kernels'
arithmetic can be compared with the x86 run value by value. Timings under emulation mean nothing; values do.

The aarch64 Python is built once into the cache (edge_sr/bench/arm64_root.py).
"""

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edge_sr.bench.arm64_root import PYTHON, counter_plugin, ensure_arm64_root, qemu, qemu_version
from edge_sr.errors import EdgeSRError
from edge_sr.runtime import litert_run

CPUS = ("cortex-a53", "cortex-a76", "max")  # NEON only; + dot product; + i8mm, SVE2, ...
RUNNER = Path(litert_run.__file__)
# The aarch64 HWCAP bits that XNNPACK's kernel choice reads (Linux arch/arm64/include/uapi/asm/hwcap.h).
FEATURES = (
    ("dot product", 0, 1 << 20),
    ("i8mm", 1, 1 << 13),
    ("SVE", 0, 1 << 22),
    ("SVE2", 1, 1 << 1),
    ("SME", 1, 1 << 23),
    ("SME2", 1, 1 << 37),
)


# The MIDR of the CPU models qemu-aarch64 emulates (implementer, variant, part, revision; 'max' is QEMU's own
# part 'Q'; neoverse-n2 and -v1 need qemu 8 or later). LiteRT's cpuinfo reads the core type from /proc/cpuinfo,
# and XNNPACK picks Cortex-A53-scheduled kernels by it; qemu 7.2 emulates no /proc/cpuinfo for aarch64 (cpuinfo
# then finds no cores and LiteRT crashes), so each run gets one written for its CPU model.
MIDRS = {
    "cortex-a35": (0x41, 0x0, 0xD04, 1),
    "cortex-a53": (0x41, 0x0, 0xD03, 4),
    "cortex-a57": (0x41, 0x1, 0xD07, 0),
    "cortex-a72": (0x41, 0x0, 0xD08, 3),
    "cortex-a76": (0x41, 0x4, 0xD0B, 1),
    "neoverse-n1": (0x41, 0x4, 0xD0C, 1),
    "neoverse-n2": (0x41, 0x0, 0xD49, 3),
    "neoverse-v1": (0x41, 0x1, 0xD40, 1),
    "a64fx": (0x46, 0x1, 0x001, 0),
    "max": (0x00, 0x0, 0x051, 0),
}


def check_cpus(cpus):
    unknown = [cpu for cpu in cpus if cpu.split(",")[0] not in MIDRS]
    if unknown:
        raise EdgeSRError(f"unknown CPU model {', '.join(unknown)}; choose from {', '.join(MIDRS)}")
    return list(cpus)


def _cpuinfo(cpu):
    """/proc/cpuinfo as an aarch64 Linux kernel on `cpu` writes it, one entry per CPU the host's sysfs lists."""
    implementer, variant, part, revision = MIDRS[cpu.split(",")[0]]  # a model's options: max,sme=off
    try:
        last = int(Path("/sys/devices/system/cpu/possible").read_text().strip().split("-")[-1].split(",")[-1])
    except (OSError, ValueError):
        last = (os.cpu_count() or 1) - 1
    entry = (
        "processor\t: {}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd cpuid\nCPU implementer\t: {:#04x}\n"
        "CPU architecture: 8\nCPU variant\t: {:#x}\nCPU part\t: {:#05x}\nCPU revision\t: {}\n\n"
    )
    return "".join(entry.format(n, implementer, variant, part, revision) for n in range(last + 1))


def _sysroot_view(root, cpu, folder):
    """A folder that is `root` (its entries linked) plus a proc/cpuinfo for `cpu`: what `qemu-aarch64 -L` gets."""
    view = Path(folder, "sysroot")
    (view / "proc").mkdir(parents=True)
    for entry in root.iterdir():
        if entry.name != "proc":
            (view / entry.name).symlink_to(entry)
    (view / "proc" / "cpuinfo").write_text(_cpuinfo(cpu))
    return view


def run_arm64(path, inputs, cpu, root, count=False):
    """(raw output tensors of each input, hwcap, delegate nodes, instructions) of `path` run by
    `edge_sr/runtime/litert_run.py` in the aarch64 Python under qemu-aarch64 emulating `cpu`, on the input tensors
    `inputs`. `count`: the guest instructions one more invoke of the last input executes (else None)."""
    with tempfile.TemporaryDirectory(prefix="edge_sr-arm64-") as folder:
        given, taken, counted = (Path(folder, name) for name in ("inputs.npz", "outputs.npz", "instructions"))
        np.savez(given, **{str(i): values for i, values in enumerate(inputs)})
        python = root / "usr" / "bin" / f"python{PYTHON}"
        view = _sysroot_view(root, cpu, folder)
        plugin = ["-plugin", f"{counter_plugin(root)},outfile={counted}"] if count else []
        command = [qemu(), *plugin, "-cpu", cpu, "-L", str(view), str(python), "-I", str(RUNNER), str(path)]
        result = subprocess.run([*command, str(given), str(taken), "count" if count else ""], capture_output=True,
                                text=True)  # fmt: skip
        if result.returncode != 0 or not taken.is_file():
            lines = result.stderr.strip().splitlines()
            raise EdgeSRError(f"{Path(path).name} failed under qemu-aarch64 -cpu {cpu}: {lines[-1] if lines else ''}")
        with np.load(taken) as stored:
            tensors = 1 + max(int(key.split("/")[1]) for key in stored.files if "/" in key)
            outputs = [[stored[f"{i}/{j}"] for j in range(tensors)] for i in range(len(inputs))]
            hwcap, delegated = [int(n) for n in stored["hwcap"]], int(stored["delegated"])
        return outputs, hwcap, delegated, int(counted.read_text()) if count else None


def feature_names(hwcap):
    """The CPU features among FEATURES that an [AT_HWCAP, AT_HWCAP2] pair announces."""
    return [name for name, word, bit in FEATURES if hwcap[word] & bit]


def host_features():
    """The x86 features XNNPACK's int8 kernels are chosen by, as /proc/cpuinfo lists them."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next(line.split(":", 1)[1].split() for line in info if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return [name for name in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if name in flags]


def crops(folder, scale, size, count=None):
    """(name, LR crop, HR crop) from the middle of each image of a benchmark folder: `size` (h, w) LR pixels (the
    whole image where it is smaller), the first `count` images."""
    from edge_sr.data.datasets import open_benchmark

    pieces = []
    for index, (name, lr, hr) in enumerate(open_benchmark(folder, scale)):
        if count is not None and index >= count:
            break
        height, width = min(size[0], lr.shape[0]), min(size[1], lr.shape[1])
        top, left = (lr.shape[0] - height) // 2, (lr.shape[1] - width) // 2
        hr_crop = hr[scale * top : scale * (top + height), scale * left : scale * (left + width)]
        pieces.append((name, lr[top : top + height, left : left + width], hr_crop))
    return pieces


def compare(reference, values):
    """Share of `values` equal to the `reference` run's, within 1 of it, and the largest difference (in the
    output tensor's steps, LSB)."""
    pairs = zip(reference, values, strict=True)
    difference = np.concatenate([np.abs(a.astype(np.int32) - b).ravel() for a, b in pairs])
    return {
        "equal": float(np.mean(difference == 0)),
        "within_1_lsb": float(np.mean(difference <= 1)),
        "max_lsb": int(difference.max()),
    }


def _every_tensor_output(path, target):
    """Write `path` with every tensor an op makes also a graph output (so a run shows them all) to `target`;
    returns [(op name, output tensor name, its position among the outputs, the positions of its computed
    inputs, or None for the graph input)] in graph order."""
    from ai_edge_litert.tools.flatbuffer_utils import (
        convert_object_to_bytearray,
        opcode_to_name,
        read_model_from_bytearray,
    )

    model = read_model_from_bytearray(bytearray(Path(path).read_bytes()))
    graph = model.subgraphs[0]
    graph.outputs = list(dict.fromkeys([*graph.outputs, *(i for op in graph.operators for i in op.outputs)]))
    position = {tensor: n for n, tensor in enumerate(graph.outputs)}
    ops = [
        (
            opcode_to_name(model, op.opcodeIndex),
            graph.tensors[op.outputs[0]].name.decode(),
            position[op.outputs[0]],
            [position.get(i) for i in op.inputs if i >= 0 and (i in position or i in graph.inputs)],
        )
        for op in graph.operators
    ]
    Path(target).write_bytes(bytes(convert_object_to_bytearray(model)))
    return ops


def op_differences(path, values, cpu, root):
    """The ops that compute differently on `cpu`: run on one input tensor `values` with every op's output kept,
    here and under qemu, the ops whose computed inputs are equal on both and whose output is not, as
    [{"op", "tensor", "differ": share of values, "max": the largest difference, "unit": " LSB" for an integer
    tensor}]. (An op after a differing one reads other inputs and is not judged.)"""

    with tempfile.TemporaryDirectory(prefix="edge_sr-ops-") as folder:
        every = Path(folder, "every.tflite")
        ops = _every_tensor_output(path, every)
        (host,), _ = litert_run.run_file(every, [values])
        (arm,), *_ = run_arm64(every, [values], cpu, root)
    differences = []
    for name, tensor, output, inputs in ops:
        if all(i is None or np.array_equal(host[i], arm[i]) for i in inputs) and not np.array_equal(
            host[output], arm[output]
        ):
            difference = np.abs(host[output].astype(np.float64) - arm[output])
            share, largest = float(np.mean(difference > 0)), float(difference.max())
            unit = " LSB" if np.issubdtype(host[output].dtype, np.integer) else ""
            differences.append({"op": name, "tensor": tensor, "differ": share, "max": largest, "unit": unit})
    return differences


def armcheck(
    path, folder, scale, cpus=CPUS, run_dir=None, crop=(32, 32), images=None, count=False, build=None, report=None
):
    """Run an exported file with XNNPACK on x86 (here) and on each emulated ARM CPU model, on LR crops of a
    benchmark folder; returns {"file", "crops", "reference", "rows": [{"cpu", "features", "delegated", "psnr",
    "delta_psnr", "equal", "within_1_lsb", "max_lsb", "ops", "instructions"}]}, the first row the host's. `ops`:
    where a CPU model's output differs from the host's, the ops that compute differently (`op_differences` on the
    first crop). `instructions` (with `count`): the aarch64 instructions one invoke on the last crop executes, as
    qemu counts them (deterministic to a few hundred; a count, not a time); None for the host.

    With `run_dir` (the `train` or `calibrate` run the file was exported from) ΔPSNR is against the file's Keras
    fake-quant reference, computed as `convert --int8`'s parity gate computes it; without, against the host's run.
    `build`: build a missing aarch64 Python (default: unless $EDGE_SR_ARM64_ROOT names one).
    """
    from ai_edge_litert.interpreter import Interpreter

    from edge_sr.bench.common import machine_description
    from edge_sr.data.metrics import psnr
    from edge_sr.runtime.litert import TFLiteModel, _dequantize, _quantize
    from edge_sr.runtime.tiling import to_uint8

    cpus = check_cpus(cpus)
    qemu()
    root = ensure_arm64_root(not os.environ.get("EDGE_SR_ARM64_ROOT") if build is None else build)
    model = TFLiteModel(path, threads=1, scale=scale)  # checks the file and its scale
    pieces = crops(folder, scale, model.input_size or crop, images)
    if model.input_size and any(lr.shape[:2] != model.input_size for _, lr, _ in pieces):
        raise EdgeSRError(f"{model.name} takes {model.input_size} tiles; every image of {folder} must be that large")
    interpreter = Interpreter(model_path=str(path))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    inputs = [_quantize(lr, source) for _, lr, _ in pieces]

    def codes(outputs):  # what is compared: an integer output's codes, a float output's uint8 pixels
        return outputs if np.issubdtype(target["dtype"], np.integer) else [to_uint8(raw) for raw in outputs]

    def score(outputs):
        return float(np.mean([psnr(to_uint8(_dequantize(raw, target)), hr, shave=scale)
                              for raw, (_, _, hr) in zip(outputs, pieces, strict=True)]))  # fmt: skip

    baseline = None
    if run_dir is not None:
        from edge_sr.export.int8 import deployed_run
        from edge_sr.runtime.upscalers import KerasUpscaler

        _, _, deployed = deployed_run(run_dir)
        reference = KerasUpscaler(deployed, "reference", scale)
        baseline = float(np.mean([psnr(reference(lr), hr, shave=scale) for _, lr, hr in pieces]))
    host, delegated = litert_run.run_file(path, inputs)
    host = [tensors[0][0] for tensors in host]  # the image of batch 1
    host_psnr = score(host)
    baseline = host_psnr if baseline is None else baseline
    rows = [{"cpu": "x86-64 (host)", "features": host_features(),
             "delegated": delegated, "psnr": host_psnr, "delta_psnr": host_psnr - baseline,
             **compare(codes(host), codes(host)), "ops": [], "instructions": None}]  # fmt: skip
    for cpu in cpus:
        if report:
            report(f"{model.name}: qemu-aarch64 -cpu {cpu} ...")
        outputs, hwcap, delegated, instructions = run_arm64(path, inputs, cpu, root, count)
        outputs = [tensors[0][0] for tensors in outputs]
        row = {"cpu": cpu, "features": feature_names(hwcap), "delegated": delegated, "psnr": score(outputs),
               **compare(codes(host), codes(outputs)), "instructions": instructions}  # fmt: skip
        row["delta_psnr"] = row["psnr"] - baseline
        row["ops"] = op_differences(path, inputs[0], cpu, root) if row["equal"] < 1 else []
        rows.append(row)
    shape = pieces[0][1].shape
    return {
        "file": str(path),
        "crops": f"{len(pieces)} LR crops of {shape[1]}×{shape[0]}",
        "reference": "Keras fake-quant reference" if run_dir is not None else "x86 run",
        "host": machine_description(),
        "emulator": qemu_version(),
        "rows": rows,
    }
