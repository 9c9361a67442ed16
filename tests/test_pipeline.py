import numpy as np
import pytest

from edge_sr.data import PatchSampler, bicubic_downscale, write_image
from edge_sr.errors import EdgeSRError


@pytest.fixture
def train_folder(tmp_path, photo):
    write_image(tmp_path / "train" / "a.png", photo[:200, :240])
    write_image(tmp_path / "train" / "b.png", photo[250:, 100:400])
    return tmp_path / "train"


def test_batches_are_deterministic_under_the_seed(train_folder):
    a = PatchSampler(train_folder, scale=2, hr_patch=48, batch_size=4, seed=7)
    b = PatchSampler(train_folder, scale=2, hr_patch=48, batch_size=4, seed=7)
    other = PatchSampler(train_folder, scale=2, hr_patch=48, batch_size=4, seed=8)
    lr, hr = a.batch(5)
    assert lr.shape == (4, 24, 24, 3) and hr.shape == (4, 48, 48, 3)
    assert lr.dtype == hr.dtype == np.float32 and hr.max() <= 255
    assert np.array_equal(lr, b.batch(5)[0]) and np.array_equal(hr, b.batch(5)[1])
    assert not np.array_equal(hr, a.batch(6)[1])
    assert not np.array_equal(hr, other.batch(5)[1])


def test_lr_and_hr_patches_stay_aligned_through_augmentation(train_folder):
    sampler = PatchSampler(train_folder, scale=3, hr_patch=60, batch_size=8, seed=1)
    for step in range(12):
        lr, hr = sampler.batch(step)
        for lr_patch, hr_patch in zip(lr, hr, strict=True):
            # Flips and transposes commute with the symmetric bicubic kernel, so away from the patch border the LR
            # patch is the downscale of its HR patch up to per-pass uint8 rounding (a transpose swaps the pass
            # order, so single pixels may differ by a few levels). Any one-pixel shift must match worse.
            remade = bicubic_downscale(hr_patch.astype(np.uint8), 3).astype(np.float32)
            aligned = np.abs(remade - lr_patch)[3:-3, 3:-3]
            assert aligned.max() <= 3
            for dy, dx in [(-1, 0), (1, 0), (0, -1), (0, 1)]:
                shifted = np.roll(remade, (dy, dx), axis=(0, 1))
                assert np.abs(shifted - lr_patch)[3:-3, 3:-3].mean() > aligned.mean()


def test_tf_dataset_yields_the_sampler_batches_and_resumes(train_folder):
    sampler = PatchSampler(train_folder, scale=2, hr_patch=32, batch_size=2, seed=3)
    from_start = [hr.numpy() for _, hr in sampler.dataset(steps=4)]
    resumed = [hr.numpy() for _, hr in sampler.dataset(start_step=2, steps=2)]
    assert len(from_start) == 4
    for step, hr in enumerate(from_start):
        assert np.array_equal(hr, sampler.batch(step)[1])
    assert np.array_equal(resumed[0], from_start[2]) and np.array_equal(resumed[1], from_start[3])


def test_training_input_problems_are_clear_errors(tmp_path, train_folder):
    with pytest.raises(EdgeSRError, match="smaller than the 240×240 HR patch"):
        PatchSampler(train_folder, scale=2, hr_patch=240, batch_size=2)
    with pytest.raises(EdgeSRError, match="not a multiple of the scale"):
        PatchSampler(train_folder, scale=3, hr_patch=64, batch_size=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeSRError, match="no images"):
        PatchSampler(tmp_path / "empty", scale=2, hr_patch=32, batch_size=2)
    with pytest.raises(EdgeSRError, match="not found"):
        PatchSampler(tmp_path / "missing", scale=2, hr_patch=32, batch_size=2)
