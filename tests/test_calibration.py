"""2DQuant's pieces against their definitions, and short real calibrations through the CLI."""

import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import TINY, assert_clean_error, run_module

from edge_sr.methods.calibration import (
    CalibrationConfig,
    Distiller,
    distillation_loss,
    feature_terms,
    stage_output_names,
)
from edge_sr.models.rundir import read_history
from edge_sr.models.sources import load_run_model, load_source_model
from edge_sr.quant import InputQuantizeWrapper, quantize_model, quantized_layer_names, quantizer_sites
from edge_sr.quant.quantizer import bypass_quantizers
from edge_sr.quant.ranges import dobi_activation_range, dobi_candidates, dobi_weight_upper, initialize_ranges
from models_tf import build_preset
from models_tf.swinir import split_qkv_model


def reference_fake_quant(x, lower, upper, levels):
    """The quantizer's definition in numpy (grid shifted so 0 is on it), float64."""
    scale = (upper - lower) / (levels - 1)
    grid_lower = -np.clip(np.floor(-lower / scale + 0.5), 0, levels - 1) * scale
    clipped = np.clip(x, grid_lower, grid_lower + (levels - 1) * scale)
    return np.floor((clipped - grid_lower) / scale + 0.5) * scale + grid_lower


def squared_error(x, lower, upper, levels):
    return float(np.sum((x - reference_fake_quant(x, lower, upper, levels)) ** 2))


@pytest.mark.parametrize("one_sided", [False, True])
def test_dobi_picks_the_least_squared_error_candidate_of_its_grid(one_sided):
    x = np.random.default_rng(0).laplace(0.3, 1.0, size=(4, 12, 12, 8)).astype(np.float32)
    lower, upper = dobi_candidates(float(x.min()), float(x.max()), one_sided)
    span = float(x.max() - x.min())
    assert len(upper) == 100 and upper[1] - upper[0] == pytest.approx(-span / 200)
    errors = [squared_error(x.astype(np.float64), lo, up, 16) for lo, up in zip(lower, upper, strict=True)]
    chosen = dobi_activation_range(x, 16, one_sided)
    index = int(np.argmin(np.abs(upper - chosen[1]) + np.abs(lower - chosen[0])))
    assert chosen == pytest.approx((lower[index], upper[index]))
    assert errors[index] <= min(errors) * (1 + 1e-5)
    assert errors[index] < errors[0]  # narrowing beat the plain min/max range on this heavy-tailed tensor
    if one_sided:
        assert chosen[0] == pytest.approx(x.min())  # the lower bound stays at the minimum
    else:
        assert chosen[0] > x.min()


def test_dobi_weight_bounds_are_the_best_symmetric_narrowing_per_channel():
    w = np.random.default_rng(1).standard_t(3, size=(3, 3, 4, 5)).astype(np.float32)
    uppers = dobi_weight_upper(w, 15, per_channel=True)
    columns = w.reshape(-1, 5).astype(np.float64)
    for channel in range(5):
        top = np.abs(columns[:, channel]).max()
        candidates = top * (1 - np.arange(100) / 100)
        errors = [squared_error(columns[:, channel], -u, u, 15) for u in candidates]
        chosen = squared_error(columns[:, channel], -uppers[channel], uppers[channel], 15)
        assert chosen <= min(errors) * (1 + 1e-5)
        assert np.isclose(candidates, uppers[channel], rtol=1e-6).any()
    assert np.ndim(dobi_weight_upper(w, 15, per_channel=False)) == 0


def test_dobi_on_swinir_moves_only_the_upper_bound_after_gelu_and_softmax(photo):
    keras.utils.set_random_seed(0)
    fp = build_preset("swinir-light", scale=2, depths=(2,), num_heads=(2,), embed_dim=16)
    model = quantize_model(fp, 4)
    batch = photo[None, 100:116, 200:216].astype(np.float32)
    initialize_ranges(model, [batch], "dobi")
    one_sided = [site for site in quantizer_sites(model) if site.one_sided]
    assert {site.site for site in one_sided} == {"attn_probs", "input"}
    for site in one_sided:
        if site.site == "input":  # fc2's input: the GELU output, whose minimum is negative
            gelu = keras.Model(fp.input, fp.get_layer(site.layer).input)(batch).numpy()
            assert site.variables["lower"].numpy() == pytest.approx(gelu.min(), rel=1e-5)
        else:  # softmax output: minimum > 0, widened to hold 0
            assert site.variables["lower"].numpy() == 0.0
    initialize_ranges(model, [batch], "dobi", dobi_variant="released")
    fc2 = next(site for site in one_sided if site.site == "input")
    gelu = keras.Model(fp.input, fp.get_layer(fc2.layer).input)(batch).numpy()
    assert fc2.variables["lower"].numpy() >= gelu.min()


def eq5_by_hand(fp_out, q_out, fp_stages, q_stages, lambda_f):
    """2DQuant's Eq. (4)-(6) for one image, float64: output L1 over C·H·W on [0, 1] plus λ · Σ_stages of the
    squared distance of the normalised features over the stage's C·H·W."""
    output = np.abs(fp_out.astype(np.float64) - q_out).sum() / fp_out.size / 255.0
    feature = 0.0
    for f, g in zip(fp_stages, q_stages, strict=True):
        f, g = f.astype(np.float64).ravel(), g.astype(np.float64).ravel()
        feature += np.sum((f / np.linalg.norm(f) - g / np.linalg.norm(g)) ** 2) / f.size
    return output + lambda_f * feature


def test_dqc_loss_is_the_papers_eq5_summed_over_the_batch():
    rng = np.random.default_rng(2)
    outputs = rng.uniform(0, 255, size=(2, 2, 8, 8, 3)).astype(np.float32)  # (fp/q, image, ...)
    stage_a = rng.normal(size=(2, 2, 6, 6, 4)).astype(np.float32)
    stage_b = rng.normal(50, 40, size=(2, 2, 3, 3, 16)).astype(np.float32)  # another size and scale
    stage_b[1] += rng.normal(size=stage_b[1].shape).astype(np.float32) * 30

    def loss_of(images):
        teacher = [outputs[0, images], stage_a[0, images], stage_b[0, images]]
        student = [outputs[1, images], stage_a[1, images], stage_b[1, images]]
        return float(distillation_loss(teacher, student, 5.0)[0])

    alone = [
        eq5_by_hand(outputs[0, i], outputs[1, i], [stage_a[0, i], stage_b[0, i]], [stage_a[1, i], stage_b[1, i]], 5.0)
        for i in range(2)
    ]
    assert loss_of([0]) == pytest.approx(alone[0], rel=1e-5)
    assert loss_of([1]) == pytest.approx(alone[1], rel=1e-5)
    assert loss_of([0, 1]) == pytest.approx(sum(alone), rel=1e-5)  # two images: the sum of each alone
    assert float(feature_terms(stage_a[0, :1], 3 * stage_a[0, :1])[0]) == pytest.approx(0.0, abs=1e-9)


def test_the_earlier_distance_form_stays_available():
    rng = np.random.default_rng(3)
    a_fp, a_q = rng.normal(size=(2, 1, 6, 6, 4)).astype(np.float32)
    b_fp, b_q = rng.normal(50, 40, size=(2, 1, 6, 6, 4)).astype(np.float32)
    together = feature_terms(np.concatenate([a_fp, b_fp]), np.concatenate([a_q, b_q]), "distance").numpy()
    alone = [feature_terms(x, y, "distance").numpy()[0] for x, y in ((a_fp, a_q), (b_fp, b_q))]
    assert together == pytest.approx(alone, rel=1e-6)
    unit = lambda v: v.ravel() / np.linalg.norm(v.ravel())  # noqa: E731
    assert alone[0] == pytest.approx(np.linalg.norm(unit(a_fp) - unit(a_q)), rel=1e-5)
    outputs = rng.uniform(0, 255, size=(2, 8, 8, 3)).astype(np.float32)
    loss, output, feature = distillation_loss(
        [outputs, np.concatenate([a_fp, b_fp])], [outputs + 2.55, np.concatenate([a_q, b_q])], 5.0, "distance"
    )
    assert float(output) == pytest.approx(0.01, rel=1e-4)  # the batch's mean L1 on the [0, 1] pixel scale
    assert float(feature) == pytest.approx(np.mean(alone), rel=1e-5)
    assert float(loss) == pytest.approx(0.01 + 5.0 * np.mean(alone), rel=1e-5)


def test_stage_outputs_per_architecture():
    assert stage_output_names(build_preset("edsr-baseline", scale=2)) == [f"body_{i}_add" for i in (3, 7, 11, 15)]
    assert stage_output_names(build_preset("rdn", scale=2, num_blocks=3)) == ["rdb_0_add", "rdb_1_add", "rdb_2_add"]
    # SwinIR: each residual group's Swin-block stack output (its last block's MLP residual), before the group's
    # conv and skip, where 2DQuant's released code hooks its BasicLayer; also in a quantized copy
    swinir = build_preset("swinir-light", scale=2, depths=(2, 3), num_heads=(6, 6))
    expected = ["layers_0_blocks_1_add_mlp", "layers_1_blocks_2_add_mlp"]
    assert stage_output_names(swinir) == expected
    assert [swinir.get_layer(f"layers_{i}_conv").input.ref() for i in range(2)] == [
        swinir.get_layer(name).output.ref() for name in expected
    ]
    assert stage_output_names(quantize_model(swinir, 4)) == expected


@pytest.mark.parametrize("arch", ["edsr", "swinir"])
def test_dqc_learns_the_bounds_and_nothing_else(photo, arch):
    keras.utils.set_random_seed(0)
    if arch == "edsr":
        fp = build_preset("edsr-baseline", scale=2, **TINY)
    else:
        fp = build_preset("swinir-light", scale=2, depths=(2, 2), num_heads=(2, 2), embed_dim=16)
    model = quantize_model(fp, 3, per_channel=True)
    batch = np.stack([photo[:16, :16], photo[300:316, 100:116]]).astype(np.float32)
    initialize_ranges(model, [batch], "dobi")
    distiller = Distiller(model, CalibrationConfig(bits=3, iterations=5, learning_rate=1e-2).resolved())
    bound_ids = {id(v) for v in distiller.bounds}
    assert len(bound_ids) == len({id(v) for s in quantizer_sites(model) for v in s.variables.values()}) > 0
    before = {v.name: v.numpy().copy() for v in model.variables}
    losses = [distiller.train_step(tf.constant(batch))["loss"] for _ in range(5)]
    assert distiller.current_step == 5 and np.all(np.isfinite(losses))
    for variable in model.variables:
        moved = not np.array_equal(before[variable.name], variable.numpy())
        learnable = id(variable) in bound_ids and np.any(before[variable.name] != 0)  # a bound at 0 stays there
        assert moved == learnable, variable.name


def test_swinir_q_k_and_v_get_their_own_ranges_which_dobi_and_dqc_set_apart(photo):
    """2DQuant's QuantLinearQKV: the qkv linear as q, k and v, the same function, each with its own weight and
    input range; DOBI fits each weight range to its own columns, and DQC moves the three input ranges apart (they
    start equal: one tensor feeds all three)."""
    keras.utils.set_random_seed(0)
    fp = build_preset("swinir-light", scale=2, depths=(2,), num_heads=(2,), embed_dim=16)
    model = quantize_model(fp, 4, split_qkv=True)
    batch = np.stack([photo[:16, :16], photo[300:316, 100:116]]).astype(np.float32)
    with bypass_quantizers():
        np.testing.assert_allclose(model(batch), fp(batch), atol=1e-3)
    assert not any(name.endswith("qkv") for name in quantized_layer_names(split_qkv_model(fp)))
    initialize_ranges(model, [batch], "dobi")
    sites = {(site.layer, site.site): site for site in quantizer_sites(model)}
    parts = [f"layers_0_blocks_0_attn_{part}" for part in "qkv"]
    kernels = [sites[name, "kernel"] for name in parts]
    inputs = [sites[name, "input"].variables for name in parts]
    assert len({float(site.variables["upper"]) for site in kernels}) == 3
    qkv_kernel = fp.get_layer("layers_0_blocks_0_attn_qkv").kernel.numpy()
    for site, columns in zip(kernels, np.split(qkv_kernel, 3, axis=1), strict=True):
        assert float(site.variables["upper"]) == pytest.approx(dobi_weight_upper(columns, 16, False, mid_rise=True))
    assert len({(float(v["lower"]), float(v["upper"])) for v in inputs}) == 1
    assert len({id(v["upper"]) for v in inputs}) == 3

    distiller = Distiller(model, CalibrationConfig(bits=4, iterations=3, learning_rate=1e-2).resolved())
    for _ in range(3):
        distiller.train_step(tf.constant(batch))
    assert len({(float(v["lower"]), float(v["upper"])) for v in inputs}) == 3


def calibrate_args(run_dir, model, calibration, val, *extra):
    return [
        "--run-dir", run_dir, "--model", model, "--scale", 2, "--calibration", calibration, "--val", val,
        "--batch-size", 2, "--init-batch-size", 4, "--patch", 12, "--validate-every", 2, "--checkpoint-every", 2,
        "--bits", 4, *extra,
    ]  # fmt: skip


def test_calibration_run_resumes_exactly_and_feeds_evaluate(tmp_path, tiny_model, train_folder, val_folder):
    full = run_module("edge_sr.calibrate", *calibrate_args(tmp_path / "full", tiny_model, train_folder, val_folder),
                      "--iterations", 4)  # fmt: skip
    assert full.returncode == 0, full.stderr
    run = json.loads((tmp_path / "full" / "run.json").read_text())
    assert run["kind"] == "calibrate" and run["calibrate"]["method"] == "2dquant"
    assert run["quantization"] == {
        "bits": 4, "placement": "paper", "per_channel": False, "weight_grid": "mid-rise", "split_qkv": True
    }  # fmt: skip
    history = read_history(tmp_path / "full")
    assert [entry["step"] for entry in history] == [0, 1, 2, 3]

    # Rewind a copy to its step-2 checkpoint, as if it had been stopped there: resuming repeats steps 2 and 3.
    shutil.copytree(tmp_path / "full", tmp_path / "rewound")
    checkpoints = tmp_path / "rewound" / "checkpoints"
    for path in checkpoints.glob("ckpt-4.*"):
        path.unlink()
    (checkpoints / "checkpoint").write_text('model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-2"\n')
    resumed = run_module("edge_sr.calibrate", "--run-dir", tmp_path / "rewound", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    losses = [[entry["loss"] for entry in read_history(tmp_path / name)] for name in ("full", "rewound")]
    assert np.allclose(losses[0], losses[1], rtol=1e-5)

    # A run from before the mid-rise grid (run.json without weight_grid) rebuilds on the narrow grid it used.
    def weight_grids(run_dir):
        return {site.quantizer.mid_rise for site in quantizer_sites(load_run_model(run_dir)) if site.is_weight}

    assert weight_grids(tmp_path / "rewound") == {True}
    old = json.loads((tmp_path / "rewound" / "run.json").read_text())
    del old["quantization"]["weight_grid"], old["calibrate"]["weight_grid"]
    (tmp_path / "rewound" / "run.json").write_text(json.dumps(old))
    assert weight_grids(tmp_path / "rewound") == {False}

    # The run directory is a model: evaluate reloads the best bounds and scores what validation scored.
    best = json.loads((tmp_path / "full" / "best" / "best.json").read_text())
    result = run_module("edge_sr.evaluate", "--model", tmp_path / "full", "--dataset", val_folder, "--scale", 2,
                        "--json", tmp_path / "eval.json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    scored = json.loads((tmp_path / "eval.json").read_text())
    assert scored["results"][0]["psnr"] == pytest.approx(best["psnr"], abs=1e-6)


@pytest.mark.parametrize("method", ["minmax", "percentile", "dobi"])
def test_stage_one_methods_write_a_run_without_dqc(tmp_path, tiny_model, train_folder, val_folder, method):
    args = calibrate_args(tmp_path / method, tiny_model, train_folder, val_folder, "--method", method)
    result = run_module("edge_sr.calibrate", *args)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / method / "best" / "best.json").read_text())["step"] == 0
    model = load_source_model(str(tmp_path / method))
    assert all(site.quantizer.bits == 4 for site in quantizer_sites(model))


def test_bad_calibration_input_gives_clear_errors(tmp_path, tiny_model, train_folder, val_folder):
    def calibrate(*extra):
        return run_module("edge_sr.calibrate", *calibrate_args(tmp_path / "r", tiny_model, train_folder, val_folder),
                          *extra)  # fmt: skip

    images = len(list(train_folder.iterdir()))
    assert_clean_error(calibrate("--batch-size", 10), f"{images} calibration image(s) are fewer than one batch of 10")
    assert_clean_error(calibrate("--patch", 2000), "smaller than the 4000×4000 HR patch")
    assert_clean_error(calibrate("--bits", 1), "bits must be an integer from 2 to 8")
    assert_clean_error(run_module("edge_sr.calibrate", "--run-dir", tmp_path / "r"), "a new run needs --model")
    (tmp_path / "train_run").mkdir()
    (tmp_path / "train_run" / "run.json").write_text(json.dumps({"kind": "train"}))
    assert_clean_error(
        run_module("edge_sr.calibrate", "--run-dir", tmp_path / "train_run", "--resume"), "is a train run"
    )


def test_ptq_benchmark_compares_methods_with_tflite_ptq(tmp_path, tiny_model, train_folder, val_folder):
    result = run_module(
        "edge_sr.benchmark", "ptq", "--model", tiny_model, "--scale", 2, "--calibration", train_folder,
        "--val", val_folder, "--eval", val_folder, "--bits", 4, "--methods", "minmax", "2dquant",
        "--per-channel-methods", "dobi", "--iterations", 2, "--batch-size", 2, "--patch", 16,
        "--feature-terms", "paper", "distance",
        "--out", tmp_path / "ptq", "--json", tmp_path / "ptq.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "ptq.json").read_text())["results"]
    assert [(row["method"], row["bits"], row["weights"]) for row in rows] == [
        ("FP32", 32, "-"), ("TFLite PTQ", 8, "per-channel"), ("minmax", 4, "per-tensor, mid-rise"),
        ("2dquant", 4, "per-tensor, mid-rise"), ("2dquant/distance", 4, "per-tensor, mid-rise"),
        ("dobi", 4, "per-channel, mid-rise"),
    ]  # fmt: skip
    assert all(np.isfinite(row["psnr"]["val"]) for row in rows)
    assert "TFLite PTQ" in result.stdout and "val PSNR" in result.stdout


def test_calibration_quantizes_every_swinir_light_linear_and_matmul_input(tmp_path, train_folder, val_folder):
    """The paper's model and placement: every block linear's input and weight, and both attention matmuls'
    inputs, each with its own range (random weights: no official checkpoint is reachable here)."""
    args = calibrate_args(tmp_path / "swinir", "swinir-light", train_folder, val_folder, "--method", "dobi",
                          "--patch", 16, "--init-batch-size", 2)  # fmt: skip
    result = run_module("edge_sr.calibrate", *args)
    assert result.returncode == 0, result.stderr
    model = load_source_model(str(tmp_path / "swinir"))
    blocks = [layer for layer in model.layers if re.fullmatch(r"layers_\d+_blocks_\d+_.*", layer.name)]
    linears = [layer for layer in blocks if "Dense" in type(getattr(layer, "layer", layer)).__name__]
    attentions = [layer for layer in blocks if hasattr(layer, "matmul_quantizers")]
    # 4 groups × 6 blocks: q, k, v (2DQuant's split), proj, fc1, fc2; attention
    assert len(linears) == 24 * 6 and len(attentions) == 24
    assert all(isinstance(layer, InputQuantizeWrapper) for layer in linears)
    sites = quantizer_sites(model)
    assert len(sites) == 24 * (6 * 2 + 4)  # each linear's input and weight, each attention's 4 matmul inputs
    for site in sites:
        lower, upper = (np.asarray(bound) for bound in site.quantizer.range(site.weight, site.variables))
        assert site.quantizer.bits == 4 and np.all(upper > lower), f"{site.layer}/{site.site}"
        if not site.is_weight:
            assert (float(lower), float(upper)) != (-6.0, 6.0), f"{site.layer}/{site.site} kept its default range"


@pytest.mark.skipif(os.environ.get("EDGE_SR_NETWORK_TESTS") != "1", reason="set EDGE_SR_NETWORK_TESTS=1 (npm fetch)")
def test_dqc_on_the_real_rdn_per_channel_w4_keeps_every_range():
    """The demo's 2DQuant W4A4 on idealo's RDN: many per-channel kernel bounds are about 1e-2, which plain Adam at
    lr 1e-2 drove through zero within 12 steps. 20 steps of lr 1e-2 (no decay) must leave every range intact."""
    from skimage import data

    from edge_sr.methods.qat import collapsed_ranges

    model = quantize_model(load_source_model("zoo:isr-rdn-psnr-small-x2", 2), 4, per_channel=True)
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    batch = tf.constant(np.stack([p[64:96, 96:128] for p in photos]).astype(np.float32))
    initialize_ranges(model, [batch], "dobi")
    uppers = [s.variables["upper"].numpy() for s in quantizer_sites(model) if s.is_weight]
    assert min(u.min() for u in uppers) < 0.1  # bounds that steps of about lr cross within a few steps
    config = CalibrationConfig(bits=4, per_channel=True, iterations=10_000, batch_size=4, learning_rate=1e-2)
    distiller = Distiller(model, config.resolved())
    for step in range(20):
        assert np.isfinite(distiller.train_step(batch)["loss"])
        assert collapsed_ranges(model) == [], f"step {step}"
