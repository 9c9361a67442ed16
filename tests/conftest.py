"""Shared fixtures: the optional ../shared data, a real photo, and a private cache per test."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TINY = {"num_blocks": 2, "num_features": 8}  # an EDSR small enough for a CPU test

needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "Set5" / "HR").is_dir(), reason="../shared/data is absent (fresh clone)"
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test gets its own EDGE_SR_CACHE so no test reads another's cached LR or models."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGE_SR_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def photo():
    """A real photo (scikit-image's bundled astronaut), 512×512 RGB uint8."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def run_module(module, *args, env=None, timeout=600):
    """Run `python -m module args...` as a user would; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def assert_clean_error(result, message):
    """A CLI failure as users should see it: non-zero exit, no traceback, a last line `error: ...message...`."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error:") and message in last_line, result.stderr


@pytest.fixture
def train_folder(tmp_path, photo):
    """A few real photos: BSD68 when ../shared is there, else scikit-image's bundled ones."""
    from edge_sr.data import write_image

    folder = tmp_path / "train"
    folder.mkdir()
    bsd68 = sorted((SHARED_DATA / "BSD68" / "HR").glob("*.png"))[:4]
    if bsd68:
        for path in bsd68:
            shutil.copy(path, folder)
    else:
        from skimage import data

        for name in ("astronaut", "chelsea", "coffee"):
            write_image(folder / f"{name}.png", getattr(data, name)())
    return folder


@pytest.fixture
def val_folder(tmp_path, photo):
    from edge_sr.data import write_image

    write_image(tmp_path / "val" / "crop.png", photo[100:164, 200:264])
    return tmp_path / "val"


@pytest.fixture
def tiny_model(tmp_path):
    """A random-weight EDSR ×2 saved as .keras."""
    import tf_keras as keras

    from models_tf import build_preset, save_model

    keras.utils.set_random_seed(0)
    path = tmp_path / "tiny.keras"
    save_model(build_preset("edsr-baseline", scale=2, **TINY), path)
    return path
