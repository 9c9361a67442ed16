"""The metadata sidecar beside every exported .tflite file: written by the export, read and checked by the
runtime, every tool and the Android app.

The sidecar `model.tflite.json` beside `model.tflite` holds:

    format, version   "edge_sr.tflite", 1
    arch, scale       the models_tf architecture and upscaling factor
    precision         fp32 | fp16 | dynamic | int8
    bits              {"weights": k, "activations": k} (32 for float tensors)
    method            the quantization method that made the weights (odm, 2dquant, ...); null for float exports
    pixel_range       [0, 255]: the model takes and returns RGB on this scale
    tile              the fixed input size (square), or null when the model takes any H×W
    io                the input/output tensor type: float32 | uint8 | int8 (| int16: other tools' files)
    source            what was exported (zoo:NAME, a .keras file)
    parity            only in an int8 file written with --force although it failed its parity check:
                      {"ok": false, "delta_psnr": ΔPSNR against its fake-quant reference, "limit": the allowed |Δ|}
"""

import json
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
FILE_IO_TYPES = (*IO_TYPES, "int16")  # what a file may have: edge_sr writes IO_TYPES, other tools also int16
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
    if not positive_int(metadata["scale"]):
        return f"scale {metadata['scale']!r} is not a positive integer"
    if metadata["tile"] is not None and not positive_int(metadata["tile"]):
        return f"tile {metadata['tile']!r} is neither null nor a positive integer"
    if metadata["io"] not in FILE_IO_TYPES:
        return f"io {metadata['io']!r} is not one of {', '.join(FILE_IO_TYPES)}"
    bits = metadata["bits"]
    if not isinstance(bits, dict) or not all(positive_int(bits.get(key)) for key in ("weights", "activations")):
        return f"bits {bits!r} is not {{'weights': k, 'activations': k}}"
    return None


def positive_int(value):
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


def parity_warning(metadata):
    """The warning a tool prints for a file written although it failed its parity check, or None."""
    parity = (metadata or {}).get("parity")
    if not isinstance(parity, dict) or parity.get("ok") is not False:
        return None
    return (
        f"failed its parity check when exported (ΔPSNR {parity.get('delta_psnr')} dB against its reference, limit "
        f"±{parity.get('limit')} dB) and was written with --force: its results are not its run's; do not ship it"
    )
