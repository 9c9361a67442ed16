"""`benchmark ptq`: 2DQuant against the PTQ baselines and TFLite's own int8 PTQ (PSNR, calibration time)."""

import json
import time
from pathlib import Path

from edge_sr.atomic import write_json
from edge_sr.bench.common import machine_description
from edge_sr.progress import progress
from edge_sr.tables import format_table


def benchmark_ptq(args):
    from dataclasses import asdict

    from edge_sr.data import PatchSampler
    from edge_sr.export.tflite import FIXED_TILE_ARCHS, export_default_ptq
    from edge_sr.methods.calibration import CalibrationConfig, run_calibration
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
