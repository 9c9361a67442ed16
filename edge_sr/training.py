"""Quantization-aware training on one loop: ODM (Hong & Lee, ECCV 2024) and the baselines it is measured against.

The train step (`edge_sr.qat.ODMModel`'s, which `model.fit` runs too) computes the reconstruction loss
L_R = L1(SR, HR) and ODM's mismatch loss L_M = Σ_sites ‖X − q(X; l, u)‖₂ over the quantized activations (ranges
held fixed), takes both gradients and combines them for the network weights as

    cooperative:  g = λ_R·∇L_R + λ_M·sim·∇L_M,   sim = (cos(∇L_R, ∇L_M) + 1) / 2
    naive:        g = λ_R·∇L_R + λ_M·∇L_M
    none:         g = λ_R·∇L_R

The cosine is taken over the whole flattened gradient (default) or per tensor. Quantizer ranges and WCC's gamma
follow L_R only, each with an Adam on the logarithm of the bound (`LogBoundAdam`: relative steps, so small
per-channel bounds cannot cross zero): the ranges at `range_lr_factor` × the learning rate, gamma at the learning
rate itself, as in the paper. Without WCC (`minmax`, `--no-wcc`) the weight bound is the paper's ablation
baseline: max |W| of the current weights at every step, nothing learned.

The two gradients need two backward passes. `similarity_every` = N > 1 (the default, 4) takes them, and sim, only
every N-th step; the steps in between take one backward pass of λ_R·L_R + λ_M·sim·L_M with the last sim (naive:
1). That approximates the paper: ∇L_M is still the current one, only sim is up to N − 1 steps old, and those
steps' range gradients also receive the share of λ_M·sim·∇L_M that reaches them through the sites downstream
(small: λ_M is 1e-5, 1e-6 for RDN). `similarity_every=1` is exactly the paper's step.
"""

import math
import signal
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.models.rundir import (
    RUN_FILE,
    append_history,
    best_psnr,
    check_run_dir,
    read_history,
    remove_unfinished_saves,
    save_best,
    write_history,
    write_run,
)
from edge_sr.progress import progress
from edge_sr.qat import (
    COSINE_MODES,
    MISMATCH_MODES,
    ODMModel,
    collapsed_ranges,
    odm_optimizers,
)
from edge_sr.quant.layers import QUANTIZER_SCHEMES, WEIGHT_BOUNDS
from edge_sr.quant.placement import default_weight_grid, quantize_model
from edge_sr.quant.quantizer import WEIGHT_GRIDS, check_bits
from edge_sr.quant.ranges import initialize_ranges, initialize_tfmot_ranges

# What each method sets; for the `uniform` scheme `mismatch` and `clip_correction` can be overridden (the paper's
# ablations). pams: PAMS's quantizers (no SKT distillation loss); tfmot8: tfmot's default 8-bit QAT.
METHODS = {
    "odm": {"scheme": "uniform", "range_init": "percentile", "clip_correction": True, "mismatch": "cooperative"},
    "minmax": {"scheme": "uniform", "range_init": "minmax", "clip_correction": False, "mismatch": "none"},
    "pams": {"scheme": "pams", "range_init": "pams", "clip_correction": False, "mismatch": "none"},
    "tfmot8": {"scheme": "tfmot8", "range_init": "tfmot", "clip_correction": False, "mismatch": "none"},
    "fp": {"scheme": None, "range_init": None, "clip_correction": False, "mismatch": "none"},
}
# What L_R compares the output with: the HR image (the paper's), or the FP model's output (distillation: only the
# quantization error, where at 8 bits the HR target's gradient is mostly the FP model's own reconstruction error).
TARGETS = ("hr", "fp")
DEFAULT_HR_PATCH = {2: 96, 3: 144, 4: 192}  # the paper's recipe
DEFAULT_SIMILARITY_EVERY = 4  # steps per exact ODM step (two backward passes); see the module docstring


@dataclass
class TrainConfig:
    method: str = "odm"
    bits: int | None = None  # None: 4, or 8 for tfmot8
    placement: str = "paper"
    iterations: int = 60_000
    batch_size: int = 8
    hr_patch: int | None = None  # None: the paper's patch for the scale
    learning_rate: float = 1e-4
    halve_every: int = 15_000
    range_lr_factor: float = 10.0
    lambda_r: float = 1.0
    lambda_m: float | None = None  # None: 1e-5, or 1e-6 for RDN (the paper's values)
    mismatch: str | None = None  # None: the method's default
    clip_correction: bool | None = None  # None: the method's default
    range_init: str | None = None  # None: the method's (ODM: percentile); e.g. dobi, which suits 8 bits
    per_channel: bool = False  # per-output-channel weight ranges (not with clip correction, which is per layer)
    target: str = "hr"  # L_R against the HR image (the paper), or "fp": the FP model's output (distillation)
    weight_grid: str | None = None  # None: mid-rise (2^b levels) up to 4 bits for odm/minmax, else narrow
    split_qkv: bool = True  # SwinIR: q, k and v linears, each with its own quantizers (2DQuant's split)
    weight_bound: str | None = None  # None: "max" (ODM's no-WCC baseline) for minmax and --no-wcc, else learned
    cosine: str = "global"
    similarity_every: int | None = None  # None: 4 with the global cosine; per tensor it must be 1 (every step)
    seed: int = 0

    def resolved(self, arch, scale):
        """A copy with every `None` replaced by the method's or the paper's default, validated."""
        if self.method not in METHODS:
            raise EdgeSRError(f"unknown method {self.method!r}; choose one of: {', '.join(METHODS)}")
        defaults = METHODS[self.method]
        config = TrainConfig(**asdict(self))
        config.mismatch = defaults["mismatch"] if config.mismatch is None else config.mismatch
        if config.clip_correction is None:
            config.clip_correction = defaults["clip_correction"]
        if config.target not in TARGETS:
            raise EdgeSRError(f"unknown target {config.target!r}; choose one of: {', '.join(TARGETS)}")
        if config.target == "fp" and defaults["scheme"] not in QUANTIZER_SCHEMES:
            raise EdgeSRError(
                f"--target fp needs edge_sr's quantizers (odm, minmax, pams), not --method {config.method}"
            )
        config.range_init = config.range_init or defaults["range_init"]
        if defaults["scheme"] == "uniform" and config.range_init not in ("minmax", "percentile", "dobi"):
            raise EdgeSRError(f"unknown range init {config.range_init!r}; choose one of: minmax, percentile, dobi")
        if defaults["scheme"] != "uniform" and config.range_init != defaults["range_init"]:
            raise EdgeSRError(f"--method {config.method} starts its ranges its own way: it takes no --range-init")
        if config.per_channel and (config.clip_correction or defaults["scheme"] != "uniform"):
            raise EdgeSRError(
                "per-channel weight ranges need edge_sr's uniform quantizers without clip correction (WCC is per "
                "layer): pass --no-wcc with odm, or use minmax"
            )
        if config.lambda_m is None:
            config.lambda_m = 1e-6 if "rdn" in arch else 1e-5
        if config.hr_patch is None:
            config.hr_patch = DEFAULT_HR_PATCH.get(scale, 48 * scale)
        if config.mismatch not in MISMATCH_MODES:
            raise EdgeSRError(f"unknown mismatch mode {config.mismatch!r}; choose one of: {', '.join(MISMATCH_MODES)}")
        if config.cosine not in COSINE_MODES:
            raise EdgeSRError(f"unknown cosine mode {config.cosine!r}; choose one of: {', '.join(COSINE_MODES)}")
        if config.similarity_every is None:
            config.similarity_every = 1 if config.cosine == "per-tensor" else DEFAULT_SIMILARITY_EVERY
        if config.cosine == "per-tensor" and config.similarity_every != 1:
            raise EdgeSRError(
                "a per-tensor cosine weighs each tensor's ∇L_M apart, which needs both gradients at every step: "
                "pass --similarity-every 1 with --cosine per-tensor"
            )
        if config.bits is None:
            config.bits = 8 if defaults["scheme"] == "tfmot8" else 4
        if defaults["scheme"]:
            check_bits(config.bits)
        if defaults["scheme"] == "tfmot8" and config.bits != 8:
            raise EdgeSRError(f"tfmot8 is tfmot's 8-bit scheme: it takes no --bits {config.bits}")
        if config.weight_grid not in (None, *WEIGHT_GRIDS):
            raise EdgeSRError(f"unknown weight grid {config.weight_grid!r}; choose one of: {', '.join(WEIGHT_GRIDS)}")
        if defaults["scheme"] in QUANTIZER_SCHEMES:
            config.weight_grid = config.weight_grid or default_weight_grid(config.bits, defaults["scheme"])
        elif config.weight_grid:
            raise EdgeSRError(f"--method {config.method} has no edge_sr weight quantizers: it takes no weight grid")
        if config.weight_bound not in (None, *WEIGHT_BOUNDS):
            raise EdgeSRError(
                f"unknown weight bound {config.weight_bound!r}; choose one of: {', '.join(WEIGHT_BOUNDS)}"
            )
        if defaults["scheme"] == "uniform" and config.weight_bound is None:
            # max |W| of the current weights is the paper's per-layer baseline; per channel the bounds are learned
            config.weight_bound = "learned" if config.clip_correction or config.per_channel else "max"
        if defaults["scheme"] != "uniform" and (config.mismatch != "none" or config.clip_correction):
            raise EdgeSRError(
                f"--method {config.method} takes no mismatch loss or clip correction (they need edge_sr's uniform "
                "quantizers: odm or minmax)"
            )
        for name in ("iterations", "batch_size", "hr_patch", "halve_every", "similarity_every"):
            if getattr(config, name) < 1:
                raise EdgeSRError(f"{name} must be at least 1, got {getattr(config, name)}")
        return config


def quantization_of(config):
    """run.json's `quantization`: what `quantize_model` needs to rebuild the trained model; None for `fp`."""
    scheme = METHODS[config.method]["scheme"]
    if scheme is None:
        return None
    quantization = {"bits": config.bits, "placement": config.placement, "clip_correction": config.clip_correction,
                    "scheme": scheme}  # fmt: skip
    if scheme in QUANTIZER_SCHEMES:
        quantization.update(weight_grid=config.weight_grid, split_qkv=config.split_qkv)
    if config.weight_bound:
        quantization["weight_bound"] = config.weight_bound
    if config.per_channel:
        quantization["per_channel"] = True
    return quantization


def prepare_model(fp_model, config, calibration_batches):
    """The model to train: a quantized copy with initialised ranges, or the FP model itself for `fp`."""
    quantization = quantization_of(config)
    if quantization is None:
        return fp_model
    model = quantize_model(fp_model, **quantization)
    if quantization["scheme"] == "tfmot8":
        initialize_tfmot_ranges(model, fp_model, calibration_batches)
    else:
        initialize_ranges(model, calibration_batches, config.range_init)
    return model


class Trainer:
    """The step counter, optimisers and train step for one model and one resolved TrainConfig: an `ODMModel`,
    the step `model.fit` runs too."""

    def __init__(self, model, config, strategy=None, fp_model=None):
        """`fp_model`: the FP model `model` was quantized from, the teacher of `--target fp` (frozen: a bypassed
        copy of the trained model would move with its weights, and the run diverges)."""
        if config.target == "fp" and fp_model is None:
            raise EdgeSRError("--target fp trains against the FP model: pass it as fp_model")
        self.model, self.config = model, config
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.odm_model = ODMModel(
                model,
                lambda_r=config.lambda_r,
                lambda_m=config.lambda_m,
                mismatch=config.mismatch,
                cosine=config.cosine,
                similarity_every=config.similarity_every,
                teacher=fp_model if config.target == "fp" else None,
            )
            self.odm_model.compile(**odm_optimizers(config.learning_rate, config.range_lr_factor, config.halve_every))
        self._step_fn = tf.function(self.odm_model.distributed_step)

    @property
    def step(self):
        return self.odm_model.step

    @property
    def current_step(self):
        return int(self.step.numpy())

    def checkpoint(self):
        """Everything a resumed run needs: model, the optimisers in use, the step counter, the kept cooperative
        weight."""
        odm = self.odm_model
        parts = {"model": self.model, "weight_optimizer": odm.optimizer, "step": odm.step, "similarity": odm.similarity}
        for name, variables in (("range_optimizer", odm.bound_vars), ("gamma_optimizer", odm.gamma_vars)):
            if variables:
                parts[name] = getattr(odm, name)
        return tf.train.Checkpoint(**parts)

    def train_step(self, lr, hr):
        """One optimisation step on a (distributed) batch; returns the step's losses, and on the steps that
        refresh the cooperative weight the gradient statistics."""
        return {k: float(v) for k, v in self._step_fn(lr, hr, self.odm_model.refreshes_now()).items()}


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


def run_training(
    run, run_dir, resume=False, strategy=None, validate_every=1000, checkpoint_every=1000, show_progress=True
):
    """Assemble a run described by `run` (run.json's content: model source, scale, train config, data) and fit it.

    Returns fit's result plus the trained `trainer`; writes run.json with everything resolved (the schedule
    included, which `--resume` keeps unless told otherwise), once every check has passed.
    """
    trainer, sampler, validate, checkpoints = assemble_training(
        run, run_dir, resume, strategy, validate_every, checkpoint_every, show_progress
    )
    result = fit(
        trainer, sampler, run_dir, validate, validate_every, checkpoint_every, resume, show_progress, checkpoints
    )
    return {**result, "trainer": trainer}


def assemble_training(
    run, run_dir, resume=False, strategy=None, validate_every=1000, checkpoint_every=1000, show_progress=True
):
    """(trainer, sampler, validate, checkpoints) of the run described by `run`: its ranges initialised, or with
    `resume` its latest checkpoint restored (`checkpoints`: the run's CheckpointManager, for `fit`). Every check
    comes first; then run.json is written with everything resolved."""
    from edge_sr.data import PatchSampler
    from edge_sr.models.sources import load_source_model
    from edge_sr.runtime.evaluation import validation_psnr
    from models_tf import model_config

    check_schedule(validate_every, checkpoint_every)
    keras.utils.set_random_seed(run["train"]["seed"])
    tf.config.experimental.enable_op_determinism()
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        fp_model = load_source_model(run["model"], run["scale"])
        arch, scale = model_config(fp_model)["arch"], model_config(fp_model)["scale"]
        # runs from before these options: the narrow grid, one qkv linear, learned weight bounds
        legacy = {"weight_grid": "narrow", "split_qkv": False, "weight_bound": "learned"}
        train = {**legacy, **run["train"]}
        config = TrainConfig(**{f.name: train[f.name] for f in fields(TrainConfig) if f.name in train})
        config = config.resolved(arch, scale)
        sampler = PatchSampler(
            run["data"]["train"], scale, config.hr_patch, config.batch_size, config.seed, progress=show_progress
        )
        calibration = [sampler.batch(i, stream=1)[0] for i in range(run["data"]["calibration_batches"])]
        trainer = Trainer(prepare_model(fp_model, config, calibration), config, strategy, fp_model)
    validate = validation_psnr(run["data"]["val"], scale)
    info = {
        **run,
        "scale": scale,
        "model_config": model_config(fp_model),
        "train": asdict(config),
        "quantization": quantization_of(config),
        "schedule": {"validate_every": validate_every, "checkpoint_every": checkpoint_every},
    }
    check_run_dir(run_dir, info)  # every check before run.json is written
    checkpoints = open_checkpoints(trainer, run_dir, resume)
    write_run(run_dir, info)
    return trainer, sampler, validate, checkpoints


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
