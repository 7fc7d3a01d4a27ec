"""``reprlab cluster``: cluster a run's embeddings into ``RUN_DIR/clustering/``; prints the metrics as JSON.

The options mirror the ``cluster`` config section: they are generated from its fields
(:class:`~reprlab.capabilities.clustering.config.ClusterConfig`), with its defaults, so the
command line and the config cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses

from reprlab.base.errors import ConfigError
from reprlab.cli.common import add_checkpoint, add_data_dir, add_device, add_run_dir, key_values, print_json

HELP = "cluster a run's embeddings into RUN_DIR/clustering/; prints metrics as JSON"

#: Help of each mirrored field; fields not named here (``enabled``) are not options.
FIELD_HELP: dict[str, str] = {
    "split": "images to encode and cluster (all = train + val + test)",
    "features": "what is clustered: the model's codes, equally weighted blocks of codes, pixels and HOG descriptors "
                "of the images, or the images' compressed wavelet-scattering coefficients",
    "scaling": "none, standard or l2",
    "reducer": "none, pca, kpca, tsne or umap",
    "n_components": "reducer dimensions",
    "n_neighbors": "UMAP n_neighbors",
    "min_dist": "UMAP min_dist",
    "clusterer": "kmeans, gmm, agglomerative or scan",
    "clusterer_options": "a keyword argument of the clusterer, e.g. --clusterer-option epochs=10 or, for scan, "
                         "--clusterer-option init=spectral (repeatable)",
    "covariance_type": "GMM covariance: full, tied, diag, spherical",
    "n_clusters": "a number, or auto (chosen by --criterion); unset: the number of classes when the images have "
                  "labels, else 10",
    "criterion": "for --n-clusters auto: silhouette or bic",
    "k_range": "candidate numbers of clusters for auto",
    "max_points": "cluster a seeded random subset of at most this many images",
    "checkpoint_curve": "also plot training MSE against validation accuracy over the epoch_NNNN checkpoints",
    "random_state": "random state of every step (default: the run's seed)",
}
#: Option spellings that differ from the field name (kept from earlier releases).
SPELLING: dict[str, str] = {"covariance_type": "--covariance", "random_state": "--seed",
                            "clusterer_options": "--clusterer-option"}


def _n_clusters(text: str | None) -> int | str | None:
    if text is None or text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--n-clusters must be a whole number or auto, got {text!r}",
                          fix="e.g. --n-clusters 10 or --n-clusters auto") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from reprlab.capabilities.clustering.config import FEATURES, SPLITS, ClusterConfig

    add_run_dir(p)
    defaults = ClusterConfig()
    for f in dataclasses.fields(ClusterConfig):
        if f.name not in FIELD_HELP:
            continue
        flag = SPELLING.get(f.name, "--" + f.name.replace("_", "-"))
        default = getattr(defaults, f.name)
        kwargs: dict = {"dest": f.name, "help": f"{FIELD_HELP[f.name]} (config: cluster.{f.name}; default: {default})"}
        if f.name == "clusterer_options":
            kwargs.update(action="append", default=[], metavar="KEY=VALUE")
        elif isinstance(default, bool):
            kwargs.update(action="store_true")
        elif f.name == "k_range":
            kwargs.update(type=int, nargs=2, default=list(default), metavar=("KMIN", "KMAX"))
        elif f.name == "n_clusters":
            kwargs.update(default=default)  # parsed in run(): a bad value is one clear error line; None: the classes
            kwargs["help"] = f"{FIELD_HELP[f.name]} (config: cluster.{f.name})"
        elif f.name in ("max_points", "random_state"):
            kwargs.update(type=int, default=default)
        else:
            kwargs.update(type=type(default), default=default)
            if f.name in ("split", "features"):
                kwargs["choices"] = SPLITS if f.name == "split" else FEATURES
        p.add_argument(flag, **kwargs)
    add_data_dir(p)
    add_checkpoint(p)
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from reprlab.capabilities.clustering import checkpoint_curve, cluster_run

    options = dict(scaling=args.scaling, reducer=args.reducer, n_components=args.n_components,
                   n_neighbors=args.n_neighbors, min_dist=args.min_dist, clusterer=args.clusterer,
                   covariance_type=args.covariance_type, n_clusters=_n_clusters(args.n_clusters), random_state=args.random_state,
                   data_dir=args.data_dir, device=args.device,
                   clusterer_options=key_values(args.clusterer_options, "--clusterer-option"))
    metrics = cluster_run(args.run_dir, split=args.split, criterion=args.criterion, k_range=tuple(args.k_range),
                          max_points=args.max_points, tag=args.checkpoint, features=args.features, **options)
    if args.checkpoint_curve:
        metrics["checkpoint_curve"] = checkpoint_curve(args.run_dir, max_eval_points=args.max_points, **options)
    print_json(metrics)
    return 0
