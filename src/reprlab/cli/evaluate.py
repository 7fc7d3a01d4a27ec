"""``reprlab evaluate``: reload a run's model and print its task's test metrics as JSON."""

from __future__ import annotations

import argparse

from reprlab.cli.common import add_checkpoint, add_data_dir, add_device, add_run_dir, print_json

HELP = "reload a run's model and print test metrics as JSON"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dir(p)
    p.add_argument("--data", help="evaluate on another dataset's test split (e.g. mnist)")
    p.add_argument("--path", help="arrays file or image folder for --data arrays|folder")
    add_data_dir(p)
    add_checkpoint(p)
    p.add_argument("--max-images", type=int, help="evaluate at most this many images")
    p.add_argument("--generation", action="store_true",
                   help="also score samples of a VAE run (FD, KID, precision/recall on the offline feature network)")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from reprlab import api

    out = api.evaluate(args.run_dir, data=args.data, path=args.path, data_dir=args.data_dir, tag=args.checkpoint,
                       max_images=args.max_images, device=args.device)
    if args.generation and "test/fd" not in out:  # a reconstruct run of a VAE (GAN runs report them already)
        from reprlab.capabilities.generation import evaluate_generation

        out.update(evaluate_generation(args.run_dir, tag=args.checkpoint, device=args.device, data_dir=args.data_dir,
                                       max_images=args.max_images))
    print_json(out)
    return 0
