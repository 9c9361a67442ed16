"""`python -m edge_sr.convert`: export a model to TFLite, with its metadata in MODEL.tflite.json beside it.

    python -m edge_sr.convert zoo:isr-rdn-psnr-small-x2 --out rdn.tflite --fp32
    python -m edge_sr.convert swinir.keras --out swinir.tflite --fp16 --tile 64
    python -m edge_sr.convert runs/2dquant-w8 --out rdn_int8.tflite --int8
    python -m edge_sr.convert --onnx my_sr.onnx --int8 --calib ../shared/data/BSD68/HR --out my_sr_int8.tflite

--int8 takes a `train` or `calibrate` run directory and writes a full-integer model that keeps every learned
range (k-bit weights as int8 values on the k-bit grid, k-bit activations clamped on their k-bit step); every
other tensor gets an 8-bit range from the run's own images. The file is then checked against its Keras
fake-quant reference on the validation images (the run's, or --val), and which ops XNNPACK runs is listed; a file
that fails the check is not written (--force writes it, its metadata recording the failure).
CNNs take any image size; SwinIR is exported at a fixed tile (`--tile`) and run tile by tile.

--onnx takes your own SR network as ONNX (NCHW RGB, as PyTorch exports it) and converts it with onnx2tf, offline,
calibrated (--int8) on LR patches made with the exact bicubic from --calib; the file is then compared with the
ONNX model in onnxruntime. Needs the optional extra (requirements-onnx.txt).
"""

import argparse
from pathlib import Path

from edge_sr.errors import EdgeSRError, run_cli
from edge_sr.export.tflite import export_float
from edge_sr.models.sources import load_source_model
from edge_sr.runtime.metadata import IO_TYPES, check_tflite_path, sidecar_path


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m edge_sr.convert", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "model", nargs="?", help="zoo:NAME, a .keras file, official weights or a preset (see edge_sr.models.sources)"
    )
    source.add_argument("--onnx", type=Path, help="your own SR model as an ONNX file (NCHW RGB in and out)")
    parser.add_argument("--out", required=True, type=Path, help="the .tflite file to write")
    precision = parser.add_mutually_exclusive_group(required=True)
    for flag, help_text in (
        ("fp32", "float32 weights and compute"),
        ("fp16", "float16 weights (half the size), float32 compute"),
        ("dynamic", "int8 weights, float activations quantized on the fly (dynamic range)"),
        ("int8", "full-integer model that keeps a run's learned quantization ranges"),
    ):
        precision.add_argument(f"--{flag}", dest="precision", action="store_const", const=flag, help=help_text)
    parser.add_argument("--tile", type=int, help="fixed LR input size (required for SwinIR; CNNs default to any size)")
    parser.add_argument("--scale", type=int, help="upscaling factor: required for a preset, checked for the others")
    parser.add_argument("--io", choices=IO_TYPES, default="uint8", help="--int8 input/output type (default uint8)")
    parser.add_argument(
        "--val", help="--int8 / --onnx: benchmark folder for the parity check (default: the run's / --calib patches)"
    )
    parser.add_argument(
        "--force", action="store_true", help="--int8: write the file even if it fails the parity check (recorded)"
    )
    onnx = parser.add_argument_group("--onnx")
    onnx.add_argument("--calib", nargs="+", metavar="FOLDER", help="HR images whose LR patches calibrate --int8")
    pixels = "the ONNX model's pixels: 255 for [0, 255] (default; EDSR-PyTorch), 1 for [0, 1] (BasicSR)"
    onnx.add_argument("--pixel-range", type=int, choices=(255, 1), default=255, help=pixels)
    onnx.add_argument("--calib-patches", type=int, default=32, help="LR patches to calibrate with (default 32)")
    onnx.add_argument("--patch", type=int, default=64, help="LR patch size (default 64; a fixed-size model: its own)")
    return parser.parse_args(argv)


def convert_onnx_checked(args):
    """--onnx: onnx2tf conversion and its comparison with onnxruntime."""
    from converters.onnx import convert_onnx

    if args.precision not in ("fp32", "int8"):
        raise EdgeSRError(f"--onnx converts to --fp32 or --int8, not --{args.precision}")
    if args.tile is not None:
        raise EdgeSRError("--tile does not apply to --onnx: a model exported at a fixed square size runs in tiles")
    metadata, result = convert_onnx(args.onnx, args.out, args.precision, calibration=args.calib, val=args.val,
                                    scale=args.scale, pixel_range=args.pixel_range, io=args.io,
                                    patches=args.calib_patches, patch=args.patch)  # fmt: skip
    print_delegation(args.out)
    print(
        f"against onnxruntime on {result['images']} LR images: PSNR {result['psnr']:.2f} dB, max |Δ| "
        f"{result['max_abs']:.3g}, {100 * result['within_1']:.2f} % of uint8 values within 1 level"
    )
    if result["input_range"] is not None:
        low, high = result["input_range"]
        note = "" if low <= 0 and high >= 255 else ": pixels outside it are clipped (calibrate on more varied images)"
        print(f"{metadata['io']} input covers pixels {low:.1f} to {high:.1f}{note}")
    return metadata


def print_delegation(path):
    from edge_sr.runtime.litert import delegation_report

    report = delegation_report(path)
    for where, label in (("delegated", "XNNPACK runs"), ("builtin", "builtin kernels run")):
        ops = ", ".join(f"{count}× {name}" for name, count in sorted(report[where].items())) or "nothing"
        print(f"{label}: {ops}")


def export_int8_checked(args):
    """--int8: export gated by the parity check (no file at --out when it fails, unless --force), delegation."""
    from edge_sr.export.parity import export_int8_checked
    from edge_sr.models.rundir import read_run

    if not Path(args.model, "run.json").is_file():
        raise EdgeSRError(
            f"--int8 exports a run directory of python -m edge_sr.train or python -m edge_sr.calibrate, not "
            f"{args.model!r}; for a quick W8A8 model run: python -m edge_sr.calibrate --model {args.model} --bits 8 "
            "--method dobi ..."
        )
    val = args.val or read_run(args.model)["data"]["val"]
    metadata, parity = export_int8_checked(args.model, args.out, val, io=args.io, tile=args.tile, force=args.force)
    print_delegation(args.out)
    print(
        f"parity on {Path(val).name}: Keras fake-quant {parity['psnr_keras']:.3f} dB, LiteRT "
        f"{parity['psnr_tflite']:.3f} dB (Δ {parity['delta_psnr']:+.3f}), {100 * parity['within_1_lsb']:.2f} % of "
        "pixel values within 1 LSB"
    )
    if not parity["ok"]:
        print(f"{args.out} failed the parity check and was written only because of --force: do not ship it")
    return metadata


def main(argv=None):
    args = parse_args(argv)
    check_tflite_path(args.out)  # before the slow part
    if args.onnx is not None:
        metadata = convert_onnx_checked(args)
    elif args.precision == "int8":
        metadata = export_int8_checked(args)
    else:
        model = load_source_model(args.model, args.scale)
        metadata = export_float(model, args.out, args.precision, tile=args.tile, source=args.model)
    size = f"{metadata['tile']}×{metadata['tile']} tiles" if metadata["tile"] else "any size"
    print(f"{args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {args.precision}, ×{metadata['scale']}, input {size}")
    print(f"metadata: {sidecar_path(args.out)}")


if __name__ == "__main__":
    run_cli(main)
