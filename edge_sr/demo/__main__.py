"""`python -m edge_sr.demo` (what `make demo` runs): the whole pipeline on an embedded default, in one command.

    python -m edge_sr.demo                  # the zoo RDN ×2 (npm), or the bundled EDSR-small ×2 offline
    python -m edge_sr.demo --out demo_out --model zoo:isr-rdn-psnr-small-x2 --eval path/to/Set5

It quantizes the model with 2DQuant (W8A8, W4A4) and ODM (W4A4, short CPU schedules), exports each as a
full-integer .tflite with its parity check, scores every file against FP32, bicubic and TFLite's own int8
post-training quantization on scikit-image's bundled photos (and Set5 when ../shared/data exists), times
fp32 against int8, and writes OUT/report.html (open it in a browser), OUT/results.json and the .tflite files.
Rerunning continues an interrupted demo; --quick runs every step on tiny images and schedules (a few minutes).
"""

import argparse
from pathlib import Path

from edge_sr.errors import EdgeSRError, run_cli
from edge_sr.tables import format_table


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m edge_sr.demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    parser.add_argument("--model", help="an FP model instead of the default (zoo:NAME, .keras, .pt/.pth, .h5)")
    parser.add_argument("--eval", nargs="+", default=[], metavar="FOLDER", help="more benchmark folders to score")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny images and schedules with the bundled EDSR-small (unless --model): checks the pipeline",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from edge_sr.demo.report import results_table
    from edge_sr.demo.showcase import run_demo

    results = run_demo(args.out, args.model, args.quick, args.eval)
    headers, rows = results_table(results)
    print(f"\n{results['model']} ×{results['scale']}; {results['machine']}; {results['seconds'] / 60:.1f} min")
    print(format_table(headers, [cells for _, cells in rows]))
    for note in results["notes"]:
        print(f"note: {note}")
    print(f"\nreport: {args.out / 'report.html'}  figures: {args.out / 'results.json'}  models: {args.out / 'models'}")
    print(f"wall time: {results['seconds'] / 60:.1f} min")
    if results["failures"]:
        raise EdgeSRError("the demo's checks failed: " + "; ".join(results["failures"]))


if __name__ == "__main__":
    run_cli(main)
