"""Generation metrics on Fashion-MNIST: the metric's sanity ladder, and DCGAN against VAEs on a CPU budget.

``ladder``: the offline feature network (the default recipe of
:func:`reprlab.capabilities.generation.features.feature_network`: a small classifier of
the training labels, cached) scores sets of *real* test images against the other half of
the test set: the other half itself (the floor), the same with Gaussian noise or blur of
growing strength, only half the classes, one image repeated, and training images (for the
memorisation check). A metric worth reporting must order them.

``models``: ``dcgan``, ``vae`` and ``beta_vae`` trained with ``task: generate`` (best
checkpoint by the per-epoch Fréchet distance of a fixed noise batch) at the same epoch
budget on the same training images, scored on the same test images and feature network.
``--broken`` adds a DCGAN whose discriminator learning rate is 10x the generator's;
``dcgan_starved`` a DCGAN whose discriminator learns at 2e-2 and its generator at 1e-6 (a
configuration that must be flagged); ``dcgan_hinge`` is the stabilised variant (hinge loss, spectral normalisation);
``dcgan_tuned`` the default DCGAN with batch 64 and the generator's learning rate doubled to 4e-4;
``dcgan_mbstd`` the default DCGAN with the minibatch standard-deviation feature; ``dcgan_ema``
the default DCGAN sampling from a moving average of its generator's weights (``model.ema=0.999``). With
``--cpu-minutes`` the first model to run also pays for training the feature network when it
is not cached yet (145 s on one thread for Fashion-MNIST); later runs load it.

``faces``: ``configs/vae_faces.yaml`` and ``configs/dcgan_faces.yaml`` on a folder of faces
(``att-faces`` under the data folder: 400 grey photos, 64x64 after resizing, horizontal flips),
each on the same CPU budget; features from the rotation network trained on the training faces;
the memorisation check (each sample's nearest training face against the test faces' distances).

    python bench/generation.py ladder
    python bench/generation.py models --epochs 3 --max-train 10000 --threads 2
    python bench/generation.py models --cpu-minutes 18 --epochs 200 --max-train 10000 --threads 1   # the issue's budget
    python bench/generation.py models --models dcgan --set train.batch_size=64   # any config key, every model
    python bench/generation.py faces --cpu-minutes 8
    python bench/generation.py judge RUN_DIR      # the run's feature classifier on the real test images
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F

from common import data_dir, save
from reprlab.config import apply_overrides
from reprlab.data import load_dataset

LADDER_NOISE = (0.05, 0.1, 0.2, 0.4)
LADDER_BLUR = (0.5, 1.0, 2.0)
COLUMNS = ("fd", "kid", "precision", "recall", "coverage", "max_class_share", "real_max_class_share", "diversity",
           "memorisation_ratio", "memorised_share")


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = torch.arange(-3, 4).float()
    g = torch.exp(-k ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    x = F.conv2d(x, g.view(1, 1, 1, 7), padding=(0, 3))
    return F.conv2d(x, g.view(1, 1, 7, 1), padding=(3, 0))


def table(rows: list[dict], first: str) -> str:
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    out = [f"| {first} | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        out.append(f"| {r[first]} | " + " | ".join(f"{r[c]:.4g}" if c in r else "" for c in cols) + " |")
    return "\n".join(out)


def ladder(args: argparse.Namespace) -> None:
    from reprlab.capabilities.generation import GenerationEvaluator, feature_network

    ddir = data_dir(args.data_dir)
    train = load_dataset("fashion-mnist", "train", data_dir=ddir)
    test = load_dataset("fashion-mnist", "test", data_dir=ddir)
    started = time.perf_counter()
    net = feature_network(train, seed=args.seed)
    net_seconds = time.perf_counter() - started
    g = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(len(test), generator=g)
    a, b = perm[: len(test) // 2], perm[len(test) // 2:]
    xb, yb = test.float01(b), test.labels[b]
    ev = GenerationEvaluator(net, test.float01(a), train=train, seed=args.seed, max_real=None)
    acc = float((net.logits(test.float01(a)).argmax(1) == test.labels[a]).float().mean())
    sets = [("real, other half", xb)]
    sets += [(f"+ noise sigma {s}", (xb + s * torch.randn(xb.shape, generator=g)).clamp(0, 1)) for s in LADDER_NOISE]
    sets += [(f"blur sigma {s}", blur(xb, s)) for s in LADDER_BLUR]
    sets += [("classes 0-4 only", xb[yb < 5]), ("one image x5000", xb[:1].repeat(len(xb), 1, 1, 1)),
             ("training images", train.float01(torch.randperm(len(train), generator=g)[: len(xb)]))]
    rows = []
    for name, x in sets:
        t0 = time.perf_counter()
        m = ev.evaluate(x, details=False)
        rows.append({"set": name, **{k: float(v) for k, v in m.items()}, "seconds": round(time.perf_counter() - t0, 2)})
        print(name, {k: round(float(v), 4) for k, v in m.items()}, flush=True)
    text = table(rows, "set")
    print(f"\nfeature network: {net.objective}, test accuracy {acc:.3f}, ready in {net_seconds:.1f} s "
          f"(trained or cached)\nreference: {len(a)} test images; each set {len(xb)} images (classes 0-4: "
          f"{int((yb < 5).sum())})\n\n{text}")
    print(save("generation_ladder", {"rows": rows, "feature_accuracy": acc, "feature_seconds": net_seconds,
                                     "table": text}))


def _dcgan(train: dict | None = None, **model) -> dict:
    """The bench's DCGAN (noise 64, 64 channels each side, data in [-1, 1]) with ``model`` options on top."""
    spec = {"model": {"name": "dcgan", "noise_dim": 64, "gen_channels": 64, "disc_channels": 64, **model},
            "data": {"scale": "-1_1"}}
    return {**spec, "train": train} if train else spec


MODELS = {
    "dcgan": _dcgan(label_smoothing=0.1),
    "dcgan_mbstd": _dcgan(label_smoothing=0.1, minibatch_std=True),
    "dcgan_ema": _dcgan(label_smoothing=0.1, ema=0.999),
    "dcgan_hinge": _dcgan(loss="hinge"),
    # batch 64 and the generator at 4e-4 (the discriminator stays at 2e-4): twice the updates per epoch,
    # and a generator that keeps up (the screen of 2026-12-02 in BENCHMARKS.md)
    "dcgan_tuned": _dcgan({"batch_size": 64, "groups": {"generator": {"lr": 4e-4}}}, label_smoothing=0.1),
    "vae": {"model": {"name": "vae", "arch": "conv", "latent_dim": 16, "recon_loss": "bernoulli"},
            "train": {"lr": 1e-3}},
    "beta_vae": {"model": {"name": "beta_vae", "arch": "conv", "latent_dim": 16, "beta": 4.0}, "train": {"lr": 1e-3}},
    "dcgan_broken": _dcgan({"groups": {"discriminator": {"lr": 2e-3}, "generator": {"lr": 2e-4}}}),
    # a discriminator 20,000x faster than its generator (the configuration of tests/test_gan.py)
    "dcgan_starved": _dcgan({"groups": {"discriminator": {"lr": 2e-2}, "generator": {"lr": 1e-6}}}),
}


def train_and_score(name: str, cfg: dict) -> dict:
    """Train ``cfg`` through :func:`reprlab.train`; one table row: the test metrics, epochs, CPU and wall
    seconds of this process, the failures flagged in ``status.json`` and the run directory."""
    import json

    import reprlab

    cpu0, t0 = time.process_time(), time.perf_counter()
    result = reprlab.train(cfg)
    status = json.loads((result.run_dir / "status.json").read_text())
    m = result.metrics
    row = {"model": name, **{k.split("/", 1)[1]: float(m[k]) for k in m if k.startswith("test/")},
           "best_epoch": m.get("best/epoch"), "epochs": m.get("epochs"), "train_seconds": m.get("train_seconds"),
           "wall_seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - cpu0, 1),
           "failures": [f"{f['kind']}@{f['epoch']}" for f in status.get("failures", [])],
           "run_dir": str(result.run_dir)}
    print(name, result.summary, row["failures"], f"{row['cpu_seconds']} CPU-s", flush=True)
    return row


def report_rows(rows: list[dict], tag: str, args: argparse.Namespace) -> None:
    text = table(rows, "model")
    extra = "\n".join(f"{r['model']}: best epoch {r['best_epoch']}/{r['epochs']}, train {r['train_seconds']} s, "
                      f"wall {r['wall_seconds']} s, process CPU {r['cpu_seconds']} s, failures {r['failures'] or 'none'}, "
                      f"run {r['run_dir']}" for r in rows)
    print(f"\n{text}\n\n{extra}")
    print(save(tag, {"rows": rows, "args": vars(args), "table": text}))


def models(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    names = list(args.models) + (["dcgan_broken"] if args.broken else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            spec = MODELS[name]
            cfg = {"seed": args.seed, "task": "generate", "output_dir": args.output_dir or tmp,
                   "model": dict(spec["model"]),
                   "data": {"name": "fashion-mnist", "data_dir": data_dir(args.data_dir), "max_train": args.max_train,
                            "max_test": args.max_test, **spec.get("data", {})},
                   "train": {"epochs": args.epochs, "batch_size": 128, "progress": "off", "num_threads": args.threads,
                             "max_cpu_minutes": args.cpu_minutes, **spec.get("train", {})},
                   "eval": {"report": True},
                   "generation": {"n_samples": args.samples, "epoch_samples": 1000, "patience": 2}}
            rows.append(train_and_score(name, apply_overrides(cfg, args.set)))
        report_rows(rows, args.tag, args)


def faces(args: argparse.Namespace) -> None:
    from pathlib import Path

    import yaml

    torch.set_num_threads(args.threads)
    folder = Path(args.path or Path(data_dir(args.data_dir) or ".") / "att-faces")
    configs = Path(__file__).resolve().parents[1] / "configs"
    rows = []
    out = args.output_dir or tempfile.mkdtemp(prefix="faces-")
    for name in args.models:
        cfg = yaml.safe_load((configs / f"{name}_faces.yaml").read_text())
        cfg["data"]["path"] = str(folder)
        cfg.update(seed=args.seed, output_dir=out)
        cfg["train"].update(epochs=args.epochs, max_cpu_minutes=args.cpu_minutes, progress="off",
                            num_threads=args.threads)
        rows.append(train_and_score(name, cfg))
    report_rows(rows, "generation_faces", args)


def judge(args: argparse.Namespace) -> None:
    """How the run's own feature classifier labels the *real* test images: accuracy, per-class recall and
    predicted class shares (the yardstick for the samples' class shares)."""
    from pathlib import Path

    from reprlab.capabilities.generation.features import extract, load_feature_net

    torch.set_num_threads(args.threads)
    net = load_feature_net(Path(args.run_dir) / "generation", stem="feature_net")
    test = load_dataset("fashion-mnist", split="test", data_dir=data_dir(args.data_dir))
    y = test.labels
    _, logits = extract(net, test.float01(), logits=True)
    pred = logits.argmax(1)
    row = {"accuracy": float((pred == y).float().mean()),
           "recall_per_class": [float(((pred == c) & (y == c)).sum() / (y == c).sum()) for c in range(10)],
           "predicted_shares": (torch.bincount(pred, minlength=10).float() / len(pred)).tolist()}
    print(f"feature classifier of {args.run_dir} on {len(y)} real test images: accuracy {row['accuracy']:.3f}\n"
          f"recall per class (%): {[round(100 * v, 1) for v in row['recall_per_class']]}\n"
          f"predicted class shares (%): {[round(100 * v, 1) for v in row['predicted_shares']]}")
    print(save(args.tag, {**row, "run_dir": str(args.run_dir)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=int, default=0)
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("ladder")
    mp = sub.add_parser("models")
    mp.add_argument("--models", nargs="+", default=["dcgan", "vae", "beta_vae"], choices=sorted(MODELS))
    mp.add_argument("--broken", action="store_true", help="add a DCGAN with the discriminator's lr 10x the generator's")
    mp.add_argument("--epochs", type=int, default=3)
    mp.add_argument("--cpu-minutes", type=float, default=None,
                    help="train each model until its process used this much CPU time (train.max_cpu_minutes; "
                         "--epochs is then the ceiling)")
    mp.add_argument("--max-train", type=int, default=10000)
    mp.add_argument("--max-test", type=int, default=2000)
    mp.add_argument("--samples", type=int, default=2000)
    mp.add_argument("--threads", type=int, default=2)
    mp.add_argument("--output-dir", help="keep the run directories here (default: a temporary folder)")
    mp.add_argument("--tag", default="generation_models", help="results file name under bench/results")
    mp.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="overrides for every model's config, e.g. train.batch_size=64 (applied last)")
    fp = sub.add_parser("faces")
    fp.add_argument("--path", help="the faces folder (default: DATA_DIR/att-faces)")
    fp.add_argument("--models", nargs="+", default=["vae", "dcgan"], choices=["vae", "dcgan"])
    fp.add_argument("--epochs", type=int, default=400)
    fp.add_argument("--cpu-minutes", type=float, default=8.0)
    fp.add_argument("--threads", type=int, default=1)
    fp.add_argument("--output-dir", help="keep the run directories here (default: a new temporary folder)")
    jp = sub.add_parser("judge")
    jp.add_argument("run_dir", help="a generate run on Fashion-MNIST (its generation/feature_net.*)")
    jp.add_argument("--threads", type=int, default=1)
    jp.add_argument("--tag", default="generation_judge", help="results file name under bench/results")
    args = p.parse_args()
    {"ladder": ladder, "models": models, "faces": faces, "judge": judge}[args.what](args)


if __name__ == "__main__":
    main()
