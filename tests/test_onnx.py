"""Your own model as ONNX: onnx2tf offline with SR calibration, the files in LiteRT against onnxruntime, the errors.

The network is a small PyTorch SR net (convs + PixelShuffle, seeded random weights) around a nearest-neighbour
upsampling built from a fixed 1×1 conv, so its output on real photos is an image, not noise; its last conv is
scaled ×5 so that the convs move the output well away from that upsampling. Tolerances:

- int8 against onnxruntime ≥ 40 dB PSNR (RMS ≤ 2.6 levels on 0–255): an 8-bit file of a 3-conv net is off by
  a few rounding steps per layer (measured 50.2 dB on uint8 outputs), while a wrong layout (NCHW read as NHWC,
  sub-pixels out of order) is off by the image's own detail; the test checks that the convs matter (onnxruntime's
  output against the plain upsampling scores below 35 dB, measured 28.2), so a file that lost them could not pass.
- fp32 within 1e-3 levels: float kernels only sum in another order (measured 4e-5).
Timing (2 shared cores): about 2 minutes for the file, most of it the int8 conversion and the first ONNX export.
"""

import numpy as np
import pytest
from conftest import assert_clean_error, run_module

from edge_sr.errors import EdgeSRError

SCALE = 2


def requires_extra():
    for module in ("torch", "onnx", "onnxruntime", "onnx2tf"):
        pytest.importorskip(module)


def tiny_sr_net(scale=SCALE, features=16, unit_pixels=False):
    import torch
    from torch import nn

    class TinySR(nn.Module):
        def __init__(self):
            super().__init__()
            # Each pixel to its scale² sub-pixels. The sum comes after the two shuffles: onnx2tf 1.29 misplaces the
            # layout of a fixed-size Add feeding a DepthToSpace (convert_onnx reports that).
            self.copy = nn.Conv2d(3, 3 * scale**2, 1, bias=False)
            self.copy.weight.data = torch.eye(3).repeat_interleave(scale**2, 0)[:, :, None, None]
            self.body = nn.Sequential(
                nn.Conv2d(3, features, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(features, features, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(features, 3 * scale**2, 3, padding=1),
            )
            self.body[-1].weight.data *= 5
            self.body[-1].bias.data *= 5
            self.shuffle = nn.PixelShuffle(scale)

        def forward(self, x):
            if unit_pixels:  # a [0, 1] model (BasicSR style) computing the same function
                return self.shuffle(self.copy(x)) + self.shuffle(self.body(x * 255)) / 255
            return self.shuffle(self.copy(x)) + self.shuffle(self.body(x))

    torch.manual_seed(0)
    return TinySR().eval()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Real photos (scikit-image's bundled ones): HR folders to calibrate and to check on."""
    from skimage import data

    from edge_sr.data import write_image

    root = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "chelsea", "coffee"):
        write_image(root / "calib" / f"{name}.png", getattr(data, name)())
    write_image(root / "val" / "rocket.png", data.rocket()[100:228, 200:392])
    return root


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    requires_extra()
    from converters.onnx import torch_to_onnx

    return torch_to_onnx(tiny_sr_net(), tmp_path_factory.mktemp("onnx") / "tiny.onnx")


def lr_crops(photos):
    from edge_sr.data import open_benchmark

    return [lr for _, lr, _ in open_benchmark(photos / "val", SCALE)]


def test_int8_through_onnx2tf_offline_matches_onnxruntime(onnx_file, photos, tmp_path):
    from converters.onnx import OnnxSR
    from edge_sr.data import open_benchmark
    from edge_sr.data.metrics import psnr
    from edge_sr.runtime.evaluation import evaluate_dataset
    from edge_sr.runtime.litert import TFLiteModel
    from edge_sr.runtime.tiling import to_uint8
    from edge_sr.runtime.upscalers import TFLiteUpscaler

    out = tmp_path / "tiny_int8.tflite"
    # Offline for sure: a download (onnx2tf's sample images) would go to a dead proxy and fail the conversion.
    dead_proxy = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    result = run_module(
        "edge_sr.convert", "--onnx", onnx_file, "--int8", "--calib", photos / "calib", "--val", photos / "val",
        "--out", out, "--calib-patches", 16, "--patch", 48, env=dead_proxy,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "against onnxruntime on 1 LR images" in result.stdout and "uint8 input covers pixels" in result.stdout
    model = TFLiteModel(out)
    assert model.metadata["precision"] == "int8" and model.metadata["io"] == "uint8" and model.scale == SCALE
    details = model._interpreter.get_input_details()[0]
    assert list(details["shape_signature"]) == [1, -1, -1, 3] and details["dtype"] == np.uint8
    assert model.input_size is None  # any size, like edge_sr's CNNs

    reference = OnnxSR(onnx_file)
    for lr in lr_crops(photos):
        expected = to_uint8(reference(lr))
        assert psnr(to_uint8(model(lr)), expected, y_channel=False) >= 40
        nearest = np.repeat(np.repeat(lr, SCALE, 0), SCALE, 1)
        assert psnr(nearest, expected, y_channel=False) < 35  # the convs matter: a file without them would fail
    # The file is an edge_sr model: evaluate scores it as the runtime runs it.
    score = evaluate_dataset(TFLiteUpscaler(out, SCALE), photos / "val", SCALE, show_progress=False)["psnr"]
    ((_, lr, hr),) = open_benchmark(photos / "val", SCALE)
    assert score == pytest.approx(psnr(to_uint8(model(lr)), hr, shave=SCALE))


def test_fp32_matches_onnxruntime_much_tighter(onnx_file, photos, tmp_path):
    from converters.onnx import convert_onnx

    metadata, comparison = convert_onnx(onnx_file, tmp_path / "tiny.tflite", "fp32", val=photos / "val")
    assert metadata["precision"] == "fp32" and metadata["io"] == "float32" and metadata["tile"] is None
    assert comparison["max_abs"] < 1e-3 and comparison["input_range"] is None


def test_fixed_size_unit_range_model_becomes_a_pixel_tile_model(onnx_file, photos, tmp_path):
    """A [0, 1] model exported at a fixed square size: the file takes [0, 255] pixels in tiles of that size and
    computes what the [0, 255] model computes."""
    from converters.onnx import OnnxSR, convert_onnx, torch_to_onnx
    from edge_sr.runtime.litert import TFLiteModel
    from edge_sr.runtime.tiling import to_uint8, upscale

    path = torch_to_onnx(tiny_sr_net(unit_pixels=True), tmp_path / "unit.onnx", sample_size=32, dynamic=False)
    metadata, comparison = convert_onnx(path, tmp_path / "unit.tflite", "fp32", val=photos / "val", pixel_range=1)
    assert metadata["tile"] == 32 and comparison["max_abs"] < 1e-3
    model = TFLiteModel(tmp_path / "unit.tflite")
    assert model.input_size == (32, 32)
    lr = lr_crops(photos)[0][:32, :32]
    assert np.abs(upscale(model, lr).astype(int) - to_uint8(OnnxSR(onnx_file)(lr))).max() <= 1


def onnx_model(path, input_shape, output_shape=None, node="Identity"):
    """A one-node ONNX file with the given input shape (ints or names)."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node(node, ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape or input_shape)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize(
    "shape, message",
    [
        ([1, 16], "not an NCHW RGB image"),  # an MLP's input
        ([1, 64, 64, 3], "not an NCHW RGB image"),  # channels last
        ([1, "channels", "height", "width"], "its channel count is dynamic"),
        ([1, 3, 32, 48], "square input or with dynamic height and width"),
        ([4, 3, 32, 32], "batch 1"),
    ],
)
def test_models_that_are_not_nchw_rgb_images_are_refused(tmp_path, shape, message):
    from converters.onnx import OnnxSR

    with pytest.raises(EdgeSRError, match=message):
        OnnxSR(onnx_model(tmp_path / "m.onnx", shape))


def test_the_scale_is_read_from_the_model_and_checked(tmp_path):
    from converters.onnx import OnnxSR

    same = onnx_model(tmp_path / "same.onnx", [1, 3, "h", "w"])
    assert OnnxSR(same).scale == 1
    with pytest.raises(EdgeSRError, match="is a ×1 model, not ×2; use --scale 1"):
        OnnxSR(same, scale=2)
    pool = onnx_model(tmp_path / "pool.onnx", [1, 3, "h", "w"], node="GlobalAveragePool")
    with pytest.raises(EdgeSRError, match="not an integer upscaling factor"):
        OnnxSR(pool)


def test_unreadable_file_and_missing_extras_give_clean_errors(tmp_path, monkeypatch):
    import sys

    from converters.onnx import OnnxSR

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07this is not a protobuf" * 10)
    if "onnx" in sys.modules or _importable("onnx"):
        with pytest.raises(EdgeSRError, match="not a readable ONNX file"):
            OnnxSR(broken)
        result = run_module("edge_sr.convert", "--onnx", broken, "--fp32", "--out", tmp_path / "x.tflite")
        assert_clean_error(result, "not a readable ONNX file")
    monkeypatch.setitem(sys.modules, "onnx2tf", None)  # as if not installed
    from converters.onnx import run_onnx2tf

    with pytest.raises(EdgeSRError, match=r"pip install -r requirements-onnx\.txt"):
        run_onnx2tf(None, "int8", np.zeros((1, 8, 8, 3), np.float32))


def _importable(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_model_and_onnx_are_alternatives(tmp_path):
    from edge_sr.convert import parse_args

    with pytest.raises(SystemExit):
        parse_args(["zoo:isr-rdn-psnr-small-x2", "--onnx", "m.onnx", "--fp32", "--out", "x.tflite"])
    with pytest.raises(SystemExit):
        parse_args(["--fp32", "--out", "x.tflite"])
    assert parse_args(["--onnx", "m.onnx", "--int8", "--out", "x.tflite"]).model is None


def test_the_benchmarks_pytorch_edsr_is_the_keras_edsr_and_reads_official_checkpoints(tmp_path, photo):
    """benchmark onnx converts one network two ways: the PyTorch EDSR and the Keras EDSR converters.pytorch makes
    from its weights must compute the same image, and an EDSR-PyTorch .pt file must load into it."""
    torch = pytest.importorskip("torch")
    from converters.pytorch import model_from_checkpoint
    from converters.torch_edsr import EDSR, edsr_from_checkpoint

    torch.manual_seed(0)
    module = EDSR(2, num_blocks=2, num_features=8).eval()
    lr = photo[200:232, 200:232].astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(lr).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    keras_model = model_from_checkpoint(module.state_dict())
    assert np.abs(keras_model(lr[None]).numpy()[0] - expected).max() < 1e-3
    torch.save({k: v for k, v in module.state_dict().items() if "mean" not in k}, tmp_path / "edsr_x2.pt")
    loaded = edsr_from_checkpoint(tmp_path / "edsr_x2.pt")
    with torch.no_grad():
        assert torch.equal(
            loaded(torch.from_numpy(lr).permute(2, 0, 1)[None]), module(torch.from_numpy(lr).permute(2, 0, 1)[None])
        )
    torch.save({"conv_first.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / "other.pt")
    with pytest.raises(EdgeSRError):
        edsr_from_checkpoint(tmp_path / "other.pt")
