"""`python -m edge_sr.evaluate`: PSNR/SSIM of a model on benchmark folders, the way SR papers report them."""

import argparse

from edge_sr.atomic import write_json
from edge_sr.errors import run_cli
from edge_sr.runtime.evaluation import evaluate_dataset
from edge_sr.runtime.upscalers import load_upscaler
from edge_sr.tables import format_table


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m edge_sr.evaluate", description=__doc__)
    parser.add_argument("--model", default="bicubic", help="what to evaluate (default: bicubic)")
    parser.add_argument("--dataset", nargs="+", required=True, help="benchmark folder(s), e.g. data/Set5")
    parser.add_argument("--scale", type=int, required=True, help="upscaling factor")
    parser.add_argument("--rgb", action="store_true", help="score on RGB instead of the standard Y channel")
    parser.add_argument("--json", metavar="FILE", help="also write all figures, per image, to this JSON file")
    parser.add_argument("--save-images", metavar="DIR", help="write the SR images under DIR/DATASET/xS/")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    upscaler = load_upscaler(args.model, args.scale)
    results = [
        evaluate_dataset(upscaler, folder, args.scale, y_channel=not args.rgb, save_dir=args.save_images)
        for folder in args.dataset
    ]
    channel = "RGB" if args.rgb else "Y"
    rows = [(r["dataset"], f"x{r['scale']}", f"{r['psnr']:.2f}", f"{r['ssim']:.4f}", r["n_images"]) for r in results]
    print(f"model: {upscaler.name}")
    print(format_table(["dataset", "scale", f"PSNR ({channel}, dB)", "SSIM", "images"], rows))
    if args.json:
        write_json(args.json, {"model": upscaler.name, "results": results})


if __name__ == "__main__":
    run_cli(main)
