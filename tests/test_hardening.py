"""Issue #23: untrusted model files run no code, nothing a user owns is overwritten, every user error is one line.

Each case feeds a CLI (as a user would) or a loader a bad input and checks the outcome: exit status 2, exactly one
`error: ...` line naming the problem, no traceback, and every file the user had unchanged.
"""

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import run_module

from edge_sr import EdgeSRError


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
