"""Engine overhead: reprlab's Trainer against a minimal hand-written PyTorch loop.

Same model (conv_ae, same initial weights), same data (Fashion-MNIST train images), same
batch size and optimiser, run alternately in one process (ABAB...); reports images per
second of each and their ratio (reprlab / hand-written; goal >= 0.95).

    python bench/engine_overhead.py --images 20000 --repeats 3
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


def handwritten_epoch(model, images, batch_size, lr, seed) -> float:
    """The loop a person would write: shuffle, slice, forward, backward, step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    g = torch.Generator().manual_seed(epoch_seed(seed, 0))
    perm = torch.randperm(images.shape[0], generator=g)
    start = time.perf_counter()
    for i in range(0, images.shape[0], batch_size):
        x = images[perm[i:i + batch_size]].float().div_(255.0)
        out = model(x)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
    return images.shape[0] / (time.perf_counter() - start)


def reprlab_epoch(model, data, batch_size, lr, seed) -> float:
    trainer = Trainer(epochs=1, batch_size=batch_size, lr=lr, seed=seed)
    start = time.perf_counter()
    trainer.fit(model, data)
    return len(data) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir")
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latent-dim", type=int, default=32)
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ddir = data_dir(args.data_dir)
    data = load_dataset("fashion-mnist" if ddir else "fashion-mnist-sample", "train", data_dir=ddir, download=False)
    data = data.subset(torch.arange(min(args.images, len(data))))
    torch.manual_seed(0)
    base = create_model("conv_ae", input_shape=data.shape, latent_dim=args.latent_dim)
    hand, ours = [], []
    # warm-up both paths once (allocator, kernels)
    handwritten_epoch(copy.deepcopy(base), data.images[:1024], args.batch_size, 1e-3, 0)
    reprlab_epoch(copy.deepcopy(base), data.subset(torch.arange(1024)), args.batch_size, 1e-3, 0)
    for r in range(args.repeats):
        hand.append(handwritten_epoch(copy.deepcopy(base), data.images, args.batch_size, 1e-3, r))
        ours.append(reprlab_epoch(copy.deepcopy(base), data, args.batch_size, 1e-3, r))
        print(f"repeat {r + 1}: hand-written {hand[-1]:.0f} img/s, reprlab {ours[-1]:.0f} img/s, ratio {ours[-1] / hand[-1]:.3f}")
    ratios = [o / h for o, h in zip(ours, hand)]
    result = {"images": len(data), "batch_size": args.batch_size, "dataset": data.name,
              "handwritten_img_per_s": hand, "reprlab_img_per_s": ours, "ratios": ratios,
              "median_ratio": statistics.median(ratios)}
    path = save("engine_overhead", result)
    print(f"median ratio reprlab/hand-written: {result['median_ratio']:.3f}  ({path})")


if __name__ == "__main__":
    main()
