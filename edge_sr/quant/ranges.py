"""Initial quantizer ranges from calibration batches: what QAT starts from and what PTQ baselines use.

Activation sites: `minmax` takes the extremes seen, `percentile` (ODM's init) the 1st and 99th percentiles;
both are averaged over the calibration batches. Weight sites start at max |W| (per channel where the quantizer
is per channel); clip-corrected weights (WCC) need nothing: gamma starts at 1 on the current 99th percentile.
"""

import numpy as np
import tensorflow as tf

from edge_sr.errors import EdgeSRError
from edge_sr.quant.quantizer import bypass_quantizers, observe_quantizers, percentile

RANGE_INITS = ("minmax", "percentile")


def _batch_range(inputs, method):
    if method == "minmax":
        return float(tf.reduce_min(inputs)), float(tf.reduce_max(inputs))
    return float(percentile(inputs, 1.0)), float(percentile(inputs, 99.0))


def _weight_upper(quantizer, weights):
    magnitude = np.abs(np.asarray(weights))
    if quantizer.per_channel:
        return magnitude.reshape(-1, magnitude.shape[-1]).max(axis=0)
    return magnitude.max()


def initialize_ranges(model, batches, method="percentile"):
    """Set every quantizer's range in `model` from FP statistics of `batches` (LR images, [0, 255])."""
    if method not in RANGE_INITS:
        raise EdgeSRError(f"unknown range initialisation {method!r}; choose one of: {', '.join(RANGE_INITS)}")
    seen = {}  # id(quantizer variables) -> (quantizer, variables, [(low, high) per batch]); one entry per site

    def record(quantizer, inputs, weights):
        entry = seen.setdefault(id(weights), (quantizer, weights, []))
        if quantizer.quantizes_weights:
            if not quantizer.clip_correction:
                weights["upper"].assign(np.maximum(_weight_upper(quantizer, inputs), 1e-8))
        else:
            entry[2].append(_batch_range(inputs, method))

    batches = list(batches)
    if not batches:
        raise EdgeSRError("range initialisation needs at least one calibration batch")
    # Statistics of the FP data flow: no quantizer may distort what the next one sees.
    with bypass_quantizers(), observe_quantizers(record):
        for batch in batches:
            model(batch, training=False)
    if not seen:
        raise EdgeSRError(f"model {model.name!r} has no quantizers to initialise")
    for _, weights, ranges in seen.values():
        if ranges:
            low, high = np.mean(ranges, axis=0)
            # The integer grid must hold 0, so the range does too.
            low, high = min(low, 0.0), max(high, 0.0)
            weights["lower"].assign(low)
            weights["upper"].assign(high if high > low else low + 1.0)
    return len(seen)
