"""`python -m edge_sr.upscale`: upscale image files and folders with an exported .tflite model.

    python -m edge_sr.upscale --model rdn.tflite photos/ extra.jpg --out upscaled/

Each image becomes OUT/{stem}_x{scale}.png, its transparency kept (alpha upscaled with bicubic). Images larger
than a tile are upscaled in overlapping tiles so that memory stays bounded: blended for float files, meeting at a
seam for integer files (whose tiles then give the whole-image result bit for bit); fixed-tile models (SwinIR) use
their own tile. A file that cannot be read is reported and skipped, the rest are still upscaled, and the
exit status is non-zero at the end.
"""

import argparse
from pathlib import Path

from edge_sr.errors import EdgeSRError, run_cli
from edge_sr.runtime.files import upscale_files
from edge_sr.runtime.litert import TFLiteModel
from edge_sr.runtime.tiling import tiling

DEFAULT_TILE = 256  # LR pixels: memory follows the tile, not the photo (idealo RDN ×2, 1920×1080: 0.9 GiB peak)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m edge_sr.upscale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and folders of images")
    parser.add_argument("--model", required=True, help="a .tflite file exported by python -m edge_sr.convert")
    parser.add_argument("--out", required=True, type=Path, help="folder for the upscaled PNGs")
    parser.add_argument(
        "--tile",
        type=int,
        help=f"LR tile size (default {DEFAULT_TILE}; 0: the whole image at once; fixed-tile models: their own)",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        help="LR pixels shared by neighbouring tiles (default: 32, ≤ tile/4; integer files: twice their receptive "
        "radius + 2 where the tile is twice that, which gives the whole-image result bit for bit)",
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for LiteRT (default 2)")
    parser.add_argument("--scale", type=int, help="the model's scale, for a .tflite without its metadata file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model = TFLiteModel(args.model, threads=args.threads, scale=args.scale)
    tile = DEFAULT_TILE if args.tile is None and model.input_size is None else args.tile
    tile, overlap = tiling(model, tile or None, args.overlap)
    files, failed = upscale_files(model, args.inputs, args.out, tile, overlap)
    print(f"upscaled {len(files) - len(failed)} of {len(files)} images ×{model.scale} into {args.out}")
    if failed:
        raise EdgeSRError(f"{len(failed)} image(s) could not be upscaled: {', '.join(map(str, failed))}")


if __name__ == "__main__":
    run_cli(main)
