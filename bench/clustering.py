"""Clustering of Fashion-MNIST (issue 4): all 70,000 images, 10 clusters, label-free.

Pipelines, each run for every seed on the same images (train + test splits together;
labels are used only to score):

* ``raw``: pixels -> UMAP (10 components, 20 neighbours, min_dist 0) -> GMM (full covariance);
* ``ae_rot``: a conv autoencoder with rotation self-supervision (``rotation_beta``), trained
  on all images -> codes -> UMAP -> GMM (the main pipeline);
* ``ae_rot_noreducer`` (ablation, no reducer): the same codes -> GMM directly (reuses
  ``ae_rot``'s model; its CPU time counts that model's training);
* ``ae_norot`` (ablation, no rotation loss): the same autoencoder trained without the
  rotation loss -> UMAP -> GMM;
* ``ae_hog`` (addition): ``ae_norot``'s codes and HOG descriptors of the images (9
  orientation bins), each standardised per feature and divided by the square root of its
  width so both weigh the same, concatenated -> UMAP -> GMM
  (``reprlab.capabilities.clustering.pipeline.clustering_features(codes, data, "codes+hog")``, the
  ``features="codes+hog"`` option of ``cluster_run``, the config and ``reprlab cluster``);
* ``scan`` (neighbour consistency): pixels and HOG descriptors (``features="pixels+hog"``)
  -> :class:`reprlab.capabilities.clustering.scan.ScanClusterer` (20 nearest neighbours by cosine, a
  one-hidden-layer network with 20 heads trained to agree with them, ``--scan-restarts``
  networks, consensus KMeans over the 10 lowest-loss heads of each); no reducer;
* ``ae_scan``: the same with ``ae_norot``'s codes as a third block (``codes+pixels+hog``).
* ``scan_scattering``: ``scan`` on the images' log wavelet-scattering coefficients, PCA to
  256 components, half-way whitened (``features="scattering"``) instead of pixels and HOG.
* ``scan_spectral`` (the best measured): the same scattering features -> ``ScanClusterer``
  with ``init="spectral"``: the spectral embedding of the 15-nearest-neighbour graph, SCAN
  on those 10 coordinates for the starting labels, then ``--spectral-restarts`` networks on
  the features warm-started from them. Each row also reports the starting labels' scores
  (``init_acc``, ``init_nmi``, ``init_ari``: the ablation without the refinement on the
  features); ``scan_scattering`` is the ablation without the spectral start.

CPU time is ``time.process_time()`` of this process (every thread, all steps from the
loaded images to the cluster labels), wall time is ``time.perf_counter()``. Results go
to ``bench/results/<tag>.json`` and a Markdown table is printed.

    python bench/clustering.py                                   # the full protocol: 3 seeds, all pipelines
    python bench/clustering.py --seeds 0 --pipelines raw ae_rot  # what fits
    python bench/clustering.py --n-images 10000 --epochs 1       # a quick look
    python bench/clustering.py --checkpoint-curve --curve-epochs 12  # MSE vs accuracy over 12 checkpoints
    python bench/clustering.py --combine results/clustering-seed0.json results/clustering-seed1.json  # one table
    python bench/clustering.py --neighbour-purity --tag clustering-purity  # diagnostic (uses labels)

``--checkpoint-curve`` trains one run through ``reprlab.train`` (Fashion-MNIST training
split, ``--curve-train-images`` of it, 20% held out for validation, a checkpoint every
epoch) and calls :func:`reprlab.capabilities.clustering.checkpoint_curve`: training-set MSE against
validation clustering accuracy per checkpoint, written to the run's ``clustering/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time

import numpy as np
import torch

from common import data_dir, save
from reprlab.features.embeddings import encode_dataset
from reprlab.capabilities.clustering import EmbeddingClusterer, aligned_confusion_matrix, clustering_scores
from reprlab.capabilities.clustering.pipeline import clustering_features
from reprlab.data import load_dataset
from reprlab.data.dataset import ImageData
from reprlab.models import create_model
from reprlab.training.engine import Trainer

PIPELINES = ("raw", "ae_rot", "ae_rot_noreducer", "ae_norot", "ae_hog", "scan", "ae_scan", "scan_scattering",
             "scan_spectral")


def load_all(ddir: str | None, n_images: int | None, seed: int = 0, dataset: str = "fashion-mnist") -> ImageData:
    """``dataset``'s train + test (70,000 images for Fashion-MNIST and MNIST) as one ImageData; ``n_images`` takes a
    seeded subset."""
    train = load_dataset(dataset, "train", data_dir=ddir, download=False)
    test = load_dataset(dataset, "test", data_dir=ddir, download=False)
    data = ImageData(torch.cat([train.images, test.images]), torch.cat([train.labels, test.labels]), f"{dataset}-all")
    if n_images is not None and n_images < len(data):
        keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n_images].sort().values
        data = data.subset(keep)
    return data


def cluster(X: np.ndarray, labels: np.ndarray, args: argparse.Namespace, seed: int, reducer: str = "umap") -> dict:
    est = EmbeddingClusterer(scaling=args.scaling, reducer=reducer, n_components=args.n_components,
                             n_neighbors=args.n_neighbors, min_dist=args.min_dist, clusterer="gmm",
                             covariance_type="full", n_clusters=10, n_init=args.gmm_init, random_state=seed)
    pred = est.fit_predict(X)
    s = clustering_scores(labels, pred)
    return {"acc": s["acc"], "nmi": s["nmi"], "ari": s["ari"], "silhouette": est.scores_["silhouette"],
            "bic": est.scores_.get("bic"), "reduce_cpu_s": est.timings_["reduce_cpu_s"],
            "cluster_cpu_s": est.timings_["cluster_cpu_s"]}


def cluster_scan(X: np.ndarray, labels: np.ndarray, args: argparse.Namespace, seed: int, init: str = "random") -> dict:
    options = {"n_neighbors": args.scan_neighbors, "epochs": args.scan_epochs, "init": init,
               "n_restarts": args.spectral_restarts if init == "spectral" else args.scan_restarts}
    est = EmbeddingClusterer(reducer="none", clusterer="scan", n_clusters=10, clusterer_options=options,
                             random_state=seed)
    pred = est.fit_predict(X)
    s = clustering_scores(labels, pred)
    out = {"acc": s["acc"], "nmi": s["nmi"], "ari": s["ari"], "silhouette": est.scores_["silhouette"],
           "cluster_cpu_s": est.timings_["cluster_cpu_s"], "scan_timings": est.clusterer_.timings_,
           "scan_options": options, "scan_head_losses": est.clusterer_.head_losses_.round(5).tolist()}
    cm = aligned_confusion_matrix(labels, pred)  # the share of each class in its matched cluster
    out["per_class_acc"] = {int(c): round(float(cm.matrix[i, i] / cm.matrix[i].sum()), 3) if i < cm.n_matched else 0.0
                            for i, c in enumerate(cm.classes)}
    if est.clusterer_.init_labels_ is not None:  # the spectral start alone: the ablation without the refinement
        s0 = clustering_scores(labels, est.clusterer_.init_labels_)
        out.update({"init_acc": s0["acc"], "init_nmi": s0["nmi"], "init_ari": s0["ari"]})
    return out


def train_codes(data: ImageData, args: argparse.Namespace, seed: int, rotation_beta: float) -> tuple[np.ndarray, dict]:
    """Train the autoencoder on all images (no labels) and return the codes and timings."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model("conv_ae", input_shape=data.shape, latent_dim=args.latent_dim, channels=tuple(args.channels),
                             rotation_beta=rotation_beta)
    trainer = Trainer(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, scheduler="cosine", seed=seed)
    unlabelled = ImageData(data.images, None, data.name)
    trainer.fit(model, unlabelled)
    train_cpu = time.process_time() - cpu0
    codes = encode_dataset(model, unlabelled, batch_size=1024)
    last = trainer.history[-1]
    info = {"train_cpu_s": round(train_cpu, 1), "train_wall_s": round(time.perf_counter() - wall0, 1),
            "encode_cpu_s": round(time.process_time() - cpu0 - train_cpu, 1),
            "train_mse": last.get("train/mse"), "rotation_acc": last.get("train/rotation_acc")}
    return codes, info


def run_seed(data: ImageData, args: argparse.Namespace, seed: int) -> list[dict]:
    labels = data.labels.numpy()
    rows = []

    def record(name: str, cpu0: float, wall0: float, extra: dict) -> None:
        row = {"pipeline": name, "seed": seed, "n_images": len(data), **extra,
               "cpu_s": round(time.process_time() - cpu0, 1), "wall_s": round(time.perf_counter() - wall0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    if "raw" in args.pipelines:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        pixels = data.float01().reshape(len(data), -1).numpy()
        record("raw", cpu0, wall0, cluster(pixels, labels, args, seed))
    if {"ae_rot", "ae_rot_noreducer"} & set(args.pipelines):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        codes, info = train_codes(data, args, seed, args.rotation_beta)
        shared_cpu, shared_wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if "ae_rot" in args.pipelines:
            record("ae_rot", cpu0, wall0, {**info, **cluster(codes, labels, args, seed)})
        if "ae_rot_noreducer" in args.pipelines:
            c1, w1 = time.process_time(), time.perf_counter()
            res = cluster(codes, labels, args, seed, reducer="none")
            # CPU time of this ablation = training + encoding (shared) + its own clustering
            record("ae_rot_noreducer", c1 - shared_cpu, w1 - shared_wall, {**info, **res})
    if "scan" in args.pipelines:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        X = clustering_features(np.zeros((len(data), 0)), data, "pixels+hog")
        record("scan", cpu0, wall0, cluster_scan(X, labels, args, seed))
    if "scan_scattering" in args.pipelines:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        X = clustering_features(np.zeros((len(data), 0)), data, "scattering")
        record("scan_scattering", cpu0, wall0, cluster_scan(X, labels, args, seed))
    if "scan_spectral" in args.pipelines:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        X = clustering_features(np.zeros((len(data), 0)), data, "scattering")
        record("scan_spectral", cpu0, wall0, cluster_scan(X, labels, args, seed, init="spectral"))
    if {"ae_norot", "ae_hog", "ae_scan"} & set(args.pipelines):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        codes, info = train_codes(data, args, seed, 0.0)
        shared_cpu, shared_wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if "ae_norot" in args.pipelines:
            record("ae_norot", cpu0, wall0, {**info, **cluster(codes, labels, args, seed)})
        if "ae_hog" in args.pipelines:
            c1, w1 = time.process_time(), time.perf_counter()
            joint = clustering_features(codes, data, "codes+hog")
            # CPU time of this pipeline = training + encoding (shared) + HOG + its own clustering
            record("ae_hog", c1 - shared_cpu, w1 - shared_wall, {**info, **cluster(joint, labels, args, seed)})
        if "ae_scan" in args.pipelines:
            c1, w1 = time.process_time(), time.perf_counter()
            joint = clustering_features(codes, data, "codes+pixels+hog")
            record("ae_scan", c1 - shared_cpu, w1 - shared_wall, {**info, **cluster_scan(joint, labels, args, seed)})
    return rows



def neighbour_purity(data: ImageData, n_queries: int = 5000, k: int = 20, seed: int = 0) -> dict:
    """A diagnostic that uses labels: the share of each query's k nearest cosine neighbours (among all
    images) that have its class, for the feature blocks ``scan`` can use (as ``clustering_features`` builds them)."""
    from reprlab.capabilities.anomaly.scores import image_descriptors
    from reprlab.capabilities.clustering.pipeline import balanced_concat, scattering_features

    labels = data.labels.numpy()
    queries = np.random.default_rng(seed).choice(len(data), size=min(n_queries, len(data)), replace=False)
    x = data.float01()
    pixels, hog = x.reshape(len(x), -1).numpy(), image_descriptors(x, "hog", bins=9)
    out = {}
    for name, X in (("pixels+hog", balanced_concat(pixels, hog)), ("pixels", balanced_concat(pixels)),
                    ("hog", balanced_concat(hog)), ("scattering", scattering_features(x))):
        Z = torch.nn.functional.normalize(torch.from_numpy(X).float(), dim=1)
        sims = Z[queries] @ Z.T
        sims[torch.arange(len(queries)), torch.from_numpy(queries)] = -float("inf")  # not its own neighbour
        nn = sims.topk(k, dim=1).indices.numpy()
        out[name] = float((labels[nn] == labels[queries][:, None]).mean())
        print(json.dumps({"features": name, f"purity@{k}": round(out[name], 4)}), flush=True)
    return out


def run_checkpoint_curve(args: argparse.Namespace, ddir: str | None) -> dict:
    import tempfile

    from reprlab import api
    from reprlab.capabilities.clustering import checkpoint_curve

    cfg = {"seed": args.seeds[0], "output_dir": tempfile.mkdtemp(prefix="reprlab-bench-curve-"), "name": "curve",
           "data": {"name": "fashion-mnist", "data_dir": ddir, "download": False, "val_fraction": 0.2,
                    "max_train": args.curve_train_images},
           "model": {"name": "conv_ae", "latent_dim": args.latent_dim, "channels": list(args.channels),
                     "rotation_beta": args.rotation_beta},
           "train": {"epochs": args.curve_epochs, "batch_size": args.batch_size, "lr": args.lr, "scheduler": "none",
                     "checkpoint_every": 1, "progress": "off", "num_threads": args.threads},
           "eval": {"figures": False, "report": False, "max_images": 1000}}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = api.train(cfg)
    train_cpu = time.process_time() - cpu0
    rows = checkpoint_curve(result.run_dir, reducer="umap", n_components=args.n_components, n_neighbors=args.n_neighbors,
                            min_dist=args.min_dist, clusterer="gmm", covariance_type="full", n_clusters=10,
                            max_train_points=None, progress=lambda r: print(json.dumps(r), flush=True))
    return {"run_dir": str(result.run_dir), "rows": rows, "train_cpu_s": round(train_cpu, 1),
            "curve_cpu_s": round(time.process_time() - cpu0 - train_cpu, 1),
            "wall_s": round(time.perf_counter() - wall0, 1)}


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for name in PIPELINES:
        sel = [r for r in rows if r["pipeline"] == name]
        if not sel:
            continue
        agg = {"pipeline": name, "seeds": [r["seed"] for r in sel]}
        for key in ("acc", "nmi", "ari", "cpu_s", "wall_s", "init_acc", "init_nmi", "init_ari"):
            if any(key not in r for r in sel):
                continue
            vals = [float(r[key]) for r in sel]
            agg[key] = statistics.fmean(vals)
            agg[key + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.append(agg)
    return out


def print_table(summary: list[dict]) -> None:
    print("| pipeline | seeds | accuracy | NMI (arithmetic) | ARI | CPU s / seed | wall s / seed |\n"
          "|---|---|---|---|---|---|---|")
    for s in summary:
        print(f"| {s['pipeline']} | {len(s['seeds'])} | {s['acc']:.3f} ± {s['acc_std']:.3f} | {s['nmi']:.3f} ± "
              f"{s['nmi_std']:.3f} | {s['ari']:.3f} ± {s['ari_std']:.3f} | {s['cpu_s']:.0f} ± {s['cpu_s_std']:.0f} "
              f"| {s['wall_s']:.0f} |")
    for s in summary:
        if "init_acc" in s:
            print(f"| {s['pipeline']}: spectral start only | {len(s['seeds'])} | {s['init_acc']:.3f} ± "
                  f"{s['init_acc_std']:.3f} | {s['init_nmi']:.3f} ± {s['init_nmi_std']:.3f} | {s['init_ari']:.3f} ± "
                  f"{s['init_ari_std']:.3f} | (within the row above) | |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "mnist"),
                   help="the images to cluster (default: fashion-mnist, the issue's protocol; mnist: a cross-check)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=PIPELINES)
    p.add_argument("--n-images", type=int, help="a seeded subset instead of all 70,000 (quick looks only)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64, help="images per step (x4 with the rotation loss)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--latent-dim", type=int, default=16)
    p.add_argument("--channels", type=int, nargs="+", default=[16, 32])
    p.add_argument("--rotation-beta", type=float, default=1.0)
    p.add_argument("--scaling", default="none")
    p.add_argument("--n-components", type=int, default=10)
    p.add_argument("--n-neighbors", type=int, default=20)
    p.add_argument("--min-dist", type=float, default=0.0)
    p.add_argument("--gmm-init", type=int, default=1, help="GMM restarts (the best by likelihood is kept; label-free)")
    p.add_argument("--scan-neighbors", type=int, default=20, help="scan: neighbours mined per point")
    p.add_argument("--scan-epochs", type=int, default=10, help="scan: epochs per restart")
    p.add_argument("--scan-restarts", type=int, default=5, help="scan: networks in the consensus")
    p.add_argument("--spectral-restarts", type=int, default=3,
                   help="scan_spectral: networks in the consensus (all start from the same spectral labels)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch and BLAS threads (1 is the most CPU-efficient on a shared machine)")
    p.add_argument("--checkpoint-curve", action="store_true", help="only the checkpoint curve (see above)")
    p.add_argument("--neighbour-purity", action="store_true",
                   help="only a diagnostic (uses labels): how many of the 20 nearest neighbours of 5,000 images share "
                        "their class, per feature block")
    p.add_argument("--curve-epochs", type=int, default=12)
    p.add_argument("--curve-train-images", type=int, default=10000)
    p.add_argument("--combine", nargs="+", metavar="JSON", help="only merge the rows of earlier result files into one table")
    p.add_argument("--tag", default="clustering", help="name of the results file under bench/results/")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.combine:
        rows = [r for f in args.combine for r in json.loads(open(f).read())["rows"]]
        print_table(summarise(rows))
        return
    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)  # BLAS threads spin and burn CPU time on a shared machine
    ddir = data_dir(args.data_dir)
    if args.checkpoint_curve:
        curve = run_checkpoint_curve(args, ddir)
        settings = {k: v for k, v in vars(args).items() if k not in ("data_dir", "tag")}
        path = save(args.tag, {"settings": settings, **curve})
        print("\n| epoch | training MSE | val accuracy | val NMI | val ARI |\n|---|---|---|---|---|")
        for r in curve["rows"]:
            print(f"| {r['epoch']} | {r['train_mse']:.5f} | {r['val_acc']:.3f} | {r['val_nmi']:.3f} | {r['val_ari']:.3f} |")
        print(f"\nfigure: {curve['run_dir']}/clustering/checkpoint_curve.png\nresults: {path}")
        return
    data = load_all(ddir, args.n_images, dataset=args.dataset)
    if args.neighbour_purity:
        path = save(args.tag, {"neighbour_purity": neighbour_purity(data)})
        print(f"results: {path}")
        return
    print(f"{len(data)} images, pipelines {args.pipelines}, seeds {args.seeds}", flush=True)
    rows = []
    for seed in args.seeds:
        rows += run_seed(data, args, seed)
    summary = summarise(rows)
    settings = {k: v for k, v in vars(args).items() if k not in ("data_dir", "tag")}
    path = save(args.tag, {"settings": settings, "rows": rows, "summary": summary})
    print()
    print_table(summary)
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
