"""``reprlab finetune RUN_DIR --labels 100 [--freeze encoder|none|all-but-N]``: a classifier on a run's encoder.

Builds the ``classify`` run config from the pretrained run
(:func:`reprlab.capabilities.classification.finetune_config`) and trains it with
:func:`reprlab.experiments.selftrain.self_train` (one :func:`reprlab.experiments.train.train` per
``--rounds``); prints the headline metrics and the run directory of each round, the last one last.
Trailing ``key=value`` overrides apply last (e.g. ``train.batch_size=64``).
"""

from __future__ import annotations

import argparse

from reprlab.cli.common import add_data_dir, add_output_dir, print_run_result, run_location_overrides

HELP = "train a classifier head on the encoder of a run with a budget of labels; prints the run directory last"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a pretrained run directory (autoencoder, VAE, rotnet, resnet18, classifier)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.batch_size=64")
    p.add_argument("--labels", default="100", help="labelled training images, class-balanced (an integer or 'all'; "
                                                  "default 100)")
    p.add_argument("--freeze", default="encoder",
                   help="encoder (linear probe, default), none (full fine-tuning) or all-but-N (train the last N blocks)")
    p.add_argument("--head", default="linear", choices=("linear", "mlp"), help="classifier head (default linear)")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate of the head (default 1e-3)")
    p.add_argument("--encoder-lr", type=float, default=None, help="learning rate of the encoder (default lr/10)")
    p.add_argument("--unlabelled", default="none",
                   help="FixMatch on this many unlabelled training images outside the budget: all, a number, or none "
                        "(default)")
    p.add_argument("--rounds", type=int, default=1,
                   help="self-training rounds: each round starts from the previous round's run on the same labels "
                        "(default 1; a second round of configs/classify_fixmatch.yaml's FlexMatch added 0.2 to 1.6 "
                        "points on Fashion-MNIST at 100 labels)")
    p.add_argument("--seed", type=int, default=None, help="seed of the run and of the label subset (default: the run's)")
    p.add_argument("--data", default=None, help="dataset name (default: the pretrained run's)")
    add_data_dir(p)
    p.add_argument("--name", help="run directory name (never overwritten)")
    add_output_dir(p, default=None)


def run(args: argparse.Namespace) -> int:
    from reprlab.capabilities.classification.finetune import finetune_config
    from reprlab.experiments.selftrain import self_train

    labels = args.labels if str(args.labels).lower() == "all" else _int_or_text(args.labels)
    cfg = finetune_config(args.run_dir, labels=labels, freeze=args.freeze, head=args.head, epochs=args.epochs,
                          lr=args.lr, encoder_lr=args.encoder_lr, seed=args.seed, data=args.data,
                          unlabelled=_int_or_text(args.unlabelled))
    for result in self_train(cfg, rounds=args.rounds, overrides=run_location_overrides(args)):
        print_run_result(result)
    return 0


def _int_or_text(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value
