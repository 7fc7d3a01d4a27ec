#!/usr/bin/env python
"""Build ``src/reprlab/data/embedded/fashion_mnist_sample.npz`` from the canonical Fashion-MNIST IDX files.

A stratified, seeded sample: 500 images per class from the train split (5,000) and 100
per class from the test split (1,000), uint8 28x28, kept in their original order. The
``.npz`` holds ``train_x``, ``train_y``, ``test_x``, ``test_y`` and the original indices
``train_index``/``test_index``.

Usage:
    python scripts/make_embedded_sample.py --source ../shared/data/fashion-mnist
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from reprlab.data.idx import read_idx
from reprlab.data.sources import DATASETS, verify_file

SEED = 20170825  # Fashion-MNIST's release date; any fixed value works
PER_CLASS = {"train": 500, "test": 100}
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src/reprlab/data/embedded/fashion_mnist_sample.npz"


def stratified_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` items of every class, drawn without replacement."""
    chosen = []
    for c in np.unique(labels):
        pool = np.flatnonzero(labels == c)
        if pool.size < per_class:
            raise SystemExit(f"class {c} has only {pool.size} images, need {per_class}")
        chosen.append(rng.choice(pool, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="folder with the 4 Fashion-MNIST IDX .gz files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()

    spec = DATASETS["fashion-mnist"]
    rng = np.random.default_rng(args.seed)
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        files = spec.files(split)
        paths = {role: args.source / f.name for role, f in files.items()}
        for role, path in paths.items():
            verify_file(path, files[role])
        x, y = read_idx(paths["images"]), read_idx(paths["labels"])
        index = stratified_indices(y, PER_CLASS[split], rng)
        arrays[f"{split}_x"] = x[index]
        arrays[f"{split}_y"] = y[index]
        arrays[f"{split}_index"] = index.astype(np.int32)
        print(f"{split}: {index.size} images, per class {np.bincount(y[index]).tolist()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    data = args.out.read_bytes()
    print(f"wrote {args.out} ({len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()})")


if __name__ == "__main__":
    main()
