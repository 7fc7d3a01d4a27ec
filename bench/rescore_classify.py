"""Score finished ``classify`` runs on the Fashion-MNIST test split from another checkpoint, with and
without test-time flips (issue 15, BENCHMARKS.md "Few labels: 100 labels in total, the final epoch").

For each run folder: the accuracy of ``checkpoints/<tag>`` (``--tag best`` or ``last``) on all 10,000
test images, of the same model on the mirrored images, and of the mean of the two softmax outputs
(test-time flips). Prints one line per run; writes nothing.

    python bench/rescore_classify.py runs/s35/fl_flex/*-100-* --tag last --data-dir DATA
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir  # noqa: E402

from reprlab.data.registry import load_dataset  # noqa: E402
from reprlab.evaluation.classification import predict_logits  # noqa: E402
from reprlab.models.io import load_model  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="classify run folders")
    p.add_argument("--tag", default="best", choices=["best", "last"], help="the checkpoint to score")
    p.add_argument("--data-dir")
    args = p.parse_args()
    torch.set_num_threads(1)
    test = load_dataset("fashion-mnist", "test", data_dir=data_dir(args.data_dir))
    mirrored = dataclasses.replace(test, images=test.images.flip(-1))
    labels = test.labels

    def accuracy(probs: torch.Tensor) -> float:
        return float((probs.argmax(1) == labels).float().mean() * 100)

    for run in args.runs:
        model = load_model(Path(run) / "checkpoints" / args.tag / "model.safetensors")
        plain = torch.softmax(torch.as_tensor(predict_logits(model, test)), 1)
        flipped = torch.softmax(torch.as_tensor(predict_logits(model, mirrored)), 1)
        print(f"{run} ({args.tag}): plain {accuracy(plain):.2f}  mirrored {accuracy(flipped):.2f}  "
              f"test-time flips {accuracy((plain + flipped) / 2):.2f}", flush=True)


if __name__ == "__main__":
    main()
