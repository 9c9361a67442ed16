"""Quantization-aware training on one loop: ODM (Hong & Lee, ECCV 2024) and the baselines it is measured against.

The train step computes the reconstruction loss L_R = L1(SR, HR) and ODM's mismatch loss
L_M = Σ_sites ‖X − q(X; l, u)‖₂ over the quantized activations (ranges held fixed), takes both gradients and
combines them for the network weights as

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

import contextlib
import functools
import math
import signal
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.progress import progress
from edge_sr.quant.layers import QUANTIZER_SCHEMES, WEIGHT_BOUNDS
from edge_sr.quant.placement import default_weight_grid, quantize_model, quantizer_sites
from edge_sr.quant.quantizer import WEIGHT_GRIDS, UniformQuantizer, check_bits, fake_quant, observe_quantizers
from edge_sr.quant.range_optimizer import LogBoundAdam
from edge_sr.quant.ranges import initialize_ranges, initialize_tfmot_ranges
from edge_sr.rundir import RUN_FILE, append_history, best_psnr, read_history, save_best, write_history, write_run

# What each method sets; for the `uniform` scheme `mismatch` and `clip_correction` can be overridden (the paper's
# ablations). pams: PAMS's quantizers (no SKT distillation loss); tfmot8: tfmot's default 8-bit QAT.
METHODS = {
    "odm": {"scheme": "uniform", "range_init": "percentile", "clip_correction": True, "mismatch": "cooperative"},
    "minmax": {"scheme": "uniform", "range_init": "minmax", "clip_correction": False, "mismatch": "none"},
    "pams": {"scheme": "pams", "range_init": "pams", "clip_correction": False, "mismatch": "none"},
    "tfmot8": {"scheme": "tfmot8", "range_init": "tfmot", "clip_correction": False, "mismatch": "none"},
    "fp": {"scheme": None, "range_init": None, "clip_correction": False, "mismatch": "none"},
}
MISMATCH_MODES = ("cooperative", "naive", "none")
COSINE_MODES = ("global", "per-tensor")
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
            config.weight_bound = "learned" if config.clip_correction else "max"
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
        initialize_ranges(model, calibration_batches, METHODS[config.method]["range_init"])
    return model


def range_variables(model):
    """The trainable variables of every quantizer in `model`: ranges, WCC's gamma (tfmot's ranges are not
    trainable: its quantizers move them themselves)."""
    return [variable for site in quantizer_sites(model) for variable in site.variables.values() if variable.trainable]


def clip_correction_gammas(model):
    """WCC's gamma of every clip-corrected weight quantizer in `model`."""
    return [site.variables["gamma"] for site in quantizer_sites(model) if "gamma" in site.variables]


def _zeros_for_none(gradients, variables):
    return [
        tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(gradients, variables, strict=True)
    ]


def _dot(a, b):
    return tf.add_n([tf.reduce_sum(x * y) for x, y in zip(a, b, strict=True)])


def cooperative_weight(grad_r, grad_m, per_tensor=False):
    """ODM's sim = (cos + 1) / 2 between the two gradients: 1 when aligned, 0 when opposite (one per tensor
    with `per_tensor`, else one for the whole flattened gradient)."""
    eps = 1e-12
    if per_tensor:
        return [
            (tf.reduce_sum(r * m) / (tf.norm(r) * tf.norm(m) + eps) + 1.0) / 2.0
            for r, m in zip(grad_r, grad_m, strict=True)
        ]
    cosine = _dot(grad_r, grad_m) / (tf.sqrt(_dot(grad_r, grad_r) * _dot(grad_m, grad_m)) + eps)
    return [(cosine + 1.0) / 2.0] * len(grad_r)


def gradient_statistics(grad_r, grad_m):
    """The paper's Fig. 2: cosine of the two gradients and the share of parameters (among those both losses
    reach) whose gradients disagree in sign."""
    eps = 1e-12
    cosine = _dot(grad_r, grad_m) / (tf.sqrt(_dot(grad_r, grad_r) * _dot(grad_m, grad_m)) + eps)
    both = tf.add_n(
        [tf.reduce_sum(tf.cast((r != 0) & (m != 0), tf.float32)) for r, m in zip(grad_r, grad_m, strict=True)]
    )
    opposed = tf.add_n([tf.reduce_sum(tf.cast(r * m < 0, tf.float32)) for r, m in zip(grad_r, grad_m, strict=True)])
    return cosine, opposed / tf.maximum(both, 1.0)


def mismatch_terms(collected):
    """An observer for `observe_quantizers` that appends ‖X − q(X)‖₂ of each activation site to `collected`."""

    def observe(quantizer, inputs, weights):
        if quantizer.quantizes_weights:
            return
        lower, upper = (tf.stop_gradient(bound) for bound in quantizer.range(inputs, weights))
        collected.append(tf.norm(inputs - fake_quant(inputs, lower, upper, quantizer.levels)))

    return observe


class Trainer:
    """Owns the optimisers and the train step for one model and one resolved TrainConfig."""

    def __init__(self, model, config, strategy=None):
        self.model, self.config = model, config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.gamma_vars = clip_correction_gammas(model)
        gamma_ids = {id(v) for v in self.gamma_vars}
        # The bounds first, then the gammas: how the step splits the range gradients between their optimizers.
        self.range_vars = [v for v in range_variables(model) if id(v) not in gamma_ids] + self.gamma_vars
        range_ids = {id(v) for v in self.range_vars}
        self.weight_vars = [v for v in model.trainable_variables if id(v) not in range_ids]
        with self.strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.weight_optimizer = keras.optimizers.Adam(self._schedule(config.learning_rate))
            # The cooperative weight of the last refresh, reused until the next (see `similarity_every`).
            self.similarity = tf.Variable(1.0, trainable=False, name="similarity")
            if len(self.range_vars) > len(self.gamma_vars):
                self.range_optimizer = LogBoundAdam(self._schedule(config.learning_rate * config.range_lr_factor))
            if self.gamma_vars:  # the paper trains gamma at the base learning rate, not the ranges' 10×
                self.gamma_optimizer = LogBoundAdam(self._schedule(config.learning_rate))
        self._step_fn = tf.function(self._distributed_step)

    def _schedule(self, rate):
        return keras.optimizers.schedules.ExponentialDecay(rate, self.config.halve_every, 0.5, staircase=True)

    @property
    def current_step(self):
        return int(self.step.numpy())

    def checkpoint(self):
        """Everything a resumed run needs: model, both optimisers, the step counter, the kept cooperative weight."""
        parts = {
            "model": self.model,
            "weight_optimizer": self.weight_optimizer,
            "step": self.step,
            "similarity": self.similarity,
        }
        for name in ("range_optimizer", "gamma_optimizer"):
            if hasattr(self, name):
                parts[name] = getattr(self, name)
        return tf.train.Checkpoint(**parts)

    def _replica_step(self, lr, hr, refresh):
        """One replica's share of a step. With `refresh` (the paper's step): ∇L_R and ∇L_M in two backward passes,
        combined with the cooperative weight they give, which is kept. Otherwise, on the steps in between: one
        backward pass of λ_R·L_R + λ_M·w·L_M, w the kept weight (1 for the naive mismatch)."""
        config = self.config
        context = tf.distribute.get_replica_context()
        terms = []
        observer = observe_quantizers(mismatch_terms(terms)) if config.mismatch != "none" else contextlib.nullcontext()
        with tf.GradientTape(persistent=refresh) as tape:
            with observer:
                sr = self.model(lr, training=True)
            loss_r = tf.reduce_mean(tf.abs(sr - hr))
            loss_m = tf.add_n(terms) if terms else tf.constant(0.0)
            if terms and not refresh:
                weight = self.similarity if config.mismatch == "cooperative" else 1.0
                objective, scale = config.lambda_r * loss_r + config.lambda_m * weight * loss_m, 1.0
            else:
                objective, scale = loss_r, config.lambda_r
        variables = self.weight_vars + self.range_vars
        grads = _zeros_for_none(tape.gradient(objective, variables), variables)
        grads = context.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
        grads_r, range_grads = grads[: len(self.weight_vars)], [scale * g for g in grads[len(self.weight_vars) :]]
        weight_grads = [scale * g for g in grads_r]
        metrics = {"loss": loss_r}
        if terms:
            metrics["mismatch"] = loss_m
        if terms and refresh:
            grads_m = _zeros_for_none(tape.gradient(loss_m, self.weight_vars), self.weight_vars)
            grads_m = context.all_reduce(tf.distribute.ReduceOp.MEAN, grads_m)
            metrics["cosine"], metrics["conflict"] = gradient_statistics(grads_r, grads_m)
            if config.mismatch == "cooperative":
                sims = cooperative_weight(grads_r, grads_m, per_tensor=config.cosine == "per-tensor")
                if config.cosine == "global":
                    metrics["similarity"] = sims[0]
            else:
                sims = [1.0] * len(grads_m)
            weight_grads = [
                config.lambda_r * r + config.lambda_m * s * m for r, s, m in zip(grads_r, sims, grads_m, strict=True)
            ]
        del tape
        self.weight_optimizer.apply_gradients(
            zip(weight_grads, self.weight_vars, strict=True), experimental_aggregate_gradients=False
        )
        bounds = len(self.range_vars) - len(self.gamma_vars)
        for name, grads, variables in (
            ("range_optimizer", range_grads[:bounds], self.range_vars[:bounds]),
            ("gamma_optimizer", range_grads[bounds:], self.range_vars[bounds:]),
        ):
            if variables:
                getattr(self, name).apply_gradients(
                    zip(grads, variables, strict=True), experimental_aggregate_gradients=False
                )
        return metrics

    def _distributed_step(self, lr, hr, refresh):
        per_replica = self.strategy.run(functools.partial(self._replica_step, refresh=refresh), args=(lr, hr))
        self.step.assign_add(1)
        metrics = {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}
        if "similarity" in metrics:
            self.similarity.assign(metrics["similarity"])
        return metrics

    def train_step(self, lr, hr):
        """One optimisation step on a (distributed) batch; returns the step's losses, and on the steps that
        refresh the cooperative weight the gradient statistics."""
        refresh = self.config.mismatch != "none" and self.current_step % self.config.similarity_every == 0
        return {k: float(v) for k, v in self._step_fn(lr, hr, refresh).items()}


def collapsed_ranges(model):
    """The quantizer sites (`layer/site`) whose range is no longer a finite, non-empty interval."""
    bad = []
    for site in quantizer_sites(model):
        if not isinstance(site.quantizer, UniformQuantizer):  # tfmot's own
            continue
        lower, upper = site.quantizer.range(site.weight, site.variables)
        finite = bool(tf.reduce_all(tf.math.is_finite(lower)) and tf.reduce_all(tf.math.is_finite(upper)))
        if not finite or bool(tf.reduce_any(upper <= lower)):
            bad.append(f"{site.layer}/{site.site}")
    return bad


def _stop_broken_run(model, what, run_dir):
    collapsed = collapsed_ranges(model)
    where = f"collapsed quantizer range(s): {', '.join(collapsed)}" if collapsed else "no range collapsed"
    raise EdgeSRError(
        f"{what} ({where}); the last good checkpoint in {run_dir / 'checkpoints'} is kept: resume with a lower --lr"
    )


class _StopRequest:
    """SIGINT/SIGTERM ask the loop to stop after the current step (and save), instead of killing it."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self._previous = {sig: signal.signal(sig, self._request) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _request(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def fit(
    trainer,
    sampler,
    run_dir,
    validate,
    validate_every=1000,
    checkpoint_every=1000,
    resume=False,
    show_progress=True,
):
    """Train `trainer` for its config's iterations, writing the run directory; returns the final status.

    `validate(model) -> PSNR` picks the best weights. Checkpoints are written every `checkpoint_every` steps, at
    the end and when SIGINT/SIGTERM arrives (then status is "interrupted"); `resume` continues from the latest.
    A non-finite loss, or a quantizer range that is no longer a finite interval when the run validates or saves,
    stops the run with an error naming the ranges that collapsed; the last good checkpoint stays the latest.
    """
    config, run_dir = trainer.config, Path(run_dir)
    for name, every in (("--validate-every", validate_every), ("--checkpoint-every", checkpoint_every)):
        if every < 1:
            raise EdgeSRError(f"{name} must be at least 1 step, not {every}")
    manager = tf.train.CheckpointManager(trainer.checkpoint(), str(run_dir / "checkpoints"), max_to_keep=2)
    if resume:
        if manager.latest_checkpoint is None:
            raise EdgeSRError(f"nothing to resume in {run_dir}: it has no checkpoint")
        history = read_history(run_dir)  # before the restore: a refused restore warns of it at exit
        restored = manager.checkpoint.restore(manager.latest_checkpoint)
        try:
            restored.assert_existing_objects_matched()
        except AssertionError:
            restored.expect_partial()  # no "unrestored values" warnings after the error line
            raise EdgeSRError(
                f"the checkpoint in {run_dir} does not fit the model its {RUN_FILE} describes; start a new run in "
                "another --run-dir"
            ) from None
        write_history(run_dir, [e for e in history if e["step"] < trainer.current_step])
    elif manager.latest_checkpoint is not None:
        raise EdgeSRError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --run-dir")
    start = trainer.current_step
    best = best_psnr(run_dir)  # -inf in a new run, unless its caller validated the starting point
    writer = tf.summary.create_file_writer(str(run_dir / "logs"))
    dataset = trainer.strategy.experimental_distribute_dataset(
        sampler.dataset(start_step=start, steps=max(config.iterations - start, 0))
    )
    bar = progress(
        total=config.iterations, initial=start, enabled=show_progress, desc=f"{config.method} W{config.bits}"
    )
    status = "finished"
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
                status = "interrupted"
                break
    return {"status": status, "step": trainer.current_step, "best_psnr": best}


def run_training(
    run, run_dir, resume=False, strategy=None, validate_every=1000, checkpoint_every=1000, show_progress=True
):
    """Assemble a run described by `run` (run.json's content: model source, scale, train config, data) and fit it.

    Returns fit's result plus the trained `trainer`; writes run.json with everything resolved.
    """
    from edge_sr.data import PatchSampler
    from edge_sr.evaluation import validation_psnr
    from edge_sr.sources import load_source_model
    from models_tf import model_config

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
        trainer = Trainer(prepare_model(fp_model, config, calibration), config, strategy)
    write_run(
        run_dir,
        {
            **run,
            "scale": scale,
            "model_config": model_config(fp_model),
            "train": asdict(config),
            "quantization": quantization_of(config),
        },
    )
    validate = validation_psnr(run["data"]["val"], scale)
    result = fit(trainer, sampler, run_dir, validate, validate_every, checkpoint_every, resume, show_progress)
    return {**result, "trainer": trainer}


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


def compare_variants(model, scale, train, val, eval_sets, bits_list, variants, iterations, out_dir, **train_overrides):
    """Train each (bits, variant) for the same steps from the same FP model and score it on `eval_sets`.

    Returns one row per run: bits, variant, PSNR per eval set.
    """
    from edge_sr.evaluation import evaluate_dataset
    from edge_sr.rundir import restore_best
    from edge_sr.upscalers import KerasUpscaler

    configs = {
        (bits, v): variant_config(v, bits, iterations, **train_overrides) for bits in bits_list for v in variants
    }
    rows = []
    for (bits, variant), config in configs.items():
        run = {
            "kind": "train",
            "model": model,
            "scale": scale,
            "train": asdict(config),
            "data": {"train": [str(f) for f in train], "val": str(val), "calibration_batches": 4},
        }
        run_dir = Path(out_dir) / f"w{bits}a{bits}-{variant}"
        result = run_training(run, run_dir, validate_every=iterations, checkpoint_every=iterations)
        trainer = result["trainer"]
        restore_best(run_dir, trainer.model)
        upscaler = KerasUpscaler(trainer.model, variant, scale)
        scores = {Path(s).name: evaluate_dataset(upscaler, s, scale, show_progress=False)["psnr"] for s in eval_sets}
        rows.append({"bits": bits, "variant": variant, "weight_grid": trainer.config.weight_grid, "psnr": scores})
    return rows


def variant_trainers(fp_model, sampler, variants, bits, calibration_batches=4, **train_overrides):
    """A fresh Trainer per variant on `fp_model` (ranges initialised from the sampler's calibration stream): what
    `benchmark qat` times side by side."""
    from models_tf import model_config

    arch, scale = model_config(fp_model)["arch"], model_config(fp_model)["scale"]
    calibration = [sampler.batch(i, stream=1)[0] for i in range(calibration_batches)]
    trainers = {}
    for variant in variants:
        config = variant_config(variant, bits, 1, **train_overrides).resolved(arch, scale)
        trainers[variant] = Trainer(prepare_model(fp_model, config, calibration), config)
    return trainers
