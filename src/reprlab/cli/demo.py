"""``reprlab demo``: train a small conv autoencoder on the embedded Fashion-MNIST sample (about a minute)."""

from __future__ import annotations

import argparse

from reprlab.cli.common import add_output_dir, print_run_result

HELP = "train a small conv autoencoder on the embedded Fashion-MNIST sample (~1 min)"

DEMO_CONFIG = {
    "name": None,
    "data": {"name": "fashion-mnist-sample", "val_fraction": 0.1},
    "model": {"name": "conv_ae", "latent_dim": 32, "channels": [32, 64]},
    # One thread: two torch threads on two cores slow down several-fold as soon as anything
    # else runs on the machine; one thread keeps the demo near a minute either way.
    "train": {"epochs": 8, "batch_size": 64, "lr": 2e-3, "scheduler": "cosine", "num_threads": 1},
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_output_dir(p)
    p.add_argument("--epochs", type=int, default=None, help="override the number of epochs")


def run(args: argparse.Namespace) -> int:
    from reprlab import api

    overrides = [f"output_dir={args.output_dir}"] + ([f"train.epochs={args.epochs}"] if args.epochs else [])
    result = api.train(DEMO_CONFIG, overrides=overrides)
    print_run_result(result)
    report = result.run_dir / "report.html"
    if report.exists():
        print(f"report: {report} (open it in a browser)")
    return 0
