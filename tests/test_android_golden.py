"""The golden file of the Android app's Java core is what the Python pipeline computes today (see
tests/android_golden.py); the JUnit tests in android_demo/srcore check Java against it."""

import numpy as np
import pytest
from android_golden import GOLDEN, TILINGS, box_nearest, golden, sidecar_cases

from edge_sr.errors import EdgeSRError
from edge_sr.runtime.metadata import read_metadata, sidecar_path
from edge_sr.runtime.tiling import upscale_tiled


def test_committed_golden_file_is_current():
    assert GOLDEN.read_text() == golden(), (
        "python_golden.json no longer matches edge_sr: if the change is deliberate, run "
        ".venv/bin/python tests/android_golden.py, check that `make test-java` passes, and commit both"
    )


def test_the_stand_in_model_makes_tiling_matter():
    """Blending and reflect padding change its output, so the golden pins them down."""
    image = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    for tile, overlap, scale, fixed in TILINGS:
        tiled = upscale_tiled(lambda piece, s=scale: box_nearest(piece, s), image, scale, tile, overlap, fixed=fixed)
        whole = box_nearest(image, scale)
        assert np.abs(tiled - whole).max() > 1, (tile, overlap, fixed)


@pytest.mark.parametrize("valid", [True, False])
def test_golden_sidecars_are_what_read_metadata_accepts_and_refuses(tmp_path, valid):
    cases = sidecar_cases()
    texts = cases["valid"] if valid else [case["text"] for case in cases["invalid"]]
    model = tmp_path / "model.tflite"
    for text in texts:
        sidecar_path(model).write_text(text)
        if valid:
            assert read_metadata(model)["format"] == "edge_sr.tflite"
        else:
            with pytest.raises(EdgeSRError, match="re-export the model"):
                read_metadata(model)
