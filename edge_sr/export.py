"""Keras SR model → TFLite file, with a metadata sidecar that every tool (and the Android app) reads.

CNNs are exported with a dynamic input `[1, H, W, 3]`: LiteRT resizes it to each image at run time. SwinIR
splits its feature map into windows with reshapes that need static shapes, so it is exported at a fixed square
tile and run tile by tile (`edge_sr.runtime.upscale_tiled`).

Float precisions live here: `fp32`; `fp16` (float16 weights, float32 compute); `dynamic` (int8 weights,
activations quantized on the fly by LiteRT's hybrid kernels). The full-integer export builds its own converter
from `tflite_converter` and writes through `write_tflite` with `build_metadata(..., precision="int8", ...)`.

The sidecar `model.tflite.json` beside `model.tflite` holds:

    format, version   "edge_sr.tflite", 1
    arch, scale       the models_tf architecture and upscaling factor
    precision         fp32 | fp16 | dynamic | int8
    bits              {"weights": k, "activations": k} (32 for float tensors)
    method            the quantization method that made the weights (odm, 2dquant, ...); null for float exports
    pixel_range       [0, 255]: the model takes and returns RGB on this scale
    tile              the fixed input size (square), or null when the model takes any H×W
    io                the input/output tensor type: float32 | uint8 | int8
    source            what was exported (zoo:NAME, a .keras file)
"""

import json
import re
from pathlib import Path

from edge_sr.atomic import atomic_write, write_json
from edge_sr.errors import EdgeSRError

FORMAT, VERSION = "edge_sr.tflite", 1
FLOAT_PRECISIONS = {  # precision → bits of weights and activations
    "fp32": {"weights": 32, "activations": 32},
    "fp16": {"weights": 16, "activations": 32},
    "dynamic": {"weights": 8, "activations": 32},
}
PRECISIONS = (*FLOAT_PRECISIONS, "int8")
IO_TYPES = ("float32", "uint8", "int8")
FIXED_TILE_ARCHS = ("swinir",)  # window partitioning reshapes need static shapes
_FIELDS = ("format", "version", "arch", "scale", "precision", "bits", "method", "pixel_range", "tile", "io", "source")


def sidecar_path(path):
    path = Path(path)
    return path.with_name(path.name + ".json")


def build_metadata(config, precision, bits, io, tile=None, method=None, source=None):
    """The sidecar contents for a model whose models_tf config is `config`."""
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "arch": config.get("arch"),
        "scale": config["scale"],
        "precision": precision,
        "bits": dict(bits),
        "method": method,
        "pixel_range": [0, 255],
        "tile": tile,
        "io": io,
        "source": source,
    }
    problem = _metadata_problem(metadata)
    if problem:
        raise ValueError(f"invalid metadata: {problem}")
    return metadata


def _metadata_problem(metadata):
    """Why `metadata` is not a valid sidecar, or None."""
    if not isinstance(metadata, dict):
        return "not a JSON object"
    missing = [field for field in _FIELDS if field not in metadata]
    if missing:
        return f"missing {', '.join(missing)}"
    if metadata["format"] != FORMAT or metadata["version"] != VERSION:
        return f"format {metadata['format']!r} version {metadata['version']!r}, expected {FORMAT!r} {VERSION}"
    if metadata["precision"] not in PRECISIONS:
        return f"precision {metadata['precision']!r} is not one of {', '.join(PRECISIONS)}"
    if not _positive_int(metadata["scale"]):
        return f"scale {metadata['scale']!r} is not a positive integer"
    if metadata["tile"] is not None and not _positive_int(metadata["tile"]):
        return f"tile {metadata['tile']!r} is neither null nor a positive integer"
    if metadata["io"] not in IO_TYPES:
        return f"io {metadata['io']!r} is not one of {', '.join(IO_TYPES)}"
    bits = metadata["bits"]
    if not isinstance(bits, dict) or not all(_positive_int(bits.get(key)) for key in ("weights", "activations")):
        return f"bits {bits!r} is not {{'weights': k, 'activations': k}}"
    return None


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def read_metadata(path):
    """The sidecar of the .tflite file `path`, checked."""
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise EdgeSRError(
            f"{path} has no metadata file {sidecar.name} beside it; export the model with python -m edge_sr.convert, "
            "which writes both"
        )
    try:
        metadata = json.loads(sidecar.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EdgeSRError(f"{sidecar} is not valid JSON ({error}); re-export the model") from None
    problem = _metadata_problem(metadata)
    if problem:
        raise EdgeSRError(f"{sidecar} is not edge_sr model metadata ({problem}); re-export the model")
    return metadata


def check_tflite_path(path):
    path = Path(path)
    if path.suffix != ".tflite":
        raise EdgeSRError(f"{path}: the exported file name must end in .tflite")
    return path


def write_tflite(path, content, metadata):
    """Write the model bytes and then their sidecar, each atomically. The old sidecar goes first, so a crash in
    between leaves a model that tools refuse (no metadata) rather than one described by stale metadata."""
    path = check_tflite_path(path)
    problem = _metadata_problem(metadata)
    if problem:
        raise ValueError(f"invalid metadata: {problem}")
    sidecar_path(path).unlink(missing_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(content))
    write_json(sidecar_path(path), metadata)


def tflite_converter(model, tile=None):
    """A TFLiteConverter for `model` with a batch-1 float32 input: `tile`×`tile` when given, else any H×W."""
    import tensorflow as tf

    spec = tf.TensorSpec([1, tile, tile, 3], tf.float32, name="image")
    forward = tf.function(lambda image: model(image, training=False))
    return tf.lite.TFLiteConverter.from_concrete_functions([forward.get_concrete_function(spec)], model)


def run_converter(converter):
    """converter.convert(), with ops TFLite cannot express turned into a clear error."""
    from tensorflow.lite.python.convert_phase import ConverterError

    try:
        return converter.convert()
    except ConverterError as error:
        ops = sorted(set(re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", str(error))))
        reason = f"ops without a TFLite builtin: {', '.join(ops)}" if ops else str(error).strip().splitlines()[0]
        raise EdgeSRError(f"the TFLite converter cannot convert this model ({reason})") from None


def float_tflite(model, precision="fp32", tile=None):
    """TFLite bytes of `model` at a float precision (see FLOAT_PRECISIONS)."""
    import tensorflow as tf

    if precision not in FLOAT_PRECISIONS:
        raise EdgeSRError(f"unknown precision {precision!r}; choose one of {', '.join(FLOAT_PRECISIONS)}")
    converter = tflite_converter(model, tile)
    if precision != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # without a representative dataset: weights only
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    return run_converter(converter)


def check_tile(config, tile):
    """The tile a model exports at: required for SwinIR, optional (fixed input) for CNNs."""
    if tile is not None and not _positive_int(tile):
        raise EdgeSRError(f"the tile size must be a positive number of LR pixels, not {tile!r}")
    if tile is None and config.get("arch") in FIXED_TILE_ARCHS:
        raise EdgeSRError(
            f"{config['arch']} is exported at a fixed input size: pass --tile N (e.g. 64, a multiple of its "
            f"window size {config.get('window_size')}); images are then upscaled tile by tile"
        )
    return tile


def export_float(model, path, precision="fp32", tile=None, source=None):
    """Export a models_tf model to `path` (+ sidecar) at a float precision; returns the metadata."""
    from models_tf import model_config

    config = model_config(model)
    tile = check_tile(config, tile)
    content = float_tflite(model, precision, tile)
    metadata = build_metadata(config, precision, FLOAT_PRECISIONS[precision], "float32", tile=tile, source=source)
    write_tflite(path, content, metadata)
    return metadata


def default_ptq_tflite(model, images, io="uint8", tile=None):
    """TFLite bytes of TFLite's own full-integer post-training quantization of FP `model`: what users do today.

    The converter picks every int8 range from `images` (LR images or patches, [0, 255], each (H, W, 3)) run
    through the float model as its representative dataset.
    """
    import numpy as np
    import tensorflow as tf

    if io not in IO_TYPES:
        raise EdgeSRError(f"unknown I/O type {io!r}; choose one of {', '.join(IO_TYPES)}")
    images = [np.asarray(image, np.float32) for image in images]
    if not images:
        raise EdgeSRError("TFLite's post-training quantization needs at least one representative image")
    converter = tflite_converter(model, tile)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = getattr(tf, io)
    return run_converter(converter)
