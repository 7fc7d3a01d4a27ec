"""Embedding and report speed on Fashion-MNIST: 70,000 codes to 2-D, openTSNE vs scikit-learn, the report.

1. A conv_ae trained briefly on Fashion-MNIST (or ``--run-dir`` of an existing run) encodes
   all 70,000 images (train + test).
2. The 70,000 codes are reduced to 2-D with PCA, openTSNE (FFT gradients, ``--n-jobs``
   threads), UMAP (``--n-jobs`` threads, unseeded so it may use them; the numba compilation
   of the first call is timed separately on 2,000 points) and kernel PCA (automatic
   5,000-point fit + Nyström-style transform of the rest).
3. openTSNE against scikit-learn's ``TSNE`` (Barnes-Hut) on the same 10,000 test codes,
   both 750 iterations (250 early exaggeration + 500), same perplexity 30, PCA init, same
   threads; 10-NN accuracy of each map (train on half, test on the other) as a sanity check.
4. ``write_report`` on the run from scratch (the quick analysis included).

Wall-clock seconds (process CPU seconds beside them), one run each: the machine is shared,
so the load average is recorded too.

    python bench/embeddings.py --epochs 1 --n-jobs 2
    python bench/embeddings.py --run-dir runs/conv_ae-fashion-mnist-... --skip umap
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import data_dir, machine, save
from reprlab import api
from reprlab.capabilities.analysis import Reducer, encode_dataset
from reprlab.data import load_dataset
from reprlab.data.dataset import ImageData
from reprlab.models import load_model
from reprlab.runs import RunDir


def timed(fn, *args, **kwargs):
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - wall0, 2), round(time.process_time() - cpu0, 2)


def knn_accuracy(xy: np.ndarray, y: np.ndarray) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    half = len(xy) // 2
    return round(float(KNeighborsClassifier(10).fit(xy[:half], y[:half]).score(xy[half:], y[half:])), 4)


def train_run(ddir: str | None, epochs: int, out: str) -> tuple[Path, float]:
    cfg = {"seed": 0, "output_dir": out, "name": "conv_ae-bench-embeddings",
           "data": {"name": "fashion-mnist", "data_dir": ddir, "download": False, "val_fraction": 0.05},
           "model": {"name": "conv_ae", "latent_dim": 32, "channels": [32, 64]},
           "train": {"epochs": epochs, "batch_size": 128, "lr": 2e-3, "scheduler": "cosine", "progress": "off"},
           "eval": {"report": False}}
    result, wall, _ = timed(api.train, cfg)
    return result.run_dir, wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--run-dir", help="use this conv_ae run instead of training one")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--compare-points", type=int, default=10000)
    p.add_argument("--skip", nargs="*", default=[], help="any of: pca tsne umap kpca sklearn report")
    args = p.parse_args()
    torch.set_num_threads(args.n_jobs)
    ddir = data_dir(args.data_dir)
    results: dict = {"n_jobs": args.n_jobs, "load_average_start": os.getloadavg()}
    print(machine(), "| load average", results["load_average_start"])

    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        run_dir, results["train_seconds"] = train_run(ddir, args.epochs, tempfile.mkdtemp(prefix="reprlab-bench-"))
        print(f"trained {run_dir} in {results['train_seconds']} s")
    results["run_dir"] = str(run_dir)
    model = load_model(RunDir.open(run_dir).model_path("best")).eval()

    train = load_dataset("fashion-mnist", "train", data_dir=ddir, download=False)
    test = load_dataset("fashion-mnist", "test", data_dir=ddir, download=False)
    both = ImageData(torch.cat([train.images, test.images]), torch.cat([train.labels, test.labels]))
    codes, wall, cpu = timed(encode_dataset, model, both, batch_size=1000)
    y = both.labels.numpy()
    results["encode_70k"] = {"seconds": wall, "cpu_seconds": cpu, "shape": list(codes.shape)}
    print(f"encoded {codes.shape} in {wall} s")

    full: dict = {}
    methods = [m for m in ("pca", "kpca", "tsne", "umap") if m not in args.skip]
    if "umap" in methods:
        warm = np.random.default_rng(0).normal(size=(2000, codes.shape[1])).astype(np.float32)
        _, wall, cpu = timed(Reducer("umap", random_state=None, n_jobs=args.n_jobs).fit_transform, warm)
        full["umap_first_call_2000_points"] = {"seconds": wall, "cpu_seconds": cpu}
        print(f"umap first call (numba compilation) on 2,000 points: {wall} s")
    for m in methods:
        opts = {"n_jobs": args.n_jobs, "random_state": None if m == "umap" else 0}
        xy, wall, cpu = timed(Reducer(m, 2, **opts).fit_transform, codes)
        full[m] = {"seconds": wall, "cpu_seconds": cpu, "knn10_accuracy": knn_accuracy(xy, y),
                   "load_average": os.getloadavg()[0]}
        print(f"{m} on {len(codes)} points: {wall} s (cpu {cpu} s), 10-NN accuracy {full[m]['knn10_accuracy']}")
        np.save(Path(tempfile.gettempdir()) / f"reprlab-bench-{m}-70k.npy", xy)
    results["reduce_70k"] = full

    n = args.compare_points
    sub, ysub = codes[-n:], y[-n:]  # the test images
    cmp: dict = {"points": n}
    if "tsne" not in args.skip:
        xy, wall, cpu = timed(Reducer("tsne", 2, n_jobs=args.n_jobs, random_state=0).fit_transform, sub)
        cmp["opentsne"] = {"seconds": wall, "cpu_seconds": cpu, "knn10_accuracy": knn_accuracy(xy, ysub)}
        print(f"openTSNE on {n}: {wall} s")
    if "sklearn" not in args.skip:
        from sklearn.manifold import TSNE

        tsne = TSNE(2, perplexity=30, init="pca", max_iter=750, n_jobs=args.n_jobs, random_state=0)
        xy, wall, cpu = timed(tsne.fit_transform, sub)
        cmp["sklearn"] = {"seconds": wall, "cpu_seconds": cpu, "knn10_accuracy": knn_accuracy(xy, ysub)}
        print(f"sklearn TSNE on {n}: {wall} s")
    if "opentsne" in cmp and "sklearn" in cmp:
        cmp["speedup_opentsne_over_sklearn"] = round(cmp["sklearn"]["seconds"] / cmp["opentsne"]["seconds"], 2)
    results["tsne_10k"] = cmp

    if "report" not in args.skip:
        from reprlab.reporting.report import write_report

        shutil.rmtree(run_dir / "analysis", ignore_errors=True)
        (run_dir / "report.html").unlink(missing_ok=True)
        path, wall, cpu = timed(write_report, run_dir)
        results["report"] = {"seconds": wall, "cpu_seconds": cpu, "size_mb": round(path.stat().st_size / 1e6, 2)}
        print(f"report {path} in {wall} s ({results['report']['size_mb']} MB)")
    results["load_average_end"] = os.getloadavg()
    print("saved", save("embeddings", results))


if __name__ == "__main__":
    main()
