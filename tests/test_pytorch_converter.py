"""PyTorch weights into the Keras models: outputs equal the PyTorch reference definitions, and bad checkpoints
are refused with a message that says why."""

import numpy as np
import pytest
import tensorflow as tf

torch = pytest.importorskip("torch")

import torch_reference as reference  # noqa: E402

from converters.pytorch import (  # noqa: E402
    describe_checkpoint,
    load_pytorch_weights,
    load_torch_checkpoint,
    model_from_checkpoint,
    pixel_shuffle_order,
)
from edge_sr.errors import EdgeSRError  # noqa: E402
from models_tf import model_config  # noqa: E402
from models_tf.edsr import build_edsr  # noqa: E402
from models_tf.rdn import build_rdn  # noqa: E402
from models_tf.swinir import build_swinir  # noqa: E402

TOLERANCE = 1e-3  # max abs difference on the 0-255 scale


def random_image(height, width, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (1, height, width, 3)).astype(np.float32)


def reference_output(module, image, unit_range=False):
    """Run a PyTorch reference on an NHWC [0, 255] image; SwinIR works on [0, 1] pixels."""
    scale = 255.0 if unit_range else 1.0
    with torch.no_grad():
        output = module.eval()(torch.from_numpy(image).permute(0, 3, 1, 2) / scale) * scale
    return output.permute(0, 2, 3, 1).numpy()


def saved(tmp_path, checkpoint, name="model.pth"):
    path = tmp_path / name
    torch.save(checkpoint, path)
    return path


def assert_matches(model, module, image, unit_range=False):
    expected = reference_output(module, image, unit_range)
    np.testing.assert_allclose(model(image).numpy(), expected, rtol=0, atol=TOLERANCE)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


@pytest.mark.parametrize("factor", [2, 3])
def test_pixel_shuffle_order_makes_depth_to_space_act_like_pixel_shuffle(factor):
    channels = 5
    features = np.random.default_rng(0).normal(size=(1, channels * factor**2, 4, 3)).astype(np.float32)
    expected = torch.nn.PixelShuffle(factor)(torch.from_numpy(features)).permute(0, 2, 3, 1).numpy()
    reordered = features.transpose(0, 2, 3, 1)[..., pixel_shuffle_order(channels, factor)]
    np.testing.assert_array_equal(tf.nn.depth_to_space(reordered, factor).numpy(), expected)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_matches_edsr_pytorch(scale, tmp_path):
    module = reference.EDSR(scale, num_blocks=2, num_features=16, res_scale=0.1)
    model = build_edsr(scale, num_blocks=2, num_features=16, res_scale=0.1)
    load_pytorch_weights(model, saved(tmp_path, module.state_dict()))
    assert_matches(model, module, random_image(7, 9))


def test_basicsr_edsr_loads_with_ema_weights_preferred(tmp_path):
    module, other = reference.EDSR(4, 2, 16), reference.EDSR(4, 2, 16)
    checkpoint = {
        "params": reference.basicsr_edsr_state_dict(other),
        "params_ema": reference.basicsr_edsr_state_dict(module),
    }
    model = load_pytorch_weights(build_edsr(4, 2, 16), saved(tmp_path, checkpoint))
    assert_matches(model, module, random_image(6, 5))
    load_pytorch_weights(model, saved(tmp_path, checkpoint), param_key="params")
    assert_matches(model, other, random_image(6, 5))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_rdn_matches_edsr_pytorch(scale, tmp_path):
    module = reference.RDN(scale, num_blocks=2, num_layers=2, growth_rate=16, num_features=24)
    model = build_rdn(scale, num_blocks=2, num_layers=2, growth_rate=16, num_features=24)
    load_pytorch_weights(model, saved(tmp_path, module.state_dict()))
    assert_matches(model, module, random_image(7, 9))


SWINIR_CASES = [("pixelshuffle", scale) for scale in (2, 3, 4, 8)] + [
    ("pixelshuffledirect", scale) for scale in (2, 3, 4)
]


@pytest.mark.parametrize("upsampler, scale", SWINIR_CASES)
def test_swinir_matches_official_at_a_size_off_the_window_grid(upsampler, scale, tmp_path):
    size = {"embed_dim": 12, "depths": [2, 2], "num_heads": [2, 3], "window_size": 4, "upsampler": upsampler}
    module = reference.SwinIR(scale, **size)
    model = build_swinir(scale, **size)
    load_pytorch_weights(model, saved(tmp_path, {"params": module.state_dict()}))
    assert_matches(model, module, random_image(7, 10), unit_range=True)


@pytest.mark.parametrize(
    "height, width, img_size",
    [(6, 5, 64), (11, 5, 4)],
    ids=["input smaller than the window", "training patch not larger than the window"],
)
def test_swinir_matches_official_at_small_sizes(height, width, img_size, tmp_path):
    size = {"embed_dim": 12, "depths": [2], "num_heads": [2], "window_size": 8, "img_size": img_size}
    module = reference.SwinIR(2, **size)
    model = build_swinir(2, **size)
    load_pytorch_weights(model, saved(tmp_path, module.state_dict()))
    assert_matches(model, module, random_image(height, width), unit_range=True)


FULL_SIZE = {
    "edsr-baseline x2": (
        lambda: reference.EDSR(2),
        {"arch": "edsr", "scale": 2, "num_blocks": 16, "num_features": 64, "res_scale": 1.0},
    ),
    "edsr x3": (
        lambda: reference.EDSR(3, num_blocks=32, num_features=256, res_scale=0.1),
        {"arch": "edsr", "scale": 3, "num_blocks": 32, "num_features": 256, "res_scale": 0.1},
    ),
    "rdn x4": (
        lambda: reference.RDN(4),
        {"arch": "rdn", "scale": 4, "num_blocks": 16, "num_layers": 8, "growth_rate": 64, "num_features": 64},
    ),
    "swinir x2": (
        lambda: reference.SwinIR(2, embed_dim=180, depths=[6] * 6, num_heads=[6] * 6),
        {"arch": "swinir", "scale": 2, "embed_dim": 180, "depths": [6] * 6, "num_heads": [6] * 6,
         "window_size": 8, "mlp_ratio": 2.0, "upsampler": "pixelshuffle", "img_size": 64},
    ),
    "swinir-light x3": (
        lambda: reference.SwinIR(3, embed_dim=60, depths=[6] * 4, num_heads=[6] * 4, upsampler="pixelshuffledirect"),
        {"arch": "swinir", "scale": 3, "embed_dim": 60, "depths": [6] * 4, "num_heads": [6] * 4,
         "window_size": 8, "mlp_ratio": 2.0, "upsampler": "pixelshuffledirect", "img_size": 64},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", FULL_SIZE)
def test_preset_sized_checkpoints_are_recognised_and_match(case, tmp_path):
    make_module, expected_config = FULL_SIZE[case]
    module = make_module()
    model = model_from_checkpoint(saved(tmp_path, module.state_dict()))
    assert model_config(model) == expected_config
    assert_matches(model, module, random_image(6, 5), unit_range=expected_config["arch"] == "swinir")


def small_edsr_checkpoint(tmp_path, scale=4, num_features=16):
    return saved(tmp_path, reference.EDSR(scale, num_blocks=2, num_features=num_features).state_dict())


@pytest.mark.parametrize(
    "model, message",
    [
        (lambda: build_edsr(2, 2, 16), "checkpoint is x4 but model is x2"),
        (lambda: build_rdn(4, 2, 2, 16, 16), "checkpoint holds edsr but the model is rdn"),
        (lambda: build_edsr(4, 2, 8), "num_features 16 in the checkpoint, 8 in the model"),
    ],
)
def test_a_checkpoint_for_another_model_is_refused(model, message, tmp_path):
    with pytest.raises(EdgeSRError, match=message):
        load_pytorch_weights(model(), small_edsr_checkpoint(tmp_path))


def test_asked_scale_must_be_the_checkpoint_scale(tmp_path):
    with pytest.raises(EdgeSRError, match="checkpoint is x4 but x2 was asked for"):
        model_from_checkpoint(small_edsr_checkpoint(tmp_path), scale=2)


def test_leftover_or_missing_tensors_are_refused_and_nothing_is_assigned(tmp_path):
    model = build_edsr(4, 2, 16)
    before = model.get_weights()
    state = reference.EDSR(4, 2, 16).state_dict()
    with pytest.raises(EdgeSRError, match="fit no layer of edsr_x4: extra.weight"):
        load_pytorch_weights(model, {**state, "extra.weight": torch.zeros(3)})
    del state["body.1.body.2.bias"]
    with pytest.raises(EdgeSRError, match="checkpoint lacks body.1.body.2.bias"):
        load_pytorch_weights(model, state)
    for kept, weight in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, weight)


def test_model_weights_left_unset_are_refused():
    model = build_edsr(4, 3, 16)
    del model.edge_sr_config  # as after a plain keras load: only names and shapes can be checked
    with pytest.raises(EdgeSRError, match="does not provide: body_2_conv1/kernel"):
        load_pytorch_weights(model, reference.EDSR(4, 2, 16).state_dict())


def test_a_changed_mean_shift_is_refused():
    state = reference.EDSR(2, 2, 16).state_dict()
    state["sub_mean.bias"] = state["sub_mean.bias"] / 255
    with pytest.raises(EdgeSRError, match="sub_mean.bias is not the DIV2K mean shift"):
        load_pytorch_weights(build_edsr(2, 2, 16), state)


def test_unreadable_files_are_refused(tmp_path):
    path = small_edsr_checkpoint(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(EdgeSRError, match="truncated or corrupt"):
        load_torch_checkpoint(path)
    with pytest.raises(EdgeSRError, match="no such checkpoint file"):
        load_torch_checkpoint(tmp_path / "missing.pth")
    (tmp_path / "notes.pth").write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(EdgeSRError, match="truncated or corrupt"):
        load_torch_checkpoint(tmp_path / "notes.pth")


def test_a_pickle_of_objects_is_refused(tmp_path):
    with pytest.raises(EdgeSRError, match="holds more than plain tensors"):
        load_torch_checkpoint(saved(tmp_path, reference.EDSR(2, 2, 16)))


def test_an_unknown_layout_is_refused():
    with pytest.raises(EdgeSRError, match="not an EDSR, RDN or SwinIR checkpoint"):
        describe_checkpoint({"encoder.weight": np.zeros((3, 3))})


def test_missing_torch_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(EdgeSRError, match="pip install torch==2.13.0"):
        load_torch_checkpoint(tmp_path / "model.pth")
