"""ODM through `model.fit`: the same steps as `python -m edge_sr.train`, and on a tfmot-annotated model of one's own."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from conftest import REPO, TINY

from edge_sr.data import PatchSampler
from edge_sr.errors import EdgeSRError
from edge_sr.methods.loop import fit
from edge_sr.methods.qat import ODMCallback, ODMModel, odm_optimizers, range_variables
from edge_sr.methods.training import TrainConfig, Trainer, prepare_model, quantization_of
from edge_sr.models.rundir import read_history
from edge_sr.quant import UniformQuantizeConfig, quantize_model, quantize_scope_objects, quantizer_sites
from models_tf import build_preset


def test_model_fit_with_the_callback_is_the_train_cli_step_for_step(tmp_path, train_folder):
    steps = 9  # three refreshes of the cooperative weight (steps 0, 4, 8) and the steps in between
    config = TrainConfig(method="odm", bits=4, iterations=steps, batch_size=2, hr_patch=24, learning_rate=1e-3,
                         lambda_m=1e-3, halve_every=4).resolved("edsr", 2)  # fmt: skip
    fp = build_preset("edsr-baseline", scale=2, **TINY)
    sampler = PatchSampler(train_folder, 2, 24, 2, progress=False)
    calibration = [sampler.batch(i, stream=1)[0] for i in range(2)]
    # What `python -m edge_sr.train` runs: prepare_model's range init, Trainer, fit's loop over the sampler.
    trainer = Trainer(prepare_model(fp, config, calibration), config)
    fit(trainer, sampler, tmp_path / "run", lambda model: 0.0, validate_every=steps, show_progress=False)
    reference = read_history(tmp_path / "run")

    odm = ODMModel(quantize_model(fp, **quantization_of(config)), lambda_m=config.lambda_m)
    odm.compile(**odm_optimizers(config.learning_rate, config.range_lr_factor, config.halve_every))
    callback = ODMCallback(calibration=calibration, calibration_batches=2)
    # One step per epoch, so that History holds every step's loss.
    history = odm.fit(sampler.dataset(), epochs=steps, steps_per_epoch=1, callbacks=[callback], verbose=0).history

    np.testing.assert_allclose(history["loss"], [e["loss"] for e in reference], rtol=1e-5)
    np.testing.assert_allclose(history["mismatch"], [e["mismatch"] for e in reference], rtol=1e-5)
    for name in ("cosine", "conflict", "similarity"):
        # The statistics of the latest refresh, kept through the steps in between.
        latest = [[e for e in reference[: i + 1] if name in e][-1][name] for i in range(steps)]
        np.testing.assert_allclose(history[name], latest, rtol=1e-4, atol=1e-6)
    assert len(set(history["similarity"])) == 3


def own_model():
    """A user's own model: two annotated Conv2D layers on edge_sr's quantizers, one left in float."""
    annotate = tfmot.quantization.keras.quantize_annotate_layer
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            annotate(keras.layers.Conv2D(8, 3, padding="same", activation="relu"), UniformQuantizeConfig(4, 4)),
            annotate(keras.layers.Conv2D(8, 3, padding="same", activation="relu"), UniformQuantizeConfig(4, 4)),
            keras.layers.Conv2D(3, 3, padding="same"),
        ]
    )
    with tfmot.quantization.keras.quantize_scope(quantize_scope_objects()):
        return tfmot.quantization.keras.quantize_apply(model)


def blur_pairs():
    """(input, target) batches: learn a 3×3 box blur of noise."""
    images = tf.random.stateless_uniform((32, 16, 16, 3), seed=(1, 2), maxval=255.0)
    targets = tf.nn.avg_pool2d(images, 3, 1, "SAME")
    return tf.data.Dataset.from_tensor_slices((images, targets)).batch(4).repeat()


def test_the_callback_trains_a_tfmot_annotated_model_of_ones_own_and_its_ranges_move():
    keras.utils.set_random_seed(0)
    odm = ODMModel(own_model(), lambda_m=1e-3, similarity_every=2)
    odm.compile(**odm_optimizers(1e-2))
    ranges = range_variables(odm.quantized_model)
    before_init = [v.numpy().copy() for v in ranges]
    started = {}
    snapshot = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: started.update(ranges=[v.numpy().copy() for v in ranges])
    )
    dataset = blur_pairs()
    history = odm.fit(dataset, epochs=2, steps_per_epoch=6, callbacks=[ODMCallback(dataset), snapshot], verbose=0)

    assert len(ranges) == 6  # per layer an output range (lower, upper) and a weight bound
    assert any(not np.allclose(a, b) for a, b in zip(before_init, started["ranges"], strict=True))  # initialised
    # Every bound moved, but the post-ReLU lower bounds: at 0, where LogBoundAdam keeps them.
    moved = [not np.allclose(a, v.numpy()) for a, v in zip(started["ranges"], ranges, strict=True)]
    assert moved == [bool(np.any(a != 0)) for a in started["ranges"]] and sum(moved) >= 4, moved
    losses = history.history["loss"]
    assert losses[-1] < losses[0] and np.isfinite(losses).all()
    assert all(0 <= c <= 1 for c in history.history["conflict"]) and "cosine" in history.history


def test_a_collapsed_range_stops_model_fit_naming_it():
    odm = ODMModel(own_model(), lambda_m=1e-3)
    odm.compile(**odm_optimizers(1e-3))
    site = [site for site in quantizer_sites(odm.quantized_model) if site.site == "output"][1]
    site.variables["upper"].assign(site.variables["lower"] - 1.0)  # empty: clamps everything, the loss stays finite
    with pytest.raises(EdgeSRError, match=f"collapsed by the end of epoch 0 .*{site.layer}/output"):
        odm.fit(blur_pairs(), epochs=1, steps_per_epoch=2, callbacks=[ODMCallback()], verbose=0)


def test_odm_model_refuses_what_it_cannot_train():
    quantized = own_model()
    with pytest.raises(EdgeSRError, match="similarity_every=1"):
        ODMModel(quantized, cosine="per-tensor")
    odm = ODMModel(quantized)
    with pytest.raises(EdgeSRError, match="range_optimizer.*odm_optimizers"):
        odm.compile(optimizer="adam")


def test_model_fit_on_two_mirrored_devices_runs_the_same_step(tmp_path):
    # A tiny EDSR on edge_sr's quantizers: a tfmot-applied model would also get tfmot's 8-bit input quantizer,
    # whose range follows each replica's own share of the batch.
    script = textwrap.dedent(
        """
        import json, sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import tf_keras as keras
        from edge_sr.methods.qat import ODMCallback, ODMModel, odm_optimizers
        from edge_sr.quant import quantize_model
        from models_tf import build_preset

        lr = tf.random.stateless_uniform((16, 12, 12, 3), seed=(1, 2), maxval=255.0)
        pairs = tf.data.Dataset.from_tensor_slices((lr, tf.image.resize(lr, (24, 24)))).batch(4).repeat()
        histories = []
        for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])):
            keras.utils.set_random_seed(0)
            with strategy.scope():
                fp = build_preset("edsr-baseline", scale=2, num_blocks=2, num_features=8)
                model = ODMModel(quantize_model(fp, bits=4, clip_correction=True), lambda_m=1e-3, similarity_every=2)
                model.compile(**odm_optimizers(1e-3))
            histories.append(model.fit(pairs, epochs=4, steps_per_epoch=1, callbacks=[ODMCallback(pairs)],
                                       verbose=0).history)
        json.dump(histories, open(sys.argv[1], "w"))
        """
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "histories.json")], cwd=REPO,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    single, mirrored = json.loads((tmp_path / "histories.json").read_text())
    # The same batches split between two replicas: the same losses, L_M of the whole batch included, and the same
    # cooperative weights, to the float rounding of the other reduction order. That rounding flips the sign of a
    # few near-zero gradient entries, which moves the sign-conflict share by a few in a thousand (1.2e-3 seen).
    for name in ("loss", "mismatch", "similarity"):
        np.testing.assert_allclose(mirrored[name], single[name], rtol=1e-4, err_msg=name)
    np.testing.assert_allclose(mirrored["conflict"], single["conflict"], atol=5e-3)
