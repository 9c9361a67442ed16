"""Exported SR models in LiteRT: any input size, float/uint8/int8/int16 I/O, XNNPACK on or off; and what a file's
graph says (receptive field, which ops XNNPACK takes, time per op). Tiles: edge_sr/runtime/tiling.py.

Only numpy and ai_edge_litert are needed here (no TensorFlow), so upscaling starts fast.
"""

import os
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edge_sr import native_logs_silenced
from edge_sr.errors import EdgeSRError
from edge_sr.runtime.metadata import parity_warning, read_metadata, sidecar_path
from edge_sr.runtime.tiling import MIN_TILE

# Ops whose output pixel depends only on the same pixel of their inputs (or, for PAD, on none at all inside the
# image): they add nothing to a receptive field.
POINTWISE_OPS = {
    "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "QUANTIZE", "DEQUANTIZE", "RELU", "RELU6", "RELU_N1_TO_1",
    "RELU_0_TO_1", "LEAKY_RELU", "PRELU", "LOGISTIC", "TANH", "HARD_SWISH", "GELU", "CONCATENATION", "CAST",
    "PAD", "PADV2", "MIRROR_PAD",
}  # fmt: skip
UPSAMPLING_OPS = {"DEPTH_TO_SPACE", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR"}  # each reads at most ±1 pixel
# int16: other tools' 16-bit-activation files (litert-quantizer's a16w8); scale and zero point come from the file.
IO_DTYPES = (np.float32, np.uint8, np.int8, np.int16)
MAX_THREADS = 4 * (os.cpu_count() or 1)  # more threads than this only add overhead (and LiteRT crashes at 100000)


class TFLiteModel:
    """One exported SR model: `model(lr)` maps an H×W×3 LR image (uint8 or float, [0, 255]) to its float32 SR.

    The scale comes from the metadata sidecar; `scale` checks it, or stands in for a missing sidecar.
    `input_size` is the fixed (H, W) of a fixed-tile model (SwinIR), None when any size is accepted.
    `seam_overlap` is, for an integer file of any input size whose receptive field `receptive_radius` bounds, the
    overlap at which tiles meeting at a seam give the whole-image result bit for bit (see `upscale_tiled`); None
    for other files. Tiles overlapping less (a small tile, a smaller `overlap`) are blended, as a float file's.
    XNNPACK is LiteRT's default CPU delegate; `xnnpack=False` runs the builtin kernels only (the A/B baseline).
    """

    def __init__(self, path, threads=2, xnnpack=True, scale=None):
        self.path = Path(path)
        if not self.path.is_file():
            raise EdgeSRError(f"model file not found: {self.path}")
        if not 1 <= threads <= MAX_THREADS:
            raise EdgeSRError(f"--threads must be from 1 to {MAX_THREADS} (4 per CPU core here), not {threads}")
        self.name = self.path.name
        self.metadata, self.scale = _metadata_and_scale(self.path, scale)
        warning = parity_warning(self.metadata)
        if warning:
            print(f"warning: {self.name} {warning}", file=sys.stderr)
        resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            with native_logs_silenced():
                self._interpreter = Interpreter(
                    model_path=str(self.path), num_threads=threads, experimental_op_resolver_type=resolver
                )
        except ValueError as error:
            raise EdgeSRError(f"{self.path} is not a valid TFLite model ({error}); re-export it") from None
        self._input, self._output = self._check_signature()
        fixed = min(self._input["shape_signature"][1:3]) > 0
        self.input_size = tuple(int(n) for n in self._input["shape"][1:3]) if fixed else None
        self._shape = tuple(self._input["shape"])
        self.radius, integer = receptive_radius(self.path)
        exact = integer and self.radius is not None and self.input_size is None
        self.seam_overlap = 2 * self.radius + 2 if exact else None
        self._prepare()
        if self.input_size is None:  # prove the scale on a small image before an image's SR is allocated with it
            self(np.zeros((MIN_TILE, MIN_TILE, 3), np.uint8))

    def _check_signature(self):
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise EdgeSRError(
                f"{self.name} has {len(inputs)} inputs and {len(outputs)} outputs; an SR model has one image in and "
                "one out"
            )
        (model_input,), (model_output,) = inputs, outputs
        shape_in, shape_out = ([int(n) for n in tensor["shape_signature"]] for tensor in (model_input, model_output))
        if len(shape_in) != 4 or shape_in[0] not in (1, -1) or shape_in[3] != 3:
            raise EdgeSRError(f"{self.name} takes a {shape_in} tensor, not an RGB image [1, H, W, 3]: not an SR model")
        if len(shape_out) != 4 or shape_out[3] != 3:
            raise EdgeSRError(
                f"{self.name} returns a {shape_out} tensor, not an RGB image [1, H, W, 3]: not an SR model"
            )
        for tensor in (model_input, model_output):
            if tensor["dtype"] not in IO_DTYPES:
                raise EdgeSRError(
                    f"{self.name} has {np.dtype(tensor['dtype']).name} I/O; expected float32, uint8, int8 or int16"
                )
        if min(shape_in[1:3]) > 0 and min(shape_out[1:3]) > 0:
            self._check_scale(shape_in[1:3], shape_out[1:3])
        return model_input, model_output

    def _check_scale(self, size_in, size_out):
        if list(size_out) != [self.scale * n for n in size_in]:
            raise EdgeSRError(
                f"{self.name} turns a {size_in[1]}×{size_in[0]} image into {size_out[1]}×{size_out[0]}, which is not "
                f"the ×{self.scale} its metadata (or --scale) says"
            )

    def _prepare(self):
        try:
            with native_logs_silenced():
                self._interpreter.allocate_tensors()
        except RuntimeError as error:
            reason = str(error).strip().splitlines()[0]
            if "custom op" in reason:
                raise EdgeSRError(
                    f"{self.name} uses an op LiteRT has no kernel for ({reason}); export it with TFLite builtin ops"
                ) from None
            raise EdgeSRError(f"LiteRT cannot run {self.name}: {reason}") from None

    def __call__(self, lr):
        lr = np.asarray(lr)
        if lr.ndim != 3 or lr.shape[2] != 3:
            raise EdgeSRError(f"{self.name} upscales H×W×3 RGB images, not an array of shape {lr.shape}")
        height, width = lr.shape[:2]
        if self.input_size is not None and (height, width) != self.input_size:
            raise EdgeSRError(
                f"{self.name} takes {self.input_size[1]}×{self.input_size[0]} tiles only, not {width}×{height}; "
                "run it through edge_sr.runtime.upscale, which tiles"
            )
        shape = (1, height, width, 3)
        if shape != self._shape:  # re-planning the memory is costly: only when the size changes
            self._interpreter.resize_tensor_input(self._input["index"], shape, strict=True)
            self._prepare()
            self._shape = shape
        self._interpreter.set_tensor(self._input["index"], _quantize(lr, self._input)[None])
        try:
            self._interpreter.invoke()
        except RuntimeError as error:
            reason = str(error).strip().splitlines()[0]
            raise EdgeSRError(f"LiteRT failed to run {self.name} on a {width}×{height} image: {reason}") from None
        sr = self._interpreter.get_tensor(self._output["index"])[0]
        self._check_scale([height, width], sr.shape[:2])
        return _dequantize(sr, self._output)


def _metadata_and_scale(path, scale):
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        if scale is None:
            raise EdgeSRError(
                f"{path} has no metadata file {sidecar.name} beside it, so its scale is unknown: export it with "
                "python -m edge_sr.convert (which writes both), or give the scale with --scale"
            )
        return None, scale
    metadata = read_metadata(path)
    if scale is not None and scale != metadata["scale"]:
        raise EdgeSRError(f"{path.name} is a ×{metadata['scale']} model; run it with --scale {metadata['scale']}")
    return metadata, metadata["scale"]


def _quantize(image, tensor):
    if tensor["dtype"] == np.float32:
        return image.astype(np.float32)
    scale, zero_point = tensor["quantization"]
    values = image.astype(np.float32)
    if scale:
        values = np.round(values / scale + zero_point)
    limits = np.iinfo(tensor["dtype"])
    return np.clip(values, limits.min, limits.max).astype(tensor["dtype"])


def _dequantize(values, tensor):
    if tensor["dtype"] == np.float32:
        return values
    scale, zero_point = tensor["quantization"]
    values = values.astype(np.float32)
    return (values - zero_point) * scale if scale else values


def receptive_radius(path):
    """(radius, integer) of a .tflite SR file: how many LR pixels around a pixel its output there can depend on,
    at most, and whether its convolutions compute in integers.

    The radius is the largest sum of convolution radii (dilation·(k − 1)/2, rounded up) along any path from the
    input, plus 1 for each upsampling op; a convolution after upsampling is counted as if at the LR size, which
    overstates its reach (by half a pixel for the idealo RDN's last conv), never understates it. It is None where
    the file has an op this does not bound: strides, pooling, reshapes, attention, fully connected layers.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools.flatbuffer_utils import opcode_to_name, read_model_from_bytearray

    model = read_model_from_bytearray(bytearray(Path(path).read_bytes()))
    graph = model.subgraphs[0]
    integer_types = (schema.TensorType.INT8, schema.TensorType.UINT8, schema.TensorType.INT16)
    reach, integer, bounded = {}, False, len(model.subgraphs) == 1
    for op in graph.operators:
        name = opcode_to_name(model, op.opcodeIndex)
        radius = max((reach.get(i, 0) for i in op.inputs if i >= 0), default=0)
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            options = op.builtinOptions
            _, kernel_h, kernel_w, _ = graph.tensors[op.inputs[1]].shape
            bounded &= max(options.strideH, options.strideW) == 1
            radius += max(
                -(-options.dilationHFactor * (kernel_h - 1) // 2), -(-options.dilationWFactor * (kernel_w - 1) // 2)
            )
            integer |= graph.tensors[op.outputs[0]].type in integer_types
        elif name in UPSAMPLING_OPS:
            radius += 1
        else:
            bounded &= name in POINTWISE_OPS
        reach.update((i, radius) for i in op.outputs)
    return (max(reach.get(i, 0) for i in graph.outputs) if bounded else None), integer


def delegation_report(path, size=64):
    """Which ops of a .tflite file XNNPACK runs: {"delegated": Counter, "builtin": Counter} of op names.

    LiteRT is asked to delegate op by op (no fusion), so each delegated op appears as its own delegate node with
    the op's outputs; what remains is run by LiteRT's builtin kernels.
    """
    from collections import Counter

    interpreter = Interpreter(model_path=str(path), num_threads=1, experimental_disable_delegate_node_fusion=True)
    details = interpreter.get_input_details()[0]
    if min(details["shape_signature"][1:3]) < 0:
        interpreter.resize_tensor_input(details["index"], (1, size, size, 3), strict=True)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    delegated = {tuple(op["outputs"]) for op in ops if op["op_name"] == "DELEGATE"}
    report = {"delegated": Counter(), "builtin": Counter()}
    for op in ops:
        if op["op_name"] != "DELEGATE":
            report["delegated" if tuple(op["outputs"]) in delegated else "builtin"][op["op_name"]] += 1
    return report


def op_profile(path, size, threads=2, xnnpack=True, runs=5, warmup=1):
    """Seconds per op of a .tflite file on an LR image of `size` (h, w): [{"op", "output", "delegated",
    "median_s"}] in graph order.

    LiteRT's Python package exposes no per-op profiler, so each op is cut out of the file as a one-op model with
    the tensor shapes it has at this size, and timed alone (`runs` invokes after `warmup`) in LiteRT, through
    XNNPACK when XNNPACK takes the op ("delegated"). Data tensors get random values (the kernels' speed does not
    depend on them); integer tensors computed at run time (shapes, sizes) get the values a real run gives them.
    What an op costs inside the whole graph (cache state, XNNPACK's fusions) can differ a little: compare the
    ops' sum with the whole model's time.
    """
    import copy

    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools.flatbuffer_utils import (
        convert_object_to_bytearray,
        opcode_to_name,
        read_model_from_bytearray,
    )

    from edge_sr.runtime.timing import time_calls

    model = read_model_from_bytearray(bytearray(Path(path).read_bytes()))
    if len(model.subgraphs) != 1:
        raise EdgeSRError(f"{path} has {len(model.subgraphs)} subgraphs; the op profile reads single-graph models")
    graph = model.subgraphs[0]
    constant = {i for i, tensor in enumerate(graph.tensors) if model.buffers[tensor.buffer].data is not None}
    computed = [  # integer tensors made at run time: make them outputs, so that one run gives their values
        i
        for i, tensor in enumerate(graph.tensors)
        if tensor.type in (schema.TensorType.INT32, schema.TensorType.INT64) and i not in constant
    ]
    outputs, graph.outputs = graph.outputs, [*graph.outputs, *(i for i in computed if i not in graph.outputs)]
    reference = Interpreter(
        model_content=bytes(convert_object_to_bytearray(model)),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    graph.outputs = outputs
    image = reference.get_input_details()[0]
    if min(image["shape_signature"][1:3]) < 0:
        reference.resize_tensor_input(image["index"], (1, *size, 3), strict=True)
    reference.allocate_tensors()
    rng = np.random.default_rng(0)
    reference.set_tensor(image["index"], _random_tensor(reference.get_input_details()[0], rng))
    reference.invoke()
    shapes = {detail["index"]: list(detail["shape"]) for detail in reference.get_tensor_details()}
    values = {i: reference.get_tensor(i) for i in computed}
    del reference

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    profile = []
    for op in graph.operators:
        used = list(dict.fromkeys(i for i in (*op.inputs, *op.outputs) if i >= 0))
        new_index = {old: new for new, old in enumerate(used)}
        one = schema.ModelT()
        one.version, one.operatorCodes, one.buffers = model.version, model.operatorCodes, [schema.BufferT()]
        subgraph = schema.SubGraphT()
        subgraph.tensors = []
        for old in used:
            tensor = copy.copy(graph.tensors[old])
            tensor.shape, tensor.shapeSignature = shapes[old], None
            if old in constant:
                one.buffers.append(model.buffers[tensor.buffer])
                tensor.buffer = len(one.buffers) - 1
            else:
                tensor.buffer = 0
            subgraph.tensors.append(tensor)
        alone = copy.copy(op)
        alone.inputs = [new_index[i] if i >= 0 else -1 for i in op.inputs]
        alone.outputs = [new_index[i] for i in op.outputs]
        alone.intermediates = []
        inputs = [i for i in dict.fromkeys(op.inputs) if i >= 0 and i not in constant]
        subgraph.operators, subgraph.inputs = [alone], [new_index[i] for i in inputs]
        subgraph.outputs = alone.outputs
        one.subgraphs = [subgraph]
        interpreter = Interpreter(
            model_content=bytes(convert_object_to_bytearray(one)),
            num_threads=threads,
            experimental_op_resolver_type=resolver,
        )
        interpreter.allocate_tensors()
        for index, detail in zip(inputs, interpreter.get_input_details(), strict=True):
            interpreter.set_tensor(detail["index"], values[index] if index in values else _random_tensor(detail, rng))
        times = time_calls(interpreter.invoke, runs, warmup)
        profile.append(
            {
                "op": opcode_to_name(model, op.opcodeIndex),
                "output": graph.tensors[op.outputs[0]].name.decode(),
                "delegated": any(node["op_name"] == "DELEGATE" for node in interpreter._get_ops_details()),
                "median_s": float(np.median(times)),
            }
        )
    return profile


def _random_tensor(detail, rng):
    dtype, shape = detail["dtype"], detail["shape"]
    if np.issubdtype(dtype, np.integer):
        limits = np.iinfo(dtype)
        return rng.integers(max(limits.min, -128), min(limits.max, 255), shape, endpoint=True).astype(dtype)
    return rng.uniform(0, 1, shape).astype(dtype)


def conv_filters(path):
    """The filter shapes [out, kh, kw, in] of the CONV_2D ops of a .tflite file, in graph order."""
    interpreter = Interpreter(model_path=str(path))
    details = {tensor["index"]: tensor for tensor in interpreter.get_tensor_details()}
    return [
        [int(n) for n in details[op["inputs"][1]]["shape"]]
        for op in interpreter._get_ops_details()
        if op["op_name"] == "CONV_2D"
    ]
