"""`python -m edge_sr.calibrate`: post-training quantization (2DQuant and baselines) of a pretrained FP model.

No labels: calibration reads LR patches made from the images in --calibration with the exact bicubic. Defaults are
the 2DQuant paper's (DOBI on one batch of 32 LR patches 64×64, then 3000 DQC steps of batch 32, Adam lr 1e-2 with
cosine decay) — minutes on a GPU. On a CPU use a short schedule, e.g.
    python -m edge_sr.calibrate --model zoo:isr-rdn-psnr-small-x2 --scale 2 --bits 4 --method 2dquant \\
        --calibration BSD68/HR --val Set5 --iterations 100 --batch-size 8 --run-dir runs/2dquant-w4
Then `python -m edge_sr.evaluate --model runs/2dquant-w4` or `python -m edge_sr.convert runs/2dquant-w4 ...`.
"""

import argparse
from dataclasses import asdict
from pathlib import Path

from edge_sr.errors import EdgeSRError, run_cli
from edge_sr.methods.calibration import FEATURE_TERMS, METHODS, CalibrationConfig
from edge_sr.models.rundir import add_schedule_arguments, report_run, resumable_run, schedule
from edge_sr.quant.placement import PLACEMENT_HELP, PLACEMENTS
from edge_sr.quant.quantizer import WEIGHT_GRID_HELP, WEIGHT_GRIDS
from edge_sr.quant.ranges import DOBI_VARIANTS

# How often a new run validates and saves; a resumed run keeps what its run.json recorded unless told otherwise.
SCHEDULE = {"validate_every": 500, "checkpoint_every": 500}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m edge_sr.calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", required=True, help="where config, checkpoints, best bounds and logs go")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir where it stopped")
    parser.add_argument("--model", help="zoo:NAME, a .keras/.pt/.pth/.h5 file, or a preset (random weights)")
    parser.add_argument("--scale", type=int)
    parser.add_argument("--calibration", nargs="+", metavar="FOLDER", help="folders of images to calibrate on")
    parser.add_argument("--val", metavar="FOLDER", help="benchmark folder scored to pick the best bounds")
    parser.add_argument("--method", choices=sorted(METHODS), default="2dquant")
    parser.add_argument("--bits", type=int, default=4, help="weight and activation bits, 2-8 (default 4)")
    parser.add_argument("--placement", choices=PLACEMENTS, default="paper", help=PLACEMENT_HELP)
    parser.add_argument("--per-channel", action="store_true", help="per-output-channel weight ranges")
    parser.add_argument("--weight-grid", choices=WEIGHT_GRIDS, help=WEIGHT_GRID_HELP)
    parser.add_argument("--iterations", type=int, help="DQC steps (default 3000); on --resume: a new end")
    parser.add_argument("--batch-size", type=int, default=32, help="DQC batch (default 32)")
    parser.add_argument("--init-batch-size", type=int, default=32, help="LR patches per stage-1 batch (default 32)")
    parser.add_argument("--patch", type=int, default=64, help="LR patch size (default 64)")
    parser.add_argument("--lr", type=float, default=1e-2, help="learning rate of the bounds")
    parser.add_argument("--lambda-f", type=float, default=5.0, help="weight of DQC's feature term (default 5)")
    parser.add_argument(
        "--feature-term",
        choices=FEATURE_TERMS,
        default="paper",
        help="paper: Eq. (5), each stage's squared distance over its size; distance: edge_sr's earlier unsquared form",
    )
    parser.add_argument(
        "--dobi-variant",
        choices=DOBI_VARIANTS,
        default="paper",
        help="paper: one-direction "
        "search after softmax/GELU; released: symmetric narrowing everywhere, as the released code",
    )
    parser.add_argument("--calibration-batches", type=int, default=1, help="batches for the stage-1 ranges")
    add_schedule_arguments(parser, SCHEDULE)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _new_run(args):
    missing = [
        flag
        for flag, value in (("--model", args.model), ("--calibration", args.calibration), ("--val", args.val))
        if not value
    ]
    if missing:
        raise EdgeSRError(f"a new run needs {', '.join(missing)}")
    if args.calibration_batches < 1:
        raise EdgeSRError(f"--calibration-batches must be at least 1, got {args.calibration_batches}")
    config = CalibrationConfig(
        method=args.method,
        bits=args.bits,
        placement=args.placement,
        per_channel=args.per_channel,
        weight_grid=args.weight_grid,
        iterations=CalibrationConfig.iterations if args.iterations is None else args.iterations,
        batch_size=args.batch_size,
        init_batch_size=args.init_batch_size,
        lr_patch=args.patch,
        learning_rate=args.lr,
        lambda_f=args.lambda_f,
        feature_term=args.feature_term,
        dobi_variant=args.dobi_variant,
        seed=args.seed,
    )
    data = {
        "calibration": [str(f) for f in args.calibration],
        "val": str(args.val),
        "calibration_batches": args.calibration_batches,
    }
    return {"kind": "calibrate", "model": args.model, "scale": args.scale, "calibrate": asdict(config), "data": data}


def main(argv=None):
    args = parse_args(argv)
    run_dir = Path(args.run_dir)
    run = resumable_run(run_dir, "calibrate", args.iterations) if args.resume else _new_run(args)
    every = schedule(run, SCHEDULE, validate_every=args.validate_every, checkpoint_every=args.checkpoint_every)

    from edge_sr.methods.calibration import run_calibration

    result = run_calibration(run, run_dir, args.resume, **every)
    return report_run(result, run_dir, "DQC steps")


if __name__ == "__main__":
    run_cli(main)
