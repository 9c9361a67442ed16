"""Keras SR model → TFLite bytes: float precisions, TFLite's own int8 PTQ, and a quantized run's full-integer file.

CNNs are exported with a dynamic input `[1, H, W, 3]`: LiteRT resizes it to each image at run time. SwinIR
splits its feature map into windows with reshapes that need static shapes, so it is exported at a fixed square
tile and run tile by tile (`edge_sr.runtime.tiling.upscale_tiled`).

Float precisions: `fp32`; `fp16` (float16 weights, float32 compute); `dynamic` (int8 weights, activations
quantized on the fly by LiteRT's hybrid kernels). Integer: `int8_tflite` (a quantized run, every learned range
kept, see edge_sr.quant.deploy; edge_sr/export/int8.py writes a run's file) and `default_ptq_tflite` (TFLite's own
post-training quantization of an FP model, the baseline).

Each file gets a metadata sidecar (its format: edge_sr/runtime/metadata.py).
"""

import re

from edge_sr.errors import EdgeSRError
from edge_sr.runtime.metadata import FLOAT_PRECISIONS, IO_TYPES, build_metadata, positive_int, write_tflite

FIXED_TILE_ARCHS = ("swinir",)  # window partitioning reshapes need static shapes


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
    if tile is not None and not positive_int(tile):
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
    """Full-integer TFLite bytes of a model completed by `edge_sr.export.int8.deploy_model`: every quantizer
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
