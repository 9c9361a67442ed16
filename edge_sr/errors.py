"""The one error type users see, and the wrapper that turns it into a clean CLI exit."""

import sys


class EdgeSRError(Exception):
    """A problem the user can fix (bad input, missing file, wrong option); the message says how."""


def run_cli(main, argv=None):
    """Run a CLI entry point; print EdgeSRError without a traceback and exit non-zero."""
    try:
        status = main(argv)
    except EdgeSRError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
