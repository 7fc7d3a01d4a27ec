"""``reprlab datasets``: the datasets reprlab reads and where each was found."""

from __future__ import annotations

import argparse

from reprlab.cli.common import add_data_dir

HELP = "list datasets and where each was found"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_dir(p)


#: How to use the datasets that are the user's own files (they have no fixed place to be found).
OWN_FILES: dict[str, str] = {
    "arrays": "your own .npy/.npz images: data.name=arrays data.path=FILE (labels: data.labels_path)",
    "folder": "your own image files: data.name=folder data.path=DIR (one sub-folder per class gives labels)",
}


def run(args: argparse.Namespace) -> int:
    from reprlab.data import describe_datasets, list_datasets

    rows = describe_datasets(args.data_dir)
    for row in rows:
        print(f"{row['name']:<22} {row.get('where', '')}")
    listed = {row["name"] for row in rows}
    for name in list_datasets():
        if name not in listed:
            print(f"{name:<22} {OWN_FILES.get(name, '')}")
    return 0
