"""``reprlab train``: train any task from a YAML config (or ``--resume`` a run); prints the run directory last."""

from __future__ import annotations

import argparse

from reprlab.base.errors import ConfigError
from reprlab.cli.common import add_data_dir, add_output_dir, print_run_result, run_location_overrides

HELP = "train a model from a YAML config; prints the run directory last"

#: Exit status of ``reprlab train --strict`` when the run finished but its health verdict is ``suspect``.
EXIT_SUSPECT = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML config (see configs/); omit with --resume")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. model.latent_dim=16")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    add_data_dir(p)
    p.add_argument("--name", help="run directory name (never overwritten)")
    p.add_argument("--strict", action="store_true",
                   help=f"exit with status {EXIT_SUSPECT} when the run's health verdict is 'suspect' (default: exit 0 "
                        "and print the findings)")
    p.add_argument("--rounds", type=int, default=1,
                   help="classify runs: self-training rounds, each starting from the previous round's run on the same "
                        "labels (default 1: one run); every round's run directory is printed, the last one last")
    add_output_dir(p, default=None)


def run(args: argparse.Namespace) -> int:
    from reprlab import api

    if args.resume:
        if args.config or args.overrides:
            raise ConfigError("--resume takes no config or overrides: a run continues with its saved config",
                              fix=f"run `reprlab train --resume {args.resume}` alone")
        if args.rounds != 1:
            raise ConfigError("--resume continues one run and takes no --rounds",
                              fix=f"resume the interrupted round (`reprlab train --resume {args.resume}`), then start "
                                  "the next one with model.pretrained=RUN_DIR")
        result = api.resume(args.resume)
    else:
        if not args.config:
            raise ConfigError("no config given", fix="run `reprlab train configs/conv_ae.yaml` (or --resume RUN_DIR)")
        *earlier, result = api.self_train(args.config, rounds=args.rounds, overrides=run_location_overrides(args))
        for done in earlier:  # --rounds N: the rounds before the last
            print_run_result(done)
    print_run_result(result)
    if args.strict and result.metrics.get("health/verdict") == "suspect":
        return EXIT_SUSPECT
    return 0
