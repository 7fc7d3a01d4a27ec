"""``reprlab sweep``: a grid over config keys times seeds; prints the table's folder."""

from __future__ import annotations

import argparse

from reprlab.cli.common import add_data_dir, add_output_dir

HELP = "grid sweep over config keys x seeds: one run per combination and seed, a table and plots"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config (its sweep: section, and/or the axes given here)")
    p.add_argument("axes", nargs="*", help="grid axes key=v1,v2,..., e.g. model.kernel_size=3,5,7 model.stride=1,2")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a plain config override (repeatable), e.g. --set train.epochs=5")
    p.add_argument("--seeds", help="seeds: a list 0,1,2 or a count 3 (default: sweep.seeds, else the config's seed)")
    p.add_argument("--workers", type=int, help="worker processes on this machine (default: sweep.workers, 1)")
    p.add_argument("--storage", help="as for `reprlab tune` (default: SWEEP_DIR/study.db)")
    p.add_argument("--name", help="sweep name and folder (default: CONFIG-sweep)")
    add_data_dir(p)
    add_output_dir(p, default=None)


def run(args: argparse.Namespace) -> int:
    from reprlab.experiments.sweep import sweep

    overrides = list(args.overrides) + ([f"data.data_dir={args.data_dir}"] if args.data_dir else [])
    seeds = None
    if args.seeds is not None:
        seeds = int(args.seeds) if args.seeds.strip().isdigit() and "," not in args.seeds else args.seeds
    result = sweep(args.config, overrides=overrides, axes=args.axes, seeds=seeds, workers=args.workers,
                   storage=args.storage, name=args.name, output_dir=args.output_dir)
    print(result.summary)
    print(result.sweep_dir)
    return 0
