"""Where a quantized model loses accuracy: the output error each activation quantizer causes alone.

Every weight quantizer stays on and one activation quantizer at a time is switched on; the rise of the output's
squared error (against the FP flow) over the weights-only error is that tensor's share. The quantizers compute
their fake quants only: the integer-kernel details the deploy completion also simulates (XNNPACK's requantisation
multipliers, int32 biases, the integer LayerNorm mean) are left out, so that each tensor's rounding and clipping
are what is measured.
"""

from dataclasses import dataclass

import numpy as np

from edge_sr.progress import progress
from edge_sr.quant.placement import quantizer_sites
from edge_sr.quant.quantizer import bypass_quantizers, fake_quant, replace_quantizers


@dataclass
class TensorError:
    site: object  # the QuantizerSite
    lower: float
    upper: float
    mse: float  # output MSE (squared pixel levels) with this tensor and every weight quantized
    added_mse: float  # mse − the weights-only MSE

    @property
    def name(self):
        return f"{self.site.layer} {self.site.site}"


def activation_sites(model):
    """The quantizer sites of `model` that quantize tensors (not weights), in layer order."""
    return [site for site in quantizer_sites(model) if not site.is_weight]


def quantizing_only(model, sites):
    """A block inside which `model` fake-quantizes its weights and the activations of `sites` only."""
    weights = {id(site.variables) for site in quantizer_sites(model) if site.is_weight}
    chosen = {id(site.variables) for site in sites}

    def quantize(quantizer, inputs, variables):
        if id(variables) in weights or id(variables) in chosen:
            return fake_quant(inputs, *quantizer.range(inputs, variables), quantizer.levels, quantizer.mid_rise)
        return inputs

    return replace_quantizers(quantize)


def tensor_errors(model, batch, show_progress=True):
    """(weights-only MSE, all-quantizers MSE, [TensorError] sorted by added MSE, largest first) of `model` on
    `batch` (LR images in [0, 255]) against its FP flow."""
    with bypass_quantizers():
        reference = model(batch, training=False).numpy()

    def mse(sites):
        with quantizing_only(model, sites):
            return float(np.mean((model(batch, training=False).numpy() - reference) ** 2))

    sites = activation_sites(model)
    weights_only, everything = mse([]), mse(sites)
    errors = []
    for site in progress(sites, show_progress, desc="tensors"):
        error = mse([site])
        lower, upper = (float(bound) for bound in site.quantizer.range(None, site.variables))
        errors.append(TensorError(site, lower, upper, error, error - weights_only))
    errors.sort(key=lambda e: e.added_mse, reverse=True)
    return weights_only, everything, errors
