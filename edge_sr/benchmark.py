"""`python -m edge_sr.benchmark`: measured speed, printed as tables (and JSON with --json).

keras   parameters and FP Keras throughput (LR pixels per second) of model presets
tflite  latency and peak memory of exported .tflite files in LiteRT, compared in one run
int8    int8 against fp32 of one model beside XNNPACK's own conv kernels; op profile, tiled peak memory
qat     ODM vs min/max quantization-aware training, the ODM paper's ablations and PAMS (PSNR, step time), per
        placement (paper, integer)
ptq     2DQuant vs the PTQ baselines and TFLite's own int8 PTQ (PSNR, calibration time)
onnx    one PyTorch EDSR to int8 TFLite two ways: onnx2tf (ONNX) and edge_sr (DOBI/2DQuant W8A8), PSNR and latency
budget  where a run's int8 file loses PSNR: the run, its integer completion, and the error of each tensor alone
curve   int8 file PSNR against CPU training time: ODM per bit-width and placement in segments, 2DQuant beside
peers   the tools users pick instead (TFLite PTQ, litert-quantizer, litert-torch) beside edge_sr's int8 file: PSNR,
        time against fp32, ops XNNPACK leaves out (the extra: requirements-peers.txt)

    python -m edge_sr.benchmark tflite rdn_fp32.tflite rdn_int8.tflite --baseline rdn_fp32.tflite --size 128

tflite times every model in alternating rounds (each round runs each model once, in turn, the order reversed
every other round) so that the machine's drifts and bursts hit all models alike; a ratio to the baseline is the
median of the per-round ratios. Peak memory is the RSS high-water mark of a fresh process that loads the model
and upscales one image; "model MiB" subtracts what that process held before loading the model.
"""

import argparse
from pathlib import Path

from edge_sr.atomic import write_json
from edge_sr.bench.budget import benchmark_budget
from edge_sr.bench.common import machine_description
from edge_sr.bench.curve import benchmark_curve
from edge_sr.bench.int8 import benchmark_int8
from edge_sr.bench.keras_presets import benchmark_keras
from edge_sr.bench.onnx_route import benchmark_onnx
from edge_sr.bench.peers import benchmark_peers
from edge_sr.bench.ptq import benchmark_ptq
from edge_sr.bench.qat import benchmark_qat
from edge_sr.bench.tflite_files import benchmark_tflite
from edge_sr.errors import run_cli


def parse_size(text):
    """LR size "N" (N×N) or "WxH" → (height, width)."""
    width, _, height = text.lower().partition("x")
    try:
        width, height = int(width), int(height or width)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not N or WxH (e.g. 128 or 1920x1080)") from None
    if min(width, height) < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} must be positive")
    return height, width


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m edge_sr.benchmark", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    keras = commands.add_parser("keras", help="parameters and FP throughput of Keras presets")
    keras.add_argument("--presets", nargs="+", help="presets to measure (default: all)")
    keras.add_argument("--scale", type=int, default=2)
    keras.add_argument("--size", type=int, default=64, help="LR height and width (default 64)")
    keras.add_argument("--runs", type=int, default=5)
    keras.add_argument("--threads", type=int, default=2)
    keras.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    tflite = commands.add_parser("tflite", help="latency and peak memory of .tflite files in LiteRT")
    tflite.add_argument("models", nargs="+", help=".tflite files exported by python -m edge_sr.convert")
    tflite.add_argument("--baseline", help="the .tflite file the others are compared with (measured in the same run)")
    tflite.add_argument(
        "--size", nargs="+", type=parse_size, default=[(128, 128)], help="LR sizes: N or WxH (default 128)"
    )
    tflite.add_argument(
        "--tile", type=int, help="upscale in tiles of N×N (default: whole image; fixed-tile models use their own)"
    )
    tflite.add_argument("--threads", type=int, default=2)
    tflite.add_argument("--xnnpack", choices=("on", "off", "both"), default="on")
    tflite.add_argument("--runs", type=int, default=10, help="timed rounds (default 10)")
    tflite.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    tflite.add_argument("--scale", type=int, help="the scale, for .tflite files without their metadata file")
    tflite.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    int8 = commands.add_parser("int8", help="int8 against fp32 of one model, beside XNNPACK's own conv kernels")
    int8.add_argument("fp32_model", help="the model's fp32 .tflite")
    int8.add_argument("int8_model", help="its int8 .tflite")
    int8.add_argument("--size", type=parse_size, default=(128, 128), help="LR size: N or WxH (default 128)")
    int8.add_argument("--threads", type=int, default=2)
    int8.add_argument("--runs", type=int, default=20, help="timed rounds (default 20)")
    int8.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    int8.add_argument("--profile", action="store_true", help="also time every op of both models alone")
    int8.add_argument("--profile-runs", type=int, default=5, help="timed runs of each op (default 5)")
    int8.add_argument("--memory", type=parse_size, metavar="WxH", help="also the peak memory of upscaling this size")
    int8.add_argument("--tile", type=int, nargs="+", default=[256], help="LR tiles for --memory (default 256)")
    int8.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    from edge_sr.bench.qat import VARIANTS
    from edge_sr.quant.placement import PLACEMENTS
    from edge_sr.quant.quantizer import WEIGHT_GRID_HELP, WEIGHT_GRIDS

    qat = commands.add_parser("qat", help="ODM vs min/max QAT and the paper's ablations, same data and steps")
    qat.add_argument("--model", default="zoo:isr-rdn-psnr-small-x2", help="FP model (default: the zoo RDN x2)")
    qat.add_argument("--scale", type=int, default=2)
    qat.add_argument("--train", nargs="+", required=True, metavar="FOLDER", help="HR training folders")
    qat.add_argument("--val", required=True, help="validation folder (picks each run's best weights)")
    qat.add_argument("--eval", nargs="+", required=True, metavar="FOLDER", help="benchmark folders to score")
    qat.add_argument("--bits", nargs="+", type=int, default=[4, 2])
    qat.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"of: {', '.join(VARIANTS)}")
    qat.add_argument("--steps", type=int, default=100)
    qat.add_argument("--batch-size", type=int, default=4)
    qat.add_argument("--patch", type=int, default=64, help="HR patch (default 64)")
    qat.add_argument("--lr", type=float, default=1e-4)
    qat.add_argument("--weight-grid", choices=WEIGHT_GRIDS, help=WEIGHT_GRID_HELP + " (pams: narrow)")
    qat.add_argument(
        "--placements", nargs="+", choices=PLACEMENTS, default=["paper"],
        help="paper (default): the papers' k-bit layers; integer: the int8 file's whole graph (odm, minmax)",
    )  # fmt: skip
    qat.add_argument("--timing-rounds", type=int, default=5, help="alternating rounds timing the steps (default 5)")
    qat.add_argument("--out", required=True, help="folder for the run directories")
    qat.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    from edge_sr.methods.calibration import FEATURE_TERMS
    from edge_sr.methods.calibration import METHODS as PTQ_METHODS

    ptq = commands.add_parser("ptq", help="2DQuant vs PTQ baselines and TFLite's own int8 PTQ, same calibration data")
    ptq.add_argument("--model", default="zoo:isr-rdn-psnr-small-x2", help="FP model (default: the zoo RDN x2)")
    ptq.add_argument("--scale", type=int, default=2)
    ptq.add_argument("--calibration", nargs="+", required=True, metavar="FOLDER", help="calibration image folders")
    ptq.add_argument("--val", required=True, help="validation folder (picks each DQC run's best bounds)")
    ptq.add_argument("--eval", nargs="+", required=True, metavar="FOLDER", help="benchmark folders to score")
    ptq.add_argument("--bits", nargs="+", type=int, default=[8, 4, 3, 2])
    ptq.add_argument("--methods", nargs="+", default=list(PTQ_METHODS), help=f"of: {', '.join(PTQ_METHODS)}")
    ptq.add_argument("--per-channel-methods", nargs="*", default=["dobi", "2dquant"], help="also run per-channel")
    ptq.add_argument(
        "--feature-terms",
        nargs="+",
        choices=FEATURE_TERMS,
        default=["paper"],
        help="DQC feature term(s) to run 2dquant with: paper (Eq. 5, default), distance (the earlier)",
    )
    ptq.add_argument("--weight-grid", choices=WEIGHT_GRIDS, help=WEIGHT_GRID_HELP)
    ptq.add_argument("--iterations", type=int, default=3000, help="DQC steps (default: the paper's 3000)")
    ptq.add_argument("--batch-size", type=int, default=32, help="DQC batch (default: the paper's 32)")
    ptq.add_argument("--patch", type=int, default=64, help="DQC LR patch (default 64)")
    ptq.add_argument("--out", required=True, help="folder for the run directories and the TFLite file")
    ptq.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    onnx = commands.add_parser("onnx", help="one PyTorch EDSR to int8 two ways: onnx2tf vs edge_sr, PSNR and latency")
    onnx.add_argument("--checkpoint", help="an official EDSR-PyTorch .pt file (default: random weights)")
    onnx.add_argument("--scale", type=int, default=2, help="random-weight EDSR's scale (default 2)")
    onnx.add_argument("--blocks", type=int, default=16, help="random-weight EDSR's residual blocks (default 16)")
    onnx.add_argument("--features", type=int, default=64, help="random-weight EDSR's features (default 64)")
    onnx.add_argument("--seed", type=int, default=0)
    onnx.add_argument("--calibration", nargs="+", required=True, metavar="FOLDER", help="HR calibration images")
    onnx.add_argument("--val", help="edge_sr calibration's validation folder (default: the first --calibration)")
    onnx.add_argument("--eval", nargs="+", metavar="FOLDER", help="benchmark folders (default: scikit-image photos)")
    onnx.add_argument("--method", choices=("dobi", "2dquant"), default="dobi", help="edge_sr's W8A8 (default dobi)")
    onnx.add_argument("--iterations", type=int, default=50, help="2dquant's DQC steps (default 50)")
    onnx.add_argument("--batch-size", type=int, default=4, help="2dquant's DQC batch (default 4)")
    onnx.add_argument("--patches", type=int, default=32, help="calibration LR patches for both (default 32)")
    onnx.add_argument("--patch", type=int, default=48, help="calibration LR patch size (default 48)")
    onnx.add_argument("--size", type=parse_size, default=(128, 128), help="LR size for latency: N or WxH (default 128)")
    onnx.add_argument("--threads", type=int, default=2)
    onnx.add_argument("--runs", type=int, default=10, help="timed rounds (default 10)")
    onnx.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    onnx.add_argument("--out", required=True, help="folder for the ONNX, Keras, run and TFLite files")
    onnx.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    budget = commands.add_parser("budget", help="where a run's int8 file loses PSNR, tensor by tensor")
    budget.add_argument("run_dir", help="a train or calibrate run directory")
    budget.add_argument("--eval", nargs="+", required=True, metavar="FOLDER", help="benchmark folders to score")
    budget.add_argument("--top", type=int, default=3, help="tensors scored alone, and all but them (default 3)")
    budget.add_argument("--rows", type=int, default=20, help="tensors printed (default 20; all in --json)")
    budget.add_argument("--patches", type=int, default=8, help="LR patches the per-tensor errors use (default 8)")
    budget.add_argument("--patch", type=int, default=64, help="their size (default 64)")
    budget.add_argument("--tile", type=int, help="score tile by tile, as a fixed-tile (SwinIR) file runs")
    budget.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    curve = commands.add_parser("curve", help="int8 file PSNR against CPU training time: ODM per placement, 2DQuant")
    curve.add_argument("--model", default="zoo:isr-rdn-psnr-small-x2", help="FP model (default: the zoo RDN x2)")
    curve.add_argument("--scale", type=int, default=2)
    curve.add_argument("--train", nargs="+", required=True, metavar="FOLDER", help="HR training/calibration folders")
    curve.add_argument("--val", required=True, help="validation folder (the parity check runs on it)")
    curve.add_argument("--eval", nargs="+", required=True, metavar="FOLDER", help="benchmark folders to score")
    curve.add_argument("--bits", nargs="+", type=int, default=[8, 4])
    curve.add_argument("--placements", nargs="+", choices=PLACEMENTS, default=["integer", "paper"])
    curve.add_argument("--steps", nargs="+", type=int, default=[0, 100, 500, 2000], help="ODM steps to score at")
    curve.add_argument("--batch-size", type=int, default=8)
    curve.add_argument("--patch", type=int, default=96, help="HR patch (default 96)")
    curve.add_argument("--lr", type=float, default=1e-4)
    curve.add_argument("--range-init", choices=("percentile", "minmax", "dobi"), help="ODM's range start (as train)")
    curve.add_argument("--no-wcc", action="store_true", help="ODM without weight clipping correction (as train)")
    curve.add_argument("--per-channel", action="store_true", help="per-channel weight ranges (with --no-wcc)")
    curve.add_argument("--target", choices=("hr", "fp"), default="hr", help="ODM's L_R target (as train)")
    curve.add_argument("--checkpoint-every", type=int, default=100)
    curve.add_argument("--dquant-iterations", type=int, help="also calibrate 2DQuant (integer) with this DQC budget")
    curve.add_argument("--dquant-batch", type=int, default=8, help="2DQuant's DQC batch (default 8)")
    curve.add_argument("--resume", action="store_true", help="continue the curve in --out")
    curve.add_argument("--out", required=True, help="folder for the runs, files, curve.json and the SVG plots")
    curve.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    from edge_sr.bench.peers import ROWS

    peers = commands.add_parser("peers", help="the tools users pick instead, beside edge_sr's int8 file")
    peers.add_argument("model", nargs="?", default="zoo:isr-rdn-psnr-small-x2", help="FP model (default: zoo RDN x2)")
    peers.add_argument("--scale", type=int, default=2)
    peers.add_argument("--calibration", nargs="+", required=True, metavar="FOLDER", help="calibration image folders")
    peers.add_argument("--eval", nargs="+", required=True, metavar="FOLDER", help="benchmark folders to score")
    peers.add_argument("--patches", type=int, default=32, help="calibration LR patches, one batch for all (default 32)")
    peers.add_argument("--patch", type=int, default=48, help="their size (default 48)")
    peers.add_argument("--tile", type=int, default=128, help="litert-torch's fixed input tile (default 128)")
    peers.add_argument("--size", type=parse_size, default=(128, 128), help="LR size timed: N or WxH (default 128)")
    peers.add_argument("--threads", type=int, default=2)
    peers.add_argument("--runs", type=int, default=10, help="timed rounds (default 10)")
    peers.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    peers.add_argument(
        "--skip", nargs="+", default=[], choices=[key for key in ROWS if key != "fp32"], metavar="ROW",
        help=f"rows not to make (lq-a16w8 runs at ~40× fp32 time): {', '.join(k for k in ROWS if k != 'fp32')}",
    )  # fmt: skip
    peers.add_argument(
        "--files", nargs="+", default=[], type=Path, metavar="FILE",
        help="more .tflite files to score and time beside them, e.g. a trained --placement integer run's int8 file",
    )  # fmt: skip
    peers.add_argument("--out", required=True, help="folder for the files and edge_sr's calibration run")
    peers.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    commands = {
        "keras": benchmark_keras,
        "qat": benchmark_qat,
        "ptq": benchmark_ptq,
        "tflite": benchmark_tflite,
        "int8": benchmark_int8,
        "onnx": benchmark_onnx,
        "budget": benchmark_budget,
        "curve": benchmark_curve,
        "peers": benchmark_peers,
    }
    results = commands[args.command](args)
    if args.json:
        write_json(args.json, {"machine": machine_description(), "results": results})


if __name__ == "__main__":
    run_cli(main)
