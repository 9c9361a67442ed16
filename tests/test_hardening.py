"""Issue #23: untrusted model files run no code, nothing a user owns is overwritten, every user error is one line.

Each case feeds a CLI (as a user would) or a loader a bad input and checks the outcome: exit status 2, exactly one
`error: ...` line naming the problem, no traceback, and every file the user had unchanged.
"""

import hashlib
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, run_module

from edge_sr import EdgeSRError

# TensorFlow's start-up lines (absl's "I0000 00:00:..." format, the oneDNN notice, cuInit, tf.data's NodeDef errors)
TENSORFLOW_NOISE = r"^[IWEF]\d{4} |^WARNING: All log messages before absl|oneDNN|cuInit|use_unbounded_threadpool"


def checksums(*folders):
    """{path: sha256} of every file under `folders`: what "no user file changed" is compared on."""
    return {
        path: hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted(Path(folder).rglob("*"))
        if path.is_file()
    }


def assert_one_error(result, *words):
    """Exit status 2, no traceback, and exactly one `error:` line, the last one, containing every word."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    for word in words:
        assert word in errors[0], result.stderr


@pytest.fixture
def bench(tmp_path, photo):
    """A one-image benchmark folder (HR only; evaluate derives the LR)."""
    from edge_sr.data import write_image

    write_image(tmp_path / "bench" / "HR" / "a.png", photo[:64, :64])
    return tmp_path / "bench"


# --- 1, 13: .keras files ---------------------------------------------------------------------------------------


def _lambda_model(marker):
    """A tf_keras model whose Lambda layer creates `marker` when it runs."""
    import tf_keras as keras

    payload = eval(f"lambda x: __import__('pathlib').Path({str(marker)!r}).touch() or x")  # noqa: S307
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Lambda(payload)(inputs))


def test_hdf5_renamed_keras_runs_no_code(tmp_path, bench):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.keras"
    _lambda_model(marker).save(tmp_path / "evil.h5")
    (tmp_path / "evil.h5").rename(evil)
    marker.unlink()
    before = checksums(tmp_path)
    result = run_module("edge_sr.evaluate", "--model", evil, "--dataset", bench, "--scale", 2)
    assert_one_error(result, "evil.keras", "not a .keras (zip) file")
    assert not marker.exists() and checksums(tmp_path) == before


def test_zip_keras_with_lambda_is_refused(tmp_path):
    from models_tf import load_model

    marker = tmp_path / "payload-ran"
    _lambda_model(marker).save(tmp_path / "lambda.keras")
    marker.unlink()
    with pytest.raises(EdgeSRError, match="cannot load"):
        load_model(tmp_path / "lambda.keras")
    assert not marker.exists()


def _rewrite_zip(source, target, change):
    """Copy a zip, passing each (name, bytes) through `change`, which returns the new bytes or None to drop it."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            data = change(name, old.read(name))
            if data is not None:
                new.writestr(name, data)


def _keras3(name, data):
    return b'{"keras_version": "3.6.0"}' if name == "metadata.json" else data


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda good, bad: _rewrite_zip(good, bad, _keras3), ["Keras 3.6.0"]),
        (lambda good, bad: _rewrite_zip(good, bad, lambda n, d: None if n == "config.json" else d), ["cannot load"]),
        (lambda good, bad: bad.write_bytes(good.read_bytes()[:3000]), ["not a .keras (zip) file"]),
        (lambda good, bad: bad.write_bytes(np.random.default_rng(0).bytes(3000)), ["not a .keras (zip) file"]),
    ],
    ids=["keras3", "no-config", "truncated", "random-bytes"],
)
def test_broken_keras_is_one_error(tmp_path, tiny_model, make, words):
    from models_tf import load_model

    bad = tmp_path / "bad.keras"
    make(tiny_model, bad)
    with pytest.raises(EdgeSRError) as error:
        load_model(bad)
    for word in words:
        assert word in str(error.value)


def test_foreign_keras_model_is_one_error(tmp_path, bench):
    """Another program's tf_keras model (a classifier): refused by shape, not an IndexError in the message code."""
    import tf_keras as keras

    inputs = keras.Input((8,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "classifier.keras")
    result = run_module("edge_sr.evaluate", "--model", tmp_path / "classifier.keras", "--dataset", bench, "--scale", 2)
    assert_one_error(result, "classifier.keras", "not a super-resolution model")


# --- 2, 3, 14: TF.js and PyTorch weights ---------------------------------------------------------------------


def _tfjs_model(folder, quantize=False):
    """A tiny idealo RDN as a TF.js layers-model in `folder`: (model.json, its manifest as a dict)."""
    from test_idealo import TINY as RDN_TINY
    from test_idealo import idealo_reference, reference_weights, write_tfjs

    folder.mkdir(parents=True, exist_ok=True)
    reference = idealo_reference(2, **RDN_TINY)
    model_json = write_tfjs(folder, reference, reference_weights(reference), quantize=quantize, shards=1)
    return model_json, json.loads(model_json.read_text())


def _with_manifest(model_json, manifest, change):
    change(manifest)
    model_json.write_text(json.dumps(manifest))
    return model_json


@pytest.fixture
def reads_only_inside(monkeypatch, tmp_path):
    """Make reading a file of the test's folder outside `folder`, or a device, fail the test; returns a function
    that sets `folder`."""
    allowed = []
    read_bytes = Path.read_bytes

    def guarded(path):
        resolved = Path(path).resolve()
        watched = resolved.is_relative_to(tmp_path) or resolved.is_relative_to("/dev")
        assert not (allowed and watched) or resolved.is_relative_to(allowed[0]), f"read {path} outside the folder"
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", guarded)
    return lambda folder: allowed.append(folder.resolve())


@pytest.mark.parametrize("shard", ["/dev/zero", "../outside.bin", "ABSOLUTE", "link.bin"])
def test_tfjs_shards_stay_in_the_model_folder(tmp_path, reads_only_inside, shard):
    from converters.idealo import load_idealo

    model_json, manifest = _tfjs_model(tmp_path / "model")
    outside = tmp_path / "outside.bin"
    outside.write_bytes((tmp_path / "model" / manifest["weightsManifest"][0]["paths"][0]).read_bytes())
    (tmp_path / "model" / "link.bin").symlink_to(outside)
    shard = str(outside) if shard == "ABSOLUTE" else shard
    _with_manifest(model_json, manifest, lambda m: m["weightsManifest"][0].update(paths=[shard]))
    reads_only_inside(tmp_path / "model")
    with pytest.raises(EdgeSRError, match="outside the model's folder"):
        load_idealo(model_json)


def test_tfjs_shard_sizes_are_checked_before_reading(tmp_path, monkeypatch):
    from converters.idealo import load_idealo

    model_json, manifest = _tfjs_model(tmp_path / "model")
    shard = tmp_path / "model" / manifest["weightsManifest"][0]["paths"][0]
    shard.write_bytes(shard.read_bytes() + bytes(4096))
    monkeypatch.setattr(Path, "read_bytes", lambda path: pytest.fail(f"{path} was read"))
    with pytest.raises(EdgeSRError, match="shards hold"):
        load_idealo(model_json)


def test_tfjs_shard_outside_the_folder_cli(tmp_path, private_cache):
    model_json, manifest = _tfjs_model(tmp_path / "model")
    _with_manifest(model_json, manifest, lambda m: m["weightsManifest"][0].update(paths=["../../etc/passwd"]))
    before = checksums(tmp_path / "model")
    result = run_module("edge_sr.zoo", "pull", "isr-rdn-psnr-small-x2", "--from", model_json)
    assert_one_error(result, "../../etc/passwd", "outside the model's folder")
    assert checksums(tmp_path / "model") == before and not private_cache.exists()


def _nan_scale(manifest):
    manifest["weightsManifest"][0]["weights"][0]["quantization"]["scale"] = float("nan")


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda m: m["weightsManifest"][0].update(paths=["missing.bin"]), ["missing.bin is missing"]),
        (lambda m: m["weightsManifest"][0].pop("paths"), ["not a valid TF.js weights manifest", "paths"]),
        (lambda m: m["weightsManifest"][0]["weights"][0]["quantization"].pop("min"), ["manifest", "min"]),
        (lambda m: m["weightsManifest"][0]["weights"][0].update(shape=[-1, 3]), ["shape [-1, 3]"]),
        (lambda m: m["weightsManifest"][0]["weights"][0].update(dtype="object"), ["dtype"]),
        (_nan_scale, ["NaN"]),
    ],
    ids=["missing-shard", "no-paths", "no-min", "negative-shape", "object-dtype", "nan-scale"],
)
def test_broken_tfjs_is_refused_and_the_cache_kept(tmp_path, private_cache, tiny_model, change, words):
    """Each damaged manifest is one error line, and a good cache entry for the name is left as it was."""
    model_json, manifest = _tfjs_model(tmp_path / "model", quantize=True)
    _with_manifest(model_json, manifest, change)
    cached = private_cache / "models" / "isr-rdn-psnr-small-x2.keras"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(tiny_model.read_bytes())
    before = checksums(tmp_path / "model", private_cache)
    result = run_module("edge_sr.zoo", "pull", "isr-rdn-psnr-small-x2", "--from", model_json)
    assert_one_error(result, *words)
    assert checksums(tmp_path / "model", private_cache) == before


def test_invalid_tfjs_json_is_one_error(tmp_path):
    from converters.idealo import load_idealo

    (tmp_path / "model.json").write_text('{"weightsManifest": [')
    with pytest.raises(EdgeSRError, match="not a TF.js model.json"):
        load_idealo(tmp_path / "model.json")


def test_nan_pytorch_weights_are_refused_before_caching(tmp_path, private_cache, tiny_model):
    torch = pytest.importorskip("torch")
    import torch_reference as reference

    state = reference.EDSR(2, num_blocks=2, num_features=8).state_dict()
    state["head.0.weight"][0, 0, 0, 0] = float("inf")
    torch.save(state, tmp_path / "nan.pth")
    cached = private_cache / "models" / "edsr-baseline-x2.keras"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(tiny_model.read_bytes())
    before = checksums(private_cache)
    result = run_module("edge_sr.zoo", "pull", "edsr-baseline-x2", "--from", tmp_path / "nan.pth")
    assert_one_error(result, "head.0.weight", "NaN or infinite")
    assert checksums(private_cache) == before


# --- 4, 6, 15: run directories and training options ----------------------------------------------------------


def _train(run_dir, model, train, val, *extra):
    return run_module(
        "edge_sr.train", "--run-dir", run_dir, "--model", model, "--scale", 2, "--train", train, "--val", val,
        "--batch-size", 2, "--patch", 24, "--method", "minmax", "--validate-every", 2, "--checkpoint-every", 2,
        *extra,
    )  # fmt: skip


@pytest.fixture
def finished_run(tmp_path, tiny_model, train_folder, val_folder):
    """A two-step minmax W4 run of the tiny EDSR."""
    run_dir = tmp_path / "run"
    result = _train(run_dir, tiny_model, train_folder, val_folder, "--iterations", 2, "--bits", 4)
    assert result.returncode == 0, result.stderr
    assert not re.search(TENSORFLOW_NOISE, result.stderr, re.MULTILINE), result.stderr  # issue #19
    return run_dir


def test_a_refused_train_leaves_the_existing_run_as_it_was(finished_run, tiny_model, train_folder, val_folder):
    before = checksums(finished_run)
    result = _train(finished_run, tiny_model, train_folder, val_folder, "--iterations", 2, "--bits", 3)
    assert_one_error(result, "holds another run", "train.bits", "--resume")
    assert checksums(finished_run) == before


def test_a_folder_of_other_files_is_not_a_run_dir(tmp_path, tiny_model, train_folder, val_folder):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes\n")
    before = checksums(folder)
    result = _train(folder, tiny_model, train_folder, val_folder, "--iterations", 2)
    assert_one_error(result, "not empty", "notes.txt", "choose an empty or new --run-dir")
    assert checksums(folder) == before


def test_benchmarks_clear_only_their_own_runs(tmp_path, finished_run):
    """The benchmarks remake their calibration runs in --out: an earlier run goes, a folder of the user's stays."""
    from edge_sr.models.rundir import clear_run_dir

    folder = tmp_path / "w8a8-dobi"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes\n")
    before = checksums(folder)
    with pytest.raises(EdgeSRError, match="holds files but no edge_sr run"):
        clear_run_dir(folder)
    assert checksums(folder) == before
    clear_run_dir(finished_run)
    assert not finished_run.exists()
    clear_run_dir(tmp_path / "absent")  # nothing to clear


def test_resume_tolerates_a_cut_history_line_and_names_a_foreign_one(finished_run):
    history = finished_run / "history.jsonl"
    history.write_text(history.read_text() + '{"step": 2, "lo')  # killed while writing step 2's losses
    resumed = run_module("edge_sr.train", "--run-dir", finished_run, "--resume", "--iterations", 4)
    assert resumed.returncode == 0, resumed.stderr
    assert [json.loads(line)["step"] for line in history.read_text().splitlines()] == [0, 1, 2, 3]

    history.write_text("hello\n" + history.read_text())
    before = checksums(finished_run)
    result = run_module("edge_sr.train", "--run-dir", finished_run, "--resume", "--iterations", 6)
    assert_one_error(result, "history.jsonl line 1", "remove that line")
    assert checksums(finished_run) == before


def test_resume_with_a_checkpoint_that_does_not_fit_is_one_error(finished_run):
    """A run.json edited (or clobbered) to another method: its checkpoint lacks the clip-correction variables."""
    run = json.loads((finished_run / "run.json").read_text())
    run["train"].update(method="odm", mismatch="none", clip_correction=True, weight_bound="learned")
    run["quantization"].update(clip_correction=True, weight_bound="learned")
    (finished_run / "run.json").write_text(json.dumps(run))
    before = checksums(finished_run)
    result = run_module("edge_sr.train", "--run-dir", finished_run, "--resume", "--iterations", 4)
    assert_one_error(result, "does not fit the model its run.json describes")
    assert checksums(finished_run) == before  # the restore is tried before run.json takes the new end


def checkpoint_steps(run_dir):
    return sorted(int(path.stem.split("-")[1]) for path in (run_dir / "checkpoints").glob("ckpt-*.index"))


def test_resume_keeps_the_runs_schedule_unless_given_another(finished_run):
    """finished_run validates and saves every 2 steps: a resume without those options does too (not every 1000)."""
    resumed = run_module("edge_sr.train", "--run-dir", finished_run, "--resume", "--iterations", 6)
    assert resumed.returncode == 0, resumed.stderr
    assert checkpoint_steps(finished_run) == [4, 6]  # the default schedule saves only the end: [2, 6]
    run = json.loads((finished_run / "run.json").read_text())
    assert run["schedule"] == {"validate_every": 2, "checkpoint_every": 2}

    again = run_module("edge_sr.train", "--run-dir", finished_run, "--resume", "--iterations", 10,
                       "--checkpoint-every", 3)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert checkpoint_steps(finished_run) == [9, 10]
    run = json.loads((finished_run / "run.json").read_text())
    assert run["schedule"] == {"validate_every": 2, "checkpoint_every": 3}  # remembered for the next resume


def test_resume_removes_what_an_interrupted_save_left(finished_run):
    """What TensorFlow and atomic_write leave when a save is killed: shards not yet merged (`<prefix>_temp/`), a
    state file not yet renamed, checkpoint files written but never recorded in the state file."""
    checkpoints, best = finished_run / "checkpoints", finished_run / "best"
    leftovers = [
        checkpoints / "ckpt-3_temp" / "part-00000-of-00001.index",
        checkpoints / "ckpt-3_temp" / "part-00000-of-00001.data-00000-of-00001",
        checkpoints / "checkpoint.tmp5c4e0d2f9b8a4c3e",
        checkpoints / "ckpt-9.index",
        checkpoints / "ckpt-9.data-00000-of-00001",
        best / "weights_temp" / "part-00000-of-00001.index",
        best / ".best.json.k2j4h5.json",
    ]
    for path in leftovers:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes((checkpoints / "ckpt-2.index").read_bytes())
    resumed = run_module("edge_sr.train", "--run-dir", finished_run, "--resume", "--iterations", 4)
    assert resumed.returncode == 0, resumed.stderr
    assert not any(path.exists() for path in leftovers)
    assert not (checkpoints / "ckpt-3_temp").exists() and not (best / "weights_temp").exists()
    assert checkpoint_steps(finished_run) == [2, 4] and (best / "best.json").is_file()


@pytest.mark.parametrize(
    "option, words",
    [
        (["--iterations", 0], ["iterations must be at least 1, got 0"]),
        (["--bits", 0], ["bits must be an integer from 2 to 8, got 0"]),
        (["--patch", 0], ["hr_patch must be at least 1, got 0"]),
        (["--validate-every", 0], ["--validate-every must be at least 1 step, not 0"]),
        (["--checkpoint-every", 0], ["--checkpoint-every must be at least 1 step, not 0"]),
    ],
    ids=["iterations", "bits", "patch", "validate-every", "checkpoint-every"],
)
def test_zero_training_options_are_errors_not_defaults(tmp_path, tiny_model, train_folder, val_folder, option, words):
    result = _train(tmp_path / "run", tiny_model, train_folder, val_folder, "--iterations", 2, *option)
    assert_one_error(result, *words)
    assert not (tmp_path / "run").exists()  # refused before run.json


def _calibrate(run_dir, model, images, val, *extra):
    return run_module(
        "edge_sr.calibrate", "--run-dir", run_dir, "--model", model, "--scale", 2, "--calibration", images,
        "--val", val, "--batch-size", 2, "--init-batch-size", 2, "--patch", 16, *extra,
    )  # fmt: skip


def test_every_refusal_comes_before_run_json_is_written(tmp_path, finished_run, tiny_model, train_folder, val_folder):
    """Each refusal of a train/calibrate invocation leaves the run directory as it was (a new one unmade)."""
    (tmp_path / "empty").mkdir()
    refused_new = {
        "calibrate --validate-every 0": (
            _calibrate(tmp_path / "c1", tiny_model, train_folder, val_folder, "--iterations", 2, "--validate-every", 0),
            "--validate-every must be at least 1 step",
        ),
        "an empty --val": (
            _train(tmp_path / "t1", tiny_model, train_folder, tmp_path / "empty", "--iterations", 2),
            "no images in",
        ),
        "calibrate with an empty --val": (
            _calibrate(tmp_path / "c2", tiny_model, train_folder, tmp_path / "empty", "--iterations", 2),
            "no images in",
        ),
        "a placement quantize_model refuses": (
            _train(
                tmp_path / "t2",
                tiny_model,
                train_folder,
                val_folder,
                "--iterations",
                2,
                "--placement",
                "integer",
                "--method",
                "pams",
            ),  # fmt: skip
            "the integer placement takes edge_sr's uniform quantizers",
        ),
    }
    for case, (result, words) in refused_new.items():
        assert result.returncode == 2, (case, result.stderr)
        assert_one_error(result, words)
    assert not [path.name for path in tmp_path.iterdir() if path.name in ("c1", "c2", "t1", "t2")]

    before = checksums(finished_run)
    again = _train(finished_run, tiny_model, train_folder, val_folder, "--iterations", 8, "--bits", 4)
    assert_one_error(again, "already holds a run", "--resume")  # the same run with a new end: not over it
    assert checksums(finished_run) == before

    started = tmp_path / "started"  # killed before its first checkpoint: run.json and a history line
    started.mkdir()
    (started / "run.json").write_text((finished_run / "run.json").read_text())
    (started / "history.jsonl").write_text((finished_run / "history.jsonl").read_text().splitlines()[0] + "\n")
    before = checksums(started)
    result = run_module("edge_sr.train", "--run-dir", started, "--resume", "--iterations", 9, "--validate-every", 3)
    assert_one_error(result, "nothing to resume", "no checkpoint")
    assert checksums(started) == before

    stage_one = tmp_path / "dobi"
    made = _calibrate(stage_one, tiny_model, train_folder, val_folder, "--method", "dobi", "--bits", 8)
    assert made.returncode == 0, made.stderr
    before = checksums(stage_one)
    for result in (
        run_module("edge_sr.calibrate", "--run-dir", stage_one, "--resume"),  # once resumed its ranges unset
        _calibrate(stage_one, tiny_model, train_folder, val_folder, "--method", "dobi", "--bits", 8),
    ):
        assert_one_error(result, "dobi run")
    assert checksums(stage_one) == before


# --- 5, 7, 10, 11, 12, 16, 17: upscale and evaluate inputs and outputs ---------------------------------------


@pytest.fixture(scope="module")
def tflite(tmp_path_factory):
    """A tiny EDSR ×2 exported to .tflite with its sidecar."""
    from edge_sr.export.tflite import export_float
    from models_tf import build_preset

    path = tmp_path_factory.mktemp("tflite") / "edsr.tflite"
    export_float(build_preset("edsr-baseline", scale=2, **TINY), path)
    return path


@pytest.fixture
def photos(tmp_path, photo):
    """A folder of two small photos."""
    from edge_sr.data import write_image

    write_image(tmp_path / "photos" / "a.png", photo[:24, :32])
    write_image(tmp_path / "photos" / "b.png", photo[100:120, 100:124])
    return tmp_path / "photos"


def _upscale(tflite, *args):
    return run_module("edge_sr.upscale", "--model", tflite, *args)


def test_upscale_never_writes_into_a_folder_of_its_inputs(tflite, photos, photo):
    from edge_sr.data import write_image

    write_image(photos / "a_x2.png", photo[:8, :8])  # the user's own file, named like an output
    before = checksums(photos)
    assert_one_error(_upscale(tflite, photos, "--out", photos), "is the folder of the input", "another folder")
    assert_one_error(_upscale(tflite, photos / "a.png", "--out", photos), "is the folder of the input")
    assert checksums(photos) == before


@pytest.mark.parametrize("tile", [1, 3, 15])
def test_upscale_refuses_tiles_too_small_to_see_the_image(tflite, photos, tmp_path, tile):
    result = _upscale(tflite, photos, "--out", tmp_path / "out", "--tile", tile)
    assert_one_error(result, f"at least 16 pixels a side, not {tile}×{tile}")
    assert not (tmp_path / "out").exists()


def test_tiny_animated_and_huge_images_are_skipped_with_a_reason(tflite, tmp_path, photo):
    """A 2×1 image, an animated GIF and a PNG declaring 50000×50000 are each skipped; the good image is done."""
    import struct
    import zlib

    from PIL import Image

    from edge_sr.data import write_image

    folder = tmp_path / "in"
    write_image(folder / "good.png", photo[:16, :16])
    write_image(folder / "tiny.png", photo[:1, :2])
    frames = [Image.fromarray(photo[:16, :16]), Image.fromarray(photo[16:32, :16])]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    ihdr = b"IHDR" + struct.pack(">II", 50_000, 50_000) + bytes([8, 2, 0, 0, 0])  # 8-bit RGB
    data = (folder / "good.png").read_bytes()  # signature, IHDR length, IHDR, its CRC (byte 33 on), the rest
    (folder / "bomb.png").write_bytes(data[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:])
    before = checksums(folder, tmp_path / "anim.gif")
    result = _upscale(tflite, folder, tmp_path / "anim.gif", "--out", tmp_path / "out")
    assert_one_error(result, "3 image(s) could not be upscaled")
    for words in ("tiny.png: a 2×1 image is too small", "anim.gif holds 2 frames", "bomb.png declares more than"):
        assert words in result.stderr, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_x2.png"]
    assert checksums(folder, tmp_path / "anim.gif") == before


def test_unwritable_outputs_are_one_error(tflite, photos, bench, tmp_path, tiny_model):
    (tmp_path / "a-file").write_text("mine\n")
    (tmp_path / "a-folder").mkdir()
    before = checksums(tmp_path / "a-file", photos)
    assert_one_error(_upscale(tflite, photos, "--out", tmp_path / "a-file"), "cannot create the folder")
    result = run_module("edge_sr.evaluate", "--dataset", bench, "--scale", 2, "--json", tmp_path / "a-folder")
    assert_one_error(result, "cannot write", "a-folder")
    cache = {"EDGE_SR_CACHE": str(tmp_path / "a-file")}
    result = run_module("edge_sr.evaluate", "--model", tiny_model, "--dataset", bench, "--scale", 2, env=cache)
    assert_one_error(result, "cannot create the folder", "a-file")
    assert checksums(tmp_path / "a-file", photos) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_reported(tflite, photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir(mode=0o555)
    result = _upscale(tflite, photos, "--out", out)
    assert_one_error(result, "could not be upscaled")
    assert "cannot write" in result.stderr and not list(out.iterdir())


def test_a_wrong_scale_is_refused_before_any_image_is_allocated(tflite, photos, tmp_path):
    import shutil

    from edge_sr.runtime.metadata import sidecar_path

    shutil.copy(tflite, tmp_path / "big.tflite")
    sidecar = json.loads(sidecar_path(tflite).read_text())
    sidecar_path(tmp_path / "big.tflite").write_text(json.dumps({**sidecar, "scale": 1000}))
    assert_one_error(_upscale(tmp_path / "big.tflite", photos, "--out", tmp_path / "out"), "not the ×1000")
    shutil.copy(tflite, tmp_path / "bare.tflite")
    result = _upscale(tmp_path / "bare.tflite", photos, "--out", tmp_path / "out", "--scale", 3)
    assert_one_error(result, "into 32×32, which is not the ×3")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("threads", [0, 100_000])
def test_upscale_threads_are_bounded(tflite, photos, tmp_path, threads):
    result = _upscale(tflite, photos, "--out", tmp_path / "out", "--threads", threads)
    assert_one_error(result, f"--threads must be from 1 to {4 * os.cpu_count()}", f"not {threads}")


# --- 8: the int8 parity gate ---------------------------------------------------------------------------------


def test_an_int8_file_that_fails_parity_is_written_only_with_force(
    tmp_path, tiny_model, train_folder, val_folder, monkeypatch, capsys
):
    """No file lands at --out when the gate fails (a file already there is kept); --force writes it, its sidecar
    says so, and loading it warns."""
    from test_int8_export import calibrate

    import edge_sr.export.parity
    from edge_sr.convert import main as convert
    from edge_sr.runtime.litert import TFLiteModel
    from edge_sr.runtime.metadata import read_metadata

    calibrate(tmp_path / "run", tiny_model, train_folder, val_folder, 8)
    monkeypatch.setattr(edge_sr.export.parity, "PARITY_MAX_DPSNR", -1.0)  # every file fails the gate
    out = tmp_path / "model.tflite"
    out.write_bytes(b"the user's file")
    with pytest.raises(EdgeSRError, match=r"model.tflite was not written; pass --force"):
        convert([str(tmp_path / "run"), "--int8", "--out", str(out)])
    assert out.read_bytes() == b"the user's file"
    assert not list(tmp_path.glob("*unchecked*")) and not (tmp_path / "model.tflite.json").exists()

    convert([str(tmp_path / "run"), "--int8", "--out", str(out), "--force"])
    assert "written only because of --force" in capsys.readouterr().out
    assert read_metadata(out)["parity"] == {"ok": False, "delta_psnr": pytest.approx(0, abs=0.1), "limit": -1.0}
    TFLiteModel(out)
    assert "warning: model.tflite failed its parity check" in capsys.readouterr().err


# --- issue #19: TensorFlow's start-up noise ------------------------------------------------------------------


def test_tensorflow_start_up_lines_are_silent_unless_asked_for():
    quiet = run_module("edge_sr.zoo", "list")
    assert quiet.returncode == 0 and not re.search(TENSORFLOW_NOISE, quiet.stderr, re.MULTILINE), quiet.stderr
    verbose = run_module("edge_sr.zoo", "list", env={"EDGE_SR_VERBOSE": "1"})
    assert verbose.returncode == 0 and re.search(TENSORFLOW_NOISE, verbose.stderr, re.MULTILINE), verbose.stderr


# --- fuzz: damaged files reach the loaders ---------------------------------------------------------------------


def _damaged(data, rng):
    """`data` cut short at a random length, or with 1 to 8 random bytes replaced."""
    if rng.random() < 0.5:
        return data[: int(rng.integers(0, len(data)))]
    data = bytearray(data)
    for position in rng.integers(0, len(data), int(rng.integers(1, 9))):
        data[position] = int(rng.integers(0, 256))
    return bytes(data)


def test_fuzzed_files_give_edge_sr_errors_only(tmp_path, photo, tiny_model, tflite):
    """Random truncations and byte flips of real files (PNG, JPEG, .keras, a .tflite sidecar, a TF.js model.json
    and shard, a .pth): every loader either reads the file or raises EdgeSRError, never anything else."""
    from converters.idealo import load_idealo
    from converters.pytorch import load_torch_checkpoint
    from edge_sr.data import read_picture, write_image
    from edge_sr.runtime.metadata import read_metadata, sidecar_path
    from models_tf import load_model

    write_image(tmp_path / "photo.png", photo[:48, :48])
    write_image(tmp_path / "photo.jpg", photo[:48, :48])
    model_json, manifest = _tfjs_model(tmp_path / "tfjs", quantize=True)
    shard = tmp_path / "tfjs" / manifest["weightsManifest"][0]["paths"][0]
    bare = tmp_path / "bare.tflite"  # only its sidecar is read
    cases = [  # (file to damage, where the damaged copy goes, loader, cases)
        (tmp_path / "photo.png", tmp_path / "fuzz.png", read_picture, 150),
        (tmp_path / "photo.jpg", tmp_path / "fuzz.jpg", read_picture, 100),
        (sidecar_path(tflite), sidecar_path(bare), lambda _: read_metadata(bare), 100),
        (tiny_model, tmp_path / "fuzz.keras", load_model, 60),
        (model_json, tmp_path / "tfjs" / "fuzz.json", load_idealo, 40),
        (shard, shard, lambda _: load_idealo(model_json), 40),
    ]  # fmt: skip
    torch = pytest.importorskip("torch")
    torch.save({"weight": torch.ones(4, 4)}, tmp_path / "real.pth")
    cases.append((tmp_path / "real.pth", tmp_path / "fuzz.pth", load_torch_checkpoint, 30))
    rng = np.random.default_rng(0)
    for source, target, load, count in cases:
        original = source.read_bytes()
        for _ in range(count):
            target.write_bytes(_damaged(original, rng))
            try:
                load(target)
            except EdgeSRError:
                pass
        target.write_bytes(original)
