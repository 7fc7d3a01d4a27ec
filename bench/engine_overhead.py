"""Engine overhead: reprlab's Trainer against a minimal hand-written PyTorch loop.

Same model (conv_ae, same initial weights), same data (Fashion-MNIST train images), same
batch size and optimiser, run in alternating rounds (ABBA...) in one process; reports images per
second of each and their ratio (reprlab / hand-written; goal >= 0.95), from wall-clock
and from process CPU time. Each round is one epoch of each loop over the same images,
so reprlab's per-epoch costs (optimiser set-up, seeding, bookkeeping) are included.

    python bench/engine_overhead.py --images 2000 --rounds 10 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from common import data_dir, save
from reprlab.data import load_dataset
from reprlab.models import create_model
from reprlab.training.engine import Trainer
from reprlab.training.loader import epoch_seed


def handwritten_epoch(model, opt, images, batch_size, seed) -> None:
    """The loop a person would write: shuffle, slice, forward, backward, step."""
    model.train()
    g = torch.Generator().manual_seed(epoch_seed(seed, 0))
    perm = torch.randperm(images.shape[0], generator=g)
    for i in range(0, images.shape[0], batch_size):
        x = images[perm[i:i + batch_size]].float().div_(255.0)
        out = model(x)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()


def reprlab_epoch(model, data, batch_size, lr, seed) -> None:
    Trainer(epochs=1, batch_size=batch_size, lr=lr, seed=seed).fit(model, data)


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir")
    p.add_argument("--images", type=int, default=2000, help="images per round (one epoch of each loop)")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch threads for both loops (1 is least hurt by other load)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ddir = data_dir(args.data_dir)
    data = load_dataset("fashion-mnist" if ddir else "fashion-mnist-sample", "train", data_dir=ddir, download=False)
    torch.manual_seed(0)
    base = create_model("conv_ae", input_shape=data.shape, latent_dim=args.latent_dim)
    hand_model, ours_model = copy.deepcopy(base), copy.deepcopy(base)
    hand_opt = torch.optim.Adam(hand_model.parameters(), lr=1e-3)
    walls = {"hand": [], "reprlab": []}
    cpus = {"hand": [], "reprlab": []}
    g = torch.Generator().manual_seed(0)
    for r in range(args.rounds + 1):
        chunk = data.subset(torch.randperm(len(data), generator=g)[: args.images])
        order = [("hand", lambda: handwritten_epoch(hand_model, hand_opt, chunk.images, args.batch_size, r)),
                 ("reprlab", lambda: reprlab_epoch(ours_model, chunk, args.batch_size, 1e-3, r))]
        if r % 2:
            order.reverse()  # ABBA: neither loop always runs first
        for name, fn in order:
            w, c = timed(fn)
            if r > 0:  # round 0 warms up both paths
                walls[name].append(w)
                cpus[name].append(c)
        if r > 0:
            print(f"round {r}: hand-written {args.images / walls['hand'][-1]:.0f} img/s, "
                  f"reprlab {args.images / walls['reprlab'][-1]:.0f} img/s", flush=True)
    n = args.images * args.rounds
    result = {
        "images_per_round": args.images, "threads": args.threads, "rounds": args.rounds, "batch_size": args.batch_size, "dataset": data.name,
        "handwritten_img_per_s": n / sum(walls["hand"]), "reprlab_img_per_s": n / sum(walls["reprlab"]),
        "ratio_wall": sum(walls["hand"]) / sum(walls["reprlab"]),
        "ratio_cpu": sum(cpus["hand"]) / sum(cpus["reprlab"]),
        "per_round_ratio_wall": [h / o for h, o in zip(walls["hand"], walls["reprlab"])],
    }
    path = save("engine_overhead", result)
    print(f"throughput ratio reprlab/hand-written: wall {result['ratio_wall']:.3f}, CPU time {result['ratio_cpu']:.3f}"
          f" (median of rounds {statistics.median(result['per_round_ratio_wall']):.3f}) -> {path}")


if __name__ == "__main__":
    main()
