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
    try:
        return _isr_rdn_config(topology)
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as error:
        raise EdgeSRError(f"the idealo topology is damaged ({error!r}); re-export the model") from None


def _isr_rdn_config(topology):
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
    try:
        with h5py.File(path, "r") as f:
            topology = json.loads(f.attrs["model_config"]) if "model_config" in f.attrs else None
            group = f["model_weights"] if "model_weights" in f else f
            weights = {}
            for layer in map(_text, group.attrs["layer_names"]):
                for name in map(_text, group[layer].attrs["weight_names"]):
                    weights[_key(layer, name)] = np.asarray(group[layer][name][()], dtype=np.float32)
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise EdgeSRError(f"{path} is not a readable Keras 2 .h5 save ({error}); is it damaged?") from None
    return topology, weights


# What a TF.js manifest may declare: stored dtypes (plain or quantized) and the float they stand for.
_TFJS_DTYPES = ("float32",)
_TFJS_QUANT_DTYPES = ("uint8", "uint16", "float16")


def _weight_specs(model_json, group):
    """(shard paths, [(name, stored dtype, shape, quantization)]) of one manifest group, every field checked."""
    try:
        paths, specs = group["paths"], group["weights"]
        checked = []
        for spec in specs:
            quantization = spec.get("quantization")
            stored = quantization["dtype"] if quantization else spec["dtype"]
            shape = spec["shape"]
            if spec["dtype"] not in _TFJS_DTYPES or stored not in (*_TFJS_DTYPES, *_TFJS_QUANT_DTYPES):
                raise ValueError(f"weight {spec['name']} has dtype {stored}")
            if "/" not in spec["name"]:
                raise ValueError(f"weight {spec['name']} is not named LAYER/WEIGHT")
            if not all(isinstance(n, int) and n >= 0 for n in shape):
                raise ValueError(f"weight {spec['name']} has shape {shape}")
            if quantization and stored in _AFFINE_QUANT_DTYPES:
                quantization = {"min": float(quantization["min"]), "scale": float(quantization["scale"])}
            checked.append((str(spec["name"]), np.dtype(stored), [int(n) for n in shape], quantization))
        if not all(isinstance(path, str) for path in paths):
            raise ValueError("a shard path is not a string")
    except (KeyError, TypeError, ValueError) as error:
        raise EdgeSRError(f"{model_json}: not a valid TF.js weights manifest ({error!r}); re-export it") from None
    return paths, checked


def _shard(model_json, name):
    """A shard file inside the model's folder, as a regular file: no absolute path, `..`, link out or device."""
    folder = model_json.parent.resolve()
    path = (folder / name).resolve()
    if Path(name).is_absolute() or ".." in Path(name).parts or not path.is_relative_to(folder):
        raise EdgeSRError(f"{model_json}: shard {name!r} lies outside the model's folder; shards must sit beside it")
    if not path.is_file():
        raise EdgeSRError(f"{model_json}: shard {name} is missing or not a regular file; copy every shard beside it")
    return path


def read_tfjs(model_json):
    """(topology, {layer/weight: array}) from a TF.js layers-model; shards are read beside `model_json`.

    Shards must lie in the model's folder and together hold exactly the bytes the manifest declares; this is
    checked before any of them is read.
    """
    model_json = Path(model_json)
    try:
        manifest = json.loads(model_json.read_text())
        groups = manifest.get("weightsManifest", [])
    except (OSError, ValueError, AttributeError) as error:
        raise EdgeSRError(f"{model_json} is not a TF.js model.json ({error}); re-export it") from None
    weights = {}
    for group in groups:
        paths, specs = _weight_specs(model_json, group)
        shards = [_shard(model_json, name) for name in paths]
        size = sum(path.stat().st_size for path in shards)
        needed = sum(stored.itemsize * math.prod(shape) for _, stored, shape, _ in specs)
        if size != needed:
            raise EdgeSRError(
                f"{model_json}: its shards hold {size} bytes but its manifest declares {needed}; are files missing or "
                "from another model?"
            )
        buffer = b"".join(path.read_bytes() for path in shards)
        offset = 0
        for name, stored, shape, quantization in specs:
            count = math.prod(shape)
            values = np.frombuffer(buffer, stored, count, offset)
            offset += count * stored.itemsize
            if quantization and stored.name in _AFFINE_QUANT_DTYPES:
                values = quantization["min"] + quantization["scale"] * values.astype(np.float64)
            weights[_key(*name.split("/")[-2:])] = values.astype(np.float32).reshape(shape)
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
            try:
                topology = json.loads(sibling.read_text())
            except (OSError, ValueError) as error:
                raise EdgeSRError(f"{sibling} is not valid JSON ({error}); put idealo's model.json there") from None
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
