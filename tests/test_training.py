"""ODM's pieces against their formulas, and short real training runs through the CLI."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import REPO, TINY, assert_clean_error, run_module

from edge_sr.data import PatchSampler
from edge_sr.errors import EdgeSRError
from edge_sr.methods.loop import fit
from edge_sr.methods.qat import cooperative_weight, gradient_statistics, mismatch_loss, mismatch_squares
from edge_sr.methods.training import TrainConfig, Trainer, prepare_model, quantization_of
from edge_sr.models.rundir import read_history
from edge_sr.quant import UniformQuantizer
from edge_sr.quant.placement import quantizer_sites
from edge_sr.quant.quantizer import observe_quantizers
from models_tf import build_preset


def test_mismatch_loss_is_the_distance_to_the_quantized_tensor():
    quantizer = UniformQuantizer(2)
    weights = {"lower": tf.Variable(-1.0), "upper": tf.Variable(2.0)}
    x = tf.Variable([[-3.0, -0.4, 0.6, 1.2, 5.0]])
    distance = x.numpy() - np.array([[-1.0, 0.0, 1.0, 1.0, 2.0]])
    squares = []
    with tf.GradientTape() as tape:
        mismatch_squares(squares)(quantizer, x, weights)
        mismatch_squares(squares)(UniformQuantizer(2, symmetric=True), x, {"upper": tf.Variable(1.0)})
        loss_m, surrogate = mismatch_loss(squares, tf.distribute.get_replica_context())
    assert len(squares) == 1  # weight sites have no mismatch term
    assert float(loss_m) == pytest.approx(np.linalg.norm(distance))
    gradients = tape.gradient(surrogate, [x, weights["lower"], weights["upper"]])
    assert gradients[1:] == [None, None]  # ranges held fixed
    # ∇‖X − q(X)‖₂: the straight-through round passes X through q inside the range (no gradient there), the clip
    # holds q at a bound outside it (there (X − q(X))/‖X − q(X)‖₂).
    clipped = np.array([[1.0, 0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_allclose(gradients[0].numpy(), clipped * distance / np.linalg.norm(distance), rtol=1e-6)


def test_cooperative_weight_is_one_when_aligned_and_zero_when_opposite():
    g = [tf.constant([1.0, -2.0]), tf.constant([[3.0]])]
    opposite = [-t for t in g]
    orthogonal = [tf.constant([2.0, 1.0]), tf.constant([[0.0]])]
    assert [float(s) for s in cooperative_weight(g, g)] == pytest.approx([1.0, 1.0])
    assert [float(s) for s in cooperative_weight(g, opposite)] == pytest.approx([0.0, 0.0])
    assert [float(s) for s in cooperative_weight(g, orthogonal)] == pytest.approx([0.5, 0.5])
    mixed = [g[0], -g[1]]
    assert [float(s) for s in cooperative_weight(g, mixed, per_tensor=True)] == pytest.approx([1.0, 0.0])


def test_gradient_statistics_count_sign_conflicts_among_shared_parameters():
    grad_r = [tf.constant([1.0, 2.0, -1.0, 4.0])]
    grad_m = [tf.constant([1.0, -2.0, 1.0, 0.0])]
    cosine, conflict = gradient_statistics(grad_r, grad_m)
    assert float(conflict) == pytest.approx(2 / 3)
    assert float(cosine) == pytest.approx((1 - 4 - 1) / (np.sqrt(22) * np.sqrt(6)))


def test_train_step_is_the_paper_combination_and_reuses_the_weight_in_between(train_folder):
    fp = build_preset("edsr-baseline", scale=2, **TINY)
    config = TrainConfig(method="odm", bits=8, batch_size=2, hr_patch=24, lambda_m=1e-2, similarity_every=2).resolved(
        "edsr", 2
    )
    sampler = PatchSampler(train_folder, 2, 24, 2, progress=False)
    trainer = Trainer(prepare_model(fp, config, [sampler.batch(0, stream=1)[0]]), config)
    # Plain SGD at rate 1: a step moves every variable by exactly minus the gradient it was given.
    odm = trainer.odm_model
    odm.compile(
        optimizer=keras.optimizers.SGD(1.0),
        range_optimizer=keras.optimizers.SGD(1.0),
        gamma_optimizer=keras.optimizers.SGD(1.0),
    )
    variables, count = odm.weight_vars + odm.bound_vars + odm.gamma_vars, len(odm.weight_vars)

    def gradients(lr, hr):
        squares = []
        with tf.GradientTape(persistent=True) as tape:
            with observe_quantizers(mismatch_squares(squares)):
                loss_r = tf.reduce_mean(tf.abs(trainer.model(lr, training=True) - hr))
            loss_m = tf.add_n([tf.sqrt(square) for square in squares])
        return [
            [
                np.zeros(v.shape, np.float32) if g is None else g.numpy()
                for g, v in zip(tape.gradient(loss, variables), variables, strict=True)
            ]
            for loss in (loss_r, loss_m)
        ]

    def moves(lr, hr):  # the step's metrics and moves; then the variables are put back
        before = [v.numpy() for v in variables]
        metrics = trainer.train_step(lr, hr)
        moved = [old - variable.numpy() for old, variable in zip(before, variables, strict=True)]
        for old, variable in zip(before, variables, strict=True):
            variable.assign(old)
        return metrics, moved

    def distance(a, b):  # relative, over all variables (graph and eager runs may round a few values apart)
        return np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b, strict=True)) / sum(np.sum(y**2) for y in b))

    lr, hr = sampler.batch(0)
    grad_r, grad_m = gradients(lr, hr)
    sim = float(
        cooperative_weight([tf.constant(g) for g in grad_r[:count]], [tf.constant(g) for g in grad_m[:count]])[0]
    )
    # Step 0 refreshes: two gradients, the paper's combination for the weights, L_R alone for the ranges.
    expected = [r + 1e-2 * sim * m for r, m in zip(grad_r[:count], grad_m[:count], strict=True)] + grad_r[count:]
    metrics, moved = moves(lr, hr)
    assert 0 < sim < 1 and metrics["similarity"] == pytest.approx(sim, rel=1e-4) == float(odm.similarity)
    assert distance(moved, expected) < 5e-3 and distance(grad_r, expected) > 0.1

    grad_r, grad_m = gradients(lr, hr)  # the same batch and weights (moves put them back), so ∇L_M shows again
    odm.similarity.assign(0.9)
    # Step 1: one backward pass of L_R + λ_M·w·L_M, w the kept weight, for weights and ranges alike.
    expected = [r + 1e-2 * 0.9 * m for r, m in zip(grad_r, grad_m, strict=True)]
    metrics, moved = moves(lr, hr)
    assert "similarity" not in metrics and "cosine" not in metrics and metrics["mismatch"] > 0
    assert distance(moved, expected) < 5e-3 and distance(grad_r, expected) > 0.05


def test_without_wcc_the_weight_bound_is_the_current_max_and_gamma_learns_at_the_base_rate(train_folder):
    """ODM's ablation baseline (minmax, --no-wcc): u_w = max |W| of the weights after each step, nothing learned;
    with WCC, gamma has its own optimizer at the base learning rate, the ranges theirs at 10×."""
    fp = build_preset("edsr-baseline", scale=2, **TINY)
    sampler = PatchSampler(train_folder, 2, 24, 2, progress=False)
    calibration = [sampler.batch(0, stream=1)[0]]
    for method, overrides in (("minmax", {}), ("odm", {"clip_correction": False})):
        config = TrainConfig(method=method, bits=4, batch_size=2, hr_patch=24, **overrides).resolved("edsr", 2)
        assert quantization_of(config)["weight_bound"] == "max"  # in run.json: resumed and reloaded runs keep it
        trainer = Trainer(prepare_model(fp, config, calibration), config)
        weight_sites = [site for site in quantizer_sites(trainer.model) if site.is_weight]
        assert weight_sites and all(not site.variables for site in weight_sites)
        assert not trainer.odm_model.gamma_vars
        before = weight_sites[0].weight.numpy().copy()
        trainer.train_step(*sampler.batch(0))
        weights = weight_sites[0].weight.numpy()
        assert not np.array_equal(weights, before)  # the step moved the weights, and the bound follows them
        _, upper = weight_sites[0].quantizer.range(weight_sites[0].weight, weight_sites[0].variables)
        assert float(upper) == np.abs(weights).max()

    config = TrainConfig(method="odm", bits=4, learning_rate=1e-4).resolved("edsr", 2)
    trainer = Trainer(prepare_model(fp, config, calibration), config)
    gammas = {id(site.variables["gamma"]) for site in quantizer_sites(trainer.model) if site.is_weight}
    odm = trainer.odm_model
    assert gammas and {id(v) for v in odm.gamma_vars} == gammas
    assert gammas.isdisjoint(id(v) for v in odm.bound_vars)
    assert float(odm.gamma_optimizer.learning_rate) == pytest.approx(1e-4)
    assert float(odm.range_optimizer.learning_rate) == pytest.approx(1e-3)


def test_a_per_tensor_cosine_needs_both_gradients_every_step():
    assert TrainConfig(cosine="per-tensor").resolved("edsr", 2).similarity_every == 1
    assert TrainConfig().resolved("edsr", 2).similarity_every == 4
    with pytest.raises(EdgeSRError, match="--similarity-every 1 with --cosine per-tensor"):
        TrainConfig(cosine="per-tensor", similarity_every=4).resolved("edsr", 2)


def test_range_init_and_per_channel_weights_are_checked_and_reach_the_quantizers(photo):
    assert TrainConfig().resolved("edsr", 2).range_init == "percentile"  # ODM's own
    with pytest.raises(EdgeSRError, match="pass --no-wcc with odm"):
        TrainConfig(per_channel=True).resolved("edsr", 2)
    with pytest.raises(EdgeSRError, match="takes no --range-init"):
        TrainConfig(method="pams", range_init="dobi").resolved("edsr", 2)
    config = TrainConfig(bits=8, clip_correction=False, per_channel=True, range_init="dobi").resolved("edsr", 2)
    assert quantization_of(config)["per_channel"] and config.weight_bound == "learned"
    fp = build_preset("edsr-baseline", scale=2, num_blocks=1, num_features=8)
    batch = photo[None, :32, :32].astype(np.float32)
    model = prepare_model(fp, config, [batch])
    uppers = [s.variables["upper"] for s in quantizer_sites(model) if s.is_weight]
    assert uppers and all(upper.shape == (8,) for upper in uppers)  # one bound per output channel
    ranges = {}
    for init in ("percentile", "dobi"):
        model = prepare_model(fp, TrainConfig(bits=8, clip_correction=False, range_init=init).resolved("edsr", 2),
                              [batch])  # fmt: skip
        ranges[init] = [float(s.variables["upper"].numpy()) for s in quantizer_sites(model) if not s.is_weight]
    # DOBI's 8-bit ranges clip far less than the 99th percentile
    assert all(d > p for d, p in zip(ranges["dobi"], ranges["percentile"], strict=True))


def test_the_fp_target_trains_against_the_frozen_fp_model(train_folder):
    with pytest.raises(EdgeSRError, match="--target fp needs edge_sr's quantizers"):
        TrainConfig(method="tfmot8", target="fp").resolved("edsr", 2)
    keras.utils.set_random_seed(0)
    fp = build_preset("edsr-baseline", scale=2, num_blocks=1, num_features=8)
    sampler = PatchSampler([train_folder], 2, 24, 2)
    lr, hr = sampler.batch(0)
    before = fp(lr).numpy()
    losses = {}
    for target in ("hr", "fp"):
        config = TrainConfig(bits=8, batch_size=2, hr_patch=24, target=target, learning_rate=1e-4).resolved("edsr", 2)
        trainer = Trainer(prepare_model(fp, config, [lr]), config, fp_model=fp)
        losses[target] = [trainer.train_step(lr, hr)["loss"] for _ in range(3)]
    # An 8-bit model is within a few levels of its FP output, far from the HR image (a random-weight network);
    # the teacher stays the FP model while the trained weights move.
    assert 0 < max(losses["fp"]) < losses["hr"][0] / 10
    assert np.array_equal(fp(lr).numpy(), before)
    assert float(np.mean(np.abs(trainer.model(lr).numpy() - before))) == pytest.approx(losses["fp"][-1], rel=0.5)
    with pytest.raises(EdgeSRError, match="pass it as fp_model"):
        Trainer(trainer.model, config)


def train_args(run_dir, model, train, val, *extra):
    return [
        "--run-dir", run_dir, "--model", model, "--scale", 2, "--train", train, "--val", val,
        "--batch-size", 2, "--patch", 24, "--lr", 1e-3, "--validate-every", 4, "--checkpoint-every", 4,
        "--method", "odm", "--bits", 4, "--lambda-m", 1e-3, *extra,
    ]  # fmt: skip


def history_of(run_dir, name):
    return np.array([entry[name] for entry in read_history(run_dir)])


def losses(run_dir):
    return history_of(run_dir, "loss")


def test_odm_run_learns_resumes_exactly_and_keeps_its_outputs(tmp_path, tiny_model, train_folder, val_folder):
    full = run_module("edge_sr.train", *train_args(tmp_path / "full", tiny_model, train_folder, val_folder),
                      "--iterations", 24)  # fmt: skip
    assert full.returncode == 0, full.stderr
    history = read_history(tmp_path / "full")
    assert [entry["step"] for entry in history] == list(range(24))
    loss = losses(tmp_path / "full")
    assert loss[-6:].mean() < 0.8 * loss[:6].mean()
    assert all(entry["mismatch"] > 0 for entry in history)
    refreshed = [entry for entry in history if "conflict" in entry]  # every 4th step takes both gradients
    assert [entry["step"] for entry in refreshed] == list(range(0, 24, 4))
    assert all(0 <= entry["conflict"] <= 1 and 0 <= entry["similarity"] <= 1 for entry in refreshed)
    run = json.loads((tmp_path / "full" / "run.json").read_text())
    assert run["train"]["method"] == "odm" and run["train"]["clip_correction"] is True and run["scale"] == 2
    best = json.loads((tmp_path / "full" / "best" / "best.json").read_text())
    assert best["step"] in (4, 8, 12, 16, 20, 24) and np.isfinite(best["psnr"])
    assert list((tmp_path / "full" / "logs").glob("events.out.tfevents.*"))

    half = run_module("edge_sr.train", *train_args(tmp_path / "half", tiny_model, train_folder, val_folder),
                      "--iterations", 10)  # fmt: skip
    assert half.returncode == 0, half.stderr  # it stops between two refreshes: the kept weight must resume too
    resumed = run_module("edge_sr.train", "--run-dir", tmp_path / "half", "--resume", "--iterations", 24)
    assert resumed.returncode == 0, resumed.stderr
    assert np.allclose(losses(tmp_path / "half"), loss, rtol=1e-5)

    again = run_module("edge_sr.train", *train_args(tmp_path / "half", tiny_model, train_folder, val_folder))
    assert_clean_error(again, "already holds a run")


@pytest.mark.parametrize(("stop", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_sigterm_saves_a_checkpoint_that_resumes(tmp_path, tiny_model, train_folder, val_folder, stop, status):
    """SIGTERM (a scheduler's stop) and SIGINT (Ctrl-C) finish the step and save; the exit status is 128 + the
    signal, as for a process that signal ended, so a job script can tell a stop from a finished run (0)."""
    arguments = train_args(tmp_path / "run", tiny_model, train_folder, val_folder, "--iterations", 10_000)
    command = [sys.executable, "-m", "edge_sr.train", *map(str, arguments)]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    history = tmp_path / "run" / "history.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (history.is_file() and len(history.read_text().splitlines()) >= 3):
        time.sleep(0.5)
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == status, stderr
    assert "checkpoint saved" in stdout
    stopped_at = len(read_history(tmp_path / "run"))
    assert (tmp_path / "run" / "checkpoints" / f"ckpt-{stopped_at}.index").is_file()
    resumed = run_module("edge_sr.train", "--run-dir", tmp_path / "run", "--resume", "--iterations", stopped_at + 2)
    assert resumed.returncode == 0, resumed.stderr
    assert [e["step"] for e in read_history(tmp_path / "run")] == list(range(stopped_at + 2))


def test_two_mirrored_devices_match_one(tmp_path, tiny_model, train_folder, val_folder):
    script = textwrap.dedent(
        """
        import sys, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from edge_sr.errors import run_cli
        from edge_sr.train import main
        run_cli(main, sys.argv[1:])
        """
    )
    common = train_args(tmp_path / "{}", tiny_model, train_folder, val_folder)
    single = run_module("edge_sr.train", *[str(a).format("single") for a in common], "--iterations", 6)
    assert single.returncode == 0, single.stderr
    mirrored = subprocess.run(
        [sys.executable, "-c", script, *[str(a).format("mirrored") for a in common], "--iterations", "6",
         "--strategy", "mirrored"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ},
    )  # fmt: skip
    assert mirrored.returncode == 0, mirrored.stderr
    # The same batches and updates, to the float rounding of the other reduction order of two replicas' gradients
    # (1e-7 seen on an AVX-512 CPU). Before L_M was the global batch's (each replica's half-batch norms averaged:
    # 1/√2 of it) the loss drifted by 2.2e-3 by step 6.
    for name in ("loss", "mismatch"):
        on_two, on_one = (history_of(tmp_path / run, name) for run in ("mirrored", "single"))
        np.testing.assert_allclose(on_two, on_one, rtol=1e-5, err_msg=name)


def broken_range_run(train_folder):
    fp = build_preset("edsr-baseline", scale=2, **TINY)
    config = TrainConfig(method="minmax", bits=4, iterations=5, batch_size=2, hr_patch=24).resolved("edsr", 2)
    sampler = PatchSampler(train_folder, 2, 24, 2, progress=False)
    model = prepare_model(fp, config, [sampler.batch(0, stream=1)[0]])
    return Trainer(model, config), sampler, model.get_layer("body_1_conv1").input_quantizer_vars


def test_a_nan_loss_stops_naming_the_collapsed_range(tmp_path, train_folder):
    trainer, sampler, collapsing = broken_range_run(train_folder)
    collapsing["upper"].assign(float("nan"))
    # Whether NaN passes a quantizer depends on the CPU's min/max kernels (on some a clamp drops NaN operands), so
    # the float head's bias is NaN too: the loss is NaN everywhere, and the error still names the range.
    head = trainer.model.get_layer("head")
    head.bias.assign(np.full(head.bias.shape, np.nan, np.float32))
    with pytest.raises(EdgeSRError, match="loss became nan at step 0 .*body_1_conv1.*last good checkpoint"):
        fit(trainer, sampler, tmp_path / "run", lambda m: 0.0, show_progress=False)


def test_a_collapsed_range_with_a_finite_loss_is_never_saved(tmp_path, train_folder):
    trainer, sampler, collapsing = broken_range_run(train_folder)
    collapsing["upper"].assign(collapsing["lower"] - 1.0)  # empty: the quantizer clamps everything, loss finite
    with pytest.raises(EdgeSRError, match="collapsed by step 5 .*body_1_conv1/input.*last good checkpoint"):
        fit(trainer, sampler, tmp_path / "run", lambda m: 0.0, show_progress=False)
    assert not list((tmp_path / "run" / "checkpoints").glob("ckpt-*")) and not (tmp_path / "run" / "best").exists()


def test_bad_training_input_gives_clear_errors(tmp_path, tiny_model, train_folder, val_folder):
    def train(*extra, model=tiny_model, train=train_folder):
        return run_module("edge_sr.train", *train_args(tmp_path / "r", model, train, val_folder), *extra)

    assert_clean_error(train("--bits", 9), "bits must be an integer from 2 to 8")
    assert_clean_error(train("--scale", 3), "is a ×2 model, not ×3")
    (tmp_path / "empty").mkdir()
    assert_clean_error(train(train=tmp_path / "empty"), "no images in training folder")
    assert_clean_error(train("--patch", 4000), "smaller than the 4000×4000 HR patch")
    assert_clean_error(run_module("edge_sr.train", "--run-dir", tmp_path / "none", "--resume"), "not an edge_sr run")


def free_local_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_workers_match_one_and_the_chiefs_checkpoint_resumes(tmp_path, tiny_model, train_folder, val_folder):
    """MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1: each step's global batch is split
    between them, so the run is the single-worker run on the same batches, up to the reduction order."""
    cluster = {"worker": [f"127.0.0.1:{free_local_port()}" for _ in range(2)]}
    common = train_args(tmp_path / "{}", tiny_model, train_folder, val_folder, "--checkpoint-every", 2)
    workers = []
    try:
        for index in range(2):  # each its own run directory: the chief's (worker 0) is the run to keep
            task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            command = [sys.executable, "-m", "edge_sr.train", *[str(a).format(f"worker{index}") for a in common],
                       "--iterations", "4", "--strategy", "multiworker"]  # fmt: skip
            workers.append(subprocess.Popen(command, cwd=REPO, env={**os.environ, "TF_CONFIG": json.dumps(task)},
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
        deadline = time.time() + 240
        for worker in workers:
            _, stderr = worker.communicate(timeout=max(deadline - time.time(), 1))
            assert worker.returncode == 0, stderr
    finally:
        for worker in workers:  # a worker left waiting for its peer must not outlive the test
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    single = run_module("edge_sr.train", *[str(a).format("single") for a in common], "--iterations", 6)
    assert single.returncode == 0, single.stderr
    resumed = run_module("edge_sr.train", "--run-dir", tmp_path / "worker0", "--resume", "--iterations", 6)
    assert resumed.returncode == 0, resumed.stderr

    assert np.array_equal(losses(tmp_path / "worker0")[:4], losses(tmp_path / "worker1"))  # one run, two workers
    chief, single_run = read_history(tmp_path / "worker0"), read_history(tmp_path / "single")
    assert [e["step"] for e in chief] == list(range(6))
    # The same global batches and updates, to the float rounding of the other reduction order (1e-7 seen), the
    # resumed steps 4 and 5 included.
    for name in ("loss", "mismatch"):
        np.testing.assert_allclose([e[name] for e in chief], [e[name] for e in single_run], rtol=1e-5)
    refreshed = [e for e in chief if "similarity" in e]
    assert [e["step"] for e in refreshed] == [0, 4] == [e["step"] for e in single_run if "similarity" in e]
    similarities = [e["similarity"] for e in single_run if "similarity" in e]
    np.testing.assert_allclose([e["similarity"] for e in refreshed], similarities, rtol=1e-5)
