"""``reprlab detect``: anomaly detection (train on normal images, score test images); prints the output directory last."""

from __future__ import annotations

import argparse
import json

from reprlab.cli.common import add_data_dir, add_device, add_output_dir

HELP = "anomaly detection: train on normal images, score test images; prints the output directory last"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="labelled dataset for the one-class protocol (e.g. fashion-mnist)")
    p.add_argument("--normal-class", type=int, help="the class taken as normal (with --data)")
    p.add_argument("--normal", help="normal training images: .npy/.npz file or image folder")
    p.add_argument("--test", help="images to score: .npy/.npz file or image folder (with --normal)")
    p.add_argument("--test-labels", help="0/1 anomaly labels of the test images (.npy/.npz), for AUROC/F1")
    p.add_argument("--preset", choices=("fast", "full", "ae"),
                   help="measured settings (docs/anomaly.md): fast = pixel + HOG neighbours, no network; full = "
                        "fast + a rotation/flip network; ae = conv_ae reconstruction MSE (the default). "
                        "Options given explicitly override the preset's")
    p.add_argument("--model", help="registry model or run directory (default: conv_ae; rotnet for 'transform', "
                                   "vae for 'elbo')")
    p.add_argument("--score", help="mse, l1, ssim, elbo, transform, knn, kmeans, pca, pixel_knn, hog_knn, "
                                   "or a comma-separated combination (default: mse)")
    p.add_argument("--contamination", type=float, help="expected anomaly fraction in (0, 0.5] (default 0.1)")
    p.add_argument("--epochs", type=int, help="training epochs of the model (default 10)")
    p.add_argument("--batch-size", type=int, help="default 128")
    p.add_argument("--lr", type=float, help="default 1e-3")
    p.add_argument("--latent-dim", type=int, help="model latent size (default: the model's)")
    p.add_argument("--n-neighbors", type=int, help="k of the k-NN scores (default 5)")
    p.add_argument("--pixel-blur", type=float, help="Gaussian blur (px) before pixel_knn (default 0)")
    p.add_argument("--hog-bins", type=int, help="orientation bins of hog_knn (default 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-train", type=int, help="use at most this many normal training images")
    p.add_argument("--max-test", type=int, help="score at most this many test images (one-class protocol)")
    add_data_dir(p)
    add_device(p)
    add_output_dir(p, aliases=("--out",))
    p.add_argument("--name", help="output directory name (never overwritten)")

def run(args: argparse.Namespace) -> int:
    from reprlab.capabilities.anomaly.run import run_detection
    from reprlab.runs import resolve_device

    given = {"model": args.model, "contamination": args.contamination, "epochs": args.epochs,
             "batch_size": args.batch_size, "lr": args.lr, "n_neighbors": args.n_neighbors,
             "pixel_blur": args.pixel_blur, "hog_bins": args.hog_bins}
    params: dict = {k: v for k, v in given.items() if v is not None}
    if args.score is not None:
        scores = [x.strip() for x in args.score.split(",") if x.strip()]
        params["score"] = scores[0] if len(scores) == 1 else scores
    if args.latent_dim is not None:
        params["model_options"] = {"latent_dim": args.latent_dim}
    path = run_detection(data=args.data, normal_class=args.normal_class, normal=args.normal, test=args.test,
                         test_labels=args.test_labels, data_dir=args.data_dir, max_train=args.max_train,
                         max_test=args.max_test, output_dir=args.output_dir, name=args.name, preset=args.preset,
                         random_state=args.seed, device=str(resolve_device(args.device)), **params)
    metrics = json.loads((path / "metrics.json").read_text())
    keys = [k for k in ("test/auroc", "test/average_precision", "test/precision", "test/recall", "test/f1",
                        "test/flagged_fraction") if k in metrics]
    print("  ".join(f"{k}={metrics[k]:.4f}" for k in keys))
    print(path)
    return 0
