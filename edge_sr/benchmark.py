"""`python -m edge_sr.benchmark`: measured speed, printed as tables (and JSON with --json).

keras   parameters and FP Keras throughput (LR pixels per second) of model presets
tflite  latency and peak memory of exported .tflite files in LiteRT, compared in one run
int8    int8 against fp32 of one model beside XNNPACK's own conv kernels; op profile, tiled peak memory
qat     ODM vs min/max quantization-aware training, the ODM paper's ablations and PAMS (PSNR, step time), per
        placement (paper, integer)
ptq     2DQuant vs the PTQ baselines and TFLite's own int8 PTQ (PSNR, calibration time)
onnx    one PyTorch EDSR to int8 TFLite two ways: onnx2tf (ONNX) and edge_sr (DOBI/2DQuant W8A8), PSNR and latency
budget  where a run's int8 file loses PSNR: the run, its integer completion, and the error of each tensor alone
curve   int8 file PSNR against CPU training time: ODM per bit-width and placement in segments, 2DQuant beside
peers   the tools users pick instead (TFLite PTQ, litert-quantizer, litert-torch) beside edge_sr's int8 file: PSNR,
        time against fp32, ops XNNPACK leaves out (the extra: requirements-peers.txt)

    python -m edge_sr.benchmark tflite rdn_fp32.tflite rdn_int8.tflite --baseline rdn_fp32.tflite --size 128

tflite times every model in alternating rounds (each round runs each model once, in turn, the order reversed
every other round) so that the machine's drifts and bursts hit all models alike; a ratio to the baseline is the
median of the per-round ratios. Peak memory is the RSS high-water mark of a fresh process that loads the model
and upscales one image; "model MiB" subtracts what that process held before loading the model.
"""

import argparse
import json
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from edge_sr.atomic import atomic_write, write_json
from edge_sr.errors import EdgeSRError, run_cli
from edge_sr.progress import progress
from edge_sr.runtime.timing import keras_throughput, summarize
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
    from edge_sr.runtime.litert import TFLiteModel
    from edge_sr.runtime.tiling import upscale

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
    from edge_sr.runtime.litert import TFLiteModel
    from edge_sr.runtime.tiling import upscale

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


def conv_stack_files(width, depth, folder):
    """XNNPACK's kernel reference for a CNN: `depth` 3×3 convs of `width` channels with ReLU between (3 channels
    in and out), written to `folder` as fp32 and as int8 (TFLite's own PTQ, uint8 I/O): {"fp32": path, "int8": path}.
    Its int8/fp32 time is what the conv kernels alone give on this CPU."""
    import tf_keras as keras

    from edge_sr.export.tflite import default_ptq_tflite, float_tflite
    from edge_sr.runtime.metadata import build_metadata, write_tflite

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = inputs
    for k in range(depth):
        last = k == depth - 1
        x = keras.layers.Conv2D(3 if last else width, 3, padding="same", activation=None if last else "relu",
                                kernel_initializer="he_normal")(x)  # fmt: skip
    model = keras.Model(inputs, x)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    config = {"arch": f"{depth}×conv3x3-{width}", "scale": 1}
    paths = {}
    for precision, content, bits, io in (
        ("fp32", float_tflite(model), 32, "float32"),
        ("int8", default_ptq_tflite(model, images), 8, "uint8"),
    ):
        paths[precision] = Path(folder) / f"conv-stack-{precision}.tflite"
        metadata = build_metadata(config, precision, {"weights": bits, "activations": bits}, io, source="benchmark")
        write_tflite(paths[precision], content, metadata)
    return paths


def profile_by_op(profile):
    """{(op, delegated): [count, seconds]} of an op_profile."""
    totals = {}
    for entry in profile:
        total = totals.setdefault((entry["op"], entry["delegated"]), [0, 0.0])
        total[0] += 1
        total[1] += entry["median_s"]
    return totals


def benchmark_int8(args):
    """int8 against fp32 of one model, beside a stack of 3×3 convs of the model's width and depth: XNNPACK's own
    int8/fp32 on this CPU, which a graph that adds no overhead matches."""
    import tempfile
    from collections import Counter

    from edge_sr.runtime.litert import TFLiteModel, conv_filters
    from edge_sr.runtime.tiling import upscale

    if args.runs < 1 or args.warmup < 0:
        raise EdgeSRError("--runs must be at least 1 and --warmup at least 0")
    models = {"model fp32": args.fp32_model, "model int8": args.int8_model}
    scale = TFLiteModel(args.fp32_model).scale
    if TFLiteModel(args.int8_model).scale != scale:
        raise EdgeSRError(f"{args.fp32_model} and {args.int8_model} upscale by different factors: not one model")
    filters = conv_filters(args.fp32_model)
    if not filters:
        raise EdgeSRError(f"{args.fp32_model} has no CONV_2D: the conv-stack reference is for CNNs")
    width, depth = Counter(shape[0] for shape in filters).most_common(1)[0][0], len(filters)
    with tempfile.TemporaryDirectory() as folder:
        stack = conv_stack_files(width, depth, folder)
        files = {**models, "conv stack fp32": stack["fp32"], "conv stack int8": stack["int8"]}
        image = _lr_image(args.size)
        calls = []
        for path in files.values():
            model = TFLiteModel(path, args.threads)
            calls.append(lambda model=model: upscale(model, image))
        times = dict(zip(files, time_alternating(calls, args.runs, args.warmup), strict=True))
        sizes = {name: Path(path).stat().st_size for name, path in files.items()}
    ratios = {  # paired: the median of the per-round ratios
        what: float(np.median(np.divide(times[f"{what} int8"], times[f"{what} fp32"])))
        for what in ("model", "conv stack")
    }
    results = {
        "size": list(args.size),
        "threads": args.threads,
        "conv_stack": {"width": width, "depth": depth},
        "files": {
            name: {"path": str(path), "bytes": sizes[name], **summarize(times[name])} for name, path in files.items()
        },
        "int8_over_fp32": ratios,
        "gap": ratios["model"] - ratios["conv stack"],
    }
    height, width_px = args.size
    print(
        f"LiteRT + XNNPACK, {args.threads} threads, {width_px}×{height} LR, median and p90 of {args.runs} alternating "
        f"rounds after {args.warmup}; conv stack: {depth} 3×3 convs of {width} channels; {machine_description()}"
    )
    rows = [
        (name, Path(files[name]).name if name in models else "-", f"{1e3 * np.median(times[name]):.1f}",
         f"{1e3 * np.percentile(times[name], 90):.1f}", f"{sizes[name] / 1e6:.2f}")
        for name in files
    ]  # fmt: skip
    print(format_table(["", "file", "median ms", "p90 ms", "MB"], rows))
    print(
        f"int8 / fp32, median of the per-round ratios: model {ratios['model']:.3f}, conv stack "
        f"{ratios['conv stack']:.3f} (gap {results['gap']:+.3f})"
    )
    if args.profile:
        results["op_profile"] = print_op_profiles(models, args.size, args.threads, args.profile_runs)
    if args.memory:
        results["memory"] = print_tiled_memory(models, args.memory, args.tile, args.threads, scale)
    return results


def print_op_profiles(models, size, threads, runs):
    """Profile every op of each file ({label: path}), print the time per op type side by side; the profiles."""
    from edge_sr.runtime.litert import op_profile

    profiles = {
        name: op_profile(path, size, threads, runs=runs)
        for name, path in progress(list(models.items()), desc="op profiles")
    }
    totals = {name: profile_by_op(profile) for name, profile in profiles.items()}
    last = list(models)[-1]  # sorted by, and shares of, the last file's time
    keys = sorted({key for by_op in totals.values() for key in by_op}, key=lambda k: -totals[last].get(k, (0, 0))[1])
    sums = {name: sum(seconds for _, seconds in by_op.values()) for name, by_op in totals.items()}
    rows = []
    for key in keys:
        cells = []
        for name in models:
            count, seconds = totals[name].get(key, (0, 0.0))
            cells += [count or "-", f"{1e3 * seconds:.2f}" if count else "-"]
        share = totals[last].get(key, (0, 0.0))[1] / sums[last]
        rows.append((key[0], "XNNPACK" if key[1] else "builtin", *cells, f"{100 * share:.1f}"))
    rows.append(("all ops", "", *(cell for name in models for cell in ("", f"{1e3 * sums[name]:.1f}")), "100.0"))
    headers = ["op", "runs on", *(f"{name} {what}" for name in models for what in ("ops", "ms")), f"{last} %"]
    print(f"op profile: each op alone, median of {runs} runs")
    print(format_table(headers, rows))
    return profiles


def print_tiled_memory(models, size, tiles, threads, scale):
    """Peak memory of upscaling one `size` image in each of `tiles`, per file, each in a fresh process."""
    spawn = multiprocessing.get_context("spawn")  # a fresh process per measurement: its own high-water mark
    memory, rows = [], []
    for name, path in models.items():
        for tile in tiles:
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                before, peak = pool.submit(peak_memory, path, size, threads, True, tile, None).result()
            memory.append({"model": str(path), "tile": tile, "peak_rss_mib": peak, "before_rss_mib": before})
            rows.append((name, tile, *(("-", "-") if peak is None else (f"{peak:.0f}", f"{peak - before:.0f}"))))
    print(f"peak memory of upscaling one {size[1]}×{size[0]} image ×{scale} in tiles:")
    print(format_table(["", "LR tile", "peak MiB", "model MiB"], rows))
    return memory


def qat_step_times(fp_model, args, bits):
    """Seconds per train step of each variant, timed side by side: each round runs 4 steps (a whole period of
    ODM's refresh: one step with both gradients, three with one) of every variant's trainer in turn, alternating
    the order, so the machine's load hits all alike; the median round over 4 is the step time."""
    from edge_sr.data import PatchSampler
    from edge_sr.training import DEFAULT_SIMILARITY_EVERY, variant_trainers

    sampler = PatchSampler(args.train, args.scale, args.patch, args.batch_size, progress=False)
    trainers = variant_trainers(fp_model, sampler, args.variants, bits, args.placements, batch_size=args.batch_size,
                                hr_patch=args.patch, learning_rate=args.lr, weight_grid=args.weight_grid)  # fmt: skip
    batches = [sampler.batch(i) for i in range(DEFAULT_SIMILARITY_EVERY)]
    calls = [lambda t=t: [t.train_step(lr, hr) for lr, hr in batches] for t in trainers.values()]
    times = time_alternating(calls, args.timing_rounds, warmup=1)
    return {v: float(np.median(t)) / len(batches) for v, t in zip(trainers, times, strict=True)}


def benchmark_qat(args):
    from edge_sr.models.sources import load_source_model
    from edge_sr.runtime.evaluation import evaluate_dataset
    from edge_sr.runtime.upscalers import KerasUpscaler
    from edge_sr.training import compare_variants

    if args.timing_rounds < 1:
        raise EdgeSRError("--timing-rounds must be at least 1")
    fp_model = load_source_model(args.model, args.scale)
    fp = KerasUpscaler(fp_model, args.model, args.scale)
    fp_scores = {Path(s).name: evaluate_dataset(fp, s, args.scale, show_progress=False)["psnr"] for s in args.eval}
    rows = compare_variants(
        args.model, args.scale, args.train, args.val, args.eval, args.bits, args.variants, args.steps, args.out,
        args.placements, batch_size=args.batch_size, hr_patch=args.patch, learning_rate=args.lr,
        weight_grid=args.weight_grid,
    )  # fmt: skip
    step_times = {bits: qat_step_times(fp_model, args, bits) for bits in args.bits}
    for row in rows:
        row["step_s"] = step_times[row["bits"]][row["variant"], row["placement"]]
    sets = list(fp_scores)
    table = [("FP32", "-", "-", "-", *(f"{fp_scores[n]:.2f}" for n in sets), "-", "-")]
    for row in rows:
        baseline = step_times[row["bits"]].get(("minmax", "paper"))
        ratio = f"{row['step_s'] / baseline:.2f}" if baseline else "-"
        table.append(
            (f"W{row['bits']}A{row['bits']}", row["variant"], row["placement"], row["weight_grid"],
             *(f"{row['psnr'][n]:.2f}" for n in sets), f"{row['step_s']:.3f}", ratio)
        )  # fmt: skip
    print(
        f"{args.model} ×{args.scale}, {args.steps} steps, batch {args.batch_size}, HR patch {args.patch}, "
        f"lr {args.lr}; step times: median of {args.timing_rounds} alternating rounds; {machine_description()}"
    )
    print(
        format_table(
            ["bits", "variant", "placement", "weight grid", *(f"{n} PSNR" for n in sets), "s / step", "vs minmax"],
            table,
        )
    )
    return {"fp": fp_scores, "runs": rows}


def benchmark_ptq(args):
    from dataclasses import asdict

    from edge_sr.calibration import CalibrationConfig, run_calibration
    from edge_sr.data import PatchSampler
    from edge_sr.export.tflite import FIXED_TILE_ARCHS, export_default_ptq
    from edge_sr.models.rundir import clear_run_dir
    from edge_sr.models.sources import load_source_model
    from edge_sr.runtime.evaluation import evaluate_dataset
    from edge_sr.runtime.upscalers import KerasUpscaler, TFLiteUpscaler
    from models_tf import model_config

    def scores(upscaler):
        return {Path(s).name: evaluate_dataset(upscaler, s, args.scale, show_progress=False)["psnr"] for s in args.eval}

    fp_model = load_source_model(args.model, args.scale)
    rows = [{"bits": 32, "method": "FP32", "weights": "-", "psnr": scores(KerasUpscaler(fp_model, "fp", args.scale))}]
    # TFLite's own int8 PTQ, its representative dataset the LR patches the calibrations start from.
    sampler = PatchSampler(args.calibration, args.scale, args.patch * args.scale, 32, progress=False)
    started = time.perf_counter()
    tile = args.patch if model_config(fp_model)["arch"] in FIXED_TILE_ARCHS else None
    path = Path(args.out) / "tflite-default-ptq.tflite"
    export_default_ptq(fp_model, sampler.batch(0, stream=1)[0], path, tile=tile, source=args.model)
    seconds = time.perf_counter() - started
    tflite_scores = scores(TFLiteUpscaler(path, args.scale))
    rows.append({"bits": 8, "method": "TFLite PTQ", "weights": "per-channel", "psnr": tflite_scores, "s": seconds})
    configs = [
        (bits, method, per_channel, term)
        for bits in args.bits
        for per_channel, methods in ((False, args.methods), (True, args.per_channel_methods))
        for method in methods
        for term in (args.feature_terms if method == "2dquant" else ["paper"])
    ]
    for bits, method, per_channel, term in progress(configs, desc="calibrations"):
        config = CalibrationConfig(method=method, bits=bits, per_channel=per_channel, iterations=args.iterations,
                                   batch_size=args.batch_size, lr_patch=args.patch, feature_term=term,
                                   weight_grid=args.weight_grid)  # fmt: skip
        if method == "2dquant" and term != "paper":
            method = f"2dquant/{term}"
        run = {
            "kind": "calibrate",
            "model": args.model,
            "scale": args.scale,
            "calibrate": asdict(config),
            "data": {"calibration": args.calibration, "val": args.val, "calibration_batches": 1},
        }
        grid = config.resolved().weight_grid
        run_dir = Path(args.out) / f"w{bits}a{bits}-{method.replace('/', '-')}{'-pc' if per_channel else ''}-{grid}"
        done = run_dir / "benchmark_row.json"  # a rerun of the benchmark reuses the rows it already measured
        if done.is_file() and json.loads(done.read_text())["calibrate"] == asdict(config.resolved()):
            rows.append(json.loads(done.read_text())["row"])
            continue
        clear_run_dir(run_dir)
        started = time.perf_counter()
        every = max(args.iterations, 1)  # stage-1 methods take no steps
        result = run_calibration(run, run_dir, validate_every=every, checkpoint_every=every)
        seconds = time.perf_counter() - started
        weights = f"{'per-channel' if per_channel else 'per-tensor'}, {grid}"
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


def benchmark_onnx(args):
    from dataclasses import asdict

    from converters.onnx import convert_onnx, require, torch_to_onnx

    torch = require("torch")  # before converters.torch_edsr, which needs it
    from converters.pytorch import model_from_checkpoint
    from converters.torch_edsr import EDSR, edsr_from_checkpoint
    from edge_sr.calibration import CalibrationConfig, run_calibration
    from edge_sr.data import open_benchmark, write_image
    from edge_sr.data.metrics import psnr
    from edge_sr.export.int8 import export_int8
    from edge_sr.models.rundir import clear_run_dir
    from edge_sr.runtime.litert import TFLiteModel
    from edge_sr.runtime.tiling import to_uint8, upscale
    from models_tf import save_model

    out = Path(args.out)
    if args.checkpoint:
        module = edsr_from_checkpoint(args.checkpoint)
        source = Path(args.checkpoint).name
    else:
        torch.manual_seed(args.seed)
        module = EDSR(args.scale, args.blocks, args.features).eval()
        source = f"EDSR {args.blocks}×{args.features}, random weights (seed {args.seed})"
    scale = module.scale
    onnx_path = torch_to_onnx(module, out / "edsr.onnx")
    # onnx2tf int8: the ONNX path, calibrated on the same images as edge_sr's.
    onnx2tf_path = out / "onnx2tf_int8.tflite"
    _, onnx_check = convert_onnx(onnx_path, onnx2tf_path, "int8", calibration=args.calibration, scale=scale,
                                 patches=args.patches, patch=args.patch)  # fmt: skip
    # edge_sr: the same weights into the Keras EDSR, W8A8 calibration, full-integer export.
    keras_path = out / "edsr.keras"
    save_model(model_from_checkpoint(module.state_dict()), keras_path)
    config = CalibrationConfig(
        method=args.method, bits=8, per_channel=True, iterations=args.iterations, batch_size=args.batch_size,
        init_batch_size=args.patches, lr_patch=args.patch,
    )  # fmt: skip
    run = {
        "kind": "calibrate",
        "model": str(keras_path),
        "scale": scale,
        "calibrate": asdict(config),
        "data": {"calibration": args.calibration, "val": args.val or args.calibration[0], "calibration_batches": 1},
    }
    run_dir = out / f"w8a8-{args.method}"
    clear_run_dir(run_dir)
    run_calibration(run, run_dir, validate_every=max(args.iterations, 1), checkpoint_every=max(args.iterations, 1))
    edge_sr_path = out / f"edge_sr_{args.method}_int8.tflite"
    export_int8(run_dir, edge_sr_path)

    files = {"onnx2tf int8": onnx2tf_path, f"edge_sr {args.method} W8A8": edge_sr_path}
    eval_folders = args.eval
    if not eval_folders:  # scikit-image's bundled photos, as a bare HR folder
        from skimage import data

        for name in ("astronaut", "chelsea", "coffee", "rocket"):
            write_image(out / "photos" / f"{name}.png", getattr(data, name)())
        eval_folders = [out / "photos"]
    models = {label: TFLiteModel(path, args.threads) for label, path in files.items()}
    scores = {label: {} for label in ["PyTorch FP32", *files]}
    for folder in eval_folders:
        rows = {label: [] for label in scores}
        for _, lr, hr in open_benchmark(folder, scale):
            with torch.no_grad():
                fp = to_uint8(module(torch.from_numpy(np.float32(lr)).permute(2, 0, 1)[None])[0].permute(1, 2, 0))
            rows["PyTorch FP32"].append((float("inf"), psnr(fp, hr, shave=scale)))
            for label, model in models.items():
                sr = upscale(model, lr)
                rows[label].append((psnr(sr, fp, shave=scale), psnr(sr, hr, shave=scale)))
        for label, values in rows.items():
            scores[label][Path(folder).name] = np.mean(values, axis=0).tolist()

    image = _lr_image(args.size)
    calls = [lambda model=model: upscale(model, image) for model in models.values()]
    times = dict(zip(files, time_alternating(calls, args.runs, args.warmup), strict=True))
    baseline = times[f"edge_sr {args.method} W8A8"]
    sets = [Path(folder).name for folder in eval_folders]
    table, results = [], []
    for label in scores:
        timing = summarize(times[label]) if label in times else None
        ratio = float(np.median(np.divide(times[label], baseline))) if label in times else None
        results.append({"model": label, "psnr": scores[label], **(timing or {}), "ratio_to_edge_sr": ratio})
        table.append(
            (
                label,
                *(f"{scores[label][n][0]:.2f}" if label in files else "-" for n in sets),
                *(f"{scores[label][n][1]:.2f}" for n in sets),
                "-" if timing is None else f"{timing['median_s'] * 1e3:.1f}",
                "-" if ratio is None else f"{ratio:.2f}",
            )
        )
    height, width = args.size
    print(
        f"{source}, ×{scale}; calibrated on {', '.join(args.calibration)} ({args.patches} LR patches of "
        f"{args.patch}×{args.patch}); onnx2tf's file against onnxruntime: {onnx_check['psnr']:.2f} dB. LiteRT "
        f"{args.threads} threads, {width}×{height} LR, median of {args.runs} alternating rounds; "
        f"{machine_description()}"
    )
    headers = ["model", *(f"{n} PSNR vs FP" for n in sets), *(f"{n} PSNR vs HR" for n in sets), "median ms",
               "× edge_sr"]  # fmt: skip
    print(format_table(headers, table))
    return {"source": source, "onnx2tf_vs_onnxruntime": onnx_check, "rows": results}


def benchmark_budget(args):
    import contextlib

    from edge_sr.export.int8 import deploy_calibration_batches, deployed_run
    from edge_sr.quant.budget import activation_sites, quantizing_only, tensor_errors
    from edge_sr.quant.quantizer import bypass_quantizers
    from edge_sr.runtime.evaluation import evaluate_dataset
    from edge_sr.runtime.upscalers import KerasUpscaler

    run, model, deployed = deployed_run(args.run_dir)  # what convert --int8 exports
    scale = run["scale"]
    # Other patches of the same images than the ones that set the 8-bit ranges.
    (patches,) = deploy_calibration_batches(run, scale, batch_size=args.patches, lr_patch=args.patch, stream=3)
    weights_only, everything, errors = tensor_errors(deployed, patches)

    def scores(model, mode):
        with mode:  # the quantizer mode holds while the upscaler traces the model
            upscaler = KerasUpscaler(model, "budget", scale, tile=args.tile)
            return {Path(f).name: evaluate_dataset(upscaler, f, scale, show_progress=False)["psnr"] for f in args.eval}

    top = errors[: args.top]
    chosen = {id(e.site.variables) for e in top}
    rest = [site for site in activation_sites(deployed) if id(site.variables) not in chosen]
    models = [
        ("FP", model, bypass_quantizers()),
        ("the run (its k-bit quantizers)", model, contextlib.nullcontext()),
        ("the int8 file's reference", deployed, contextlib.nullcontext()),
        ("  its weights alone", deployed, quantizing_only(deployed, [])),
        *((f"  its weights + {e.name} alone", deployed, quantizing_only(deployed, [e.site])) for e in top),
        (f"  all but the top {len(top)} tensors", deployed, quantizing_only(deployed, rest)),
    ]
    rows = [{"model": label, "psnr": scores(m, mode)} for label, m, mode in progress(models, desc="evaluations")]
    sets = list(rows[0]["psnr"])
    print(f"{args.run_dir} ({run['model']}, ×{scale}, W{run['quantization']['bits']}): Keras fake-quant models; "
          f"{machine_description()}")  # fmt: skip
    fp = rows[0]["psnr"]
    table = [(r["model"], *(f"{r['psnr'][n]:.2f}" for n in sets), *(f"{r['psnr'][n] - fp[n]:+.2f}" for n in sets))
             for r in rows]  # fmt: skip
    print(format_table(["model", *(f"{n} PSNR" for n in sets), *(f"{n} vs FP" for n in sets)], table))
    total = sum(max(e.added_mse, 0.0) for e in errors)
    print(
        f"\nOutput MSE (squared pixel levels, against the FP flow) on {args.patches} LR patches of {args.patch}×"
        f"{args.patch}: weights alone {weights_only:.3f}, every quantizer {everything:.3f}; each tensor alone:"
    )
    table = [
        (e.name, e.site.quantizer.bits, f"[{e.lower:.3g}, {e.upper:.3g}]", f"{e.added_mse:+.3f}",
         f"{100 * max(e.added_mse, 0.0) / total:.1f} %" if total else "-")
        for e in errors[: args.rows]
    ]  # fmt: skip
    print(format_table(["tensor", "bits", "range", "+MSE", "share"], table))
    if len(errors) > args.rows:
        print(f"... and {len(errors) - args.rows} more (all in --json)")
    tensors = [
        {"layer": e.site.layer, "site": e.site.site, "bits": e.site.quantizer.bits, "range": [e.lower, e.upper],
         "mse": e.mse, "added_mse": e.added_mse}
        for e in errors
    ]  # fmt: skip
    return {"run": str(args.run_dir), "models": rows, "weights_only_mse": weights_only, "all_mse": everything,
            "tensors": tensors}  # fmt: skip


def benchmark_curve(args):
    from edge_sr.curve import CURVE_FILE, curve_rows, curve_svg, quality_curve

    spec = {"model": args.model, "scale": args.scale, "train": args.train, "val": args.val, "eval": args.eval,
            "out": args.out, "checkpoint_every": args.checkpoint_every}  # fmt: skip
    overrides = {"batch_size": args.batch_size, "hr_patch": args.patch, "learning_rate": args.lr,
                 "range_init": args.range_init, "clip_correction": False if args.no_wcc else None,
                 "per_channel": args.per_channel, "target": args.target}  # fmt: skip
    results = quality_curve(spec, args.bits, args.placements, args.steps, args.dquant_iterations, args.dquant_batch,
                            overrides, args.resume)  # fmt: skip
    results["machine"] = machine_description()
    out = Path(args.out)
    for name in next(iter(results["references"].values())):
        svg = curve_svg(results, name)
        atomic_write(out / f"curve-{name}.svg", lambda tmp, svg=svg: Path(tmp).write_text(svg))
    headers, rows = curve_rows(results)
    print(f"{args.model} ×{args.scale}: ODM batch {args.batch_size}, HR patch {args.patch}, lr {args.lr}; train "
          f"min: the summed step times; {machine_description()}; {out / CURVE_FILE}")  # fmt: skip
    print(format_table(headers, rows))
    return results


def benchmark_peers(args):
    from edge_sr.peers import compare

    results = compare(args.model, args.scale, args.calibration, args.eval, args.out, patch=args.patch,
                      patches=args.patches, tile=args.tile, size=args.size, threads=args.threads, runs=args.runs,
                      warmup=args.warmup, skip=args.skip, files=args.files)  # fmt: skip
    sets = [Path(folder).name for folder in args.eval]
    rows = [
        (r["label"], *(f"{r['psnr'][n]:.2f}" for n in sets), f"{r['ratio_to_fp32']:.3f}", r["not_delegated"])
        if "psnr" in r else (r["label"], *("-" for _ in sets), "-", r["note"])
        for r in results
    ]  # fmt: skip
    height, width = args.size
    print(
        f"{args.model} ×{args.scale}; calibration: {args.patches} LR patches {args.patch}×{args.patch} from "
        f"{', '.join(args.calibration)}, the same for every tool; PSNR on Y, shave {args.scale}; LiteRT + XNNPACK, "
        f"{args.threads} threads, {width}×{height} LR, median of the per-round ratios over {args.runs} alternating "
        f"rounds; {machine_description()}"
    )
    headers = ["tool / recipe", *(f"{n} ×{args.scale}" for n in sets), "× fp32 time", "not in XNNPACK"]
    print(format_table(headers, rows))
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
    int8 = commands.add_parser("int8", help="int8 against fp32 of one model, beside XNNPACK's own conv kernels")
    int8.add_argument("fp32_model", help="the model's fp32 .tflite")
    int8.add_argument("int8_model", help="its int8 .tflite")
    int8.add_argument("--size", type=parse_size, default=(128, 128), help="LR size: N or WxH (default 128)")
    int8.add_argument("--threads", type=int, default=2)
    int8.add_argument("--runs", type=int, default=20, help="timed rounds (default 20)")
    int8.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    int8.add_argument("--profile", action="store_true", help="also time every op of both models alone")
    int8.add_argument("--profile-runs", type=int, default=5, help="timed runs of each op (default 5)")
    int8.add_argument("--memory", type=parse_size, metavar="WxH", help="also the peak memory of upscaling this size")
    int8.add_argument("--tile", type=int, nargs="+", default=[256], help="LR tiles for --memory (default 256)")
    int8.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    from edge_sr.quant.placement import PLACEMENTS
    from edge_sr.quant.quantizer import WEIGHT_GRID_HELP, WEIGHT_GRIDS
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
    qat.add_argument("--weight-grid", choices=WEIGHT_GRIDS, help=WEIGHT_GRID_HELP + " (pams: narrow)")
    qat.add_argument(
        "--placements", nargs="+", choices=PLACEMENTS, default=["paper"],
        help="paper (default): the papers' k-bit layers; integer: the int8 file's whole graph (odm, minmax)",
    )  # fmt: skip
    qat.add_argument("--timing-rounds", type=int, default=5, help="alternating rounds timing the steps (default 5)")
    qat.add_argument("--out", required=True, help="folder for the run directories")
    qat.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    from edge_sr.calibration import FEATURE_TERMS
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
    ptq.add_argument(
        "--feature-terms",
        nargs="+",
        choices=FEATURE_TERMS,
        default=["paper"],
        help="DQC feature term(s) to run 2dquant with: paper (Eq. 5, default), distance (the earlier)",
    )
    ptq.add_argument("--weight-grid", choices=WEIGHT_GRIDS, help=WEIGHT_GRID_HELP)
    ptq.add_argument("--iterations", type=int, default=3000, help="DQC steps (default: the paper's 3000)")
    ptq.add_argument("--batch-size", type=int, default=32, help="DQC batch (default: the paper's 32)")
    ptq.add_argument("--patch", type=int, default=64, help="DQC LR patch (default 64)")
    ptq.add_argument("--out", required=True, help="folder for the run directories and the TFLite file")
    ptq.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    onnx = commands.add_parser("onnx", help="one PyTorch EDSR to int8 two ways: onnx2tf vs edge_sr, PSNR and latency")
    onnx.add_argument("--checkpoint", help="an official EDSR-PyTorch .pt file (default: random weights)")
    onnx.add_argument("--scale", type=int, default=2, help="random-weight EDSR's scale (default 2)")
    onnx.add_argument("--blocks", type=int, default=16, help="random-weight EDSR's residual blocks (default 16)")
    onnx.add_argument("--features", type=int, default=64, help="random-weight EDSR's features (default 64)")
    onnx.add_argument("--seed", type=int, default=0)
    onnx.add_argument("--calibration", nargs="+", required=True, metavar="FOLDER", help="HR calibration images")
    onnx.add_argument("--val", help="edge_sr calibration's validation folder (default: the first --calibration)")
    onnx.add_argument("--eval", nargs="+", metavar="FOLDER", help="benchmark folders (default: scikit-image photos)")
    onnx.add_argument("--method", choices=("dobi", "2dquant"), default="dobi", help="edge_sr's W8A8 (default dobi)")
    onnx.add_argument("--iterations", type=int, default=50, help="2dquant's DQC steps (default 50)")
    onnx.add_argument("--batch-size", type=int, default=4, help="2dquant's DQC batch (default 4)")
    onnx.add_argument("--patches", type=int, default=32, help="calibration LR patches for both (default 32)")
    onnx.add_argument("--patch", type=int, default=48, help="calibration LR patch size (default 48)")
    onnx.add_argument("--size", type=parse_size, default=(128, 128), help="LR size for latency: N or WxH (default 128)")
    onnx.add_argument("--threads", type=int, default=2)
    onnx.add_argument("--runs", type=int, default=10, help="timed rounds (default 10)")
    onnx.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    onnx.add_argument("--out", required=True, help="folder for the ONNX, Keras, run and TFLite files")
    onnx.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    budget = commands.add_parser("budget", help="where a run's int8 file loses PSNR, tensor by tensor")
    budget.add_argument("run_dir", help="a train or calibrate run directory")
    budget.add_argument("--eval", nargs="+", required=True, metavar="FOLDER", help="benchmark folders to score")
    budget.add_argument("--top", type=int, default=3, help="tensors scored alone, and all but them (default 3)")
    budget.add_argument("--rows", type=int, default=20, help="tensors printed (default 20; all in --json)")
    budget.add_argument("--patches", type=int, default=8, help="LR patches the per-tensor errors use (default 8)")
    budget.add_argument("--patch", type=int, default=64, help="their size (default 64)")
    budget.add_argument("--tile", type=int, help="score tile by tile, as a fixed-tile (SwinIR) file runs")
    budget.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    curve = commands.add_parser("curve", help="int8 file PSNR against CPU training time: ODM per placement, 2DQuant")
    curve.add_argument("--model", default="zoo:isr-rdn-psnr-small-x2", help="FP model (default: the zoo RDN x2)")
    curve.add_argument("--scale", type=int, default=2)
    curve.add_argument("--train", nargs="+", required=True, metavar="FOLDER", help="HR training/calibration folders")
    curve.add_argument("--val", required=True, help="validation folder (the parity check runs on it)")
    curve.add_argument("--eval", nargs="+", required=True, metavar="FOLDER", help="benchmark folders to score")
    curve.add_argument("--bits", nargs="+", type=int, default=[8, 4])
    curve.add_argument("--placements", nargs="+", choices=PLACEMENTS, default=["integer", "paper"])
    curve.add_argument("--steps", nargs="+", type=int, default=[0, 100, 500, 2000], help="ODM steps to score at")
    curve.add_argument("--batch-size", type=int, default=8)
    curve.add_argument("--patch", type=int, default=96, help="HR patch (default 96)")
    curve.add_argument("--lr", type=float, default=1e-4)
    curve.add_argument("--range-init", choices=("percentile", "minmax", "dobi"), help="ODM's range start (as train)")
    curve.add_argument("--no-wcc", action="store_true", help="ODM without weight clipping correction (as train)")
    curve.add_argument("--per-channel", action="store_true", help="per-channel weight ranges (with --no-wcc)")
    curve.add_argument("--target", choices=("hr", "fp"), default="hr", help="ODM's L_R target (as train)")
    curve.add_argument("--checkpoint-every", type=int, default=100)
    curve.add_argument("--dquant-iterations", type=int, help="also calibrate 2DQuant (integer) with this DQC budget")
    curve.add_argument("--dquant-batch", type=int, default=8, help="2DQuant's DQC batch (default 8)")
    curve.add_argument("--resume", action="store_true", help="continue the curve in --out")
    curve.add_argument("--out", required=True, help="folder for the runs, files, curve.json and the SVG plots")
    curve.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    from edge_sr.peers import ROWS

    peers = commands.add_parser("peers", help="the tools users pick instead, beside edge_sr's int8 file")
    peers.add_argument("model", nargs="?", default="zoo:isr-rdn-psnr-small-x2", help="FP model (default: zoo RDN x2)")
    peers.add_argument("--scale", type=int, default=2)
    peers.add_argument("--calibration", nargs="+", required=True, metavar="FOLDER", help="calibration image folders")
    peers.add_argument("--eval", nargs="+", required=True, metavar="FOLDER", help="benchmark folders to score")
    peers.add_argument("--patches", type=int, default=32, help="calibration LR patches, one batch for all (default 32)")
    peers.add_argument("--patch", type=int, default=48, help="their size (default 48)")
    peers.add_argument("--tile", type=int, default=128, help="litert-torch's fixed input tile (default 128)")
    peers.add_argument("--size", type=parse_size, default=(128, 128), help="LR size timed: N or WxH (default 128)")
    peers.add_argument("--threads", type=int, default=2)
    peers.add_argument("--runs", type=int, default=10, help="timed rounds (default 10)")
    peers.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    peers.add_argument(
        "--skip", nargs="+", default=[], choices=[key for key in ROWS if key != "fp32"], metavar="ROW",
        help=f"rows not to make (lq-a16w8 runs at ~40× fp32 time): {', '.join(k for k in ROWS if k != 'fp32')}",
    )  # fmt: skip
    peers.add_argument(
        "--files", nargs="+", default=[], type=Path, metavar="FILE",
        help="more .tflite files to score and time beside them, e.g. a trained --placement integer run's int8 file",
    )  # fmt: skip
    peers.add_argument("--out", required=True, help="folder for the files and edge_sr's calibration run")
    peers.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    commands = {
        "keras": benchmark_keras,
        "qat": benchmark_qat,
        "ptq": benchmark_ptq,
        "tflite": benchmark_tflite,
        "int8": benchmark_int8,
        "onnx": benchmark_onnx,
        "budget": benchmark_budget,
        "curve": benchmark_curve,
        "peers": benchmark_peers,
    }
    results = commands[args.command](args)
    if args.json:
        write_json(args.json, {"machine": machine_description(), "results": results})


if __name__ == "__main__":
    run_cli(main)
