"""`isingaug-report SWEEP_DIR [SWEEP_DIR ...] [--out DIR] [--quiet]`: tables, figures and a page
for one or more sweeps. Errors the user can fix print one line and exit 2, like `isingaug`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from isingaug.errors import IsingaugError

PROG = "isingaug-report"


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog=PROG,
        description="Collect the runs under Hydra sweep (or run) folders into runs/summary tables "
                    "(CSV and parquet), figures and an index.html.")
    cli.add_argument("sweeps", nargs="+", type=Path, metavar="SWEEP_DIR",
                     help="sweep or run folder(s), searched recursively for results.json")
    cli.add_argument("--out", type=Path, default=None,
                     help="report folder (default: FIRST_SWEEP_DIR/report)")
    cli.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Build the report; print the path of index.html on stdout. Returns the exit status."""
    args = parser().parse_args(argv)

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"{PROG}: {message}", file=sys.stderr, flush=True)

    def warn(message: str) -> None:
        print(f"{PROG}: {message}", file=sys.stderr, flush=True)

    from isingaug.report.build import build_report  # pandas/matplotlib only once args are valid

    try:
        index = build_report(args.sweeps, args.out, progress=progress, warn=warn)
    except IsingaugError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"{PROG}: error: cannot write the report: {err}", file=sys.stderr)
        return 2
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
