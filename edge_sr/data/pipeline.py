"""Training batches: HR folders → exact-bicubic LR (once per image) → aligned random patches → flips/rot90.

Batch `k` is a pure function of (seed, k), so a run is reproducible under its seed and a resumed run sees
exactly the batches the uninterrupted run would have seen from that step on.
"""

from pathlib import Path

import numpy as np

from edge_sr.data.datasets import cached_lr
from edge_sr.data.image_io import list_images, read_rgb
from edge_sr.data.imresize import modcrop
from edge_sr.errors import EdgeSRError
from edge_sr.progress import progress as progress_bar


def _collect_images(folders):
    paths = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise EdgeSRError(f"training folder not found: {folder}")
        found = list_images(folder)
        if not found:
            raise EdgeSRError(f"no images in training folder {folder}")
        paths += found
    return paths


class PatchSampler:
    """Aligned LR/HR patch batches from HR images, as float32 in [0, 255] (the project's pixel range)."""

    def __init__(self, hr_folders, scale, hr_patch, batch_size, seed=0, augment=True, progress=True):
        if hr_patch % scale:
            raise EdgeSRError(f"HR patch {hr_patch} is not a multiple of the scale ×{scale}")
        if batch_size < 1:
            raise EdgeSRError(f"batch size must be at least 1, got {batch_size}")
        self.scale, self.hr_patch, self.lr_patch = scale, hr_patch, hr_patch // scale
        self.batch_size, self.seed, self.augment = batch_size, seed, augment
        paths = _collect_images([hr_folders] if isinstance(hr_folders, str | Path) else hr_folders)
        self.pairs = []
        too_small = []
        for path in progress_bar(paths, progress, desc="preparing LR", unit="img"):
            hr = modcrop(read_rgb(path), scale)
            if min(hr.shape[:2]) < hr_patch:
                too_small.append(f"{path.name} ({hr.shape[1]}×{hr.shape[0]})")
                continue
            self.pairs.append((cached_lr(path, scale, hr), hr))
        if too_small:
            listed = ", ".join(too_small[:5]) + (" ..." if len(too_small) > 5 else "")
            raise EdgeSRError(
                f"{len(too_small)} image(s) are smaller than the {hr_patch}×{hr_patch} HR patch: "
                f"{listed}; use a smaller --patch or remove them"
            )

    def batch(self, step, stream=0, size=None):
        """The (LR, HR) batch number `step`: shapes (B, p, p, 3) and (B, p·s, p·s, 3), float32.

        `stream` picks an independent sequence: training uses 0, calibration of quantizer ranges 1.
        `size` overrides the batch size B.
        """
        rng = np.random.default_rng([self.seed, stream, int(step)])
        p, s = self.lr_patch, self.scale
        lrs, hrs = [], []
        for _ in range(size or self.batch_size):
            lr, hr = self.pairs[rng.integers(len(self.pairs))]
            y, x = rng.integers(lr.shape[0] - p + 1), rng.integers(lr.shape[1] - p + 1)
            lr_patch, hr_patch = lr[y : y + p, x : x + p], hr[y * s : (y + p) * s, x * s : (x + p) * s]
            if self.augment:
                hflip, vflip, transpose = rng.integers(2, size=3)
                lr_patch, hr_patch = (_augment(a, hflip, vflip, transpose) for a in (lr_patch, hr_patch))
            lrs.append(lr_patch)
            hrs.append(hr_patch)
        return np.stack(lrs).astype(np.float32), np.stack(hrs).astype(np.float32)

    def dataset(self, start_step=0, steps=None):
        """A tf.data pipeline of batches `start_step, start_step + 1, ...` (endless when `steps` is None)."""
        import tensorflow as tf

        stop = np.iinfo(np.int64).max if steps is None else start_step + steps
        p, s, b = self.lr_patch, self.scale, self.batch_size

        def load(step):
            lr, hr = tf.numpy_function(self.batch, [step], [tf.float32, tf.float32])
            lr.set_shape((b, p, p, 3))
            hr.set_shape((b, p * s, p * s, 3))
            return lr, hr

        steps_ds = tf.data.Dataset.range(start_step, stop)
        return steps_ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)


def _augment(patch, hflip, vflip, transpose):
    if hflip:
        patch = patch[:, ::-1]
    if vflip:
        patch = patch[::-1]
    if transpose:
        patch = patch.transpose(1, 0, 2)
    return patch
