"""Benchmark datasets in the three folder layouts SR code ships them in, as (name, LR, HR) triples.

- `NAME/HR/*.png` + `NAME/LR_bicubic/X{s}/{stem}x{s}.png`   (EDSR / SwinIR `benchmark` folders)
- `NAME/GTmod12/*.png` + `NAME/LRbicx{s}/{stem}.png`        (BasicSR)
- a bare HR folder (`NAME/*.png`, or `NAME/HR` with no LR folders): LR is made with the MATLAB-exact bicubic
  and cached on disk, keyed by the HR file's content, so the second run reads it back.
HR images are mod-cropped to the scale, as the evaluation protocol requires.
"""

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from edge_sr.data.image_io import IMAGE_SUFFIXES, list_images, read_rgb, write_image
from edge_sr.data.imresize import bicubic_downscale, modcrop
from edge_sr.errors import EdgeSRError


def cache_dir():
    """Where edge_sr keeps derived files: $EDGE_SR_CACHE, else ~/.cache/edge_sr."""
    root = os.environ.get("EDGE_SR_CACHE") or Path.home() / ".cache" / "edge_sr"
    return Path(root)


def cached_lr(hr_path, scale, hr=None):
    """The bicubic LR of an HR file, computed once and cached on disk under the file's content hash."""
    digest = hashlib.sha256(Path(hr_path).read_bytes()).hexdigest()[:24]
    path = cache_dir() / "lr" / f"{digest}_x{scale}.png"
    if path.is_file():
        try:
            return read_rgb(path)
        except EdgeSRError:
            path.unlink(missing_ok=True)  # a damaged cache entry is rebuilt, not reported
    lr = bicubic_downscale(read_rgb(hr_path) if hr is None else hr, scale)
    write_image(path, lr)
    return lr


@dataclass(frozen=True)
class Sample:
    name: str
    hr_path: Path
    lr_path: Path | None  # None: made from the HR with the exact bicubic (cached)


@dataclass(frozen=True)
class BenchmarkSet:
    name: str
    scale: int
    samples: tuple

    def __len__(self):
        return len(self.samples)

    def load(self, sample):
        """(LR, HR) uint8 arrays for one sample; HR mod-cropped, sizes checked against each other."""
        hr = read_rgb(sample.hr_path)
        if min(hr.shape[:2]) < self.scale:
            raise EdgeSRError(f"{sample.hr_path} ({hr.shape[1]}×{hr.shape[0]}) is smaller than the scale ×{self.scale}")
        hr = modcrop(hr, self.scale)
        lr = cached_lr(sample.hr_path, self.scale, hr) if sample.lr_path is None else read_rgb(sample.lr_path)
        if lr.shape[0] * self.scale != hr.shape[0] or lr.shape[1] * self.scale != hr.shape[1]:
            raise EdgeSRError(
                f"{sample.lr_path} is {lr.shape[1]}×{lr.shape[0]} but its HR {sample.hr_path} mod-cropped to "
                f"×{self.scale} is {hr.shape[1]}×{hr.shape[0]}: the LR is not a ×{self.scale} downscale"
            )
        return lr, hr

    def __iter__(self):
        for sample in self.samples:
            yield (sample.name, *self.load(sample))


def _lr_scales(folder):
    """Scales for which the folder ships LR images, in either layout."""
    scales = set()
    lr_bicubic = folder / "LR_bicubic"
    if lr_bicubic.is_dir():
        scales |= {int(m[1]) for p in lr_bicubic.iterdir() if (m := re.fullmatch(r"X(\d+)", p.name))}
    scales |= {int(m[1]) for p in folder.iterdir() if (m := re.fullmatch(r"LRbicx(\d+)", p.name))}
    return sorted(scales)


def _find_lr(lr_folder, stem, candidates):
    for name in candidates:
        for suffix in IMAGE_SUFFIXES:
            path = lr_folder / f"{name}{suffix}"
            if path.is_file():
                return path
    raise EdgeSRError(f"no LR image for {stem} in {lr_folder} (looked for {', '.join(candidates)})")


def open_benchmark(folder, scale):
    """Open a benchmark folder in any of the supported layouts for one integer scale."""
    folder = Path(folder)
    if not isinstance(scale, int) or scale < 1:
        raise EdgeSRError(f"scale must be a positive integer, got {scale!r}")
    if not folder.is_dir():
        raise EdgeSRError(f"dataset folder not found: {folder}")
    name = folder.name if folder.name not in ("HR", "GTmod12") else folder.parent.name
    hr_folder = next((folder / sub for sub in ("HR", "GTmod12") if (folder / sub).is_dir()), folder)
    hr_paths = list_images(hr_folder)
    if not hr_paths:
        raise EdgeSRError(f"no images in {hr_folder} (expected PNG, JPEG, BMP, TIFF or WebP files)")

    shipped = _lr_scales(folder) if hr_folder != folder else []
    if shipped and scale not in shipped:
        raise EdgeSRError(
            f"{folder} ships LR images for ×{', ×'.join(map(str, shipped))} but not ×{scale}; "
            f"pass its HR folder ({hr_folder}) instead to make ×{scale} LR on the fly"
        )
    if not shipped:
        samples = [Sample(p.stem, p, None) for p in hr_paths]
    elif (folder / "LR_bicubic" / f"X{scale}").is_dir():
        lr_folder = folder / "LR_bicubic" / f"X{scale}"
        samples = [Sample(p.stem, p, _find_lr(lr_folder, p.stem, [f"{p.stem}x{scale}", p.stem])) for p in hr_paths]
    else:
        lr_folder = folder / f"LRbicx{scale}"
        samples = [Sample(p.stem, p, _find_lr(lr_folder, p.stem, [p.stem, f"{p.stem}x{scale}"])) for p in hr_paths]
    return BenchmarkSet(name, scale, tuple(samples))
