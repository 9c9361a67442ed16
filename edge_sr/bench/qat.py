"""`benchmark qat`: ODM against min/max QAT, the ODM paper's ablations and PAMS (PSNR, step time), on the same data
and steps, per placement."""

from dataclasses import asdict
from pathlib import Path

import numpy as np

from edge_sr.bench.common import machine_description, time_alternating
from edge_sr.errors import EdgeSRError
from edge_sr.methods.training import METHODS, TrainConfig, Trainer, prepare_model, run_training
from edge_sr.tables import format_table

# What `benchmark qat` compares: the ODM paper's ablation rows (baseline, + WCC only, WCC + naive MR, + cooperative
# MR only, ODM), ODM's exact step (both gradients at every step), and PAMS.
VARIANTS = {
    "minmax": {"method": "minmax"},
    "wcc-only": {"method": "odm", "mismatch": "none"},
    "wcc+naive-mr": {"method": "odm", "mismatch": "naive"},
    "coop-mr-only": {"method": "odm", "clip_correction": False},
    "odm": {"method": "odm"},
    "odm-exact": {"method": "odm", "similarity_every": 1},
    "pams": {"method": "pams"},
}


def variant_config(variant, bits, iterations, **train_overrides):
    """The TrainConfig of a `VARIANTS` entry (not yet resolved)."""
    if variant not in VARIANTS:
        raise EdgeSRError(f"unknown variant {variant!r}; choose from: {', '.join(VARIANTS)}")
    settings = {**train_overrides, **VARIANTS[variant], "bits": bits, "iterations": iterations}
    if METHODS[settings["method"]]["scheme"] != "uniform":  # PAMS keeps its own (narrow) weight grid
        settings.pop("weight_grid", None)
    return TrainConfig(**settings)


def compare_variants(
    model, scale, train, val, eval_sets, bits_list, variants, iterations, out_dir, placements=("paper",), **overrides
):
    """Train each (bits, variant, placement) for the same steps from the same FP model and score it on `eval_sets`
    (the Keras model: the `paper` placement without the 8-bit grids its int8 file adds).

    Returns one row per run: bits, variant, placement, PSNR per eval set.
    """
    from edge_sr.models.rundir import restore_best
    from edge_sr.runtime.evaluation import evaluate_dataset
    from edge_sr.runtime.upscalers import KerasUpscaler

    configs = {
        (bits, v, p): variant_config(v, bits, iterations, placement=p, **overrides)
        for bits in bits_list
        for v in variants
        for p in placements
    }
    rows = []
    for (bits, variant, placement), config in configs.items():
        run = {
            "kind": "train",
            "model": model,
            "scale": scale,
            "train": asdict(config),
            "data": {"train": [str(f) for f in train], "val": str(val), "calibration_batches": 4},
        }
        run_dir = Path(out_dir) / f"w{bits}a{bits}-{variant}{'' if placement == 'paper' else '-' + placement}"
        result = run_training(run, run_dir, validate_every=iterations, checkpoint_every=iterations)
        trainer = result["trainer"]
        restore_best(run_dir, trainer.model)
        upscaler = KerasUpscaler(trainer.model, variant, scale)
        scores = {Path(s).name: evaluate_dataset(upscaler, s, scale, show_progress=False)["psnr"] for s in eval_sets}
        rows.append({"bits": bits, "variant": variant, "placement": placement,
                     "weight_grid": trainer.config.weight_grid, "psnr": scores})  # fmt: skip
    return rows


def variant_trainers(fp_model, sampler, variants, bits, placements=("paper",), calibration_batches=4, **overrides):
    """A fresh Trainer per (variant, placement) on `fp_model` (ranges initialised from the sampler's calibration
    stream): what `benchmark qat` times side by side."""
    from models_tf import model_config

    arch, scale = model_config(fp_model)["arch"], model_config(fp_model)["scale"]
    calibration = [sampler.batch(i, stream=1)[0] for i in range(calibration_batches)]
    trainers = {}
    for variant in variants:
        for placement in placements:
            config = variant_config(variant, bits, 1, placement=placement, **overrides).resolved(arch, scale)
            trainers[variant, placement] = Trainer(prepare_model(fp_model, config, calibration), config, None, fp_model)
    return trainers


def qat_step_times(fp_model, args, bits):
    """Seconds per train step of each variant, timed side by side: each round runs 4 steps (a whole period of
    ODM's refresh: one step with both gradients, three with one) of every variant's trainer in turn, alternating
    the order, so the machine's load hits all alike; the median round over 4 is the step time."""
    from edge_sr.bench.qat import variant_trainers
    from edge_sr.data import PatchSampler
    from edge_sr.methods.training import DEFAULT_SIMILARITY_EVERY

    sampler = PatchSampler(args.train, args.scale, args.patch, args.batch_size, progress=False)
    trainers = variant_trainers(fp_model, sampler, args.variants, bits, args.placements, batch_size=args.batch_size,
                                hr_patch=args.patch, learning_rate=args.lr, weight_grid=args.weight_grid)  # fmt: skip
    batches = [sampler.batch(i) for i in range(DEFAULT_SIMILARITY_EVERY)]
    calls = [lambda t=t: [t.train_step(lr, hr) for lr, hr in batches] for t in trainers.values()]
    times = time_alternating(calls, args.timing_rounds, warmup=1)
    return {v: float(np.median(t)) / len(batches) for v, t in zip(trainers, times, strict=True)}


def benchmark_qat(args):
    from edge_sr.bench.qat import compare_variants
    from edge_sr.models.sources import load_source_model
    from edge_sr.runtime.evaluation import evaluate_dataset
    from edge_sr.runtime.upscalers import KerasUpscaler

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
