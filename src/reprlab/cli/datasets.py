"""``reprlab datasets``: the datasets reprlab reads and where each was found."""

from __future__ import annotations

import argparse

from reprlab.cli.common import add_data_dir

HELP = "list datasets and where each was found"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_dir(p)


def run(args: argparse.Namespace) -> int:
    from reprlab.data import describe_datasets

    for row in describe_datasets(args.data_dir):
        print(f"{row['name']:<22} {row.get('where', '')}")
    return 0
