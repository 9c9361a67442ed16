"""Your own SR network as ONNX → TFLite with onnx2tf, offline and with SR-correct calibration.

onnx2tf left to itself downloads 20 MS-COCO images to calibrate with and normalises them with ImageNet's mean
and std: wrong for SR, whose input is the LR image itself. Here it runs in a temporary working directory that
already holds its sample-data file, so nothing is fetched, and gets `-cind` (custom_input_op_name_np_data_path)
with LR patches made with the exact bicubic from your HR images and an identity mean/std.

The exported file follows edge_sr's conventions, so every tool takes it: NHWC `[1, H, W, 3]` RGB in [0, 255]
(onnx2tf turns the NCHW graph into NHWC; a model that works on [0, 1] gets the rescaling built in, before
calibration, which is why the calibration normalisation stays the identity), uint8 I/O for full-integer files,
any H×W when the ONNX input has dynamic height and width (a fixed square input becomes the file's tile), and the
metadata sidecar. After writing, the file is run in LiteRT against the ONNX model in onnxruntime.

Needs the optional extra: pip install -r requirements-onnx.txt (see that file: onnx2tf itself is installed
without its pins, which ask for an older TensorFlow).
"""

import contextlib
import importlib
import tempfile
from pathlib import Path

import numpy as np

from edge_sr.errors import EdgeSRError

INSTALL = "pip install -r requirements-onnx.txt && pip install --no-deps -r requirements-onnx-nodeps.txt"
PRECISIONS = {"fp32": "float32", "int8": "full_integer_quant"}  # precision → onnx2tf's file-name suffix
PIXEL_RANGES = (255, 1)  # the model's input/output scale: [0, 255] (EDSR-PyTorch) or [0, 1] (BasicSR)
# onnx2tf reads this file from the working directory, or downloads it, whenever the input is a fixed-size image.
SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
INPUT, OUTPUT = "edge_sr_lr", "edge_sr_sr"  # the wrapped graph's input and output (names a model will not use)
PROBE = 32  # LR size of the onnxruntime run that reads the scale of a model with dynamic height and width
# A float file must reproduce onnxruntime to well under one 8-bit level (float summation order differs by ~1e-3
# on 0–255); a layout or weight-order mistake is off by tens.
FLOAT_MAX_ABS = 0.5


def require(module):
    """Import one of the optional extra's packages (or torch), or say how to install them."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if module == "torch":
            raise EdgeSRError("exporting a PyTorch model needs torch: pip install torch==2.13.0") from None
        raise EdgeSRError(f"ONNX conversion needs onnx, onnxruntime and onnx2tf ({error}): {INSTALL}") from None


class OnnxSR:
    """An ONNX SR model, checked: one NCHW float RGB image in, one image `scale` times larger out.

    `tile` is the fixed square LR size of a model exported with static height and width, None when any size goes.
    `graph` is the model with input INPUT and NHWC output OUTPUT, batch 1, rescaled to take and return pixels in
    [0, 255] when it works on [0, 1] (`pixel_range=1`).
    """

    def __init__(self, path, scale=None, pixel_range=255):
        onnx = require("onnx")
        self.path = Path(path)
        if not self.path.is_file():
            raise EdgeSRError(f"ONNX file not found: {self.path}")
        if pixel_range not in PIXEL_RANGES:
            raise EdgeSRError(f"the pixel range is 255 (pixels in [0, 255]) or 1 ([0, 1]), not {pixel_range!r}")
        try:
            model = onnx.load(self.path)
        except Exception as error:  # protobuf's DecodeError and friends on arbitrary bytes
            raise EdgeSRError(f"{self.path} is not a readable ONNX file (truncated or corrupt?): {error}") from None
        self.height, self.width = _image_input(model, self.path.name)
        self.tile = self.height if self.height is not None else None
        self.graph = _wrap(model, self.height, self.width, pixel_range)
        self.pixel_range = pixel_range
        self._session = _session(self.graph, self.path.name)
        self.scale = self._read_scale(scale)

    def __call__(self, lr):
        """The model's float32 SR of an H×W×3 LR image in [0, 255], run in onnxruntime."""
        batch = np.asarray(lr, np.float32).transpose(2, 0, 1)[None]
        try:
            (sr,) = self._session.run([OUTPUT], {INPUT: batch})
        except Exception as error:  # onnxruntime raises its own Fail/InvalidArgument types
            raise EdgeSRError(f"onnxruntime cannot run {self.path.name}: {str(error).splitlines()[0]}") from None
        return sr[0]

    def _read_scale(self, scale):
        size = self.tile or PROBE
        sr = self(np.zeros((size, size, 3), np.float32))
        if sr.shape[2] != 3:
            raise EdgeSRError(f"{self.path.name} returns {sr.shape[2]}-channel images, not RGB: not an SR model")
        ratios = {sr.shape[0] / size, sr.shape[1] / size}
        found = ratios.pop()
        if ratios or found != int(found) or found < 1:
            raise EdgeSRError(
                f"{self.path.name} turns a {size}×{size} image into {sr.shape[1]}×{sr.shape[0]}: not an integer "
                "upscaling factor, so not an SR model edge_sr can run"
            )
        if scale is not None and scale != int(found):
            raise EdgeSRError(f"{self.path.name} is a ×{int(found)} model, not ×{scale}; use --scale {int(found)}")
        return int(found)


def _image_input(model, name):
    """(height, width) of the model's only input, each None when dynamic; errors for anything but NCHW RGB."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise EdgeSRError(
            f"{name} has {len(inputs)} inputs and {len(model.graph.output)} outputs; an SR model has one image in "
            "and one out"
        )
    tensor = inputs[0].type.tensor_type
    dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor.shape.dim]
    shown = [dim.dim_value if dim.HasField("dim_value") else dim.dim_param or "?" for dim in tensor.shape.dim]
    if tensor.elem_type != 1:  # onnx.TensorProto.FLOAT
        raise EdgeSRError(f"{name} takes a tensor of ONNX type {tensor.elem_type}, not float32 images")
    if len(dims) != 4 or (dims[1] is not None and dims[1] != 3):
        raise EdgeSRError(
            f"{name} takes a {shown} tensor, not an NCHW RGB image [1, 3, H, W] (as PyTorch exports it): not an "
            "image SR model"
        )
    if dims[1] is None:
        raise EdgeSRError(
            f"{name} takes {shown}: its channel count is dynamic; export it with a fixed 3-channel input (only the "
            "height and width may be dynamic)"
        )
    if dims[0] not in (None, 1):
        raise EdgeSRError(f"{name} takes batches of {dims[0]}; export it with batch 1 (or a dynamic batch)")
    output = model.graph.output[0].type.tensor_type
    if output.HasField("shape") and len(output.shape.dim) != 4:
        raise EdgeSRError(f"{name} returns a {len(output.shape.dim)}-D tensor, not an NCHW image: not an SR model")
    height, width = dims[2:]
    if (height is None) != (width is None) or height != width:
        raise EdgeSRError(
            f"{name} takes {shown}: edge_sr runs fixed-size models in square tiles; export it with a square input or "
            "with dynamic height and width"
        )
    return height, width


def _wrap(model, height, width, pixel_range):
    """The model with input INPUT [1, 3, H, W] and output OUTPUT [1, sH, sW, 3], in [0, 255] on both sides.

    The output is transposed to NHWC in the graph itself: onnx2tf otherwise decides per graph whether the output
    stays NCHW (a static-size model that adds an upsampled input does), and every edge_sr model returns NHWC.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    initializers = {tensor.name for tensor in graph.initializer}
    (original_input,) = (value for value in graph.input if value.name not in initializers)
    (original_output,) = graph.output
    nodes_in, nodes_out, sr = [], [], original_output.name
    if pixel_range == 1:
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.array(1 / 255, np.float32), "edge_sr_to_unit"),
                numpy_helper.from_array(np.array(255, np.float32), "edge_sr_to_pixels"),
            ]
        )
        nodes_in.append(helper.make_node("Mul", [INPUT, "edge_sr_to_unit"], [original_input.name]))
        nodes_out.append(helper.make_node("Mul", [sr, "edge_sr_to_pixels"], ["edge_sr_pixels"]))
        sr = "edge_sr_pixels"
    else:
        nodes_in.append(helper.make_node("Identity", [INPUT], [original_input.name]))
    nodes_out.append(helper.make_node("Transpose", [sr], [OUTPUT], perm=[0, 2, 3, 1]))
    nodes = [*nodes_in, *graph.node, *nodes_out]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.input.remove(original_input)
    shape = [1, 3, height or "height", width or "width"]
    graph.input.insert(0, helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, shape))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, "sr_height", "sr_width", 3]))
    return model


def _session(graph, name, threads=2):
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise EdgeSRError(f"onnxruntime cannot load {name}: {str(error).splitlines()[0]}") from None


def lr_patches(folders, scale, size, count, stream):
    """`count` LR patches size×size (float32, [0, 255]) cut from the exact-bicubic LR of the HR images in
    `folders`; `stream` 1 for calibration, 2 for the check, so the two are independent draws."""
    from edge_sr.data import PatchSampler

    sampler = PatchSampler(folders, scale, size * scale, count, progress=False)
    return sampler.batch(0, stream=stream)[0]


def _centre_crops(images, size):
    crops = [lr[(lr.shape[0] - size) // 2 :, (lr.shape[1] - size) // 2 :][:size, :size] for lr in images]
    crops = [crop for crop in crops if crop.shape[:2] == (size, size)]
    if not crops:
        raise EdgeSRError(f"no validation image is {size}×{size} LR pixels or larger; pass --calib HR images too")
    return np.stack(crops).astype(np.float32)


def _sample_file(patches):
    """onnx2tf's 20×128×128×3 sample-data array in [0, 1], from the calibration patches (tiled to 128×128).

    With -cind onnx2tf does not read it for calibration or its dummy inference; it only has to be there."""
    size = patches.shape[1]
    reps = -(-128 // size)
    tiled = np.tile(patches, (1, reps, reps, 1))[:, :128, :128]
    return np.resize(tiled, (20, 128, 128, 3)).astype(np.float32) / 255


def run_onnx2tf(model, precision, calibration, io="uint8"):
    """TFLite bytes of `model` (an OnnxSR) from onnx2tf, run offline in a temporary working directory.

    `calibration`: LR patches (N, p, p, 3) in [0, 255]: the representative dataset for int8, and the input of
    onnx2tf's own checks for both precisions.
    """
    onnx = require("onnx")
    onnx2tf = require("onnx2tf")
    if precision not in PRECISIONS:
        raise EdgeSRError(f"ONNX models convert to {' or '.join(PRECISIONS)}, not {precision}")
    with tempfile.TemporaryDirectory(prefix="edge_sr-onnx2tf-") as work, contextlib.chdir(work):
        # onnx2tf rewrites the file it converts (shape clean-up, onnxsim): give it a copy.
        onnx.save(model.graph, "model.onnx")
        np.save("calibration.npy", np.asarray(calibration, np.float32))
        np.save(SAMPLE_FILE, _sample_file(np.asarray(calibration, np.float32)))
        identity = (np.zeros((1, 1, 1, 3), np.float32), np.ones((1, 1, 1, 3), np.float32))
        try:
            onnx2tf.convert(
                input_onnx_file_path="model.onnx",
                output_folder_path="out",
                output_integer_quantized_tflite=precision == "int8",
                custom_input_op_name_np_data_path=[[INPUT, str(Path(work, "calibration.npy")), *identity]],
                input_quant_dtype=io,
                output_quant_dtype=io,
                check_onnx_tf_outputs_sample_data_normalization="denorm",  # were the sample file read: pixels
                not_use_onnxsim=True,  # onnxsim is not in the extra: torch exports come constant-folded already
                verbosity="error",
            )
        except (SystemExit, Exception) as error:  # onnx2tf logs its reason, then calls sys.exit(1)
            reason = "" if isinstance(error, SystemExit) else f": {str(error).strip().splitlines()[0]}"
            raise EdgeSRError(
                f"onnx2tf could not convert {model.path.name}{reason} (its messages above say where)"
            ) from None
        produced = Path("out", f"model_{PRECISIONS[precision]}.tflite")
        if not produced.is_file():
            raise EdgeSRError(f"onnx2tf wrote no {precision} file for {model.path.name} (its messages above say why)")
        return produced.read_bytes()


def compare_with_onnxruntime(model, tflite_path, images, threads=2):
    """Run the .tflite file (LiteRT, XNNPACK) and the ONNX model (onnxruntime) on LR images (H×W×3, [0, 255]).

    A fixed-size model runs both ways through the same tiles (edge_sr.runtime.tiling.upscale_tiled). Returns {"psnr":
    dB of the file's output against onnxruntime's (both clipped to [0, 255], RGB, all pixels), "max_abs": the
    largest difference, "within_1": the share of uint8 output values within one level, "images": N}.
    """
    from edge_sr.runtime.litert import TFLiteModel
    from edge_sr.runtime.tiling import tiling, to_uint8, upscale_tiled

    exported = TFLiteModel(tflite_path, threads=threads)
    tile, overlap = tiling(exported)

    def run(model_fn, lr):
        if tile is None:
            return model_fn(lr)
        return upscale_tiled(model_fn, lr, model.scale, tile, overlap, fixed=True)

    squared, largest, within, total = 0.0, 0.0, 0, 0
    for lr in images:
        try:
            result = run(exported, lr)
        except RuntimeError as error:
            raise EdgeSRError(
                f"LiteRT cannot run the converted {Path(tflite_path).name} ({str(error).strip().splitlines()[0]}); "
                "onnx2tf's int8 graphs of dynamic-size models can quantize their shape arithmetic (an "
                "F.interpolate does): export the ONNX model at a fixed square size, which then runs tile by tile"
            ) from None
        reference, result = np.clip(run(model, lr), 0, 255), np.clip(result, 0, 255)
        squared += float(np.sum((reference.astype(np.float64) - result) ** 2))
        largest = max(largest, float(np.max(np.abs(reference - result))))
        within += int(np.sum(np.abs(to_uint8(reference).astype(np.int16) - to_uint8(result)) <= 1))
        total += reference.size
    mse = squared / total
    return {
        "psnr": float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse)),
        "max_abs": largest,
        "within_1": within / total,
        "images": len(images),
    }


def check_images(model, val=None, calibration=None, count=8, patch=64):
    """LR images for the comparison: those of the benchmark folder `val` (any layout edge_sr.data reads), else
    `count` LR patches from the calibration folders drawn apart from the calibration patches."""
    from edge_sr.data import open_benchmark

    if val is not None:
        return [lr for _, lr, _ in open_benchmark(val, model.scale)]
    if not calibration:
        raise EdgeSRError("converting ONNX needs images to check the file against onnxruntime: --calib or --val")
    return list(lr_patches(calibration, model.scale, model.tile or patch, count, stream=2))


def check_layout(model, tflite_path):
    """The file must take NHWC [1, H, W, 3] and return [1, sH, sW, 3], as the ONNX model's shapes say."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path))
    (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
    size, sr = (model.tile, model.scale * model.tile) if model.tile else (-1, -1)
    expected = ([1, size, size, 3], [1, sr, sr, 3])
    found = ([int(n) for n in inputs["shape_signature"]], [int(n) for n in outputs["shape_signature"]])
    if found != expected:
        raise EdgeSRError(
            f"onnx2tf turned {model.path.name} into a file that maps {found[0]} to {found[1]} instead of "
            f"{expected[0]} to {expected[1]}: it misplaced the NCHW/NHWC layout (its shape heuristics for "
            "fixed-size graphs can, e.g. on an Add that feeds a PixelShuffle); export the ONNX model with dynamic "
            "height and width (converters.onnx.torch_to_onnx does)"
        )


def input_range(tflite_path):
    """The pixel range a quantized file's input can represent, (low, high); None for float input."""
    from ai_edge_litert.interpreter import Interpreter

    (details,) = Interpreter(model_path=str(tflite_path)).get_input_details()
    scale, zero_point = details["quantization"]
    if not scale:
        return None
    limits = np.iinfo(details["dtype"])
    return float((limits.min - zero_point) * scale), float((limits.max - zero_point) * scale)


def convert_onnx(path, out, precision, calibration=None, val=None, scale=None, pixel_range=255, io="uint8",
                 patches=32, patch=64):  # fmt: skip
    """ONNX SR model `path` → `out` (.tflite + sidecar) via onnx2tf; returns (metadata, comparison).

    `calibration`: HR image folder(s), required for int8: `patches` LR patches of `patch`×`patch` (a fixed-size
    model's own tile) made with the exact bicubic; they are also what onnx2tf checks its graph with. `val`: a
    benchmark folder for the comparison with onnxruntime (see `check_images`). For fp32 the file must match
    onnxruntime within FLOAT_MAX_ABS or an error says not to ship it (the file is kept to inspect).
    """
    from edge_sr.runtime.metadata import FLOAT_PRECISIONS, IO_TYPES, build_metadata, check_tflite_path, write_tflite

    check_tflite_path(out)
    if io not in IO_TYPES:
        raise EdgeSRError(f"unknown I/O type {io!r}; choose one of {', '.join(IO_TYPES)}")
    if precision == "int8" and not calibration:
        raise EdgeSRError("--int8 from ONNX needs calibration images: --calib FOLDER of HR photos (e.g. BSD68)")
    model = OnnxSR(path, scale, pixel_range)
    images = check_images(model, val, calibration, patch=patch)
    size = model.tile or patch
    if calibration:
        calibration_patches = lr_patches(calibration, model.scale, size, patches, stream=1)
    else:  # fp32 from --val alone: onnx2tf still checks its graph on some images
        calibration_patches = _centre_crops(images, size)
    content = run_onnx2tf(model, precision, calibration_patches, io if precision == "int8" else "float32")
    if precision == "int8":
        bits, method, file_io = {"weights": 8, "activations": 8}, "onnx2tf", io
    else:
        bits, method, file_io = FLOAT_PRECISIONS[precision], None, "float32"
    metadata = build_metadata({"arch": "onnx", "scale": model.scale}, precision, bits, file_io, tile=model.tile,
                              method=method, source=str(path))  # fmt: skip
    write_tflite(out, content, metadata)
    check_layout(model, out)
    comparison = compare_with_onnxruntime(model, out, images)
    comparison["input_range"] = input_range(out)
    if precision != "int8" and comparison["max_abs"] > FLOAT_MAX_ABS:
        raise EdgeSRError(
            f"{out} differs from onnxruntime by up to {comparison['max_abs']:.3g} pixel levels (a float file must stay "
            f"within {FLOAT_MAX_ABS}); the file is kept for inspection: do not ship it"
        )
    return metadata, comparison


def torch_to_onnx(module, path, sample_size=PROBE, dynamic=True):
    """Export a PyTorch SR module (NCHW in, NCHW out) to ONNX, atomically: with dynamic height and width, or
    (`dynamic=False`) fixed at `sample_size`."""
    from edge_sr.atomic import atomic_write

    torch = require("torch")
    module = module.eval()
    sample = torch.zeros(1, 3, sample_size, sample_size)
    shapes = ({2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC},) if dynamic else None

    def export(tmp):
        try:
            with torch.no_grad():
                torch.onnx.export(module, (sample,), tmp, input_names=["lr"], output_names=["sr"],
                                  dynamic_shapes=shapes, external_data=False, verbose=False)  # fmt: skip
        except ImportError as error:  # the default exporter needs onnxscript, which the extra installs
            raise EdgeSRError(f"exporting to ONNX needs the ONNX extra ({error}): {INSTALL}") from None

    atomic_write(path, export)
    return Path(path)
