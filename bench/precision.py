"""Training speed under bfloat16 autocast (``train.precision=bf16``) against float32.

The same protocol as ``bench/memory_format.py`` (whose models, data and timing it reuses): for
each model, reprlab's Trainer runs one epoch over the same random images in each precision, from
the same initial weights, in alternating rounds (ABBA...) in one process after one untimed epoch
of each. Both precisions train in the channels-last layout (``--layout nchw`` for the default
layout). Reported per model: process CPU milliseconds per training image in each precision
(median over rounds) and their ratio bf16 / fp32 (below 1 is faster), with the range of the
per-round ratios. The speed-up needs a CPU with bfloat16 instructions (AMX or AVX512-BF16; the
script prints the flags ``/proc/cpuinfo`` lists) or a recent GPU; elsewhere bf16 can be slower.

    python bench/precision.py --images 512 --rounds 4 --threads 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save  # noqa: E402
from memory_format import MODELS, compare_trainer_options  # noqa: E402

from reprlab.training.engine import cpu_bf16_flags  # noqa: E402


def cpu_description() -> str:
    """The machine (``common.machine``) and its CPU's bfloat16 flags (:func:`reprlab.training.engine.cpu_bf16_flags`)."""
    flags = cpu_bf16_flags()
    listed = "unknown bf16 flags" if flags is None else (" ".join(sorted(flags)) or "no bf16 flags")
    return f"{machine()}; {listed}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--images", type=int, default=512, help="training images per epoch (random, seeded)")
    p.add_argument("--rounds", type=int, default=4, help="rounds; each runs both precisions, in alternating order")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--layout", choices=("channels_last", "nchw"), default="channels_last")
    p.add_argument("--tag", default="precision")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cpu = cpu_description()
    print(f"CPU: {cpu}", flush=True)
    channels_last = args.layout == "channels_last"
    precisions = {p: {"channels_last": channels_last, "precision": p} for p in ("fp32", "bf16")}
    results = {name: compare_trainer_options(name, images=args.images, rounds=args.rounds, settings=precisions)
               for name in args.models}
    path = save(args.tag, {"command": "python bench/precision.py " + " ".join(sys.argv[1:]), "cpu": cpu,
                           "layout": args.layout, "images": args.images, "rounds": args.rounds,
                           "threads": args.threads, "models": results})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
