"""Initial quantizer ranges from calibration batches: what QAT starts from and what the PTQ methods use.

Activation sites: `minmax` takes the extremes seen, `percentile` (ODM's init) the 1st and 99th percentiles,
`dobi` (2DQuant's distribution-oriented bound initialisation) the candidate range with the least ‖x − Q(x)‖₂, and
`pams` ±(the batch mean of each sample's max |x|: the statistic PAMS tracks as an EMA over its first epoch);
each is computed per calibration batch and averaged over the batches (2DQuant uses one batch). A symmetric
activation quantizer (PAMS's) takes the larger magnitude of the two bounds. Weight sites
start at max |W| (per channel where the quantizer is per channel), or at DOBI's best symmetric narrowing of it;
clip-corrected weights (WCC) need nothing: gamma starts at 1 on the current 99th percentile.

Every range holds 0, as the integer zero point demands; DOBI scores its candidates after that widening, so the
range it picks is the one the model will use.
"""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.quant.layers import CompletionQuantizer
from edge_sr.quant.placement import quantizer_sites
from edge_sr.quant.quantizer import bypass_quantizers, fake_quant, observe_quantizers, percentile

RANGE_INITS = ("minmax", "percentile", "dobi", "pams")
DOBI_VARIANTS = ("paper", "released")
DOBI_CANDIDATES = 100  # K
DOBI_MAX_VALUES = 1 << 18  # larger tensors are scored on this many values drawn at random (min and max stay exact)


def dobi_candidates(low, high, one_sided, candidates=DOBI_CANDIDATES):
    """2DQuant's K candidate ranges for a tensor spanning [low, high], Δ = (high − low) / 2K:
    symmetric narrowing `[low + iΔ, high − iΔ]`, or one-direction `[low, high − iΔ]`; i = 0 … K−1."""
    step = (high - low) / (2 * candidates) * np.arange(candidates)
    lower = np.full(candidates, low) if one_sided else low + step
    return np.minimum(lower, 0.0), np.maximum(high - step, 0.0)


def quantization_errors(values, lower, upper, levels, mid_rise=False, chunk=16):
    """‖values − Q(values)‖₂² for each candidate range (lower[i], upper[i]); one row per candidate, one column
    per channel when `lower`/`upper` are (K, C) and `values` is (N, C), else one column. `mid_rise`: on the
    mid-rise weight grid (see fake_quant)."""
    values = tf.reshape(tf.constant(values, tf.float32), [1, -1, np.shape(lower)[1] if np.ndim(lower) == 2 else 1])
    lower = np.asarray(lower, np.float32).reshape(len(lower), 1, -1)
    upper = np.asarray(upper, np.float32).reshape(len(upper), 1, -1)
    errors = []
    for start in range(0, len(lower), chunk):
        part = slice(start, start + chunk)
        quantized = fake_quant(values, lower[part], upper[part], levels, mid_rise)
        errors.append(tf.reduce_sum(tf.square(values - quantized), axis=1).numpy())
    return np.concatenate(errors)


def _sample(values, limit=DOBI_MAX_VALUES):
    flat = np.asarray(values, np.float32).reshape(-1)
    if flat.size <= limit:
        return flat
    return flat[np.random.default_rng(0).integers(0, flat.size, limit)]


def dobi_activation_range(values, levels, one_sided):
    """The (lower, upper) among DOBI's candidates that quantizes `values` with the least squared error."""
    sample = _sample(values)
    values = np.asarray(values)
    lower, upper = dobi_candidates(float(values.min()), float(values.max()), one_sided)
    best = int(np.argmin(quantization_errors(sample, lower, upper, levels)[:, 0]))
    return float(lower[best]), float(upper[best])


def dobi_weight_upper(weights, levels, per_channel, mid_rise=False):
    """Symmetric narrowing of [−max|W|, max|W|] (per output channel with `per_channel`): the best upper bound on
    the narrow grid, or with `mid_rise` on the mid-rise one."""
    weights = np.asarray(weights, np.float32)
    columns = weights.reshape(-1, weights.shape[-1]) if per_channel else weights.reshape(-1, 1)
    top = np.maximum(np.abs(columns).max(axis=0), 1e-8)
    upper = top[None, :] * (1.0 - np.arange(DOBI_CANDIDATES)[:, None] / DOBI_CANDIDATES)
    errors = quantization_errors(columns, -upper, upper, levels, mid_rise)
    best = upper[np.argmin(errors, axis=0), np.arange(columns.shape[1])]
    return best if per_channel else best[0]


def _batch_range(inputs, method, levels, one_sided):
    if method == "dobi":
        return dobi_activation_range(inputs, levels, one_sided)
    if method == "minmax":
        low, high = float(tf.reduce_min(inputs)), float(tf.reduce_max(inputs))
    elif method == "pams":
        per_sample = tf.reduce_max(tf.abs(tf.reshape(inputs, [tf.shape(inputs)[0], -1])), axis=1)
        high = float(tf.reduce_mean(per_sample))
        low = -high
    else:
        low, high = float(percentile(inputs, 1.0)), float(percentile(inputs, 99.0))
    return min(low, 0.0), max(high, 0.0)


def _weight_upper(quantizer, weights, method):
    if method == "dobi":
        return dobi_weight_upper(weights, quantizer.levels, quantizer.per_channel, quantizer.mid_rise)
    magnitude = np.abs(np.asarray(weights))
    if quantizer.per_channel:
        return magnitude.reshape(-1, magnitude.shape[-1]).max(axis=0)
    return magnitude.max()


def initialize_ranges(model, batches, method="percentile", dobi_variant="paper", completion_only=False):
    """Set every quantizer's range in `model` from FP statistics of `batches` (LR images, [0, 255]); returns the
    number of ranges set.

    `dobi_variant`: "paper" searches post-softmax and post-GELU inputs in one direction (lower bound fixed at
    the minimum), as the 2DQuant paper describes; "released" narrows every range symmetrically, as its code does.
    The deploy completion's 8-bit quantizers (`CompletionQuantizer`) start at DOBI's ranges whatever `method`
    (min/max ranges cost the idealo RDN 0.4 dB more: a few extreme activations stretch the step for all the
    others); with `completion_only` they alone are set, and the learned k-bit ranges stay. Quantizers that share
    a range (a concatenation's group) get the union of theirs; a requantised input takes its group's; a fixed
    range (the pixel grid) stays.
    """
    if method not in RANGE_INITS:
        raise EdgeSRError(f"unknown range initialisation {method!r}; choose one of: {', '.join(RANGE_INITS)}")
    if dobi_variant not in DOBI_VARIANTS:
        raise EdgeSRError(f"unknown DOBI variant {dobi_variant!r}; choose one of: {', '.join(DOBI_VARIANTS)}")
    sites = [s for s in quantizer_sites(model) if not completion_only or isinstance(s.quantizer, CompletionQuantizer)]
    sets_range = {
        id(site.quantizer): site
        for site in sites
        if not site.requantizes and all(variable.trainable for variable in site.variables.values())
    }
    seen = {}  # id(quantizer) -> [(low, high) per batch] of an activation site

    def record(quantizer, inputs, weights):
        site = sets_range.get(id(quantizer))
        if site is None:
            return
        site_method = "dobi" if isinstance(quantizer, CompletionQuantizer) else method
        if quantizer.quantizes_weights:
            if "upper" in weights:  # clip-corrected and PAMS weights follow the current weights by themselves
                weights["upper"].assign(np.maximum(_weight_upper(quantizer, inputs, site_method), 1e-8))
        else:
            one_sided = site.one_sided and dobi_variant == "paper"
            seen.setdefault(id(quantizer), []).append(_batch_range(inputs, site_method, quantizer.levels, one_sided))

    batches = list(batches)
    if not batches:
        raise EdgeSRError("range initialisation needs at least one calibration batch")
    # Statistics of the FP data flow: no quantizer may distort what the next one sees.
    with bypass_quantizers(), observe_quantizers(record):
        for batch in batches:
            model(batch, training=False)
    if not sets_range:
        raise EdgeSRError(f"model {model.name!r} has no quantizers to initialise")
    shared = {}  # the variables' ids -> (variables, [mean (low, high) of each quantizer using them])
    for key, ranges in seen.items():
        variables = sets_range[key].variables
        shared.setdefault(_identity(variables), (variables, []))[1].append(np.mean(ranges, axis=0))
    for weights, ranges in shared.values():
        low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
        if "lower" not in weights:  # symmetric
            weights["upper"].assign(max(-low, high) or 1.0)
            continue
        weights["lower"].assign(low)
        weights["upper"].assign(high if high > low else low + 1.0)
    return len({_identity(site.variables) for site in sets_range.values()})


def _identity(variables):
    """What identifies a range: its variables (each layer holds its own dict of them, shared ones too)."""
    return tuple(id(variable) for variable in variables.values())


def initialize_tfmot_ranges(model, fp_model, batches):
    """tfmot8: start the activation ranges of tfmot's quantizers in `model` (made by `tfmot_default_model` from
    `fp_model`) at the min/max of the FP flow over `batches` (per-batch extremes averaged, widened to hold 0),
    where tfmot would start them at ±6 and move them by an EMA of decay 0.999. Weight ranges need nothing: tfmot
    takes them from the current weights at every training step."""
    from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer

    targets = {}  # FP layer whose output the quantizer sees -> the quantizer's variables
    for layer in model.layers:
        if isinstance(layer, QuantizeLayer):
            targets[layer.inbound_nodes[0].inbound_layers.name] = layer.quantizer_vars
        elif getattr(layer, "_output_quantizers", None):
            targets[layer.name] = layer._output_quantizer_vars
    if not targets:
        raise EdgeSRError(f"model {model.name!r} has no tfmot quantizers to initialise")
    probe = keras.Model(fp_model.inputs, [fp_model.get_layer(name).output for name in targets])
    extremes = []
    for batch in batches:
        outputs = tf.nest.flatten(probe(batch, training=False))
        extremes.append([(float(tf.reduce_min(x)), float(tf.reduce_max(x))) for x in outputs])
    if not extremes:
        raise EdgeSRError("range initialisation needs at least one calibration batch")
    for variables, (low, high) in zip(targets.values(), np.mean(extremes, axis=0), strict=True):
        variables["min_var"].assign(min(low, 0.0))
        variables["max_var"].assign(max(high, 0.0))
    return len(targets)
