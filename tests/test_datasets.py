import numpy as np
import pytest

from edge_sr.data import bicubic_downscale, open_benchmark, write_image
from edge_sr.errors import EdgeSRError


def _hr_images(photo):
    # Sizes that are not multiples of 3 or 4, so mod-crop matters.
    return {"one": photo[:101, :98], "two": photo[200:290, 150:277]}


def _check(dataset, photo, scale):
    assert len(dataset) == 2
    for name, lr, hr in dataset:
        expected_hr = _hr_images(photo)[name]
        expected_hr = expected_hr[: expected_hr.shape[0] // scale * scale, : expected_hr.shape[1] // scale * scale]
        assert np.array_equal(hr, expected_hr)
        assert np.array_equal(lr, bicubic_downscale(expected_hr, scale))


def test_edsr_benchmark_layout(tmp_path, photo):
    for name, hr in _hr_images(photo).items():
        write_image(tmp_path / "Bench" / "HR" / f"{name}.png", hr)
        write_image(tmp_path / "Bench" / "LR_bicubic" / "X3" / f"{name}x3.png", bicubic_downscale(hr, 3))
    dataset = open_benchmark(tmp_path / "Bench", 3)
    assert dataset.name == "Bench"
    assert all(s.lr_path is not None for s in dataset.samples)
    _check(dataset, photo, 3)
    with pytest.raises(EdgeSRError, match="ships LR images for ×3 but not ×2"):
        open_benchmark(tmp_path / "Bench", 2)
    _check(open_benchmark(tmp_path / "Bench" / "HR", 2), photo, 2)  # the HR folder alone: made on the fly


def test_basicsr_layout(tmp_path, photo):
    for name, hr in _hr_images(photo).items():
        write_image(tmp_path / "Bench" / "GTmod12" / f"{name}.png", hr)
        write_image(tmp_path / "Bench" / "LRbicx4" / f"{name}.png", bicubic_downscale(hr, 4))
    _check(open_benchmark(tmp_path / "Bench", 4), photo, 4)


def test_bare_hr_folder_makes_lr_once_and_caches_it(tmp_path, photo, private_cache):
    for name, hr in _hr_images(photo).items():
        write_image(tmp_path / "Bare" / f"{name}.png", hr)
    dataset = open_benchmark(tmp_path / "Bare", 2)
    _check(dataset, photo, 2)
    cached = sorted((private_cache / "lr").glob("*_x2.png"))
    assert len(cached) == 2
    # A second pass reads the cache: prove it by planting a marker value in one cached file.
    marked = np.zeros((50, 49, 3), np.uint8)
    for path in cached:
        write_image(path, marked)
    assert any(np.array_equal(lr, marked) for _, lr, _ in dataset)


def test_lr_that_is_not_a_downscale_of_its_hr_is_refused(tmp_path, photo):
    write_image(tmp_path / "Bench" / "HR" / "a.png", photo[:64, :64])
    write_image(tmp_path / "Bench" / "LR_bicubic" / "X2" / "ax2.png", photo[:20, :20])
    with pytest.raises(EdgeSRError, match="not a ×2 downscale"):
        list(open_benchmark(tmp_path / "Bench", 2))


def test_folder_problems_are_clear_errors(tmp_path, photo):
    with pytest.raises(EdgeSRError, match="not found"):
        open_benchmark(tmp_path / "nowhere", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeSRError, match="no images"):
        open_benchmark(tmp_path / "empty", 2)
    write_image(tmp_path / "tiny" / "dot.png", photo[:3, :3])
    with pytest.raises(EdgeSRError, match="smaller than the scale"):
        list(open_benchmark(tmp_path / "tiny", 4))
    write_image(tmp_path / "Bench" / "HR" / "a.png", photo[:64, :64])
    (tmp_path / "Bench" / "LR_bicubic" / "X2").mkdir(parents=True)
    with pytest.raises(EdgeSRError, match="no LR image for a"):
        open_benchmark(tmp_path / "Bench", 2)
