"""The PAMS and tfmot8 baselines on the training harness: their quantizers, and short real runs that resume."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from edge_sr.errors import EdgeSRError
from edge_sr.export.int8 import export_int8
from edge_sr.export.parity import check_parity
from edge_sr.methods.training import TrainConfig, run_training
from edge_sr.models.rundir import read_history
from edge_sr.models.sources import load_source_model
from edge_sr.quant import quantizer_sites
from edge_sr.quant.quantizer import MaxScaleWeightQuantizer, SymmetricActivationQuantizer, UniformQuantizer
from edge_sr.runtime.evaluation import evaluate_dataset
from edge_sr.runtime.upscalers import KerasUpscaler


def test_pams_activation_quantizer_is_symmetric_on_a_learnable_clip():
    quantizer = SymmetricActivationQuantizer(2)
    weights = quantizer.build(None, "input", keras.layers.Layer())
    weights["upper"].assign(2.0)
    x = tf.constant([-5.0, -1.2, -0.4, 0.3, 0.9, 1.1, 7.0])
    with tf.GradientTape() as tape:
        y = quantizer(x, True, weights)
    assert y.numpy().tolist() == [-2.0, -2.0, 0.0, 0.0, 0.0, 2.0, 2.0]  # 2^2 − 1 levels on [−α, α]
    assert tape.gradient(y, weights["upper"]) is not None
    assert not quantizer.quantizes_weights and quantizer != UniformQuantizer(2, symmetric=True)


def test_pams_weight_quantizer_follows_the_current_max_and_learns_nothing():
    quantizer = MaxScaleWeightQuantizer(3)
    assert quantizer.build((3, 3, 4, 4), "kernel", keras.layers.Layer()) == {}
    kernel = tf.Variable(np.random.default_rng(0).normal(size=(3, 3, 4, 4)).astype(np.float32))
    for factor in (1.0, 3.0):
        kernel.assign(kernel * factor)
        quantized = quantizer(kernel, True, {}).numpy()
        top = np.abs(kernel.numpy()).max()
        assert np.abs(quantized).max() == pytest.approx(top)
        assert len(np.unique(np.round(quantized / (top / 3), 4))) <= 7  # 2^3 − 1 levels
    assert MaxScaleWeightQuantizer.from_config(quantizer.get_config()) == quantizer


def baseline_run(method, model, train_folder, val_folder):
    config = TrainConfig(method=method, batch_size=2, hr_patch=24, learning_rate=1e-3)
    return {
        "kind": "train",
        "model": str(model),
        "scale": 2,
        "train": vars(config),
        "data": {"train": [str(train_folder)], "val": str(val_folder), "calibration_batches": 1},
    }


@pytest.mark.parametrize("method", ["pams", "tfmot8"])
def test_baseline_trains_resumes_exactly_and_evaluates(tmp_path, tiny_model, train_folder, val_folder, method):
    run = baseline_run(method, tiny_model, train_folder, val_folder)

    def train(run_dir, iterations, resume=False):
        run["train"]["iterations"] = iterations
        return run_training(run, run_dir, resume, validate_every=4, checkpoint_every=2, show_progress=False)

    full = train(tmp_path / "full", 4)
    train(tmp_path / "half", 2)
    train(tmp_path / "half", 4, resume=True)
    losses = [[entry["loss"] for entry in read_history(tmp_path / d)] for d in ("full", "half")]
    assert len(losses[0]) == 4 and np.all(np.isfinite(losses[0]))
    assert np.allclose(losses[1], losses[0], rtol=1e-5)

    saved = json.loads((tmp_path / "full" / "run.json").read_text())
    assert saved["quantization"]["scheme"] == method and saved["train"]["bits"] == (8 if method == "tfmot8" else 4)
    kinds = {type(site.quantizer).__name__ for site in quantizer_sites(full["trainer"].model)}
    expected = {"pams": {"SymmetricActivationQuantizer", "MaxScaleWeightQuantizer"},
                "tfmot8": {"MovingAverageQuantizer", "Default8BitConvWeightsQuantizer"}}[method]  # fmt: skip
    assert expected <= kinds
    # The run directory gives back the model it validated: same PSNR from a fresh rebuild.
    best = json.loads((tmp_path / "full" / "best" / "best.json").read_text())
    restored = KerasUpscaler(load_source_model(str(tmp_path / "full"), 2), method, 2)
    psnr = evaluate_dataset(restored, val_folder, 2, show_progress=False)["psnr"]
    assert psnr == pytest.approx(best["psnr"], abs=1e-4)


def test_a_pams_run_converts_to_int8_and_a_tfmot8_run_is_refused(tmp_path, tiny_model, train_folder, val_folder):
    for method in ("pams", "tfmot8"):
        run = baseline_run(method, tiny_model, train_folder, val_folder)
        run["train"]["iterations"] = 1
        run_training(run, tmp_path / method, validate_every=1, checkpoint_every=1, show_progress=False)
    _, deployed = export_int8(tmp_path / "pams", tmp_path / "pams.tflite")
    parity = check_parity(deployed, tmp_path / "pams.tflite", val_folder, 2)  # W4A4: within 0.02 dB of its reference
    assert parity["ok"]
    with pytest.raises(EdgeSRError, match="carries tfmot's own quantizers .* train --method minmax --bits 8"):
        export_int8(tmp_path / "tfmot8", tmp_path / "tfmot8.tflite")


def test_baseline_settings_that_do_not_apply_are_clear_errors():
    assert TrainConfig(method="tfmot8").resolved("edsr", 2).bits == 8
    with pytest.raises(EdgeSRError, match="tfmot8 is tfmot's 8-bit scheme: it takes no --bits 4"):
        TrainConfig(method="tfmot8", bits=4).resolved("edsr", 2)
    for method in ("pams", "tfmot8"):
        with pytest.raises(EdgeSRError, match=f"--method {method} takes no mismatch loss or clip correction"):
            TrainConfig(method=method, mismatch="cooperative").resolved("edsr", 2)
