"""`python -m edge_sr.benchmark`: measured speed, printed as tables (and JSON with --json).

keras   parameters and FP Keras throughput (LR pixels per second) of model presets
tflite  latency and peak memory of exported .tflite files in LiteRT, compared in one run
qat     ODM vs min/max quantization-aware training, the ODM paper's ablations and PAMS (PSNR, step time)
ptq     2DQuant vs the PTQ baselines and TFLite's own int8 PTQ (PSNR, calibration time)

    python -m edge_sr.benchmark tflite rdn_fp32.tflite rdn_int8.tflite --baseline rdn_fp32.tflite --size 128

tflite times every model in alternating rounds (each round runs each model once, in turn, the order reversed
every other round) so that the machine's drifts and bursts hit all models alike; a ratio to the baseline is the
median of the per-round ratios. Peak memory is the RSS high-water mark of a fresh process that loads the model
and upscales one image; "model MiB" subtracts what that process held before loading the model.
An op-level profile is not available yet.
"""

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from edge_sr.atomic import write_json
from edge_sr.benchmarking import keras_throughput, summarize
from edge_sr.errors import EdgeSRError, run_cli
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
        params = model.count_params()
        timing = keras_throughput(model, args.size, args.runs)
        results.append({"preset": name, "scale": args.scale, "params": params, **timing})
        rows.append(
            (
                name,
                f"x{args.scale}",
                f"{params / 1e6:.2f}M",
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


def parse_size(text):
    """LR size "N" (N×N) or "WxH" → (height, width)."""
    width, _, height = text.lower().partition("x")
    try:
        width, height = int(width), int(height or width)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not N or WxH (e.g. 128 or 1920x1080)") from None
    if min(width, height) < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} must be positive")
    return height, width


def _lr_image(size):
    return np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)


def _status_mib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:")) / 1024  # kB


def peak_memory(path, size, threads, xnnpack, tile, scale):
    """Run in a fresh process: (MiB resident before loading the model, peak MiB while loading it and upscaling
    one image of `size`). Linux only (/proc); (None, None) elsewhere."""
    from edge_sr.runtime import TFLiteModel, upscale

    image = _lr_image(size)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # restart the high-water mark here, after the imports
        before = _status_mib("VmRSS")
    except OSError:
        return None, None
    model = TFLiteModel(path, threads, xnnpack, scale)
    upscale(model, image, None if model.input_size else tile)
    return before, _status_mib("VmHWM")


def time_alternating(calls, runs, warmup):
    """Seconds per call of each of `calls` over `runs` rounds, after `warmup` untimed rounds; each round calls
    every function once, in turn, alternating the order."""
    times = [[] for _ in calls]
    for round_index in range(warmup + runs):
        order = list(enumerate(calls))
        for i, call in order[:: -1 if round_index % 2 else 1]:
            start = time.perf_counter()
            call()
            if round_index >= warmup:
                times[i].append(time.perf_counter() - start)
    return times


def benchmark_tflite(args):
    from edge_sr.runtime import TFLiteModel, upscale

    if args.runs < 1 or args.warmup < 0:
        raise EdgeSRError("--runs must be at least 1 and --warmup at least 0")
    paths = {}  # one entry per file, however it is spelled; the baseline is measured like the others
    for path in [*args.models, *([args.baseline] if args.baseline else [])]:
        paths.setdefault(Path(path).resolve(), path)
    baseline = Path(args.baseline).resolve() if args.baseline else None
    settings = {"on": [True], "off": [False], "both": [True, False]}[args.xnnpack]
    variants = [
        {"model": path, "xnnpack": xnnpack, "size": size}
        for size in args.size
        for path in paths.values()
        for xnnpack in settings
    ]
    calls = []
    for variant in variants:
        model = TFLiteModel(variant["model"], args.threads, variant["xnnpack"], args.scale)
        image = _lr_image(variant["size"])
        tile = None if model.input_size else args.tile  # fixed-tile models always run in their own tiles
        calls.append(lambda model=model, image=image, tile=tile: upscale(model, image, tile))
    times = time_alternating(calls, args.runs, args.warmup)
    times_of = {(Path(v["model"]).resolve(), v["xnnpack"], v["size"]): t for v, t in zip(variants, times, strict=True)}

    spawn = multiprocessing.get_context("spawn")  # a fresh process per model: its own high-water mark
    rows, results = [], []
    for variant, variant_times in zip(variants, times, strict=True):
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            before, peak = pool.submit(
                peak_memory, variant["model"], variant["size"], args.threads, variant["xnnpack"], args.tile, args.scale
            ).result()
        ratio = None
        if baseline is not None:  # paired: the median of per-round ratios
            baseline_times = times_of[baseline, variant["xnnpack"], variant["size"]]
            ratio = float(np.median(np.divide(variant_times, baseline_times)))
        result = {
            **variant,
            "size": list(variant["size"]),
            "file_bytes": Path(variant["model"]).stat().st_size,
            **summarize(variant_times),
            "ratio_to_baseline": ratio,
            "peak_rss_mib": peak,
            "model_rss_mib": None if peak is None else peak - before,
        }
        results.append(result)
        height, width = variant["size"]
        rows.append(
            (
                variant["model"],
                "on" if variant["xnnpack"] else "off",
                f"{width}×{height}",
                f"{result['median_s'] * 1e3:.1f}",
                f"{result['p90_s'] * 1e3:.1f}",
                "-" if ratio is None else f"{ratio:.3f}",
                "-" if peak is None else f"{peak:.0f}",
                "-" if peak is None else f"{peak - before:.0f}",
                f"{result['file_bytes'] / 1e6:.2f}",
            )
        )
    tiles = f"tiles of {args.tile}" if args.tile else "whole images (fixed-tile models: their tile)"
    print(
        f"LiteRT, {args.threads} threads, {tiles}, median and p90 of {args.runs} alternating rounds after "
        f"{args.warmup}; {machine_description()}"
    )
    headers = ["model", "XNNPACK", "LR size", "median ms", "p90 ms", "× baseline", "peak MiB", "model MiB", "MB"]
    print(format_table(headers, rows))
    return results


def qat_step_times(fp_model, args, bits):
    """Seconds per train step of each variant, timed side by side: each round runs 4 steps (a whole period of
    ODM's refresh: one step with both gradients, three with one) of every variant's trainer in turn, alternating
    the order, so the machine's load hits all alike; the median round over 4 is the step time."""
    from edge_sr.data import PatchSampler
    from edge_sr.training import DEFAULT_SIMILARITY_EVERY, variant_trainers

    sampler = PatchSampler(args.train, args.scale, args.patch, args.batch_size, progress=False)
    trainers = variant_trainers(fp_model, sampler, args.variants, bits, batch_size=args.batch_size,
                                hr_patch=args.patch, learning_rate=args.lr)  # fmt: skip
    batches = [sampler.batch(i) for i in range(DEFAULT_SIMILARITY_EVERY)]
    calls = [lambda t=t: [t.train_step(lr, hr) for lr, hr in batches] for t in trainers.values()]
    times = time_alternating(calls, args.timing_rounds, warmup=1)
    return {v: float(np.median(t)) / len(batches) for v, t in zip(trainers, times, strict=True)}


def benchmark_qat(args):
    from edge_sr.evaluation import evaluate_dataset
    from edge_sr.sources import load_source_model
    from edge_sr.training import compare_variants
    from edge_sr.upscalers import KerasUpscaler

    if args.timing_rounds < 1:
        raise EdgeSRError("--timing-rounds must be at least 1")
    fp_model = load_source_model(args.model, args.scale)
    fp = KerasUpscaler(fp_model, args.model, args.scale)
    fp_scores = {Path(s).name: evaluate_dataset(fp, s, args.scale, show_progress=False)["psnr"] for s in args.eval}
    rows = compare_variants(
        args.model, args.scale, args.train, args.val, args.eval, args.bits, args.variants, args.steps, args.out,
        batch_size=args.batch_size, hr_patch=args.patch, learning_rate=args.lr,
    )  # fmt: skip
    step_times = {bits: qat_step_times(fp_model, args, bits) for bits in args.bits}
    for row in rows:
        row["step_s"] = step_times[row["bits"]][row["variant"]]
    sets = list(fp_scores)
    table = [("FP32", "-", *(f"{fp_scores[n]:.2f}" for n in sets), "-", "-")]
    for row in rows:
        baseline = step_times[row["bits"]].get("minmax")
        ratio = f"{row['step_s'] / baseline:.2f}" if baseline else "-"
        table.append(
            (f"W{row['bits']}A{row['bits']}", row["variant"], *(f"{row['psnr'][n]:.2f}" for n in sets),
             f"{row['step_s']:.3f}", ratio)
        )  # fmt: skip
    print(
        f"{args.model} ×{args.scale}, {args.steps} steps, batch {args.batch_size}, HR patch {args.patch}, "
        f"lr {args.lr}; step times: median of {args.timing_rounds} alternating rounds; {machine_description()}"
    )
    print(format_table(["bits", "variant", *(f"{n} PSNR" for n in sets), "s / step", "vs minmax"], table))
    return {"fp": fp_scores, "runs": rows}


def benchmark_ptq(args):
    from dataclasses import asdict

    from edge_sr.calibration import CalibrationConfig, run_calibration
    from edge_sr.data import PatchSampler
    from edge_sr.evaluation import evaluate_dataset
    from edge_sr.export import FIXED_TILE_ARCHS, build_metadata, default_ptq_tflite, write_tflite
    from edge_sr.sources import load_source_model
    from edge_sr.upscalers import KerasUpscaler, TFLiteUpscaler
    from models_tf import model_config

    def scores(upscaler):
        return {Path(s).name: evaluate_dataset(upscaler, s, args.scale, show_progress=False)["psnr"] for s in args.eval}

    fp_model = load_source_model(args.model, args.scale)
    rows = [{"bits": 32, "method": "FP32", "weights": "-", "psnr": scores(KerasUpscaler(fp_model, "fp", args.scale))}]
    # TFLite's own int8 PTQ, its representative dataset the LR patches the calibrations start from.
    sampler = PatchSampler(args.calibration, args.scale, args.patch * args.scale, 32, progress=False)
    started = time.perf_counter()
    config = model_config(fp_model)
    tile = args.patch if config["arch"] in FIXED_TILE_ARCHS else None
    content = default_ptq_tflite(fp_model, sampler.batch(0, stream=1)[0], tile=tile)
    path = Path(args.out) / "tflite-default-ptq.tflite"
    metadata = build_metadata(config, "int8", {"weights": 8, "activations": 8}, "uint8", tile=tile,
                              method="tflite-default-ptq", source=args.model)  # fmt: skip
    write_tflite(path, content, metadata)
    seconds = time.perf_counter() - started
    tflite_scores = scores(TFLiteUpscaler(path, args.scale))
    rows.append({"bits": 8, "method": "TFLite PTQ", "weights": "per-channel", "psnr": tflite_scores, "s": seconds})
    configs = [
        (bits, method, per_channel)
        for bits in args.bits
        for per_channel, methods in ((False, args.methods), (True, args.per_channel_methods))
        for method in methods
    ]
    for bits, method, per_channel in progress(configs, desc="calibrations"):
        config = CalibrationConfig(method=method, bits=bits, per_channel=per_channel, iterations=args.iterations,
                                   batch_size=args.batch_size, lr_patch=args.patch)  # fmt: skip
        run = {
            "kind": "calibrate",
            "model": args.model,
            "scale": args.scale,
            "calibrate": asdict(config),
            "data": {"calibration": args.calibration, "val": args.val, "calibration_batches": 1},
        }
        run_dir = Path(args.out) / f"w{bits}a{bits}-{method}{'-pc' if per_channel else ''}"
        done = run_dir / "benchmark_row.json"  # a rerun of the benchmark reuses the rows it already measured
        if done.is_file() and json.loads(done.read_text())["calibrate"] == asdict(config.resolved()):
            rows.append(json.loads(done.read_text())["row"])
            continue
        shutil.rmtree(run_dir, ignore_errors=True)
        started = time.perf_counter()
        result = run_calibration(run, run_dir, validate_every=args.iterations, checkpoint_every=args.iterations)
        seconds = time.perf_counter() - started
        weights = "per-channel" if per_channel else "per-tensor"
        upscaler = KerasUpscaler(result["model"], method, args.scale)
        rows.append({"bits": bits, "method": method, "weights": weights, "psnr": scores(upscaler), "s": seconds})
        write_json(done, {"calibrate": asdict(config.resolved()), "row": rows[-1]})
    sets = list(rows[0]["psnr"])
    table = [
        (f"W{r['bits']}A{r['bits']}" if r["bits"] < 32 else "FP32", r["method"], r["weights"],
         *(f"{r['psnr'][n]:.2f}" for n in sets), f"{r['s']:.0f}" if "s" in r else "-")
        for r in rows
    ]  # fmt: skip
    print(
        f"{args.model} ×{args.scale}, calibrated on {', '.join(args.calibration)}, LR patches {args.patch}×"
        f"{args.patch}: stage 1 on one batch of 32, DQC {args.iterations} steps of batch {args.batch_size}; "
        f"{machine_description()}"
    )
    print(format_table(["bits", "method", "weights", *(f"{n} PSNR" for n in sets), "calibration s"], table))
    return rows


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
    tflite = commands.add_parser("tflite", help="latency and peak memory of .tflite files in LiteRT")
    tflite.add_argument("models", nargs="+", help=".tflite files exported by python -m edge_sr.convert")
    tflite.add_argument("--baseline", help="the .tflite file the others are compared with (measured in the same run)")
    tflite.add_argument(
        "--size", nargs="+", type=parse_size, default=[(128, 128)], help="LR sizes: N or WxH (default 128)"
    )
    tflite.add_argument(
        "--tile", type=int, help="upscale in tiles of N×N (default: whole image; fixed-tile models use their own)"
    )
    tflite.add_argument("--threads", type=int, default=2)
    tflite.add_argument("--xnnpack", choices=("on", "off", "both"), default="on")
    tflite.add_argument("--runs", type=int, default=10, help="timed rounds (default 10)")
    tflite.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    tflite.add_argument("--scale", type=int, help="the scale, for .tflite files without their metadata file")
    tflite.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    from edge_sr.training import VARIANTS

    qat = commands.add_parser("qat", help="ODM vs min/max QAT and the paper's ablations, same data and steps")
    qat.add_argument("--model", default="zoo:isr-rdn-psnr-small-x2", help="FP model (default: the zoo RDN x2)")
    qat.add_argument("--scale", type=int, default=2)
    qat.add_argument("--train", nargs="+", required=True, metavar="FOLDER", help="HR training folders")
    qat.add_argument("--val", required=True, help="validation folder (picks each run's best weights)")
    qat.add_argument("--eval", nargs="+", required=True, metavar="FOLDER", help="benchmark folders to score")
    qat.add_argument("--bits", nargs="+", type=int, default=[4, 2])
    qat.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"of: {', '.join(VARIANTS)}")
    qat.add_argument("--steps", type=int, default=100)
    qat.add_argument("--batch-size", type=int, default=4)
    qat.add_argument("--patch", type=int, default=64, help="HR patch (default 64)")
    qat.add_argument("--lr", type=float, default=1e-4)
    qat.add_argument("--timing-rounds", type=int, default=5, help="alternating rounds timing the steps (default 5)")
    qat.add_argument("--out", required=True, help="folder for the run directories")
    qat.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    from edge_sr.calibration import METHODS as PTQ_METHODS

    ptq = commands.add_parser("ptq", help="2DQuant vs PTQ baselines and TFLite's own int8 PTQ, same calibration data")
    ptq.add_argument("--model", default="zoo:isr-rdn-psnr-small-x2", help="FP model (default: the zoo RDN x2)")
    ptq.add_argument("--scale", type=int, default=2)
    ptq.add_argument("--calibration", nargs="+", required=True, metavar="FOLDER", help="calibration image folders")
    ptq.add_argument("--val", required=True, help="validation folder (picks each DQC run's best bounds)")
    ptq.add_argument("--eval", nargs="+", required=True, metavar="FOLDER", help="benchmark folders to score")
    ptq.add_argument("--bits", nargs="+", type=int, default=[8, 4, 3, 2])
    ptq.add_argument("--methods", nargs="+", default=list(PTQ_METHODS), help=f"of: {', '.join(PTQ_METHODS)}")
    ptq.add_argument("--per-channel-methods", nargs="*", default=["dobi", "2dquant"], help="also run per-channel")
    ptq.add_argument("--iterations", type=int, default=3000, help="DQC steps (default: the paper's 3000)")
    ptq.add_argument("--batch-size", type=int, default=32, help="DQC batch (default: the paper's 32)")
    ptq.add_argument("--patch", type=int, default=64, help="DQC LR patch (default 64)")
    ptq.add_argument("--out", required=True, help="folder for the run directories and the TFLite file")
    ptq.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    results = {"keras": benchmark_keras, "qat": benchmark_qat, "ptq": benchmark_ptq, "tflite": benchmark_tflite}[
        args.command
    ](args)
    if args.json:
        write_json(args.json, {"machine": machine_description(), "results": results})


if __name__ == "__main__":
    run_cli(main)
