"""``reprlab tune``: an Optuna search over the config's ``search:`` space; prints the best trial and the study folder."""

from __future__ import annotations

import argparse

from reprlab.cli.common import add_data_dir, add_output_dir

HELP = "hyperparameter search (Optuna) over the config's search: section; a killed study continues with the same command"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config with a search: section (see configs/search_conv_ae.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.epochs=5 search.objective=test/psnr")
    p.add_argument("--storage", help="sqlite:///PATH.db (default: STUDY_DIR/study.db), journal:PATH.log, "
                                     "or postgresql://USER:PASS@HOST:PORT/DB to share a study between machines")
    p.add_argument("--study-name", help="study name and folder (default: the config's name or file stem)")
    p.add_argument("--trials", type=int, help="trials the study should hold in the end (default: search.trials)")
    p.add_argument("--workers", type=int, help="worker processes on this machine (default: search.workers, 1)")
    p.add_argument("--pruner", help="stop poor trials early: none, median, percentile, hyperband or successive_halving "
                                   "(default: search.pruner; checked with the config)")
    add_data_dir(p)
    add_output_dir(p, default=None)


def run(args: argparse.Namespace) -> int:
    from reprlab.experiments.search import tune

    overrides = list(args.overrides) + ([f"data.data_dir={args.data_dir}"] if args.data_dir else [])
    result = tune(args.config, overrides=overrides, storage=args.storage, study_name=args.study_name,
                  trials=args.trials, workers=args.workers, pruner=args.pruner, output_dir=args.output_dir)
    print(result.summary)
    if result.best_config:
        print(f"best config: {result.best_config}")
    print(result.study_dir)
    return 0
