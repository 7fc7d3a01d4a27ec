"""``reprlab sample RUN_DIR [--n 64] [--seed S]``: samples of a run's generative model (GAN or VAE).

Writes ``OUT/samples_seed<S>_n<N>.png`` (a grid) and ``.npz`` (``images``: uint8
``(N, C, H, W)``; ``noise``: the prior draws) under ``RUN_DIR/samples/`` (or ``--out``)
and prints their paths as JSON. A plain autoencoder (no prior) is refused.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from reprlab.cli.common import add_checkpoint, add_device, add_run_dir, print_json

HELP = "draw samples from a run's GAN or VAE: a PNG grid and an .npz"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dir(p)
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior draws (default 0)")
    p.add_argument("--out", help="output folder (default RUN_DIR/samples)")
    add_checkpoint(p)
    add_device(p)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from reprlab.base.validation import check_int
    from reprlab.capabilities.generation.task import decode01, fixed_noise, require_generative, save_grid
    from reprlab.runs import RunDir, load_run_model, resolve_device

    check_int("--n", args.n, minimum=1, maximum=10000)
    check_int("--seed", args.seed, minimum=0)
    run_dir = RunDir.open(args.run_dir, kinds=("train",), command="sample")
    model = load_run_model(run_dir.path, args.checkpoint)
    require_generative(model)
    model = model.to(resolve_device(args.device))
    z = fixed_noise(model, args.n, args.seed)
    images = decode01(model, z)
    out = Path(args.out) if args.out else run_dir.path / "samples"
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"samples_seed{args.seed}_n{args.n}"
    png = save_grid(images, stem.with_suffix(".png"), nrow=max(1, int(math.ceil(math.sqrt(args.n)))))
    npz = stem.with_suffix(".npz")
    np.savez_compressed(npz, images=(images.numpy() * 255).round().astype(np.uint8), noise=z.numpy())
    print_json({"png": str(png), "npz": str(npz), "n": args.n, "seed": args.seed})
    return 0
