"""`python -m edge_sr.armcheck`: an exported file's output on ARM64 phone CPUs, compared with x86, under qemu.

    python -m edge_sr.armcheck rdn_int8.tflite --dataset ../shared/data/Set5 --scale 2 --run-dir runs/dobi-w8
    python -m edge_sr.armcheck --setup        # only build the aarch64 Python (also: make arm64-root)

Each file runs with LiteRT + XNNPACK here and in an aarch64 Python under qemu-aarch64 for each CPU model of
--cpus: cortex-a53 (NEON), cortex-a76 (+ dot product), max (+ i8mm, SVE2, ...), whose features decide which int8
kernels XNNPACK picks. The table gives, per CPU model, the share of output values equal to the x86 run's and
within 1 LSB of it, the largest difference, and the PSNR difference (on the Y channel of the crops' SR) against
the file's Keras fake-quant reference when --run-dir gives the run it was exported from (the parity gate of
`convert --int8`, |ΔPSNR| ≤ 0.02 dB), else against the x86 run. Where a CPU model's output differs, the ops
that compute differently on the same inputs are listed; --count adds the aarch64 instructions of one invoke.
qemu 7.2's `max` announces SME, whose emulation there puts XNNPACK's SME kernels' values in the wrong places:
under it, check i8mm CPUs with `max,sme=off` (docs/arm64.md).

Needs qemu-user; the aarch64 Python (Debian 12's python3.11 packages, the host's ai-edge-litert and numpy as
aarch64 wheels) is built into the edge_sr cache on first use, with apt-get and pip (network), or read from
$EDGE_SR_ARM64_ROOT. Emulation is slow: the crops are small (--crop LR pixels, --images of them).
"""

import argparse
import sys
from pathlib import Path

from edge_sr.atomic import write_json
from edge_sr.bench.arm64 import CPUS, armcheck
from edge_sr.bench.arm64_root import ensure_arm64_root, qemu
from edge_sr.errors import EdgeSRError, run_cli
from edge_sr.tables import format_table


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m edge_sr.armcheck", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="*", type=Path, metavar="MODEL.tflite", help="exported files to check")
    parser.add_argument("--dataset", help="benchmark folder whose images give the crops")
    parser.add_argument("--scale", type=int, help="upscaling factor")
    parser.add_argument("--cpus", nargs="+", default=list(CPUS), help=f"qemu CPU models (default: {' '.join(CPUS)})")
    parser.add_argument(
        "--run-dir", nargs="+", type=Path, metavar="RUN", help="the run each file was exported from, in order: "
        "ΔPSNR against its Keras reference (default: against the x86 run)"
    )  # fmt: skip
    parser.add_argument("--crop", type=int, default=32, help="LR crop size (default 32; a fixed-tile file: its tile)")
    parser.add_argument("--images", type=int, default=3, help="images of the folder to crop (default 3)")
    parser.add_argument(
        "--count", action="store_true", help="also count the aarch64 instructions of one invoke on the last crop "
        "(a qemu plugin built with the host's C compiler; deterministic, a count and not a time)"
    )  # fmt: skip
    parser.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    parser.add_argument(
        "--setup", action="store_true", help="build the aarch64 Python if needed (and stop there without files)"
    )
    args = parser.parse_args(argv)
    if not args.setup and not (args.models and args.dataset and args.scale):
        parser.error("give MODEL.tflite files, --dataset and --scale (or --setup)")
    if args.run_dir and len(args.run_dir) != len(args.models):
        parser.error(f"--run-dir takes one run per file: {len(args.models)} files, {len(args.run_dir)} runs")
    if args.crop < 4 or args.images < 1:
        parser.error("--crop must be at least 4 and --images at least 1")
    return args


def format_result(result):
    counted = any(row["instructions"] is not None for row in result["rows"])
    rows = [
        (
            row["cpu"],
            ", ".join(row["features"]) or "-",
            f"{row['delta_psnr']:+.4f}",
            f"{100 * row['equal']:.3f}",
            f"{100 * row['within_1_lsb']:.3f}",
            row["max_lsb"],
            *([f"{row['instructions'] / 1e6:,.1f}" if row["instructions"] is not None else "-"] if counted else []),
        )
        for row in result["rows"]
    ]
    headers = ["CPU", "features", f"ΔPSNR vs {result['reference']} (dB)", "% equal to x86", "% within 1 LSB",
               "max |Δ| (LSB)", *(["M instructions / invoke"] if counted else [])]  # fmt: skip
    title = f"{result['file']}: {result['crops']}; host {result['host']}; {result['emulator']}"
    lines = [title, format_table(headers, rows)]
    for row in result["rows"]:
        for op in row["ops"]:
            lines.append(
                f"{row['cpu']}: {op['op']} {op['tensor']} computes differently from x86 on the same inputs: "
                f"{100 * op['differ']:.3f} % of its values, by up to {op['max']:g}{op['unit']}"
            )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.setup:
        qemu()
        print(f"aarch64 Python: {ensure_arm64_root()}")
        if not args.models:
            return
    for path in args.models:
        if not path.is_file():
            raise EdgeSRError(f"model file not found: {path}")
    results = []
    for index, path in enumerate(args.models):
        run_dir = args.run_dir[index] if args.run_dir else None
        result = armcheck(path, args.dataset, args.scale, args.cpus, run_dir, (args.crop, args.crop), args.images,
                          args.count, report=lambda line: print(line, file=sys.stderr, flush=True))  # fmt: skip
        print(format_result(result))
        results.append(result)
    if args.json:
        write_json(args.json, {"results": results})


if __name__ == "__main__":
    run_cli(main)
