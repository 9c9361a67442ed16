"""`python -m edge_sr.train`: quantization-aware training (ODM and baselines) from a pretrained FP model.

Defaults are the ODM paper's recipe (60K iterations, batch 8, Adam lr 1e-4 halved every 15K, HR patch
96/144/192 for ×2/×3/×4, λ_M 1e-5 or 1e-6 for RDN) — a GPU job. On a CPU use a short schedule, e.g.
    python -m edge_sr.train --model zoo:isr-rdn-psnr-small-x2 --scale 2 --bits 4 --method odm \\
        --train BSD68/HR --val Set5 --iterations 200 --batch-size 4 --patch 64 --run-dir runs/odm-w4
"""

import argparse
from dataclasses import asdict
from pathlib import Path

from edge_sr.errors import EdgeSRError, run_cli
from edge_sr.methods.training import COSINE_MODES, METHODS, MISMATCH_MODES, TrainConfig
from edge_sr.models.rundir import add_schedule_arguments, report_run, resumable_run, schedule
from edge_sr.quant.placement import PLACEMENT_HELP, PLACEMENTS
from edge_sr.quant.quantizer import WEIGHT_GRID_HELP, WEIGHT_GRIDS

STRATEGIES = ("default", "mirrored", "multiworker")

# How often a new run validates and saves; a resumed run keeps what its run.json recorded unless told otherwise.
SCHEDULE = {"validate_every": 1000, "checkpoint_every": 1000}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m edge_sr.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", required=True, help="where config, checkpoints, best weights and logs go")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir where it stopped")
    parser.add_argument("--model", help="zoo:NAME, a .keras/.pt/.pth/.h5 file, or a preset (random weights)")
    parser.add_argument("--scale", type=int)
    parser.add_argument("--train", nargs="+", metavar="FOLDER", help="folders of HR training images")
    parser.add_argument("--val", metavar="FOLDER", help="benchmark folder scored to pick the best weights")
    parser.add_argument(
        "--method",
        choices=sorted(METHODS),
        default="odm",
        help="odm (default), minmax, pams (PAMS's quantizers), tfmot8 (tfmot's default 8-bit QAT), fp",
    )
    parser.add_argument("--bits", type=int, help="weight and activation bits, 2-8 (default 4; tfmot8: 8 only)")
    parser.add_argument("--placement", choices=PLACEMENTS, default="paper", help=PLACEMENT_HELP)
    parser.add_argument("--iterations", type=int, help="training steps (default 60000); on --resume: a new end")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch", type=int, help="HR patch size (default 96/144/192 for x2/x3/x4)")
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate; quantizer ranges get 10x")
    parser.add_argument("--halve-every", type=int, default=15_000, help="halve the learning rate every N steps")
    parser.add_argument("--lambda-m", type=float, help="mismatch loss weight (default 1e-5; 1e-6 for RDN)")
    parser.add_argument("--mismatch", choices=MISMATCH_MODES, help="ablation: how the mismatch loss is used")
    parser.add_argument("--no-wcc", action="store_true", help="ablation: no weight clipping correction")
    parser.add_argument(
        "--range-init",
        choices=("percentile", "minmax", "dobi"),
        help="how the ranges start (default: the method's; ODM: 1st/99th percentiles, made for 2-4 bits; at 8 bits "
        "dobi, 2DQuant's least-error ranges, clips far less)",
    )
    parser.add_argument("--per-channel", action="store_true", help="per-output-channel weight ranges (with --no-wcc)")
    parser.add_argument(
        "--target",
        choices=("hr", "fp"),
        default="hr",
        help="what L_R compares the output with: hr, the HR image (the paper's; default), or fp, the FP model's "
        "output (distillation: only the quantization error)",
    )
    parser.add_argument("--weight-grid", choices=WEIGHT_GRIDS, help=WEIGHT_GRID_HELP + " (odm, minmax)")
    parser.add_argument("--cosine", choices=COSINE_MODES, default="global", help="cooperative weight per tensor?")
    parser.add_argument(
        "--similarity-every",
        type=int,
        help="take ODM's two gradients (and their cosine) every N steps, one combined backward pass in between "
        "(default 4; 1 = the paper's exact step, required with --cosine per-tensor)",
    )
    parser.add_argument("--calibration-batches", type=int, default=4, help="batches for the range init")
    add_schedule_arguments(parser, SCHEDULE)
    parser.add_argument("--strategy", choices=STRATEGIES, default="default", help="tf.distribute strategy")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _strategy(name):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # cluster from the TF_CONFIG environment variable
    return tf.distribute.get_strategy()


def _new_run(args):
    missing = [
        flag for flag, value in (("--model", args.model), ("--train", args.train), ("--val", args.val)) if not value
    ]
    if missing:
        raise EdgeSRError(f"a new run needs {', '.join(missing)}")
    config = TrainConfig(
        method=args.method,
        bits=args.bits,
        placement=args.placement,
        iterations=TrainConfig.iterations if args.iterations is None else args.iterations,
        batch_size=args.batch_size,
        hr_patch=args.patch,
        learning_rate=args.lr,
        halve_every=args.halve_every,
        lambda_m=args.lambda_m,
        mismatch=args.mismatch,
        clip_correction=False if args.no_wcc else None,
        range_init=args.range_init,
        per_channel=args.per_channel,
        target=args.target,
        weight_grid=args.weight_grid,
        cosine=args.cosine,
        similarity_every=args.similarity_every,
        seed=args.seed,
    )
    data = {
        "train": [str(f) for f in args.train],
        "val": str(args.val),
        "calibration_batches": args.calibration_batches,
    }
    return {"kind": "train", "model": args.model, "scale": args.scale, "train": asdict(config), "data": data}


def main(argv=None):
    args = parse_args(argv)
    run_dir = Path(args.run_dir)
    run = resumable_run(run_dir, "train", args.iterations) if args.resume else _new_run(args)
    every = schedule(run, SCHEDULE, validate_every=args.validate_every, checkpoint_every=args.checkpoint_every)

    from edge_sr.methods.training import run_training

    result = run_training(run, run_dir, args.resume, _strategy(args.strategy), **every)
    return report_run(result, run_dir)


if __name__ == "__main__":
    run_cli(main)
