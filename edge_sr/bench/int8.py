"""`benchmark int8`: int8 against fp32 of one model beside XNNPACK's own conv kernels; op profile, tiled peak memory."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from edge_sr.bench.common import lr_image, machine_description, peak_memory, time_alternating
from edge_sr.errors import EdgeSRError
from edge_sr.progress import progress
from edge_sr.runtime.timing import summarize
from edge_sr.tables import format_table


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
        image = lr_image(args.size)
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
