import json

import numpy as np
import pytest
from conftest import SHARED_DATA, needs_shared_data, run_module
from skimage.metrics import structural_similarity

from edge_sr.data.metrics import psnr, rgb_to_y, ssim
from edge_sr.errors import EdgeSRError


def test_y_of_black_and_white_is_studio_swing():
    assert rgb_to_y(np.zeros(3)) == pytest.approx(16.0)
    assert rgb_to_y(np.full(3, 255.0)) == pytest.approx(235.0)


def test_psnr_matches_its_definition(photo):
    hr = photo[:100, :100]
    sr = hr.astype(np.int16)
    sr[10:-10, 10:-10] += 3
    sr = sr.clip(0, 255).astype(np.uint8)
    y_sr, y_hr = rgb_to_y(sr)[4:-4, 4:-4], rgb_to_y(hr)[4:-4, 4:-4]
    expected = 10 * np.log10(255**2 / np.mean((y_sr - y_hr) ** 2))
    assert psnr(sr, hr, shave=4) == pytest.approx(expected)
    assert psnr(hr, hr) == float("inf")
    expected_rgb = 10 * np.log10(255**2 / np.mean((sr[2:-2, 2:-2].astype(float) - hr[2:-2, 2:-2]) ** 2))
    assert psnr(sr, hr, shave=2, y_channel=False) == pytest.approx(expected_rgb)


def test_ssim_agrees_with_scikit_image(photo):
    rng = np.random.default_rng(0)
    hr = photo[100:228, 100:228]
    sr = np.clip(hr + rng.normal(0, 8, hr.shape), 0, 255).astype(np.uint8)
    reference = structural_similarity(
        rgb_to_y(sr)[2:-2, 2:-2],
        rgb_to_y(hr)[2:-2, 2:-2],
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert ssim(sr, hr, shave=2) == pytest.approx(reference, abs=1e-9)
    assert ssim(hr, hr) == pytest.approx(1.0)
    assert 0 < ssim(sr, hr, y_channel=False) < 1


def test_size_mismatch_is_a_clear_error():
    with pytest.raises(EdgeSRError, match="sizes differ"):
        psnr(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))


# Bicubic upsampling with the standard protocol on our copies of Set5 and Set14 (shared/data/README.md).
EXPECTED_BICUBIC = {
    ("Set5", 2): 33.67,
    ("Set5", 3): 30.40,
    ("Set5", 4): 28.43,
    ("Set14", 2): 30.32,
    ("Set14", 3): 27.63,
    ("Set14", 4): 26.09,
}


@needs_shared_data
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_evaluate_cli_reproduces_the_bicubic_baseline(scale, tmp_path):
    report = tmp_path / "report.json"
    result = run_module(
        "edge_sr.evaluate",
        "--model", "bicubic",
        "--dataset", SHARED_DATA / "Set5", SHARED_DATA / "Set14",
        "--scale", scale,
        "--json", report,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["model"] == "bicubic"
    for entry in data["results"]:
        assert entry["psnr"] == pytest.approx(EXPECTED_BICUBIC[entry["dataset"], scale], abs=0.01)
        assert entry["n_images"] == len(entry["per_image"]) == {"Set5": 5, "Set14": 14}[entry["dataset"]]
        assert entry["psnr"] == pytest.approx(np.mean([r["psnr"] for r in entry["per_image"]]))
        assert f"{entry['psnr']:.2f}" in result.stdout
    if scale == 2:
        assert data["results"][0]["ssim"] == pytest.approx(0.930, abs=0.001)
