"""`python -m edge_sr.zoo`: list the pretrained models, or pull one into the cache (edge_sr/models/zoo.py)."""

import argparse
from pathlib import Path

from edge_sr.errors import run_cli
from edge_sr.models import zoo


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m edge_sr.zoo", description=zoo.__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the models, whether each is cached, and what it is")
    pull_parser = commands.add_parser("pull", help="fetch, verify, convert and cache a model; prints its path")
    pull_parser.add_argument("name", help="a name from `list`")
    pull_parser.add_argument(
        "--from",
        dest="source_file",
        type=Path,
        metavar="FILE",
        help="use this local weights file (e.g. idealo's .h5) instead of downloading",
    )
    args = parser.parse_args(argv)

    if args.command == "list":
        rows = zoo.listing()
        width = max(len(name) for name, _, _ in rows)
        for name, state, description in rows:
            print(f"{name:<{width}}  {state:<10}  {description}")
    else:
        print(zoo.pull(args.name, args.source_file))


if __name__ == "__main__":
    run_cli(main)
