"""`benchmark tflite`: latency and peak memory of exported .tflite files in LiteRT, compared in one run."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from edge_sr.bench.common import lr_image, machine_description, peak_memory, time_alternating
from edge_sr.errors import EdgeSRError
from edge_sr.runtime.timing import summarize
from edge_sr.tables import format_table


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
        image = lr_image(variant["size"])
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
