"""The run directory that `train` (and `calibrate`) write and `convert`, `evaluate` and `--resume` read.

run.json         what was run: model source and architecture, scale, method/bits/placement, data, seed
checkpoints/     the latest state (model + optimisers + step), for --resume
best/            the weights that scored best on validation (best.json says when and how well)
history.jsonl    one line of losses per step
logs/            TensorBoard
"""

import json
import re
import shutil
from pathlib import Path

import tensorflow as tf

from edge_sr.atomic import write_json
from edge_sr.errors import EdgeSRError

RUN_FILE = "run.json"


def write_run(run_dir, info):
    """Write run.json into a new or empty `run_dir`, or over the same run (a resume, which may set a new end and
    schedule); anything else is refused before a byte is written (`check_run_dir`)."""
    check_run_dir(run_dir, info)
    write_json(Path(run_dir) / RUN_FILE, info)


def check_run_dir(run_dir, info):
    """Refuse a `run_dir` that is a folder of other files, or holds another run (a different method, bits, model,
    data...) that got further than its run.json."""
    run_dir = Path(run_dir)
    others = sorted(path.name for path in run_dir.iterdir() if path.name != RUN_FILE) if run_dir.is_dir() else []
    if (run_dir / RUN_FILE).is_file():
        differences = _differences(read_run(run_dir), info)
        if differences and others:
            raise EdgeSRError(
                f"{run_dir} holds another run (its {', '.join(differences)} differ); continue it with --resume and "
                "its own settings, or choose another --run-dir"
            )
    elif others:
        raise EdgeSRError(
            f"{run_dir} is not empty ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}) and holds no "
            "edge_sr run; choose an empty or new --run-dir"
        )


def clear_run_dir(run_dir):
    """Remove an earlier edge_sr run from `run_dir` so that a benchmark can make it again; a folder that holds
    files but no run.json is the user's, and is refused, not deleted."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    if any(run_dir.iterdir()) and not (run_dir / RUN_FILE).is_file():
        raise EdgeSRError(f"{run_dir} holds files but no edge_sr run; move them, or choose another --out")
    shutil.rmtree(run_dir)


def _differences(held, info):
    """The settings in which two runs differ, the end (`iterations`) and the schedule aside: a resumed run may
    change them; so may a setting that the run's edge_sr version did not record yet (it resolves to what that
    version did)."""

    def settings(run):
        flat = {key: value for key, value in run.items() if not isinstance(value, dict)}
        for section, entries in run.items():
            if isinstance(entries, dict) and section != "schedule":
                flat.update({f"{section}.{key}": value for key, value in entries.items() if key != "iterations"})
        return json.loads(json.dumps(flat))  # tuples and lists compare equal

    held, info = settings(held), settings(info)
    return sorted(key for key in held if held[key] != info.get(key))


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
    """The loss history; a last line cut short (the run was killed while writing it) is dropped."""
    path = Path(run_dir) / "history.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    entries = []
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
            raise EdgeSRError(f"{path} line {number} is not a step's losses; remove that line and resume again")
        entries.append(entry)
    return entries


def write_history(run_dir, entries):
    """Rewrite the loss history (on resume it is cut back to the checkpoint's step)."""
    path = Path(run_dir) / "history.jsonl"
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))


def append_history(run_dir, entry):
    with open(Path(run_dir) / "history.jsonl", "a") as history:
        history.write(json.dumps(entry) + "\n")


def resumable_run(run_dir, kind, iterations=None):
    """run.json of a `kind` run to resume, with a new end (`iterations`) if given; `schedule` says how often it
    validates and saves."""
    run = read_run(run_dir)
    if run.get("kind") != kind:
        raise EdgeSRError(f"{run_dir} is a {run.get('kind')} run: resume it with python -m edge_sr.{run.get('kind')}")
    read_history(run_dir)  # a damaged history is refused here, before run.json is rewritten
    if iterations is not None:
        run[kind]["iterations"] = iterations
    return run


def add_schedule_arguments(parser, defaults):
    """--validate-every and --checkpoint-every, as train and calibrate take them (`defaults`: their SCHEDULE)."""
    for option, key, what in (("--validate-every", "validate_every", "validations"),
                              ("--checkpoint-every", "checkpoint_every", "checkpoints")):  # fmt: skip
        parser.add_argument(
            option, type=int, help=f"steps between {what} (default {defaults[key]}; --resume: the run's own)"
        )


def schedule(run, defaults, **given):
    """How often a run validates and saves (`validate_every`, `checkpoint_every`): what was given on the command
    line, else what the run's run.json recorded (a resumed run keeps its own), else `defaults`."""
    recorded = run.get("schedule") or {}
    return {name: given.get(name) if given.get(name) is not None else recorded.get(name, value)
            for name, value in defaults.items()}  # fmt: skip


def remove_unfinished_saves(run_dir):
    """Delete what a save cut short left in `run_dir` (a run killed while saving): TensorFlow's `<prefix>_temp`
    folders of shards not yet merged, the state file's `checkpoint.tmp*` and atomic writes' `.name.*` temp files,
    and the files of a `ckpt-N` newer than the latest one the state file records (written, never recorded)."""
    state = tf.train.get_checkpoint_state(str(Path(run_dir) / "checkpoints"))
    latest = _checkpoint_number(state.model_checkpoint_path) if state else None
    for folder in (Path(run_dir) / "checkpoints", Path(run_dir) / "best"):
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            number = _checkpoint_number(path.name.split(".")[0]) if folder.name == "checkpoints" else None
            unrecorded = number is not None and latest is not None and number > latest
            if path.name.endswith("_temp") or path.name.startswith((".", "checkpoint.tmp")) or unrecorded:
                shutil.rmtree(path) if path.is_dir() else path.unlink()


def _checkpoint_number(prefix):
    match = re.fullmatch(r"ckpt-(\d+)", Path(prefix).name)
    return int(match[1]) if match else None


def report_run(result, run_dir, steps="steps"):
    """Print how a train/calibrate run ended; the CLI exit status: 128 + the signal that stopped it (130 for Ctrl-C,
    143 for SIGTERM), as a shell reports a process that signal killed."""
    if result["status"] == "interrupted":
        print(f"stopped at step {result['step']}; checkpoint saved. Continue with: --run-dir {run_dir} --resume")
        return 128 + result["signal"]
    print(f"done: {result['step']} {steps}, best validation PSNR {result['best_psnr']:.2f} dB; run in {run_dir}")
    return 0
