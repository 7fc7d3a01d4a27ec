"""``reprlab report``: write ``RUN_DIR/report.html`` (self-contained) from the run's files; prints its path."""

from __future__ import annotations

import argparse
import logging

from reprlab.cli.common import add_run_dir

HELP = "write RUN_DIR/report.html (self-contained) from the run's results; prints its path"
logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dir(p)
    p.add_argument("--no-analyze", action="store_true",
                   help="accepted for compatibility: the report never runs an analysis (use `reprlab analyze`)")


def run(args: argparse.Namespace) -> int:
    from reprlab.reporting.report import write_report

    print(write_report(args.run_dir))
    return 0
