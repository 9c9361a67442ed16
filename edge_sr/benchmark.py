"""`python -m edge_sr.benchmark`: measured speed, printed as tables (and JSON with --json).

keras   parameters and FP Keras throughput (LR pixels per second) of model presets
"""

import argparse
import os
import platform

from edge_sr.atomic import write_json
from edge_sr.benchmarking import keras_throughput
from edge_sr.errors import run_cli
from edge_sr.progress import progress
from edge_sr.tables import format_table


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def benchmark_keras(args):
    import tensorflow as tf

    from models_tf import build_preset, preset_names

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    presets = args.presets or preset_names()
    rows, results = [], []
    for name in progress(presets, desc="presets"):
        model = build_preset(name, scale=args.scale)
        timing = keras_throughput(model, args.size, args.runs)
        results.append({"preset": name, "scale": args.scale, "params": model.count_params(), **timing})
        rows.append(
            (
                name,
                f"x{args.scale}",
                f"{model.count_params() / 1e6:.2f}M",
                f"{timing['median_s'] * 1e3:.0f}",
                f"{timing['lr_pixels_per_s']:,.0f}",
            )
        )
    print(
        f"FP32 Keras, {args.size}×{args.size} LR, {args.threads} threads, median of {args.runs}; "
        f"{machine_description()}"
    )
    print(format_table(["preset", "scale", "params", "ms / image", "LR px / s"], rows))
    return results


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m edge_sr.benchmark", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    keras = commands.add_parser("keras", help="parameters and FP throughput of Keras presets")
    keras.add_argument("--presets", nargs="+", help="presets to measure (default: all)")
    keras.add_argument("--scale", type=int, default=2)
    keras.add_argument("--size", type=int, default=64, help="LR height and width (default 64)")
    keras.add_argument("--runs", type=int, default=5)
    keras.add_argument("--threads", type=int, default=2)
    keras.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    results = benchmark_keras(args)
    if args.json:
        write_json(args.json, {"machine": machine_description(), "results": results})


if __name__ == "__main__":
    run_cli(main)
