"""ODM inside `model.fit`: the train step and the callback for any tf_keras model quantized with edge_sr's quantizers.

`ODMModel` wraps a quantized model (`edge_sr.quant.quantize_model`, or tfmot's `quantize_apply` with
`UniformQuantizeConfig`) and owns ODM's train step: L_R = L1(SR, HR) and the mismatch loss L_M over the quantized
activations, combined for the network weights as λ_R·∇L_R + λ_M·sim·∇L_M (see `edge_sr.methods.training`'s docstring for
the modes and `similarity_every`), the quantizer ranges and WCC's gamma each on their own `LogBoundAdam`.
`python -m edge_sr.train` runs this same step (`Trainer` holds an `ODMModel`). `ODMCallback` does what belongs in a
callback: the percentile range start, the paper's Fig. 2 statistics in `logs`, and the collapsed-range guard.

    model = ODMModel(quantized)
    model.compile(**odm_optimizers(1e-4))
    model.fit(dataset, callbacks=[ODMCallback(calibration=dataset)])
"""

import contextlib
import functools
import itertools
import math

import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.quant.layers import CompletionQuantizer
from edge_sr.quant.placement import quantizer_sites
from edge_sr.quant.quantizer import UniformQuantizer, fake_quant, observe_quantizers
from edge_sr.quant.range_optimizer import LogBoundAdam
from edge_sr.quant.ranges import initialize_ranges

MISMATCH_MODES = ("cooperative", "naive", "none")
COSINE_MODES = ("global", "per-tensor")
GRADIENT_STATISTICS = ("cosine", "conflict", "similarity")  # in a step's metrics only when it took both gradients


def range_variables(model):
    """The trainable variables of every quantizer in `model`, each once (a shared range is one): ranges, WCC's
    gamma (tfmot's ranges are not trainable: its quantizers move them themselves; nor is a fixed pixel grid)."""
    variables = {}
    for site in quantizer_sites(model):
        variables.update({id(v): v for v in site.variables.values() if v.trainable})
    return list(variables.values())


def clip_correction_gammas(model):
    """WCC's gamma of every clip-corrected weight quantizer in `model`."""
    return [site.variables["gamma"] for site in quantizer_sites(model) if "gamma" in site.variables]


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


def mismatch_squares(collected):
    """An observer for `observe_quantizers` that appends ‖X − q(X)‖₂² of each activation site to `collected`
    (squared: the squares of several replicas' shares of a batch add up to the whole batch's)."""

    def observe(quantizer, inputs, weights):
        if quantizer.quantizes_weights or isinstance(quantizer, CompletionQuantizer):  # the paper's sites only
            return
        lower, upper = (tf.stop_gradient(bound) for bound in quantizer.range(inputs, weights))
        collected.append(tf.reduce_sum(tf.square(inputs - fake_quant(inputs, lower, upper, quantizer.levels))))

    return observe


def mismatch_loss(squares, context):
    """L_M = Σ_sites ‖X − q(X)‖₂ over the global batch, from this replica's `squares` (of `mismatch_squares`).

    Returns L_M and a surrogate whose gradient, averaged over the replicas as every gradient of the step is, is
    ∇L_M: R·Σ_sites ‖X_r − q(X_r)‖₂² / (2·L_site) with the global L_site held fixed (d‖X‖₂ = d‖X‖₂² / 2‖X‖₂). A mean
    of per-replica norms would be 1/√R of L_M.
    """
    squares = tf.stack(squares)
    norms = tf.sqrt(tf.stop_gradient(context.all_reduce(tf.distribute.ReduceOp.SUM, squares)))
    surrogate = context.num_replicas_in_sync * tf.reduce_sum(tf.math.divide_no_nan(squares, 2.0 * norms))
    return tf.reduce_sum(norms), surrogate


def odm_optimizers(learning_rate, range_lr_factor=10.0, halve_every=None):
    """`compile` arguments for ODM's recipe: Adam for the weights at `learning_rate`, `LogBoundAdam` for the ranges
    at `range_lr_factor` × it and for WCC's gamma at the rate itself; each halved every `halve_every` steps."""

    def schedule(rate):
        if halve_every is None:
            return rate
        return keras.optimizers.schedules.ExponentialDecay(rate, halve_every, 0.5, staircase=True)

    return {
        "optimizer": keras.optimizers.Adam(schedule(learning_rate)),
        "range_optimizer": LogBoundAdam(schedule(learning_rate * range_lr_factor)),
        "gamma_optimizer": LogBoundAdam(schedule(learning_rate)),
    }


def _first_replica_variable(initial, name):
    # Every replica assigns it the same all-reduced value; the first one's write is kept.
    return tf.Variable(initial, trainable=False, name=name, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


class ODMModel(keras.Model):
    """A quantized model whose `fit` trains it with ODM: compile it with `odm_optimizers(...)` (or your own three
    optimizers) and fit it on (LR, HR) batches. Create it in the strategy's scope, as the quantized model."""

    def __init__(
        self,
        quantized_model,
        lambda_r=1.0,
        lambda_m=1e-5,
        mismatch="cooperative",
        cosine="global",
        similarity_every=4,
        teacher=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mismatch not in MISMATCH_MODES:
            raise EdgeSRError(f"unknown mismatch mode {mismatch!r}; choose one of: {', '.join(MISMATCH_MODES)}")
        if cosine not in COSINE_MODES:
            raise EdgeSRError(f"unknown cosine mode {cosine!r}; choose one of: {', '.join(COSINE_MODES)}")
        if similarity_every < 1:
            raise EdgeSRError(f"similarity_every must be at least 1, got {similarity_every}")
        if cosine == "per-tensor" and similarity_every != 1:
            raise EdgeSRError("a per-tensor cosine needs both gradients at every step: pass similarity_every=1")
        self.quantized_model = quantized_model
        self.lambda_r, self.lambda_m, self.mismatch = lambda_r, lambda_m, mismatch
        self.cosine, self.similarity_every, self.teacher = cosine, similarity_every, teacher
        gammas = clip_correction_gammas(quantized_model)
        gamma_ids = {id(v) for v in gammas}
        self.bound_vars = [v for v in range_variables(quantized_model) if id(v) not in gamma_ids]
        self.gamma_vars = gammas
        quantizer_ids = gamma_ids | {id(v) for v in self.bound_vars}
        self.weight_vars = [v for v in quantized_model.trainable_variables if id(v) not in quantizer_ids]
        self.step = _first_replica_variable(tf.constant(0, tf.int64), "step")
        # The cooperative weight of the last refresh, reused until the next (see `similarity_every`).
        self.similarity = _first_replica_variable(1.0, "similarity")
        self.range_optimizer = self.gamma_optimizer = None
        self._steps = {}  # refresh -> the compiled distributed step of model.fit

    def call(self, inputs, training=None):
        return self.quantized_model(inputs, training=training)

    def compile(self, optimizer="adam", range_optimizer=None, gamma_optimizer=None, **kwargs):
        """`optimizer` trains the network weights, `range_optimizer` the quantizer bounds, `gamma_optimizer` WCC's
        gamma (each needed only where the model has such variables)."""
        for name, given, variables in (
            ("range_optimizer", range_optimizer, self.bound_vars),
            ("gamma_optimizer", gamma_optimizer, self.gamma_vars),
        ):
            if variables and given is None:
                raise EdgeSRError(
                    f"the model has quantizer variables for a {name}: pass one to compile, e.g. "
                    "model.compile(**edge_sr.methods.qat.odm_optimizers(learning_rate))"
                )
        super().compile(optimizer=optimizer, **kwargs)
        self.range_optimizer, self.gamma_optimizer = range_optimizer, gamma_optimizer
        self._steps = {}

    def refreshes_now(self):
        """Whether the next step takes both gradients and refreshes the cooperative weight."""
        return self.mismatch != "none" and int(self.step.numpy()) % self.similarity_every == 0

    def replica_step(self, lr, hr, refresh):
        """One replica's share of a step. With `refresh` (the paper's step): ∇L_R and ∇L_M in two backward passes,
        combined with the cooperative weight they give, which is kept. Otherwise, on the steps in between: one
        backward pass of λ_R·L_R + λ_M·w·L_M, w the kept weight (1 for the naive mismatch). Returns the step's
        metrics, averaged over the replicas."""
        context = tf.distribute.get_replica_context()
        mean = functools.partial(context.all_reduce, tf.distribute.ReduceOp.MEAN)
        squares = []
        observer = (
            observe_quantizers(mismatch_squares(squares)) if self.mismatch != "none" else contextlib.nullcontext()
        )
        if self.teacher is not None:  # distillation: the frozen FP model's output is the target
            hr = tf.stop_gradient(self.teacher(lr, training=False))
        with tf.GradientTape(persistent=refresh) as tape:
            with observer:
                sr = self.quantized_model(lr, training=True)
            loss_r = tf.reduce_mean(tf.abs(sr - hr))
            loss_m, loss_m_surrogate = mismatch_loss(squares, context) if squares else (None, None)
            if squares and not refresh:
                weight = self.similarity if self.mismatch == "cooperative" else 1.0
                objective, scale = self.lambda_r * loss_r + self.lambda_m * weight * loss_m_surrogate, 1.0
            else:
                objective, scale = loss_r, self.lambda_r
        range_vars = self.bound_vars + self.gamma_vars
        variables = self.weight_vars + range_vars
        grads = mean(_zeros_for_none(tape.gradient(objective, variables), variables))
        grads_r, range_grads = grads[: len(self.weight_vars)], [scale * g for g in grads[len(self.weight_vars) :]]
        weight_grads = [scale * g for g in grads_r]
        metrics = {"loss": mean(loss_r)}
        if squares:
            metrics["mismatch"] = loss_m
        if squares and refresh:
            grads_m = mean(_zeros_for_none(tape.gradient(loss_m_surrogate, self.weight_vars), self.weight_vars))
            metrics["cosine"], metrics["conflict"] = gradient_statistics(grads_r, grads_m)
            if self.mismatch == "cooperative":
                sims = cooperative_weight(grads_r, grads_m, per_tensor=self.cosine == "per-tensor")
                if self.cosine == "global":
                    metrics["similarity"] = sims[0]
                    self.similarity.assign(sims[0])
            else:
                sims = [1.0] * len(grads_m)
            weight_grads = [
                self.lambda_r * r + self.lambda_m * s * m for r, s, m in zip(grads_r, sims, grads_m, strict=True)
            ]
        del tape
        bounds = len(self.bound_vars)
        for optimizer, optimizer_grads, optimizer_vars in (
            (self.optimizer, weight_grads, self.weight_vars),
            (self.range_optimizer, range_grads[:bounds], self.bound_vars),
            (self.gamma_optimizer, range_grads[bounds:], self.gamma_vars),
        ):
            if optimizer_vars:
                optimizer.apply_gradients(
                    zip(optimizer_grads, optimizer_vars, strict=True), experimental_aggregate_gradients=False
                )
        self.step.assign_add(1)
        return metrics

    def distributed_step(self, lr, hr, refresh):
        """A step on a distributed batch, in the cross-replica context; what `Trainer` and `fit` both run."""
        strategy = self.distribute_strategy
        per_replica = strategy.run(functools.partial(self.replica_step, refresh=refresh), args=(lr, hr))
        # The replicas' metrics are already averaged: any one of them is the step's.
        return {k: strategy.experimental_local_results(v)[0] for k, v in per_replica.items()}

    def train_step(self, data):
        raise EdgeSRError("ODMModel trains through fit() (or edge_sr.methods.training.Trainer), one step per call")

    def make_train_function(self, force=False):
        """fit's step: the refreshing or the in-between step, chosen by the step counter before each call (two
        compiled functions, as the step's two kinds differ in graph, not in a value)."""
        if self.train_function is not None and not force:
            return self.train_function
        if int(self._steps_per_execution.numpy()) != 1:
            raise EdgeSRError("ODMModel runs one step per call: compile it without steps_per_execution")

        def step(iterator, refresh):
            lr, hr = next(iterator)
            metrics = self.distributed_step(lr, hr, refresh)
            self._train_counter.assign_add(1)  # what TensorBoard's batch summaries count by
            return metrics

        def train_function(iterator):
            refresh = self.refreshes_now()
            if refresh not in self._steps:
                self._steps[refresh] = tf.function(functools.partial(step, refresh=refresh), reduce_retracing=True)
            return self._steps[refresh](iterator)

        self.train_function = train_function
        return train_function


class ODMCallback(keras.callbacks.Callback):
    """ODM's bookkeeping around `ODMModel.fit`.

    - on_train_begin: the quantizer ranges start at the mean 1st/99th percentiles (`range_init`) of the FP flow over
      the first `calibration_batches` batches of `calibration` (a dataset or list of (LR, HR) pairs or of LR
      batches); None keeps them (pass None when continuing from a checkpoint).
    - the latest gradient cosine, sign-conflict share and cooperative weight (measured every `similarity_every`
      steps) go into every batch's and epoch's `logs`, hence into History and TensorBoard: list this callback
      before TensorBoard.
    - a non-finite loss, or a quantizer range that is no longer a finite interval at an epoch's end, stops training
      with an EdgeSRError naming the ranges.
    """

    def __init__(self, calibration=None, calibration_batches=4, range_init="percentile"):
        super().__init__()
        self.calibration, self.calibration_batches, self.range_init = calibration, calibration_batches, range_init
        self.statistics = {}

    def _quantized_model(self):
        return getattr(self.model, "quantized_model", self.model)

    def on_train_begin(self, logs=None):
        if self.calibration is None:
            return
        batches = [
            batch[0] if isinstance(batch, tuple | list) else batch
            for batch in itertools.islice(self.calibration, self.calibration_batches)
        ]
        initialize_ranges(self._quantized_model(), batches, self.range_init)

    def _stop(self, what):
        collapsed = collapsed_ranges(self._quantized_model())
        where = f"collapsed quantizer range(s): {', '.join(collapsed)}" if collapsed else "no range collapsed"
        raise EdgeSRError(f"{what} ({where}); lower the learning rate or restart from the last good checkpoint")

    def on_train_batch_end(self, batch, logs=None):
        logs = logs if logs is not None else {}
        if "loss" in logs and not math.isfinite(float(logs["loss"])):
            self._stop(f"the loss became {float(logs['loss'])} at batch {batch}")
        self.statistics.update({k: float(logs[k]) for k in GRADIENT_STATISTICS if k in logs})
        logs.update(self.statistics)

    def on_epoch_end(self, epoch, logs=None):
        if collapsed_ranges(self._quantized_model()):
            self._stop(f"quantizer ranges collapsed by the end of epoch {epoch}")
        if logs is not None:
            logs.update(self.statistics)
