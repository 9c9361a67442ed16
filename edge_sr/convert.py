"""`python -m edge_sr.convert`: export a model to TFLite, with its metadata in MODEL.tflite.json beside it.

    python -m edge_sr.convert zoo:isr-rdn-psnr-small-x2 --out rdn.tflite --fp32
    python -m edge_sr.convert swinir.keras --out swinir.tflite --fp16 --tile 64

CNNs take any image size; SwinIR is exported at a fixed tile (`--tile`) and run tile by tile.
"""

import argparse
from pathlib import Path

from edge_sr.errors import EdgeSRError, run_cli
from edge_sr.export import check_tflite_path, export_float, sidecar_path
from edge_sr.sources import load_source_model


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m edge_sr.convert", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", help="zoo:NAME, a .keras file, official weights or a preset (see edge_sr.sources)")
    parser.add_argument("--out", required=True, type=Path, help="the .tflite file to write")
    precision = parser.add_mutually_exclusive_group(required=True)
    for flag, help_text in (
        ("fp32", "float32 weights and compute"),
        ("fp16", "float16 weights (half the size), float32 compute"),
        ("dynamic", "int8 weights, float activations quantized on the fly (dynamic range)"),
        ("int8", "full-integer model that keeps the learned quantization ranges (not available yet)"),
    ):
        precision.add_argument(f"--{flag}", dest="precision", action="store_const", const=flag, help=help_text)
    parser.add_argument("--tile", type=int, help="fixed LR input size (required for SwinIR; CNNs default to any size)")
    parser.add_argument("--scale", type=int, help="upscaling factor: required for a preset, checked for the others")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.precision == "int8":
        raise EdgeSRError(
            "--int8 is not available yet: it is coming with the quantization export; use --fp32, --fp16 or --dynamic"
        )
    check_tflite_path(args.out)  # before the slow part
    model = load_source_model(args.model, args.scale)
    metadata = export_float(model, args.out, args.precision, tile=args.tile, source=args.model)
    size = f"{metadata['tile']}×{metadata['tile']} tiles" if metadata["tile"] else "any size"
    print(f"{args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {args.precision}, ×{metadata['scale']}, input {size}")
    print(f"metadata: {sidecar_path(args.out)}")


if __name__ == "__main__":
    run_cli(main)
