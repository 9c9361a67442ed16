"""Post-training quantization: 2DQuant (Liu et al., NeurIPS 2024) and the PTQ baselines, on the training harness.

Stage 1 sets every quantizer's range from one FP forward over a calibration batch: `minmax`, `percentile` or
DOBI (`edge_sr.quant.ranges`). Stage 2 (DQC, method `2dquant`) learns only the bounds, weights frozen, by
distilling the FP model — the same quantized model with its quantizers bypassed — into the quantized one. Per
image, the paper's Eq. (4)–(6):

    L = ‖O − O_q‖₁ / (C·H·W) + λ · Σ_stages ‖F / ‖F‖ − F̂ / ‖F̂‖‖₂² / (C_i·H_i·W_i)

summed over the batch: O on the [0, 1] pixel scale, F a stage's output (SwinIR's Swin-block stacks, before each
residual group's conv and skip; EDSR's four groups of residual blocks; RDN's dense blocks) normalised per image.
Divided by its size, each stage's term is a small regulariser and DQC follows the output. `feature_term="distance"`
is the form edge_sr used before: the unsquared distance, not divided by the size, averaged over the batch (it
outweighed the output term ~200×).

The bounds learn with `LogBoundAdam` (relative steps: a per-channel bound of 1e-3 cannot cross zero at lr 1e-2),
cosine decay; the stage-1 model is validated before the first step, so the best bounds on the validation set,
which are kept, are never worse than DOBI's. The run directory is `train`'s, so `convert`, `evaluate` and
`--resume` take either.
"""

import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.methods.loop import check_schedule, fit, open_checkpoints
from edge_sr.methods.qat import range_variables
from edge_sr.models.rundir import check_run_dir, restore_best, save_best, write_run
from edge_sr.quant.placement import default_weight_grid, quantize_model
from edge_sr.quant.quantizer import WEIGHT_GRIDS, bypass_quantizers, check_bits
from edge_sr.quant.range_optimizer import LogBoundAdam
from edge_sr.quant.ranges import DOBI_VARIANTS, initialize_ranges
from models_tf import model_config

# method -> (stage-1 range initialisation, whether DQC follows)
METHODS = {
    "2dquant": ("dobi", True),
    "dobi": ("dobi", False),
    "percentile": ("percentile", False),
    "minmax": ("minmax", False),
}

# The residual stages whose outputs DQC aligns, by layer name; EDSR's blocks are split into STAGE_GROUPS groups.
STAGE_OUTPUTS = {
    "edsr": r"body_\d+_add",
    "rdn": r"rdb_\d+_add",
    "isr-rdn": r"LRL_\d+",
}
STAGE_GROUPS = {"edsr": 4}
# SwinIR's stages are the tensors each residual group's conv reads: its Swin-block stack output, before the conv
# and the group's skip add (2DQuant's released code hooks the BasicLayer output there).
STAGE_INPUTS = {"swinir": r"layers_\d+_conv"}
FEATURE_TERMS = ("paper", "distance")


@dataclass
class CalibrationConfig:
    method: str = "2dquant"
    bits: int = 4
    placement: str = "paper"
    per_channel: bool = False  # per-output-channel weight ranges (beyond the paper: what int8 TFLite uses)
    weight_grid: str | None = None  # None: mid-rise (the papers' 2^b levels) up to 4 bits, narrow above
    split_qkv: bool = True  # SwinIR: q, k and v linears, each with its own quantizers (2DQuant's split)
    iterations: int = 3000  # DQC steps (the paper's)
    batch_size: int = 32  # DQC's (the paper's)
    init_batch_size: int = 32  # LR patches in each stage-1 batch (the paper's DOBI batch)
    lr_patch: int = 64
    learning_rate: float = 1e-2
    lambda_f: float = 5.0  # weight of the feature term (the released code's λ, which goes with the paper's form)
    feature_term: str = "paper"  # or "distance": the unsquared, unnormalised form (see the module docstring)
    dobi_variant: str = "paper"
    seed: int = 0

    def resolved(self):
        """A validated copy (iterations is 0 for the methods without DQC)."""
        if self.method not in METHODS:
            raise EdgeSRError(f"unknown method {self.method!r}; choose one of: {', '.join(METHODS)}")
        if self.dobi_variant not in DOBI_VARIANTS:
            raise EdgeSRError(f"unknown DOBI variant {self.dobi_variant!r}; choose one of: {', '.join(DOBI_VARIANTS)}")
        if self.feature_term not in FEATURE_TERMS:
            raise EdgeSRError(f"unknown feature term {self.feature_term!r}; choose one of: {', '.join(FEATURE_TERMS)}")
        check_bits(self.bits)
        if self.weight_grid not in (None, *WEIGHT_GRIDS):
            raise EdgeSRError(f"unknown weight grid {self.weight_grid!r}; choose one of: {', '.join(WEIGHT_GRIDS)}")
        for name in ("batch_size", "init_batch_size", "lr_patch"):
            if getattr(self, name) < 1:
                raise EdgeSRError(f"{name} must be at least 1, got {getattr(self, name)}")
        config = CalibrationConfig(**asdict(self))
        config.weight_grid = config.weight_grid or default_weight_grid(config.bits)
        if not METHODS[self.method][1]:
            config.iterations = 0
        elif config.iterations < 1:
            raise EdgeSRError(f"2dquant needs at least 1 iteration, got {config.iterations}")
        return config

    @property
    def quantization(self):
        """What `quantize_model` needs to rebuild the calibrated model (stored in run.json)."""
        return {
            "bits": self.bits,
            "placement": self.placement,
            "per_channel": self.per_channel,
            "weight_grid": self.weight_grid,
            "split_qkv": self.split_qkv,
        }


def stage_output_names(model):
    """The layers whose outputs DQC's feature term compares, in model order."""
    arch = model_config(model)["arch"]
    if arch in STAGE_INPUTS:
        readers = [layer for layer in model.layers if re.fullmatch(STAGE_INPUTS[arch], layer.name)]
        return [reader.inbound_nodes[0].inbound_layers.name for reader in readers]
    if arch not in STAGE_OUTPUTS:
        raise EdgeSRError(f"2DQuant has no stage definition for architecture {arch!r}")
    names = [layer.name for layer in model.layers if re.fullmatch(STAGE_OUTPUTS[arch], layer.name)]
    groups = STAGE_GROUPS.get(arch)
    if groups and len(names) > groups:  # the last block of each of `groups` equal runs of blocks
        names = [names[(len(names) * (g + 1)) // groups - 1] for g in range(groups)]
    return names


def _per_image(tensor):
    return tf.reshape(tensor, [tf.shape(tensor)[0], -1])


def feature_terms(teacher, student, form="paper"):
    """One stage's feature term for each image in the batch, whatever else is in the batch:
    ‖F/‖F‖ − F̂/‖F̂‖‖₂² / (C·H·W) (`paper`), or ‖F/‖F‖ − F̂/‖F̂‖‖₂ (`distance`)."""

    def normalised(features):
        flat = _per_image(features)
        return flat / (tf.norm(flat, axis=1, keepdims=True) + 1e-12)

    difference = normalised(teacher) - normalised(student)
    if form == "paper":
        return tf.reduce_mean(tf.square(difference), axis=1)
    return tf.norm(difference, axis=1)


def distillation_loss(teacher_outputs, student_outputs, lambda_f, feature_term="paper"):
    """DQC's (loss, output term, feature term) from [output, *stage features] of the FP teacher and the quantized
    student: summed over the batch's images for the paper's form, averaged for `distance`."""
    (teacher, *teacher_stages), (student, *student_stages) = teacher_outputs, student_outputs
    reduce = tf.reduce_sum if feature_term == "paper" else tf.reduce_mean
    output = reduce(tf.reduce_mean(tf.abs(_per_image(student - teacher)), axis=1)) / 255.0
    pairs = zip(teacher_stages, student_stages, strict=True)
    feature = reduce(tf.add_n([feature_terms(t, s, feature_term) for t, s in pairs]))
    return output + lambda_f * feature, output, feature


class Distiller:
    """DQC for `fit`: trains only `model`'s quantizer bounds against its own bypassed (FP) forward pass."""

    def __init__(self, model, config, strategy=None):
        self.model, self.config = model, config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.bounds = range_variables(model)
        stages = [model.get_layer(name).output for name in stage_output_names(model)]
        self.features = keras.Model(model.inputs, [model.output, *stages])
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.iterations)
        self.optimizer = LogBoundAdam(schedule)
        self._step_fn = tf.function(self._step)

    @property
    def current_step(self):
        return int(self.step.numpy())

    def checkpoint(self):
        return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, step=self.step)

    def _step(self, lr):
        with bypass_quantizers():  # traced as the FP forward: the teacher
            teacher = self.features(lr, training=False)
        with tf.GradientTape() as tape:
            student = self.features(lr, training=False)
            loss, output, feature = distillation_loss(teacher, student, self.config.lambda_f, self.config.feature_term)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, self.bounds), self.bounds, strict=True))
        self.step.assign_add(1)
        return {"loss": loss, "output": output, "feature": feature}

    def train_step(self, lr, hr=None):
        """One DQC step on a batch of LR patches (HR, if given, is not used: calibration needs no labels)."""
        return {name: float(value) for name, value in self._step_fn(lr).items()}


def run_calibration(run, run_dir, resume=False, validate_every=500, checkpoint_every=500, show_progress=True):
    """Calibrate the run described by `run` (run.json's content) into `run_dir`.

    Returns fit's result and `model`, the quantized model with the best bounds found.
    """
    from edge_sr.data import PatchSampler
    from edge_sr.models.sources import load_source_model
    from edge_sr.runtime.evaluation import validation_psnr

    check_schedule(validate_every, checkpoint_every)
    # runs from before the paper's feature term, the mid-rise weight grid and the qkv split
    calibration = {"feature_term": "distance", "weight_grid": "narrow", "split_qkv": False, **run["calibrate"]}
    keras.utils.set_random_seed(calibration["seed"])
    tf.config.experimental.enable_op_determinism()  # so a resumed run repeats the uninterrupted one
    config = CalibrationConfig(**{f.name: calibration[f.name] for f in fields(CalibrationConfig)}).resolved()
    run_dir = Path(run_dir)
    if resume and not config.iterations:
        raise EdgeSRError(f"{run_dir} is a {config.method} run: it has no DQC steps to resume, and it is finished")
    fp_model = load_source_model(run["model"], run["scale"])
    scale = model_config(fp_model)["scale"]
    sampler = PatchSampler(
        run["data"]["calibration"],
        scale,
        config.lr_patch * scale,
        config.batch_size,
        config.seed,
        progress=show_progress,
    )
    if config.iterations and len(sampler.pairs) < config.batch_size:
        raise EdgeSRError(
            f"{len(sampler.pairs)} calibration image(s) are fewer than one batch of {config.batch_size}: "
            "add images or lower --batch-size"
        )
    model = quantize_model(fp_model, **config.quantization)
    if not resume:  # a resumed run restores its bounds from the checkpoint
        batches = [
            sampler.batch(i, stream=1, size=config.init_batch_size)[0]
            for i in range(run["data"]["calibration_batches"])
        ]
        initialize_ranges(model, batches, METHODS[config.method][0], config.dobi_variant)
    validate = validation_psnr(run["data"]["val"], scale)
    info = {
        **run,
        "scale": scale,
        "model_config": model_config(fp_model),
        "calibrate": asdict(config),
        "quantization": config.quantization,
        "schedule": {"validate_every": validate_every, "checkpoint_every": checkpoint_every},
    }
    check_run_dir(run_dir, info)  # every check before run.json is written
    if not config.iterations:
        if (run_dir / "best").exists():
            raise EdgeSRError(f"{run_dir} already holds this {config.method} run, finished; choose another --run-dir")
        write_run(run_dir, info)
        psnr = validate(model)
        save_best(run_dir, model, 0, psnr)
        return {"status": "finished", "step": 0, "best_psnr": psnr, "model": model}
    distiller = Distiller(model, config)
    checkpoints = open_checkpoints(distiller, run_dir, resume)
    write_run(run_dir, info)
    if not resume:  # DQC starts from the best so far: its own stage-1 bounds
        save_best(run_dir, model, 0, validate(model))
    result = fit(
        distiller, sampler, run_dir, validate, validate_every, checkpoint_every, resume, show_progress, checkpoints
    )
    restore_best(run_dir, model)
    return {**result, "model": model}
