"""Images in and out, the MATLAB-exact bicubic, benchmark folders and training batches."""

from edge_sr.data.datasets import BenchmarkSet, cache_dir, cached_lr, open_benchmark
from edge_sr.data.image_io import IMAGE_SUFFIXES, Picture, list_images, read_picture, read_rgb, write_image
from edge_sr.data.imresize import bicubic_downscale, imresize, modcrop
from edge_sr.data.pipeline import PatchSampler

__all__ = [
    "IMAGE_SUFFIXES",
    "BenchmarkSet",
    "PatchSampler",
    "Picture",
    "bicubic_downscale",
    "cache_dir",
    "cached_lr",
    "imresize",
    "list_images",
    "modcrop",
    "open_benchmark",
    "read_picture",
    "read_rgb",
    "write_image",
]
