"""Smoke check of the ``dann`` model on real digits, MNIST -> USPS, through the plain Trainer.

Not the adaptation benchmark (that runs through ``task=adapt``): a few CPU epochs on a subset,
to see that the model trains on real data and that the domain loss does something. Trains the
``mnist`` preset (28x28x1) source-only (``adapt_weight=0``) and with DANN (``adapt_weight=1``)
on the same seed, same source subset and same SGD settings, and prints the USPS test accuracy
of each, the final domain accuracy and the wall time.

    PYTHONPATH=src python bench/adaptation_models_smoke.py --data-dir /work/shared/data --source 10000 --epochs 3
"""

from __future__ import annotations

import argparse
import time

import torch

from reprlab.data.dataset import ImageData
from reprlab.data.registry import load_dataset
from reprlab.models import create_model
from reprlab.training.engine import Trainer


def accuracy(model, data: ImageData) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model.logits(data.float01(slice(i, i + 1000))).argmax(1) for i in range(0, len(data), 1000)])
    return float((pred == data.labels).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--source", type=int, default=10000, help="MNIST training images used")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    mnist = load_dataset("mnist", "train", data_dir=args.data_dir, download=False)
    g = torch.Generator().manual_seed(args.seed)
    idx = torch.randperm(len(mnist), generator=g)[: args.source]
    source = ImageData(mnist.images[idx], mnist.labels[idx], name="mnist")
    usps_train = load_dataset("usps", "train", data_dir=args.data_dir, resize=28, download=False)
    usps_test = load_dataset("usps", "test", data_dir=args.data_dir, resize=28, download=False)
    target = ImageData(usps_train.images, name="usps")
    print(f"source MNIST {len(source)}, target USPS train {len(target)} (unlabelled), USPS test {len(usps_test)}")
    for adapt_weight in (0.0, 1.0):
        torch.manual_seed(args.seed)
        model = create_model("dann", input_shape=(1, 28, 28), preset="mnist", adapt_weight=adapt_weight)
        started = time.perf_counter()
        trainer = Trainer(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed).fit(
            model, source, target=target if adapt_weight > 0 else None)
        elapsed = time.perf_counter() - started
        last = trainer.history[-1]
        print(f"adapt_weight={adapt_weight}: USPS test acc {accuracy(model, usps_test):.4f}, MNIST train acc "
              f"{last['train/acc']:.4f}, domain acc {last.get('train/domain_acc', float('nan')):.4f}, "
              f"lr at the end {last['lr']:.5f}, {elapsed:.1f} s")


if __name__ == "__main__":
    main()
