"""Keras SR model → TFLite file, with a metadata sidecar that every tool (and the Android app) reads.

CNNs are exported with a dynamic input `[1, H, W, 3]`: LiteRT resizes it to each image at run time. SwinIR
splits its feature map into windows with reshapes that need static shapes, so it is exported at a fixed square
tile and run tile by tile (`edge_sr.runtime.upscale_tiled`).

Float precisions: `fp32`; `fp16` (float16 weights, float32 compute); `dynamic` (int8 weights, activations
quantized on the fly by LiteRT's hybrid kernels). Integer: `int8_tflite`/`export_int8` (a quantized run, every
learned range kept, see edge_sr.quant.deploy) and `default_ptq_tflite` (TFLite's own post-training quantization
of an FP model, the baseline).

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
FILE_IO_TYPES = (*IO_TYPES, "int16")  # what a file may have: edge_sr writes IO_TYPES, other tools also int16
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
    if metadata["io"] not in FILE_IO_TYPES:
        return f"io {metadata['io']!r} is not one of {', '.join(FILE_IO_TYPES)}"
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
    return tf.lite.TFLiteConverter.from_concrete_functions([forward.get_concrete_function(spec)], _weights_only(model))


def _weights_only(model):
    """What the converter saves beside the function: the variables alone. Handing it the Keras model instead
    makes it trace and save every layer's call functions, minutes for a deep model."""
    import tensorflow as tf

    holder = tf.Module()
    holder.weights = list(model.variables)
    return holder


def run_converter(converter):
    """converter.convert(), with ops TFLite cannot express turned into a clear error."""
    from tensorflow.lite.python.convert_phase import ConverterError

    try:
        return converter.convert()
    except ConverterError as error:
        ops = sorted(set(re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", str(error))))
        reason = f"ops without a TFLite builtin: {', '.join(ops)}" if ops else str(error).strip().splitlines()[0]
        raise EdgeSRError(f"the TFLite converter cannot convert this model ({reason})") from None


def xnnpack_graph(model):
    """`model` with every layer that XNNPACK would leave to LiteRT's builtin kernels replaced by an equivalent
    that it runs (models_tf.layers.xnnpack_equivalent): the same numbers from the same weights."""
    import tf_keras as keras

    from models_tf.layers import xnnpack_equivalent

    if not any(xnnpack_equivalent(layer) for layer in model.layers):
        return model
    clone = keras.models.clone_model(
        model, clone_function=lambda layer: xnnpack_equivalent(layer) or layer.__class__.from_config(layer.get_config())
    )
    clone.set_weights(model.get_weights())  # the replaced layers hold none, so the order is the same
    clone.edge_sr_config = getattr(model, "edge_sr_config", None)
    return clone


def float_tflite(model, precision="fp32", tile=None):
    """TFLite bytes of `model` at a float precision (see FLOAT_PRECISIONS), in the ops XNNPACK runs."""
    import tensorflow as tf

    if precision not in FLOAT_PRECISIONS:
        raise EdgeSRError(f"unknown precision {precision!r}; choose one of {', '.join(FLOAT_PRECISIONS)}")
    converter = tflite_converter(xnnpack_graph(model), tile)
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


def export_default_ptq(model, images, path, tile=None, source=None):
    """Export TFLite's own int8 PTQ of FP `model` (see `default_ptq_tflite`, uint8 I/O) to `path` (+ sidecar)."""
    from models_tf import model_config

    config = model_config(model)
    content = default_ptq_tflite(model, images, tile=tile)
    metadata = build_metadata(config, "int8", {"weights": 8, "activations": 8}, "uint8", tile=tile,
                              method="tflite-default-ptq", source=source)  # fmt: skip
    write_tflite(path, content, metadata)
    return metadata


def _constant_fake_quant(site):
    """The TFLite-convertible form of one quantizer with its current range frozen.

    Weights: the k-bit values, as an 8-bit narrow-range fake quant whose step is the k-bit step (int8 values
    within ±(2^(k−1) − 1)), or half of it on the mid-rise grid (the odd int8 values within ±(2^k − 1)).
    Activations: clamped to the k-bit grid's top, then an 8-bit fake quant whose step is the k-bit step and whose
    bottom is the k-bit grid's bottom (it clamps there itself).
    The deploy completion's 8-bit quantizers are the k = 8 case.
    """
    import numpy as np
    import tensorflow as tf

    from edge_sr.quant.quantizer import fake_quant, integer_grid

    quantizer = site.quantizer
    lower, upper = (np.asarray(bound, np.float32) for bound in quantizer.range(site.weight, site.variables))
    if site.is_weight:
        values = tf.constant(fake_quant(site.weight, lower, upper, quantizer.levels, quantizer.mid_rise).numpy())
        step = quantizer.int8_step(site.weight, site.variables).numpy()
        if np.ndim(step):
            fq = tf.quantization.fake_quant_with_min_max_vars_per_channel
            return lambda _: fq(values, -127 * step, 127 * step, num_bits=8, narrow_range=True)
        low, high = float(-127 * step), float(127 * step)
        return lambda _: tf.quantization.fake_quant_with_min_max_vars(values, low, high, narrow_range=True)
    grid_lower, step = integer_grid(lower, upper, quantizer.levels)
    top = float(grid_lower + (quantizer.levels - 1) * step)
    low, high = float(grid_lower), float(grid_lower + 255 * step)
    if site.site == "output":  # a deploy-completion 8-bit quantizer where the tensor is made
        return lambda x: tf.quantization.fake_quant_with_min_max_vars(x, low, high)
    # A fake quant right after another one is dropped by the converter, so an op between them must keep the
    # requantisation: the clamp to the k-bit top. At 8 bits it changes no value, and `int8_tflite` takes it out
    # of the file again (XNNPACK has no int8 MINIMUM); a value-preserving op would not do, as the converter
    # merges identical ones on one tensor, and with them the requantisations of its different consumers.
    return lambda x: tf.quantization.fake_quant_with_min_max_vars(tf.minimum(x, top), low, high)


def int8_tflite(deployed, io="uint8", tile=None):
    """Full-integer TFLite bytes of a model completed by `edge_sr.quant.deploy.deploy_model`: every quantizer
    becomes a constant fake quant, so the converter takes each range as it is (no representative dataset)."""
    import tensorflow as tf

    from edge_sr.quant.placement import quantizer_sites
    from edge_sr.quant.quantizer import replace_quantizers

    if io not in IO_TYPES:
        raise EdgeSRError(f"unknown I/O type {io!r}; choose one of {', '.join(IO_TYPES)}")
    constants = {id(site.variables): _constant_fake_quant(site) for site in quantizer_sites(deployed)}

    def forward(image):
        image = tf.quantization.fake_quant_with_min_max_vars(image, 0.0, 255.0)  # pixels: step 1, as uint8
        with replace_quantizers(lambda quantizer, inputs, weights: constants[id(weights)](inputs)):
            return deployed(image, training=False)

    spec = tf.TensorSpec([1, tile, tile, 3], tf.float32, name="image")
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [tf.function(forward).get_concrete_function(spec)], _weights_only(deployed)
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = converter.inference_output_type = getattr(tf, io)
    return without_noop_minimums(run_converter(converter))


def without_noop_minimums(content):
    """TFLite bytes without the int8 MINIMUMs that change no value (`_noop_minimum_input`): their consumers read
    their input instead."""
    from ai_edge_litert.tools.flatbuffer_utils import convert_object_to_bytearray, read_model_from_bytearray

    model = read_model_from_bytearray(bytearray(content))
    changed = False
    for graph in model.subgraphs:
        replaced, operators = {}, []  # output of a removed minimum → its input
        for op in graph.operators:
            op.inputs = [replaced.get(i, i) for i in op.inputs]
            source = _noop_minimum_input(model, graph, op)
            if source is None:
                operators.append(op)
            else:
                replaced[op.outputs[0]] = source
        graph.operators = operators
        changed = changed or bool(replaced)
    return bytes(convert_object_to_bytearray(model)) if changed else content


def _noop_minimum_input(model, graph, op):
    """The input of `op` if `op` is the minimum of an int8 tensor and a constant at the top of that tensor's grid,
    with its output on the same grid (so it changes no value); else None."""
    import numpy as np
    from ai_edge_litert.tools.flatbuffer_utils import opcode_to_name

    if opcode_to_name(model, op.opcodeIndex) != "MINIMUM" or len(op.inputs) != 2 or op.outputs[0] in graph.outputs:
        return None
    tensors = graph.tensors
    constants = [i for i in op.inputs if model.buffers[tensors[i].buffer].data is not None]
    if len(constants) != 1:
        return None
    (bound,), (value,) = constants, [i for i in op.inputs if i not in constants]
    grids = {_int8_grid(tensors[i]) for i in (value, bound, op.outputs[0])}
    if len(grids) != 1 or None in grids:
        return None
    return value if np.frombuffer(bytes(model.buffers[tensors[bound].buffer].data), np.int8).min() == 127 else None


def _int8_grid(tensor):
    """(scale, zero point) of a per-tensor quantized int8 tensor, else None."""
    from ai_edge_litert.schema_py_generated import TensorType

    quantization = tensor.quantization
    if tensor.type != TensorType.INT8 or quantization is None or quantization.scale is None:
        return None
    if len(quantization.scale) != 1:
        return None
    return float(quantization.scale[0]), int(quantization.zeroPoint[0])


# The parity gate is the PSNR difference. The share of output values within 1 LSB is reported, not gated: the
# reference computes the integer kernels' requantisations and biases (a small EDSR agrees on >= 99 % at W8 and
# W4), but it accumulates convolutions in float, in another order, which decides the few values within float
# rounding of a rounding boundary; in a deep graph those flips spread (the idealo RDN: 31-60 %, at equal PSNR).
PARITY_MAX_DPSNR = 0.02
INTEGER_ARCHS = ("edsr", "rdn", "isr-rdn", "swinir")


def deploy_calibration_batches(run, scale, batch_size=16, lr_patch=64, stream=2):
    """LR patches from the images a run trained or calibrated on: what sets the deploy completion's 8-bit ranges
    (another `stream` draws other patches from the same images)."""
    from edge_sr.data import PatchSampler

    folders = run["data"].get("calibration") or run["data"].get("train")
    sampler = PatchSampler(folders, scale, lr_patch * scale, batch_size, progress=False)
    return [sampler.batch(0, stream=stream)[0]]


def deployed_run(run_dir, calibration=None):
    """(run.json's content, the run's model, its deploy completion): the Keras fake-quant model that
    `convert --int8` exports (see edge_sr.quant.deploy): a `paper`-placement run's model completed, its new 8-bit
    ranges DOBI's over `calibration` (LR batches; default: patches from the run's own training or calibration
    images); an `integer`-placement run's model as it is, every range as learned."""
    from edge_sr.models.rundir import read_run
    from edge_sr.models.sources import load_run_model
    from edge_sr.quant.deploy import deploy_model
    from models_tf import model_config

    run = read_run(run_dir)
    if not run.get("quantization"):
        raise EdgeSRError(f"{run_dir} trained an FP model: an integer model needs a quantized run (train or calibrate)")
    model = load_run_model(run_dir)
    config = model_config(model)
    arch = config.get("arch")
    if arch not in INTEGER_ARCHS:
        raise EdgeSRError(
            f"--int8 does not support {arch} yet (supported: {', '.join(INTEGER_ARCHS)}); "
            "export it with --fp32, --fp16 or --dynamic"
        )
    if run["quantization"].get("placement") == "integer":  # it trained or calibrated the integer graph itself
        return run, model, model
    batches = calibration if calibration is not None else deploy_calibration_batches(run, config["scale"])
    deployed, _ = deploy_model(model, batches)
    return run, model, deployed


def export_int8(run_dir, path, io="uint8", tile=None, calibration=None):
    """Export a `train` or `calibrate` run as a full-integer .tflite (+ sidecar); returns (metadata, deployed).

    `deployed` is the Keras fake-quant model the file computes (see `deployed_run`): the reference for
    `check_parity`. `calibration`: as for `deployed_run`.
    """
    from models_tf import model_config

    run, model, deployed = deployed_run(run_dir, calibration)
    config = model_config(model)
    tile = check_tile(config, tile)
    content = int8_tflite(deployed, io, tile)
    bits = run["quantization"]["bits"]
    method = (run.get("train") or run.get("calibrate") or {}).get("method")
    metadata = build_metadata(
        config, "int8", {"weights": bits, "activations": bits}, io, tile=tile, method=method, source=str(run_dir)
    )
    write_tflite(path, content, metadata)
    return metadata, deployed


def export_int8_checked(run_dir, path, val, io="uint8", tile=None, force=False):
    """`export_int8` gated by `check_parity` on the benchmark folder `val`: returns (metadata, parity).

    The file is exported and checked under a temporary name beside `path`, and moved to `path` only if it passes;
    with `force` a failing file is moved there too, its sidecar recording the failure (which the tools warn of).
    """
    path = check_tflite_path(path)
    trial = path.with_name(f".{path.stem}.unchecked.tflite")
    try:
        metadata, deployed = export_int8(run_dir, trial, io=io, tile=tile)
        parity = check_parity(deployed, trial, val, metadata["scale"])
        if not parity["ok"]:
            if not force:
                raise EdgeSRError(
                    f"the int8 file scores {parity['delta_psnr']:+.3f} dB off its fake-quant reference (the limit is "
                    f"±{PARITY_MAX_DPSNR} dB), so {path} was not written; pass --force to write it anyway"
                )
            metadata["parity"] = {"ok": False, "delta_psnr": parity["delta_psnr"], "limit": PARITY_MAX_DPSNR}
        write_tflite(path, trial.read_bytes(), metadata)
    finally:
        trial.unlink(missing_ok=True)
        sidecar_path(trial).unlink(missing_ok=True)
    return metadata, parity


def parity_warning(metadata):
    """The warning a tool prints for a file written although it failed its parity check, or None."""
    parity = (metadata or {}).get("parity")
    if not isinstance(parity, dict) or parity.get("ok") is not False:
        return None
    return (
        f"failed its parity check when exported (ΔPSNR {parity.get('delta_psnr')} dB against its reference, limit "
        f"±{parity.get('limit')} dB) and was written with --force: its results are not its run's; do not ship it"
    )


def check_parity(deployed, path, folder, scale):
    """Run the exported file (LiteRT, XNNPACK) and its Keras fake-quant reference on a benchmark folder.

    Returns {"psnr_keras", "psnr_tflite", "delta_psnr", "within_1_lsb"} (PSNR as the evaluation protocol
    measures it, the share of output pixel values that differ by at most 1) and `ok`: |ΔPSNR| ≤ PARITY_MAX_DPSNR.
    """
    import numpy as np

    from edge_sr.data.datasets import open_benchmark
    from edge_sr.data.metrics import psnr
    from edge_sr.upscalers import KerasUpscaler, TFLiteUpscaler

    exported = TFLiteUpscaler(path, scale)
    reference = KerasUpscaler(deployed, "reference", scale, tile=exported.model.input_size)  # SwinIR: its tiles
    psnrs, within, total = [], 0, 0
    for _, lr, hr in open_benchmark(folder, scale):
        a, b = reference(lr), exported(lr)
        psnrs.append((psnr(a, hr, shave=scale), psnr(b, hr, shave=scale)))
        within += int(np.sum(np.abs(a.astype(np.int16) - b) <= 1))
        total += a.size
    psnr_keras, psnr_tflite = np.mean(psnrs, axis=0)
    result = {
        "psnr_keras": float(psnr_keras),
        "psnr_tflite": float(psnr_tflite),
        "delta_psnr": float(psnr_tflite - psnr_keras),
        "within_1_lsb": within / total,
    }
    result["ok"] = abs(result["delta_psnr"]) <= PARITY_MAX_DPSNR
    return result
