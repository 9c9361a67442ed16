"""`python -m edge_sr.benchmark curve`: what the int8 file scores after how much training on this machine.

For each bit-width and placement one ODM run trains in segments; at 0 steps and at the end of each segment its
int8 file is exported as `convert --int8` exports it (an `integer` run as it is; a `paper` run completed with
DOBI's 8-bit ranges on its training images), checked for parity with its Keras reference, and scored in LiteRT on
the eval sets. The file is of the weights at that step (not the best validated ones `convert` would take), so the
curve shows what training does. 2DQuant (`integer` placement) adds one point per bit-width at its DQC budget.

Every point is written to `curve.json` in the output folder as soon as it is measured, and the runs keep their
checkpoints: the same command with `--resume` continues where an interrupted one stopped.
"""

import html
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edge_sr.atomic import atomic_write, write_json
from edge_sr.bench.common import machine_description
from edge_sr.errors import EdgeSRError
from edge_sr.tables import format_table

CURVE_FILE = "curve.json"
COLORS = {("odm", "integer"): "#d62728", ("odm", "paper"): "#1f77b4", ("2dquant", "integer"): "#2ca02c"}


def int8_point(deployed, path, bits, scale, val, eval_sets):
    """Export `deployed` (the Keras reference of an int8 file) to `path`, check parity on `val`, score the file."""
    from edge_sr.export.parity import check_parity
    from edge_sr.export.tflite import int8_tflite
    from edge_sr.runtime.evaluation import evaluate_dataset
    from edge_sr.runtime.metadata import build_metadata, write_tflite
    from edge_sr.runtime.upscalers import TFLiteUpscaler
    from models_tf import model_config

    config = model_config(deployed)
    metadata = build_metadata(config, "int8", {"weights": bits, "activations": bits}, "uint8")
    write_tflite(path, int8_tflite(deployed), metadata)
    parity = check_parity(deployed, path, val, scale)
    upscaler = TFLiteUpscaler(path, scale)
    psnr = {Path(f).name: evaluate_dataset(upscaler, f, scale, show_progress=False)["psnr"] for f in eval_sets}
    return {"psnr": psnr, "parity_delta_psnr": parity["delta_psnr"], "parity_ok": parity["ok"]}


def _training_minutes(run_dir, steps):
    from edge_sr.models.rundir import read_history

    return sum(entry["seconds"] for entry in read_history(run_dir) if entry["step"] < steps) / 60.0


def _run_description(spec, kind, images, config):
    """The run.json content of a curve's `kind` run ("train" or "calibrate"), its `images` (the data key) the
    curve's training folders."""
    data = {images: [str(f) for f in spec["train"]], "val": str(spec["val"]), "calibration_batches": 4}
    return {"kind": kind, "model": spec["model"], "scale": spec["scale"], kind: asdict(config), "data": data}


def odm_curve(spec, bits, placement, steps, points, record, train_overrides):
    """Train one ODM run through `steps`, appending a point to `points` (and calling `record`) at each."""
    from edge_sr.export.int8 import deploy_calibration_batches, deploy_model
    from edge_sr.methods.loop import fit
    from edge_sr.methods.training import TrainConfig, assemble_training

    run_dir = Path(spec["out"]) / f"odm-w{bits}-{placement}"
    config = TrainConfig(method="odm", bits=bits, placement=placement, iterations=max(steps), **train_overrides)
    run = _run_description(spec, "train", "train", config)
    measured = {point["steps"] for point in points}
    started = (run_dir / "checkpoints").is_dir()
    if started and 0 not in measured:
        raise EdgeSRError(f"{run_dir} trained past its 0-step point, which curve.json lacks: remove the folder")
    every = spec["checkpoint_every"]
    trainer, sampler, validate, checkpoints = assemble_training(run, run_dir, started, None, every, every)
    for target in steps:
        if target in measured:
            continue
        if target:
            trainer.config.iterations = target  # a segment: validated at its end
            result = fit(trainer, sampler, run_dir, validate, target, every, started, True, checkpoints)
            started = True
            if result["status"] != "finished":
                return False
        model = trainer.model
        if placement == "paper":
            model, _ = deploy_model(model, deploy_calibration_batches(run, spec["scale"]))
        path = run_dir / f"int8-{target}.tflite"
        point = int8_point(model, path, bits, spec["scale"], spec["val"], spec["eval"])
        points.append({"steps": target, "train_minutes": _training_minutes(run_dir, target), **point})
        record()
    return True


def dquant_point(spec, bits, iterations, batch_size):
    """A 2DQuant calibration of the `integer` placement with `iterations` DQC steps, exported and scored."""
    from edge_sr.methods.calibration import CalibrationConfig, run_calibration

    run_dir = Path(spec["out"]) / f"2dquant-w{bits}-integer"
    config = CalibrationConfig(bits=bits, placement="integer", iterations=iterations, batch_size=batch_size)
    run = _run_description(spec, "calibrate", "calibration", config)
    started = time.perf_counter()
    result = run_calibration(run, run_dir, checkpoint_every=max(iterations, 1), validate_every=max(iterations, 1))
    minutes = (time.perf_counter() - started) / 60.0
    point = int8_point(result["model"], run_dir / "int8.tflite", bits, spec["scale"], spec["val"], spec["eval"])
    return {"steps": iterations, "batch_size": batch_size, "train_minutes": minutes, **point}


def quality_curve(spec, bits_list, placements, steps, dquant_iterations, dquant_batch, train_overrides, resume):
    """Measure every curve of the benchmark (see the module docstring); returns curve.json's content."""
    from edge_sr.models.sources import load_source_model
    from edge_sr.runtime.evaluation import evaluate_dataset
    from edge_sr.runtime.upscalers import BicubicUpscaler, KerasUpscaler

    out = Path(spec["out"])
    steps = sorted(set(steps))
    if steps[0] < 0:
        raise EdgeSRError("--steps must be 0 or more")
    if (out / CURVE_FILE).is_file() and not resume:
        raise EdgeSRError(f"{out} holds a curve already: pass --resume to continue it, or choose another --out")
    if resume and not (out / CURVE_FILE).is_file():
        raise EdgeSRError(f"nothing to resume in {out}: it has no {CURVE_FILE}")
    results = json.loads((out / CURVE_FILE).read_text()) if resume else {"settings": _jsonable(spec), "curves": {}}

    def record():
        write_json(out / CURVE_FILE, results)

    out.mkdir(parents=True, exist_ok=True)
    if "references" not in results:
        fp = KerasUpscaler(load_source_model(spec["model"], spec["scale"]), "fp32", spec["scale"])
        sets = spec["eval"]
        upscalers = {"FP32": fp, "bicubic": BicubicUpscaler(spec["scale"])}
        results["references"] = {
            name: {Path(f).name: evaluate_dataset(u, f, spec["scale"], show_progress=False)["psnr"] for f in sets}
            for name, u in upscalers.items()
        }
        record()
    for bits in bits_list:
        for placement in placements:
            points = results["curves"].setdefault(f"odm W{bits}A{bits} {placement}", [])
            if not odm_curve(spec, bits, placement, steps, points, record, train_overrides):
                return results  # interrupted: its checkpoint is saved
        key = f"2dquant W{bits}A{bits} integer"
        if dquant_iterations is not None and key not in results["curves"]:
            results["curves"][key] = [dquant_point(spec, bits, dquant_iterations, dquant_batch)]
            record()
    return results


def _jsonable(spec):
    return {key: [str(v) for v in value] if isinstance(value, list) else value for key, value in spec.items()}


def curve_rows(results):
    """The table: one row per point."""
    sets = list(next(iter(results["references"].values())))
    references = results["references"].items()
    rows = [(name, "-", "-", "-", *(f"{scores[s]:.2f}" for s in sets), "-") for name, scores in references]
    for key, points in results["curves"].items():
        for point in points:
            per_step = f"{60 * point['train_minutes'] / point['steps']:.2f}" if point["steps"] else "-"
            rows.append(
                (key, point["steps"], f"{point['train_minutes']:.1f}", per_step,
                 *(f"{point['psnr'][s]:.2f}" for s in sets),
                 f"{point['parity_delta_psnr']:+.3f}" + ("" if point["parity_ok"] else " FAIL"))
            )  # fmt: skip
    return ["run", "steps", "train min", "s / step", *(f"{s} PSNR" for s in sets), "parity ΔPSNR"], rows


def curve_svg(results, set_name, width=640, height=360):
    """PSNR of the int8 file on `set_name` against training minutes, one line per run, FP32 and bicubic dashed."""
    references = {name: scores[set_name] for name, scores in results["references"].items()}
    points = {key: [(p["train_minutes"], p["psnr"][set_name]) for p in ps] for key, ps in results["curves"].items()}
    values = [v for ps in points.values() for _, v in ps] + list(references.values())
    low, high = min(values) - 0.3, max(values) + 0.3
    longest = max([m for ps in points.values() for m, _ in ps] + [1.0])
    left, right, top, bottom = 52, width - 70, 24, height - 70

    def x(minutes):
        return left + minutes / longest * (right - left)

    def y(value):
        return bottom - (value - low) / (high - low) * (bottom - top)

    title = f"{set_name}: int8 file PSNR (dB) against CPU training minutes"
    parts = [f'<text x="{left}" y="14" font-weight="bold">{html.escape(title)}</text>']
    for tick in np.linspace(low, high, 6):
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.2f}</text>')
    for tick in np.linspace(0, longest, 5):
        parts.append(f'<text x="{x(tick):.1f}" y="{bottom + 16}" text-anchor="middle">{tick:.0f} min</text>')
    for (name, value), dash in zip(references.items(), ("6 3", "2 3"), strict=False):
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#333" '
            f'stroke-dasharray="{dash}"/><text x="{right + 4}" y="{y(value) + 4:.1f}">{html.escape(name)}</text>'
        )
    for index, (key, line) in enumerate(points.items()):
        method, bits, placement = key.split()
        color = COLORS.get((method, placement), "#555")
        dash = "" if bits.startswith("W8") else ' stroke-dasharray="5 3"'
        path = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in line)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        parts += [f'<circle cx="{x(m):.1f}" cy="{y(v):.1f}" r="3.5" fill="{color}"/>' for m, v in line]
        row, column = divmod(index, 3)
        lx, ly = left + 190 * column, height - 30 + 16 * row
        parts.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" stroke-width="2"'
                     f'{dash}/><text x="{lx + 22}" y="{ly}">{html.escape(key)}</text>')  # fmt: skip
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 16}" viewBox="0 0 {width} '
        f'{height + 16}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>'
        f"{''.join(parts)}</svg>"
    )


def benchmark_curve(args):
    from edge_sr.bench.curve import CURVE_FILE, curve_rows, curve_svg, quality_curve

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
