"""``reprlab cv``: k-fold cross-validation of a config; prints mean ± std and the folder of the fold runs."""

from __future__ import annotations

import argparse

from reprlab.cli.common import add_data_dir, add_output_dir

HELP = "k-fold cross-validation (stratified when labelled): one run per fold, the table and mean ± std"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config (a cv: section is optional)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.epochs=5")
    p.add_argument("--folds", type=int, help="number of folds (default: cv.folds, 5)")
    p.add_argument("--name", help="folder name (default: CONFIG-cvK)")
    add_data_dir(p)
    add_output_dir(p, default=None)


def run(args: argparse.Namespace) -> int:
    from reprlab.experiments.cv import cross_validate

    overrides = list(args.overrides) + ([f"data.data_dir={args.data_dir}"] if args.data_dir else [])
    result = cross_validate(args.config, overrides=overrides, folds=args.folds, output_dir=args.output_dir, name=args.name)
    print(result.line())
    print(result.cv_dir)
    return 0
