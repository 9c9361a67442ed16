"""The run directory that `train` (and `calibrate`) write and `convert`, `evaluate` and `--resume` read.

run.json         what was run: model source and architecture, scale, method/bits/placement, data, seed
checkpoints/     the latest state (model + optimisers + step), for --resume
best/            the weights that scored best on validation (best.json says when and how well)
history.jsonl    one line of losses per step
logs/            TensorBoard
"""

import json
from pathlib import Path

import tensorflow as tf

from edge_sr.atomic import write_json
from edge_sr.errors import EdgeSRError

RUN_FILE = "run.json"


def write_run(run_dir, info):
    write_json(Path(run_dir) / RUN_FILE, info)


def read_run(run_dir):
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise EdgeSRError(f"{run_dir} is not an edge_sr run directory (no {RUN_FILE})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise EdgeSRError(f"{path} is damaged ({error}); it cannot be resumed or converted") from None


def save_best(run_dir, model, step, psnr):
    """Keep `model`'s weights as the best so far (written beside, then swapped in by the index file)."""
    tf.train.Checkpoint(model=model).write(str(Path(run_dir) / "best" / "weights"))
    write_json(Path(run_dir) / "best" / "best.json", {"step": step, "psnr": psnr})


def best_psnr(run_dir):
    """The best validation PSNR recorded so far (-inf before the first validation)."""
    path = Path(run_dir) / "best" / "best.json"
    return json.loads(path.read_text())["psnr"] if path.is_file() else -float("inf")


def restore_best(run_dir, model):
    prefix = Path(run_dir) / "best" / "weights"
    if not Path(f"{prefix}.index").is_file():
        raise EdgeSRError(f"{run_dir} has no best weights yet (it stopped before the first validation)")
    tf.train.Checkpoint(model=model).read(str(prefix)).expect_partial()
    return json.loads((Path(run_dir) / "best" / "best.json").read_text())


def read_history(run_dir):
    path = Path(run_dir) / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def write_history(run_dir, entries):
    """Rewrite the loss history (on resume it is cut back to the checkpoint's step)."""
    path = Path(run_dir) / "history.jsonl"
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))


def append_history(run_dir, entry):
    with open(Path(run_dir) / "history.jsonl", "a") as history:
        history.write(json.dumps(entry) + "\n")


def load_run_model(run_dir):
    """The model a `train` or `calibrate` run produced: its source rebuilt, quantized as the run was, best weights
    and ranges restored."""
    from edge_sr.quant.placement import quantize_model
    from edge_sr.sources import load_source_model

    run = read_run(run_dir)
    if "quantization" not in run or "model" not in run:
        raise EdgeSRError(f"{run_dir}/{RUN_FILE} does not say which model it trained; was it written by edge_sr?")
    model = load_source_model(run["model"], run.get("scale"))
    if run["quantization"]:
        # Runs from before the mid-rise weight grid and the qkv split: the narrow grid, one qkv linear.
        model = quantize_model(model, **{"weight_grid": "narrow", "split_qkv": False, **run["quantization"]})
    restore_best(run_dir, model)
    return model


def resumable_run(run_dir, kind, iterations=None):
    """run.json of a `kind` run to resume, with a new end (`iterations`) if given: the one setting a resumed run
    may change."""
    run = read_run(run_dir)
    if run.get("kind") != kind:
        raise EdgeSRError(f"{run_dir} is a {run.get('kind')} run: resume it with python -m edge_sr.{run.get('kind')}")
    if iterations:
        run[kind]["iterations"] = iterations
    return run


def report_run(result, run_dir, steps="steps"):
    """Print how a train/calibrate run ended; the CLI exit status (130 when interrupted)."""
    if result["status"] == "interrupted":
        print(f"stopped at step {result['step']}; checkpoint saved. Continue with: --run-dir {run_dir} --resume")
        return 130
    print(f"done: {result['step']} {steps}, best validation PSNR {result['best_psnr']:.2f} dB; run in {run_dir}")
    return 0
