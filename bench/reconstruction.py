"""Reconstruction quality on the Fashion-MNIST test set: autoencoders against PCA.

For each model and latent size, trains through ``reprlab.train`` on the 60,000 training
images (5% held out for validation), evaluates on the 10,000 test images (MSE, PSNR,
SSIM on [0, 1] images, means of per-image values) and records the training time. PCA
with the same number of components, fitted on the same training images, is the baseline,
scored by the same metric code.

    python bench/reconstruction.py --models conv_ae resnet_ae --latents 32 --epochs 3
    python bench/reconstruction.py --pca-only --latents 2 16 32 64
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from sklearn.decomposition import PCA

from common import data_dir, save
from reprlab import api
from reprlab.data import load_dataset
from reprlab.evaluation import per_image_metrics

MODEL_SETTINGS = {
    "fc_ae": {"model": {"hidden_sizes": [512, 256]}, "train": {"lr": 1e-3}},
    "conv_ae": {"model": {"channels": [32, 64]}, "train": {"lr": 2e-3}},
    "resnet_ae": {"model": {"channels": [32, 64, 128]}, "train": {"lr": 2e-3}},
    "vae": {"model": {"arch": "conv", "recon_loss": "bernoulli"}, "train": {"lr": 1e-3}},
}


def pca_scores(train: np.ndarray, test: np.ndarray, k: int, seed: int = 0) -> dict:
    start = time.process_time()
    pca = PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(train)
    fit_cpu = time.process_time() - start
    recon = np.clip(pca.inverse_transform(pca.transform(test)), 0, 1)
    shape = (-1, 1, 28, 28)
    m = per_image_metrics(torch.from_numpy(test.reshape(shape)).float(), torch.from_numpy(recon.reshape(shape)).float())
    return {"method": "pca", "latent": k, "mse": float(m["mse"].mean()), "psnr": float(m["psnr"].mean()),
            "ssim": float(m["ssim"].mean()), "cpu_seconds": round(fit_cpu, 1)}


def train_scores(model: str, k: int, epochs: int, ddir: str | None, batch_size: int, seed: int, threads: int,
                 overrides: list[str]) -> dict:
    settings = MODEL_SETTINGS[model]
    cfg = {
        "seed": seed,
        "output_dir": tempfile.mkdtemp(prefix="reprlab-bench-"),
        "data": {"name": "fashion-mnist", "data_dir": ddir, "download": False, "val_fraction": 0.05},
        "model": {"name": model, "latent_dim": k, **settings["model"]},
        "train": {"epochs": epochs, "batch_size": batch_size, "scheduler": "cosine", "progress": "off",
                  "num_threads": threads, **settings["train"]},
        "eval": {"figures": False, "report": False},
    }
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = api.train(cfg, overrides=overrides)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    m = result.metrics
    row = {"method": model, "latent": k, "epochs": epochs, "mse": m["test/mse"], "psnr": m["test/psnr"],
           "ssim": m["test/ssim"], "train_wall_seconds": m["train_seconds"], "total_cpu_seconds": round(cpu, 1),
           "total_wall_seconds": round(wall, 1), "run_dir": str(result.run_dir)}
    if "test/elbo_nats" in m:
        row["elbo_nats"] = m["test/elbo_nats"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--models", nargs="*", default=list(MODEL_SETTINGS))
    p.add_argument("--latents", nargs="*", type=int, default=[2, 16, 32, 64])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is least hurt by other load)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    p.add_argument("--pca-only", action="store_true")
    p.add_argument("--tag", default="reconstruction", help="name of the results file under bench/results/")
    args = p.parse_args()
    ddir = data_dir(args.data_dir)
    if ddir is None:
        raise SystemExit("error: Fashion-MNIST not found. Fix: pass --data-dir or set REPRLAB_DATA")
    train = load_dataset("fashion-mnist", "train", data_dir=ddir, download=False).float01().flatten(1).numpy()
    test = load_dataset("fashion-mnist", "test", data_dir=ddir, download=False).float01().flatten(1).numpy()
    rows = []
    for k in args.latents:
        rows.append(pca_scores(train, test, k, args.seed))
        print(json.dumps(rows[-1]), flush=True)
    if not args.pca_only:
        for model in args.models:
            for k in args.latents:
                rows.append(train_scores(model, k, args.epochs, ddir, args.batch_size, args.seed, args.threads, args.set))
                print(json.dumps(rows[-1]), flush=True)
    path = save(args.tag, {"rows": rows, "args": vars(args)})
    print(f"saved {path}")
    print("| method | latent | epochs | MSE | PSNR (dB) | SSIM | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['latent']} | {r.get('epochs', '-')} | {r['mse']:.4f} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
              f"{r.get('total_cpu_seconds', r.get('cpu_seconds'))} |")


if __name__ == "__main__":
    main()
