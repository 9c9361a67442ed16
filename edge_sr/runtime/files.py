"""Image files in, upscaled PNGs out: what `python -m edge_sr.upscale` does to the files and folders it is given."""

import sys
from pathlib import Path

from tqdm import tqdm

from edge_sr.atomic import make_folder
from edge_sr.data import imresize, list_images, read_picture, write_image
from edge_sr.errors import EdgeSRError
from edge_sr.progress import progress
from edge_sr.runtime.tiling import upscale


def collect_images(inputs):
    """Image files named directly or found (not recursively) in named folders, in order, without repeats."""
    files = []
    for item in map(Path, inputs):
        files.extend(list_images(item) if item.is_dir() else [item])
    return list(dict.fromkeys(files))


def output_paths(files, out_dir, scale):
    """OUT/{stem}_x{scale}.png for each file, OUT created; two inputs may not share an output, and OUT may not be
    a folder of inputs (an original would be overwritten, or upscaled again by the next run)."""
    beside = [path for path in files if path.parent.resolve() == Path(out_dir).resolve()]
    if beside:
        raise EdgeSRError(
            f"--out {out_dir} is the folder of the input {beside[0]}; write the upscaled images to another folder"
        )
    targets = {}
    for path in files:
        target = Path(out_dir) / f"{path.stem}_x{scale}.png"
        if target in targets:
            raise EdgeSRError(
                f"{targets[target]} and {path} would both be written to {target}; upscale them separately"
            )
        targets[target] = path
    make_folder(out_dir)
    return list(targets)


def upscale_file(model, source, target, tile=None, overlap=None):
    """Upscale one image file into `target` (PNG), alpha included."""
    picture = read_picture(source)
    sr = upscale(model, picture.rgb, tile, overlap)
    alpha = None if picture.alpha is None else imresize(picture.alpha, scale=model.scale)
    write_image(target, sr, alpha)


def upscale_files(model, inputs, out_dir, tile=None, overlap=None):
    """Upscale the images in `inputs` (files and folders) into `out_dir`; returns (files, failed): a file that
    cannot be read is reported and skipped, the rest are still upscaled."""
    files = collect_images(inputs)
    if not files:
        raise EdgeSRError(f"no images in {', '.join(map(str, inputs))}")
    targets = output_paths(files, out_dir, model.scale)
    failed = []
    for source, target in progress(zip(files, targets, strict=True), total=len(files), desc="upscaling"):
        try:
            upscale_file(model, source, target, tile, overlap)
        except EdgeSRError as error:
            tqdm.write(f"skipped {source}: {error}", file=sys.stderr)
            failed.append(source)
    return files, failed
