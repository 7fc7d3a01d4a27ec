"""Command-line interface: ``reprlab demo|train|evaluate|analyze|report|compare|cluster|detect|datasets|models``.

Every user error prints one line ``error: <problem>. Fix: <fix>`` and exits with
status 2 (no traceback unless ``--debug``). ``reprlab train`` prints the run directory
as its last line of standard output.

Example:
    $ reprlab train configs/conv_ae.yaml model.latent_dim=32 train.epochs=5
    $ reprlab evaluate runs/conv_ae-fashion-mnist-20261123-101500
    $ reprlab analyze RUN_DIR --what embeddings traversal && reprlab report RUN_DIR
    $ reprlab cluster RUN_DIR --reducer umap --clusterer gmm --n-clusters 10
    $ reprlab detect --data fashion-mnist --normal-class 0 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

from reprlab.errors import ReprlabError

logger = logging.getLogger("reprlab")

DEMO_CONFIG = {
    "name": None,
    "data": {"name": "fashion-mnist-sample", "val_fraction": 0.1},
    "model": {"name": "conv_ae", "latent_dim": 32, "channels": [32, 64]},
    # One thread: two torch threads on two cores slow down several-fold as soon as anything
    # else runs on the machine; one thread keeps the demo near a minute either way.
    "train": {"epochs": 8, "batch_size": 64, "lr": 2e-3, "scheduler": "cosine", "num_threads": 1},
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reprlab", description="Unsupervised representation learning on images.")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    p.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="train a small conv autoencoder on the embedded Fashion-MNIST sample (~1 min)")
    d.add_argument("--output-dir", default="runs", help="parent folder of the run directory (default: runs)")
    d.add_argument("--epochs", type=int, default=None, help="override the number of epochs")

    t = sub.add_parser("train", help="train a model from a YAML config; prints the run directory last")
    t.add_argument("config", nargs="?", help="YAML config (see configs/); omit with --resume")
    t.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. model.latent_dim=16")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    t.add_argument("--data-dir", help="folder holding the datasets (else $REPRLAB_DATA, the cache, /usr/share/datasets)")
    t.add_argument("--name", help="run directory name (never overwritten)")
    t.add_argument("--output-dir", help="parent folder of the run directory (default from the config: runs)")

    e = sub.add_parser("evaluate", help="reload a run's model and print test metrics as JSON")
    e.add_argument("run_dir")
    e.add_argument("--data", help="evaluate on another dataset's test split (e.g. mnist)")
    e.add_argument("--path", help="arrays file or image folder for --data arrays|folder")
    e.add_argument("--data-dir", help="folder holding the datasets")
    e.add_argument("--checkpoint", default="best", help="checkpoint tag: best (default), last, epoch_0005, ...")
    e.add_argument("--max-images", type=int, help="evaluate at most this many images")

    an = sub.add_parser("analyze", help="embeddings, traversals, samples, robustness, kernels... into RUN_DIR/analysis/")
    an.add_argument("run_dir")
    an.add_argument("--what", nargs="+", metavar="ANALYSIS",
                    help="embeddings traversal interpolation samples robustness kernels activations scores "
                         "(default: all the model supports)")
    an.add_argument("--split", default="test", choices=("train", "val", "test"), help="images to analyse (default: test)")
    an.add_argument("--method", nargs="+", default=["pca"], metavar="METHOD",
                    help="embedding methods: pca kpca tsne umap (default: pca)")
    an.add_argument("--components", type=int, default=2, help="embedding dimensions (default: 2)")
    an.add_argument("--max-points", type=int, default=5000, help="subsample the split to at most this many images")
    an.add_argument("--color-by", default="label", choices=("label", "binary", "domain", "none"))
    an.add_argument("--binary-classes", type=int, nargs="+", help="labels that count as 'yes' for --color-by binary")
    an.add_argument("--attribute", default="attribute", help="name of the binary attribute (legend title)")
    an.add_argument("--other-data", help="a second dataset (e.g. mnist) embedded too, for --color-by domain")
    an.add_argument("--image", type=int, default=0, help="image (index among the analysed ones) for traversals")
    an.add_argument("--other-image", type=int, help="second image for the interpolation")
    an.add_argument("--dims", type=int, nargs="+", help="latent dimensions to traverse (default: largest spread)")
    an.add_argument("--kernel", default="rbf", help="kernel PCA kernel: rbf poly sigmoid cosine linear")
    an.add_argument("--gamma", type=float, help="kernel PCA gamma (default 1/n_features)")
    an.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity")
    an.add_argument("--n-neighbors", type=int, default=15, help="UMAP n_neighbors")
    an.add_argument("--max-fit-points", type=int, help="fit the reducer on at most this many points, transform the rest")
    an.add_argument("--n-jobs", type=int, default=1, help="threads for t-SNE / UMAP")
    an.add_argument("--data-dir", help="folder holding the datasets")
    an.add_argument("--checkpoint", default="best", help="checkpoint tag (default: best)")
    an.add_argument("--device", default="auto", help="auto, cpu, cuda")

    cl = sub.add_parser("cluster", help="cluster a run's embeddings into RUN_DIR/clustering/; prints metrics as JSON")
    cl.add_argument("run_dir")
    cl.add_argument("--split", default="test", choices=("train", "val", "test", "all"),
                    help="images to encode and cluster (default: test; all = train + val + test)")
    cl.add_argument("--features", default="codes",
                    choices=("codes", "codes+hog", "pixels+hog", "codes+pixels+hog", "scattering"),
                    help="what is clustered: the model's codes, equally weighted blocks of codes, pixels and "
                         "HOG descriptors of the images, or the images' compressed wavelet-scattering "
                         "coefficients (default: codes)")
    cl.add_argument("--scaling", default="none", help="none, standard or l2 (default: none)")
    cl.add_argument("--reducer", default="umap", help="none, pca, kpca, tsne or umap (default: umap)")
    cl.add_argument("--n-components", type=int, default=10, help="reducer dimensions (default: 10)")
    cl.add_argument("--n-neighbors", type=int, default=20, help="UMAP n_neighbors (default: 20)")
    cl.add_argument("--min-dist", type=float, default=0.0, help="UMAP min_dist (default: 0)")
    cl.add_argument("--clusterer", default="gmm", help="kmeans, gmm, agglomerative or scan (default: gmm)")
    cl.add_argument("--clusterer-option", action="append", default=[], metavar="KEY=VALUE",
                    help="a keyword argument of the clusterer, e.g. --clusterer-option epochs=10 or, for scan, "
                         "--clusterer-option init=spectral (repeatable)")
    cl.add_argument("--covariance", default="full", help="GMM covariance: full, tied, diag, spherical (default: full)")
    cl.add_argument("--n-clusters", default="10", help="a number, or auto (chosen by --criterion; default: 10)")
    cl.add_argument("--criterion", default="silhouette", help="for --n-clusters auto: silhouette or bic")
    cl.add_argument("--k-range", type=int, nargs=2, default=[2, 15], metavar=("KMIN", "KMAX"),
                    help="candidate numbers of clusters for auto (default: 2 15)")
    cl.add_argument("--max-points", type=int, help="cluster a seeded random subset of at most this many images")
    cl.add_argument("--checkpoint-curve", action="store_true",
                    help="also plot training MSE against validation accuracy over the epoch_NNNN checkpoints")
    cl.add_argument("--seed", type=int, help="random state of every step (default: the run's seed)")
    cl.add_argument("--data-dir", help="folder holding the datasets")
    cl.add_argument("--checkpoint", default="best", help="checkpoint tag (default: best)")
    cl.add_argument("--device", default="auto", help="auto, cpu, cuda")

    rp = sub.add_parser("report", help="write RUN_DIR/report.html (self-contained); prints its path")
    rp.add_argument("run_dir")
    rp.add_argument("--no-analyze", action="store_true", help="do not run the quick analysis when the run has none")

    cp = sub.add_parser("compare", help="compare runs side by side in one HTML page; prints its path")
    cp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    cp.add_argument("--out", help="output folder (default: comparison-<time> beside the first run)")

    a = sub.add_parser("detect", help="anomaly detection: train on normal images, score test images; "
                                      "prints the output directory last")
    a.add_argument("--data", help="labelled dataset for the one-class protocol (e.g. fashion-mnist)")
    a.add_argument("--normal-class", type=int, help="the class taken as normal (with --data)")
    a.add_argument("--normal", help="normal training images: .npy/.npz file or image folder")
    a.add_argument("--test", help="images to score: .npy/.npz file or image folder (with --normal)")
    a.add_argument("--test-labels", help="0/1 anomaly labels of the test images (.npy/.npz), for AUROC/F1")
    a.add_argument("--preset", choices=("fast", "full", "ae"),
                   help="measured settings (docs/anomaly.md): fast = pixel + HOG neighbours, no network; full = "
                        "fast + a rotation/flip network; ae = conv_ae reconstruction MSE (the default). "
                        "Options given explicitly override the preset's")
    a.add_argument("--model", help="registry model or run directory (default: conv_ae; rotnet for 'transform', "
                                   "vae for 'elbo')")
    a.add_argument("--score", help="mse, l1, ssim, elbo, transform, knn, kmeans, pca, pixel_knn, hog_knn, "
                                   "or a comma-separated combination (default: mse)")
    a.add_argument("--contamination", type=float, help="expected anomaly fraction in (0, 0.5] (default 0.1)")
    a.add_argument("--epochs", type=int, help="training epochs of the model (default 10)")
    a.add_argument("--batch-size", type=int, help="default 128")
    a.add_argument("--lr", type=float, help="default 1e-3")
    a.add_argument("--latent-dim", type=int, help="model latent size (default: the model's)")
    a.add_argument("--n-neighbors", type=int, help="k of the k-NN scores (default 5)")
    a.add_argument("--pixel-blur", type=float, help="Gaussian blur (px) before pixel_knn (default 0)")
    a.add_argument("--hog-bins", type=int, help="orientation bins of hog_knn (default 6)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--max-train", type=int, help="use at most this many normal training images")
    a.add_argument("--max-test", type=int, help="score at most this many test images (one-class protocol)")
    a.add_argument("--data-dir", help="folder holding the datasets")
    a.add_argument("--device", default="cpu", help="cpu (default), cuda[:N] or mps")
    a.add_argument("--out", default="runs", help="parent folder of the output directory (default: runs)")
    a.add_argument("--name", help="output directory name (never overwritten)")

    ds = sub.add_parser("datasets", help="list datasets and where each was found")
    ds.add_argument("--data-dir", help="folder holding the datasets")
    sub.add_parser("models", help="list registered models and their options")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # overrides may follow options (`train c.yaml --name x a.b=1`): collect them wherever they stand
    stray = [e for e in extra if e.startswith("-") or "=" not in e or args.command != "train"]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if args.command == "train":
        args.overrides = list(args.overrides) + extra
    level = logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return _dispatch(args)
    except ReprlabError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted. Fix: continue the run with `reprlab train --resume RUN_DIR`", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from reprlab import api

    if args.command == "demo":
        overrides = [f"output_dir={args.output_dir}"] + ([f"train.epochs={args.epochs}"] if args.epochs else [])
        result = api.train(DEMO_CONFIG, overrides=overrides)
        _print_result(result)
        return 0
    if args.command == "train":
        if args.resume:
            if args.config or args.overrides:
                from reprlab.errors import ConfigError

                raise ConfigError("--resume takes no config or overrides: a run continues with its saved config",
                                  fix=f"run `reprlab train --resume {args.resume}` alone")
            result = api.resume(args.resume)
        else:
            if not args.config:
                from reprlab.errors import ConfigError

                raise ConfigError("no config given", fix="run `reprlab train configs/conv_ae.yaml` (or --resume RUN_DIR)")
            overrides = list(args.overrides)
            if args.data_dir:
                overrides.append(f"data.data_dir={args.data_dir}")
            if args.name:
                overrides.append(f"name={args.name}")
            if args.output_dir:
                overrides.append(f"output_dir={args.output_dir}")
            result = api.train(args.config, overrides=overrides)
        _print_result(result)
        return 0
    if args.command == "evaluate":
        metrics = api.evaluate(args.run_dir, data=args.data, path=args.path, data_dir=args.data_dir,
                               tag=args.checkpoint, max_images=args.max_images)
        print(json.dumps(metrics, indent=2, sort_keys=True))
        return 0
    if args.command == "analyze":
        from reprlab.analysis import analyze

        options = {"kernel": args.kernel, "gamma": args.gamma, "perplexity": args.perplexity,
                   "n_neighbors": args.n_neighbors, "max_fit_points": args.max_fit_points, "n_jobs": args.n_jobs}
        index = analyze(args.run_dir, what=args.what, split=args.split, method=args.method,
                        n_components=args.components, max_points=args.max_points, color_by=args.color_by,
                        binary_classes=args.binary_classes, attribute=args.attribute, other_data=args.other_data,
                        image_index=args.image, other_index=args.other_image, dims=args.dims, reducer_options=options,
                        tag=args.checkpoint, data_dir=args.data_dir, device=args.device)
        for item in index["items"]:
            print(f"{item['title']}: {', '.join(item['files'])}")
        from pathlib import Path

        print(Path(args.run_dir) / "analysis" / "index.json")
        return 0
    if args.command == "cluster":
        from reprlab.clustering import checkpoint_curve, cluster_run

        n_clusters: int | str = args.n_clusters
        if args.n_clusters != "auto":
            try:
                n_clusters = int(args.n_clusters)
            except ValueError:
                from reprlab.errors import ConfigError

                raise ConfigError(f"--n-clusters must be a whole number or auto, got {args.n_clusters!r}",
                                  fix="e.g. --n-clusters 10 or --n-clusters auto") from None
        options = dict(scaling=args.scaling, reducer=args.reducer, n_components=args.n_components,
                       n_neighbors=args.n_neighbors, min_dist=args.min_dist, clusterer=args.clusterer,
                       covariance_type=args.covariance, n_clusters=n_clusters, random_state=args.seed,
                       data_dir=args.data_dir, device=args.device,
                       clusterer_options=_key_values(args.clusterer_option, "--clusterer-option"))
        metrics = cluster_run(args.run_dir, split=args.split, criterion=args.criterion, k_range=tuple(args.k_range),
                              max_points=args.max_points, tag=args.checkpoint, features=args.features, **options)
        if args.checkpoint_curve:
            metrics["checkpoint_curve"] = checkpoint_curve(args.run_dir, max_eval_points=args.max_points, **options)
        print(json.dumps(metrics, indent=2, sort_keys=True))
        return 0
    if args.command == "report":
        from reprlab.reporting.report import write_report

        print(write_report(args.run_dir, analyze=not args.no_analyze))
        return 0
    if args.command == "compare":
        from reprlab.reporting.report import write_comparison

        print(write_comparison(args.run_dirs, args.out))
        return 0
    if args.command == "detect":
        from reprlab.anomaly.run import run_detection

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
                             max_test=args.max_test, output_dir=args.out, name=args.name, preset=args.preset,
                             random_state=args.seed, device=args.device, **params)
        metrics = json.loads((path / "metrics.json").read_text())
        keys = [k for k in ("test/auroc", "test/average_precision", "test/precision", "test/recall", "test/f1",
                            "test/flagged_fraction") if k in metrics]
        print("  ".join(f"{k}={metrics[k]:.4f}" for k in keys))
        print(path)
        return 0
    if args.command == "datasets":
        from reprlab.data import describe_datasets

        for row in describe_datasets(args.data_dir):
            print(f"{row['name']:<22} {row.get('where', '')}")
        return 0
    if args.command == "models":
        import dataclasses

        from reprlab.models.registry import get_model_entry, list_models

        for name in list_models():
            cls, config_cls = get_model_entry(name)
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            print(f"{name:<10} {doc}")
            opts = ", ".join(f"{f.name}={_default(f)}" for f in dataclasses.fields(config_cls) if f.name != "input_shape")
            print(f"{'':<10} options: {opts}")
        return 0
    raise AssertionError(args.command)  # argparse restricts the choices


def _key_values(items: list[str], option: str) -> dict | None:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values parsed as YAML, like config overrides)."""
    from reprlab.config import apply_overrides
    from reprlab.errors import ConfigError

    for item in items:
        key = item.partition("=")[0].strip()
        if "=" not in item or not key or "." in key:
            raise ConfigError(f"{option} {item!r} is not of the form key=value", fix=f"e.g. {option} epochs=10")
    return apply_overrides({}, items) or None


def _default(f) -> str:
    import dataclasses

    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(f.default_factory())  # type: ignore[misc]
    return "?"


def _print_result(result) -> None:
    keys = [k for k in ("test/mse", "test/psnr", "test/ssim", "test/elbo_nats", "test/kl") if k in result.metrics]
    if keys:
        print("  ".join(f"{k}={result.metrics[k]:.4f}" for k in keys))
    print(result.run_dir)


if __name__ == "__main__":
    sys.exit(main())
