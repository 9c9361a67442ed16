import numpy as np
import pytest
from conftest import SHARED_DATA, needs_shared_data

from edge_sr.data import bicubic_downscale, imresize, modcrop, read_rgb
from edge_sr.errors import EdgeSRError


@needs_shared_data
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lr_is_pixel_identical_to_the_published_set5(scale):
    for hr_path in sorted((SHARED_DATA / "Set5" / "HR").glob("*.png")):
        published = read_rgb(SHARED_DATA / "Set5" / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}.png")
        ours = bicubic_downscale(read_rgb(hr_path), scale)
        assert ours.shape == published.shape
        assert np.array_equal(ours, published), f"{hr_path.name} x{scale} differs"


def test_output_sizes_follow_matlab():
    image = np.zeros((37, 50, 3), np.uint8)
    assert imresize(image, scale=2).shape == (74, 100, 3)
    assert imresize(image, scale=0.5).shape == (19, 25, 3)  # ceil, as MATLAB
    assert imresize(image, size=(10, 11)).shape == (10, 11, 3)
    assert bicubic_downscale(image, 3).shape == (12, 16, 3)
    assert modcrop(image, 4).shape == (36, 48, 3)


def test_constant_stays_constant_and_linear_ramps_are_reproduced():
    flat = np.full((20, 30), 77.0)
    assert np.allclose(imresize(flat, scale=3), 77.0)
    assert np.allclose(imresize(flat, scale=1 / 3), 77.0)
    # Cubic convolution reproduces linear functions away from the (mirrored) borders.
    ramp = np.tile(np.arange(40, dtype=np.float64), (8, 1))
    up = imresize(ramp, scale=2)
    centres = (np.arange(80) + 0.5) / 2 - 0.5
    assert np.allclose(up[:, 4:-4], np.tile(centres, (16, 1))[:, 4:-4], atol=1e-9)


def test_uint8_rounds_and_float_does_not(photo):
    small = photo[:64, :64]
    as_uint8 = imresize(small, scale=0.5)
    as_float = imresize(small.astype(np.float64), scale=0.5)
    assert as_uint8.dtype == np.uint8 and as_float.dtype == np.float64
    assert np.abs(as_uint8.astype(np.float64) - as_float).max() <= 1.0
    assert not np.allclose(as_float, np.round(as_float))


def test_bad_arguments_are_clear_errors():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(EdgeSRError, match="exactly one"):
        imresize(image)
    with pytest.raises(EdgeSRError, match="positive"):
        imresize(image, scale=0)
    with pytest.raises(EdgeSRError, match="uint8 or float"):
        imresize(image.astype(np.int32), scale=2)
