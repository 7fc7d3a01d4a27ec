"""``reprlab compare``: several runs side by side in one HTML page; prints its path."""

from __future__ import annotations

import argparse

HELP = "compare runs side by side in one HTML page; prints its path"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", help="output folder (default: comparisons/comparison-<time> next to the runs' folder, not inside it)")


def run(args: argparse.Namespace) -> int:
    from reprlab.reporting.report import write_comparison

    print(write_comparison(args.run_dirs, args.out))
    return 0
