"""Quantization-aware training on one loop: ODM (Hong & Lee, ECCV 2024) and the baselines it is measured against.

The train step (`edge_sr.methods.qat.ODMModel`'s, which `model.fit` runs too) computes the reconstruction loss
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

from dataclasses import asdict, dataclass, fields

import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.methods.loop import check_schedule, fit, open_checkpoints
from edge_sr.methods.qat import COSINE_MODES, MISMATCH_MODES, ODMModel, odm_optimizers
from edge_sr.models.rundir import (
    check_run_dir,
    write_run,
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
