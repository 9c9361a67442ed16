"""The loop that QAT (training.py) and 2DQuant calibration (calibration.py) share: train steps from a sampler,
validation and the best weights, checkpoints to resume from, a clean stop on SIGINT/SIGTERM or a broken run."""

import math
import signal
import time
from pathlib import Path

import tensorflow as tf

from edge_sr.errors import EdgeSRError
from edge_sr.methods.qat import collapsed_ranges
from edge_sr.models.rundir import (
    RUN_FILE,
    append_history,
    best_psnr,
    read_history,
    remove_unfinished_saves,
    save_best,
    write_history,
)
from edge_sr.progress import progress


def _stop_broken_run(model, what, run_dir):
    collapsed = collapsed_ranges(model)
    where = f"collapsed quantizer range(s): {', '.join(collapsed)}" if collapsed else "no range collapsed"
    raise EdgeSRError(
        f"{what} ({where}); the last good checkpoint in {run_dir / 'checkpoints'} is kept: resume with a lower --lr"
    )


class _StopRequest:
    """SIGINT/SIGTERM ask the loop to stop after the current step (and save), instead of killing it; `signal` is
    the first one that arrived."""

    def __init__(self):
        self.signal = None

    @property
    def requested(self):
        return self.signal is not None

    def __enter__(self):
        self._previous = {sig: signal.signal(sig, self._request) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _request(self, signum, frame):
        self.signal = self.signal or signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def check_schedule(validate_every, checkpoint_every):
    for name, every in (("--validate-every", validate_every), ("--checkpoint-every", checkpoint_every)):
        if every < 1:
            raise EdgeSRError(f"{name} must be at least 1 step, not {every}")


def open_checkpoints(trainer, run_dir, resume):
    """The run's CheckpointManager, the latest checkpoint restored into `trainer` when resuming. Every refusal
    (nothing to resume, a checkpoint that does not fit the model, a new run over one that has checkpoints) is
    raised here, and nothing in `run_dir` is written: call it before run.json is."""
    run_dir = Path(run_dir)
    manager = tf.train.CheckpointManager(trainer.checkpoint(), str(run_dir / "checkpoints"), max_to_keep=2)
    if resume:
        if manager.latest_checkpoint is None:
            raise EdgeSRError(f"nothing to resume in {run_dir}: it has no checkpoint")
        read_history(run_dir)  # before the restore: a refused restore warns of it at exit
        restored = manager.checkpoint.restore(manager.latest_checkpoint)
        try:
            restored.assert_existing_objects_matched()
        except AssertionError:
            restored.expect_partial()  # no "unrestored values" warnings after the error line
            raise EdgeSRError(
                f"the checkpoint in {run_dir} does not fit the model its {RUN_FILE} describes; start a new run in "
                "another --run-dir"
            ) from None
    elif manager.latest_checkpoint is not None:
        raise EdgeSRError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --run-dir")
    return manager


def fit(
    trainer,
    sampler,
    run_dir,
    validate,
    validate_every=1000,
    checkpoint_every=1000,
    resume=False,
    show_progress=True,
    checkpoints=None,
):
    """Train `trainer` for its config's iterations, writing the run directory; returns the final status.

    `validate(model) -> PSNR` picks the best weights. Checkpoints are written every `checkpoint_every` steps, at
    the end and when SIGINT/SIGTERM arrives (then status is "interrupted" and `signal` says which); `resume`
    continues from the latest (`checkpoints`: `open_checkpoints`' manager, if the caller opened it already), and
    first removes what an interrupted save left behind. A non-finite loss, or a quantizer range that is no longer
    a finite interval when the run validates or saves, stops the run with an error naming the ranges that
    collapsed; the last good checkpoint stays the latest.
    """
    config, run_dir = trainer.config, Path(run_dir)
    check_schedule(validate_every, checkpoint_every)
    manager = open_checkpoints(trainer, run_dir, resume) if checkpoints is None else checkpoints
    if resume:
        write_history(run_dir, [e for e in read_history(run_dir) if e["step"] < trainer.current_step])
        remove_unfinished_saves(run_dir)
    start = trainer.current_step
    best = best_psnr(run_dir)  # -inf in a new run, unless its caller validated the starting point
    writer = tf.summary.create_file_writer(str(run_dir / "logs"))
    dataset = trainer.strategy.experimental_distribute_dataset(
        sampler.dataset(start_step=start, steps=max(config.iterations - start, 0))
    )
    bar = progress(
        total=config.iterations, initial=start, enabled=show_progress, desc=f"{config.method} W{config.bits}"
    )
    status, stopped_by = "finished", None
    with _StopRequest() as stop, writer.as_default(), bar:
        for lr, hr in dataset:
            step = trainer.current_step
            started = time.perf_counter()
            metrics = trainer.train_step(lr, hr)
            metrics["seconds"] = time.perf_counter() - started
            if not math.isfinite(metrics["loss"]):
                _stop_broken_run(trainer.model, f"the loss became {metrics['loss']} at step {step}", run_dir)
            append_history(run_dir, {"step": step, **metrics})
            for name, value in metrics.items():
                tf.summary.scalar(f"train/{name}", value, step=step)
            bar.update(1)
            done = step + 1
            validating = done % validate_every == 0 or done == config.iterations
            checkpointing = done % checkpoint_every == 0 or done == config.iterations or stop.requested
            # A clamp can swallow a NaN range without a NaN loss: never validate or save a model with one.
            if (validating or checkpointing) and collapsed_ranges(trainer.model):
                _stop_broken_run(trainer.model, f"quantizer ranges collapsed by step {done}", run_dir)
            if validating:
                psnr = validate(trainer.model)
                tf.summary.scalar("validation/psnr", psnr, step=done)
                if psnr > best:
                    best = psnr
                    save_best(run_dir, trainer.model, done, psnr)
                bar.set_postfix(loss=f"{metrics['loss']:.3f}", val_psnr=f"{psnr:.2f}", best=f"{best:.2f}")
            else:
                bar.set_postfix(loss=f"{metrics['loss']:.3f}", best=f"{best:.2f}")
            if checkpointing:
                manager.save(checkpoint_number=done)
            if stop.requested:
                status, stopped_by = "interrupted", int(stop.signal)
                break
    return {"status": status, "signal": stopped_by, "step": trainer.current_step, "best_psnr": best}
