"""The standard SR evaluation: upscale each LR, compare with its mod-cropped HR on Y with shave = scale."""

from pathlib import Path

import numpy as np

from edge_sr.data.datasets import open_benchmark
from edge_sr.data.image_io import write_image
from edge_sr.data.metrics import psnr, ssim
from edge_sr.errors import EdgeSRError
from edge_sr.progress import progress


def evaluate_dataset(upscaler, folder, scale, y_channel=True, save_dir=None, show_progress=True):
    """Score one benchmark folder; returns the JSON-ready result dict (means and per-image figures)."""
    dataset = open_benchmark(folder, scale)
    per_image = []
    for name, lr, hr in progress(dataset, show_progress, total=len(dataset), desc=f"{dataset.name} ×{scale}"):
        sr = upscaler(lr)
        if sr.shape != hr.shape:
            raise EdgeSRError(
                f"{upscaler.name} turned an LR image of shape {lr.shape} into {sr.shape}, expected {hr.shape}: is it "
                f"a ×{scale} model?"
            )
        if save_dir is not None:
            write_image(Path(save_dir) / dataset.name / f"x{scale}" / f"{name}.png", sr)
        per_image.append(
            {
                "name": name,
                "psnr": psnr(sr, hr, shave=scale, y_channel=y_channel),
                "ssim": ssim(sr, hr, shave=scale, y_channel=y_channel),
            }
        )
    return {
        "dataset": dataset.name,
        "scale": scale,
        "psnr": float(np.mean([r["psnr"] for r in per_image])),
        "ssim": float(np.mean([r["ssim"] for r in per_image])),
        "n_images": len(per_image),
        "per_image": per_image,
    }


def validation_psnr(folder, scale):
    """`validate(model) -> mean PSNR on folder`: how train and calibrate pick their best weights. The folder is
    opened here, so a missing or empty one is refused before a run starts, not at its first validation."""
    from edge_sr.runtime.upscalers import KerasUpscaler

    open_benchmark(folder, scale)

    def validate(model):
        return evaluate_dataset(KerasUpscaler(model, "validation", scale), folder, scale, show_progress=False)["psnr"]

    return validate
