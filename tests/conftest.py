"""Shared fixtures: the optional ../shared data, a real photo, and a private cache per test."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

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


def run_module(module, *args, env=None):
    """Run `python -m module args...` as a user would; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def assert_clean_error(result, message):
    """A CLI failure as users should see it: non-zero exit, no traceback, a last line `error: ...message...`.

    (TensorFlow's CUDA stub may print its own start-up lines before ours; they cannot be silenced.)
    """
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error:") and message in last_line, result.stderr
