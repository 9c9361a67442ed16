"""Weights in from idealo ISR / UpscalerJS: a Keras 2 `.h5` or a TF.js layers-model (`model.json` + shards).

The foreign topology is read only for idealo's hyper-parameters (C, D, G, G0, scale, upscaling); the network
itself is always our `models_tf.isr_rdn`, whose layers carry idealo's names, so weights map by name. Both are
Keras layouts (HWIO kernels), so no transposes are needed.
"""

import json
import math
import re
from pathlib import Path

import h5py
import numpy as np

from converters.pytorch import port_weight
from edge_sr.errors import EdgeSRError
from models_tf.isr_rdn import build_isr_rdn

# TF.js stores quantized weights as integers with an affine map back to floats; float16 is a plain cast.
_AFFINE_QUANT_DTYPES = ("uint8", "uint16")


def _layers(topology):
    """The layer list of a Keras model config, whether bare, in an h5 attr or inside a TF.js model.json."""
    topology = topology.get("modelTopology", topology)
    topology = topology.get("model_config", topology)
    try:
        return topology["config"]["layers"]
    except (KeyError, TypeError):
        raise EdgeSRError("the topology has no Keras model config (config.layers)") from None


def isr_rdn_config(topology):
    """Arguments of `build_isr_rdn` that reproduce an idealo RDN topology (a parsed model JSON)."""
    layers = {layer["config"]["name"]: layer for layer in _layers(topology)}
    missing = [name for name in ("F_m1", "F_1_1", "UPN3", "SR") if name not in layers]
    if missing:
        raise EdgeSRError(f"not an idealo RDN topology (no layer {', '.join(missing)}); only RDN is supported")

    def config(name):
        return layers[name]["config"]

    if "UPsample" in layers:
        upscaling = "ups"
    elif "PixelShuffle" in layers:
        upscaling = "shuffle"
    else:
        raise EdgeSRError("the idealo topology has neither an UPsample nor a PixelShuffle layer")
    scale = math.isqrt(config("UPN3")["filters"] // 3)
    if config("SR")["filters"] != 3 or 3 * scale**2 != config("UPN3")["filters"]:
        raise EdgeSRError("the idealo topology is not an RGB model (SR must have 3 filters, UPN3 3·scale²)")
    return {
        "scale": scale,
        "num_blocks": sum(bool(re.fullmatch(r"LFF_\d+", name)) for name in layers),
        "num_layers": sum(bool(re.fullmatch(r"F_1_\d+", name)) for name in layers),
        "growth_rate": config("F_1_1")["filters"],
        "num_features": config("F_m1")["filters"],
        "kernel_size": config("F_m1")["kernel_size"][0],
        "upscaling": upscaling,
    }


def _key(layer, variable):
    """('F_0', 'F_0/kernel:0') -> 'F_0/kernel': the layer's name and the variable's short name."""
    return f"{layer}/{variable.split(':')[0].rsplit('/', 1)[-1]}"


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def read_h5(path):
    """(topology or None, {layer/weight: array}) from a Keras 2 save (`model.save` or `save_weights`)."""
    with h5py.File(path, "r") as f:
        topology = json.loads(f.attrs["model_config"]) if "model_config" in f.attrs else None
        group = f["model_weights"] if "model_weights" in f else f
        weights = {}
        for layer in map(_text, group.attrs["layer_names"]):
            for name in map(_text, group[layer].attrs["weight_names"]):
                weights[_key(layer, name)] = group[layer][name][()]
    return topology, weights


def read_tfjs(model_json):
    """(topology, {layer/weight: array}) from a TF.js layers-model; shards are read beside `model_json`."""
    model_json = Path(model_json)
    manifest = json.loads(model_json.read_text())
    weights = {}
    for group in manifest.get("weightsManifest", []):
        buffer = b"".join((model_json.parent / shard).read_bytes() for shard in group["paths"])
        offset = 0
        for spec in group["weights"]:
            quantization = spec.get("quantization")
            stored = np.dtype(quantization["dtype"] if quantization else spec["dtype"])
            count = math.prod(spec["shape"])
            if offset + count * stored.itemsize > len(buffer):
                raise EdgeSRError(f"{model_json}: the shards end before weight {spec['name']}; are files missing?")
            values = np.frombuffer(buffer, stored, count, offset)
            offset += count * stored.itemsize
            if quantization and quantization["dtype"] in _AFFINE_QUANT_DTYPES:
                values = quantization["min"] + quantization["scale"] * values.astype(np.float64)
            weights[_key(*spec["name"].split("/")[-2:])] = values.astype(spec["dtype"]).reshape(spec["shape"])
    return manifest, weights


def load_idealo(path):
    """Our isr-rdn with the weights of an idealo RDN `.h5` or TF.js `model.json` (float32 or quantized shards).

    A weights-only `.h5` takes its topology from the `model.json` beside it (UpscalerJS ships both).
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeSRError(f"weights file not found: {path}")
    if path.suffix == ".json":
        topology, weights = read_tfjs(path)
    elif path.suffix in (".h5", ".hdf5"):
        topology, weights = read_h5(path)
        sibling = path.with_name("model.json")
        if topology is None and sibling.is_file():
            topology = json.loads(sibling.read_text())
        if topology is None:
            raise EdgeSRError(f"{path} holds weights only; put idealo's model.json beside it for the topology")
    else:
        raise EdgeSRError(f"{path}: expected an idealo .h5 or a TF.js model.json")

    model = build_isr_rdn(**isr_rdn_config(topology))
    targets = {_key(layer.name, variable.name): variable for layer in model.layers for variable in layer.weights}
    if targets.keys() != weights.keys():
        missing, unused = sorted(targets.keys() - weights.keys()), sorted(weights.keys() - targets.keys())
        raise EdgeSRError(
            f"{path} does not fit the RDN its topology describes: missing {missing[:5]}, unused {unused[:5]}"
        )
    for key, variable in targets.items():
        variable.assign(port_weight(variable, weights, key))
    return model
