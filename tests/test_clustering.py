"""Tests of reprlab.capabilities.clustering: metrics against hand-computed cases, the scikit-learn estimator,
the choice of k, clear errors on bad input, the run pipeline, the CLI and one real-data check."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import write_tiny_npz
from reprlab.capabilities.clustering.pipeline import clustering_features
from reprlab.data.dataset import ImageData
from reprlab.capabilities.clustering import (EmbeddingClusterer, aligned_confusion_matrix, ari, cluster_accuracy, cluster_run,
                                checkpoint_curve, clustering_scores, match_clusters, nmi)
from reprlab.base.errors import ConfigError, DataError, RunDirError


pytestmark = pytest.mark.usefixtures("single_thread")


def blobs(k: int = 4, n_per: int = 40, d: int = 5, spread: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(k, d))
    X = np.concatenate([rng.normal(c, spread, size=(n_per, d)) for c in centres])
    return X, np.repeat(np.arange(k), n_per)


# -- metrics ------------------------------------------------------------------------------
def test_accuracy_hand_computed():
    # classes 0, 1, 2; clusters 5, 3, 9: best matching 5->0 (2), 3->1 (2), 9->2 (1) = 5 of 6
    assert cluster_accuracy([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 3, 9]) == pytest.approx(5 / 6)
    assert match_clusters([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 3, 9]) == {3: 1, 5: 0, 9: 2}
    # more clusters than classes: the leftover cluster counts as wrong
    assert cluster_accuracy([0, 0, 0, 1], [0, 0, 2, 1]) == pytest.approx(3 / 4)
    # fewer clusters than classes
    assert cluster_accuracy([0, 1, 2, 2], [0, 0, 1, 1]) == pytest.approx(3 / 4)


@pytest.mark.parametrize("seed", range(5))
def test_two_clusters_is_max_of_acc_and_its_complement(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 101)
    c = rng.integers(0, 2, 101)
    plain = float(np.mean(y == c))
    assert cluster_accuracy(y, c) == pytest.approx(max(plain, 1 - plain))


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_nmi_arithmetic_hand_computed_and_ari():
    y = np.array([0, 0, 1, 1, 1, 2])
    c = np.array([1, 1, 1, 0, 0, 0])
    joint = np.zeros((3, 2))
    for a, b in zip(y, c):
        joint[a, b] += 1
    joint /= joint.sum()
    hy, hc = _entropy(joint.sum(1)), _entropy(joint.sum(0))
    mi = hy + hc - _entropy(joint.ravel())
    assert nmi(y, c) == pytest.approx(mi / ((hy + hc) / 2))
    assert ari([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert ari([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)  # worse than chance: (0 - 2/3) / (2 - 2/3) ...


def test_scores_are_invariant_to_renaming_clusters():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 200)
    c = np.where(rng.random(200) < 0.7, y, rng.integers(0, 5, 200))
    perm = np.array([3, 0, 4, 1, 2])
    a, b = clustering_scores(y, c), clustering_scores(y, perm[c] + 10)
    for key in ("acc", "nmi", "ari"):
        assert a[key] == pytest.approx(b[key])


def test_aligned_confusion_diagonal_holds_the_matched_points():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 90)
    c = (y + 1) % 3
    c[:10] = 2
    cm = aligned_confusion_matrix(y, c)
    assert cm.matrix.sum() == 90
    assert np.trace(cm.matrix) == round(cluster_accuracy(y, c) * 90)
    assert [match_clusters(y, c)[int(k)] for k in cm.clusters[: cm.n_matched]] == list(cm.classes[: cm.n_matched])


def test_metric_errors():
    with pytest.raises(DataError, match="labels_true has 3 entries but labels_pred has 2"):
        cluster_accuracy([0, 1, 1], [0, 1])
    with pytest.raises(DataError, match="single class"):
        nmi([1, 1, 1], [0, 1, 0])
    with pytest.raises(DataError, match="single class"):
        clustering_scores(np.zeros(5), np.arange(5))


# -- estimator ----------------------------------------------------------------------------
def test_estimator_is_sklearn_compatible():
    from sklearn.base import clone

    X, y = blobs()
    est = EmbeddingClusterer(reducer="pca", n_components=3, clusterer="gmm", n_clusters=4, random_state=1)
    assert est.fit(X) is est
    assert est.labels_.shape == (len(X),) and est.n_clusters_ == 4 and est.embedding_.shape == (len(X), 3)
    assert cluster_accuracy(y, est.labels_) == 1.0
    assert set(est.scores_) == {"silhouette", "bic"} and est.scores_["silhouette"] > 0.8
    fitted = [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]
    assert set(fitted) >= {"labels_", "n_clusters_", "embedding_", "reducer_", "clusterer_", "scores_", "n_features_in_"}
    params = est.get_params()
    assert params["n_components"] == 3 and params["clusterer"] == "gmm"
    twin = clone(est)
    assert not hasattr(twin, "labels_") and twin.get_params() == params
    # new points: jittered copies go to the clusters of their originals
    Xn = X + np.random.default_rng(9).normal(0, 0.05, X.shape)
    assert (est.predict(Xn) == est.labels_).mean() > 0.99
    assert est.predict_proba(Xn[:3]).shape == (3, 4)
    assert est.score(Xn, y) == 1.0
    with pytest.raises(TypeError):
        EmbeddingClusterer("pca")  # hyperparameters are keyword-only


def test_passes_scikit_learns_estimator_checks():
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    est = EmbeddingClusterer(reducer="pca", n_components=2, clusterer="gmm", n_clusters=3, silhouette_sample=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed


@pytest.mark.parametrize("scaling", ["none", "standard", "l2"])
def test_scalings_and_kmeans_without_reducer(scaling):
    X, y = blobs(k=3, d=4)
    pred = EmbeddingClusterer(scaling=scaling, reducer="none", clusterer="kmeans", n_clusters=3).fit_predict(X)
    assert cluster_accuracy(y, pred) > 0.9


def test_agglomerative_fits():
    X, y = blobs(k=3)
    est = EmbeddingClusterer(reducer="none", clusterer="agglomerative", n_clusters=3).fit(X)
    assert cluster_accuracy(y, est.labels_) == 1.0


@pytest.mark.parametrize("clusterer,criterion", [("kmeans", "silhouette"), ("gmm", "bic"), ("gmm", "silhouette")])
def test_auto_picks_the_number_of_blobs(clusterer, criterion):
    X, y = blobs(k=4, n_per=50, seed=2)
    est = EmbeddingClusterer(reducer="none", clusterer=clusterer, covariance_type="diag", n_clusters="auto",
                             criterion=criterion, k_range=(2, 8)).fit(X)
    assert est.n_clusters_ == 4
    assert sorted(est.k_scores_) == list(range(2, 9))
    assert cluster_accuracy(y, est.labels_) == 1.0


def test_estimator_errors():
    X, _ = blobs(k=2, n_per=5)
    with pytest.raises(ConfigError, match="n_clusters=11 is more than the 10 points"):
        EmbeddingClusterer(reducer="none", clusterer="kmeans", n_clusters=11).fit(X)
    with pytest.raises(ConfigError, match="k_range"):
        EmbeddingClusterer(reducer="none", n_clusters="auto", k_range=(12, 15)).fit(X)
    with pytest.raises(ConfigError, match="criterion='bic' needs a likelihood"):
        EmbeddingClusterer(reducer="none", clusterer="kmeans", n_clusters="auto", criterion="bic").fit(X)
    with pytest.raises(ConfigError, match="scaling must be one of"):
        EmbeddingClusterer(scaling="minmax").fit(X)
    with pytest.raises(ConfigError, match="n_clusters must be a positive integer or 'auto'"):
        EmbeddingClusterer(n_clusters="many").fit(X)
    with pytest.raises(DataError, match="NaN"):
        EmbeddingClusterer(reducer="none").fit(np.full((4, 2), np.nan))
    with pytest.raises(ConfigError, match="not fitted"):
        EmbeddingClusterer().predict(X)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):  # scikit-learn's convention too
        EmbeddingClusterer().transform(X)
    with pytest.raises(DataError, match="1 sample"):
        EmbeddingClusterer(reducer="none", n_clusters=1).fit(X[:1])
    assert not hasattr(EmbeddingClusterer(clusterer="kmeans"), "predict_proba")  # mixtures only


def test_predict_refuses_what_cannot_place_new_points():
    from sklearn.manifold import TSNE

    X, _ = blobs(k=2, n_per=15)
    est = EmbeddingClusterer(reducer=TSNE(n_components=2, perplexity=5, random_state=0, max_iter=250),
                             clusterer="gmm", n_clusters=2).fit(X)
    assert est.labels_.shape == (30,)
    with pytest.raises(ConfigError, match="TSNE cannot embed new points"):
        est.predict(X[:3])
    agg = EmbeddingClusterer(reducer="none", clusterer="agglomerative", n_clusters=2).fit(X)
    with pytest.raises(ConfigError, match="agglomerative.*cannot assign new points"):
        agg.predict(X[:3])
    with pytest.raises(DataError, match="features"):
        EmbeddingClusterer(reducer="none", clusterer="kmeans", n_clusters=2).fit(X).predict(X[:, :2])


# -- run pipeline, config, report, CLI ----------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 3-epoch run on 120 labelled 12x12 images (3 classes), epoch checkpoints kept, clustering at the end."""
    root = tmp_path_factory.mktemp("clu")
    path = write_tiny_npz(root / "tiny.npz")
    import reprlab

    cfg = {"seed": 0, "output_dir": str(root / "runs"), "name": "tiny",
           "data": {"name": "arrays", "path": str(path), "val_fraction": 0.25, "test_fraction": 0.25},
           "model": {"name": "conv_ae", "latent_dim": 4, "channels": [4, 8], "rotation_beta": 0.5},
           "train": {"epochs": 3, "batch_size": 32, "lr": 3e-3, "progress": "off", "num_threads": 1,
                     "checkpoint_every": 1},
           "eval": {"figures": False, "report": False},
           "cluster": {"enabled": True, "reducer": "pca", "n_components": 2, "clusterer": "kmeans", "n_clusters": 3,
                       "split": "all"}}
    return reprlab.train(cfg)


def test_training_with_cluster_section_writes_clustering(tiny_run):
    run = tiny_run.run_dir
    m = json.loads((run / "clustering" / "metrics.json").read_text())
    assert m["split"] == "all" and m["n_points"] == 120 and m["n_clusters"] == 3
    assert m["nmi_normalisation"] == "arithmetic" and 0 <= m["acc"] <= 1 and "silhouette" in m
    assert (run / "clustering" / "confusion.png").exists() and (run / "clustering" / "scatter.png").exists()
    rows = (run / "clustering" / "assignments.csv").read_text().splitlines()
    assert rows[0] == "index,label,cluster" and len(rows) == 121
    run_metrics = json.loads((run / "metrics.json").read_text())
    assert run_metrics["cluster/acc"] == m["acc"] and run_metrics["cluster/n_clusters"] == 3
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    history = tiny_run.history
    assert "train/rotation_acc" in history[-1] and "val/rotation_acc" not in history[-1]


def test_cluster_run_auto_and_report(tiny_run):
    from reprlab.reporting.report import write_report

    run = tiny_run.run_dir
    m = cluster_run(run, split="test", reducer="none", clusterer="gmm", covariance_type="diag", n_clusters="auto",
                    criterion="bic", k_range=(2, 5), update_run=True)
    assert 2 <= m["n_clusters"] <= 5 and set(m["k_scores"]) == {"2", "3", "4", "5"}
    assert (run / "clustering" / "k_selection.png").exists()
    assert json.loads((run / "metrics.json").read_text())["cluster/n_clusters"] == m["n_clusters"]
    html = write_report(run).read_text()
    assert 'id="clustering-confusion"' in html and 'id="clustering-k_selection"' in html and "cluster/acc" in html


def test_checkpoint_curve_over_epoch_checkpoints(tiny_run):
    rows = checkpoint_curve(tiny_run.run_dir, reducer="pca", n_components=2, clusterer="kmeans", n_clusters=3)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(r["train_mse"] > 0 and 0 <= r["val_acc"] <= 1 for r in rows)
    assert (tiny_run.run_dir / "clustering" / "checkpoint_curve.png").exists()
    with pytest.raises(ConfigError, match="fixed n_clusters"):
        checkpoint_curve(tiny_run.run_dir, n_clusters="auto")


def test_pipeline_and_config_errors(tiny_run, tmp_path):
    from reprlab.config import RunConfig

    with pytest.raises(RunDirError):
        cluster_run(tmp_path / "missing")
    with pytest.raises(ConfigError, match="split must be one of"):
        cluster_run(tiny_run.run_dir, split="holdout")
    with pytest.raises(ConfigError, match="more than the 30 points"):
        cluster_run(tiny_run.run_dir, split="test", reducer="none", n_clusters=31, update_run=False)
    with pytest.raises(ConfigError, match="cluster.reducer must be one of"):
        RunConfig.from_dict({"cluster": {"enabled": True, "reducer": "isomap"}})
    with pytest.raises(ConfigError, match="unknown config key cluster.reduce"):
        RunConfig.from_dict({"cluster": {"reduce": "pca"}})
    cfg = RunConfig.from_dict({}).with_overrides(["cluster.enabled=true", "cluster.n_clusters=auto"])
    assert cfg.cluster.n_clusters == "auto"


def test_cli_cluster_prints_metrics(tiny_run, capsys):
    from reprlab.cli import main

    argv = ["cluster", str(tiny_run.run_dir), "--reducer", "pca", "--n-components", "2", "--clusterer", "kmeans",
            "--n-clusters", "3", "--split", "train"]
    assert main(argv) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["split"] == "train" and m["n_clusters"] == 3 and math.isfinite(m["nmi"])
    assert main(["cluster", str(tiny_run.run_dir), "--n-clusters", "lots"]) == 2
    assert capsys.readouterr().err.startswith("error: --n-clusters must be a whole number or auto")
    assert main(["cluster", str(tiny_run.run_dir), "--clusterer", "dbscan"]) == 2
    assert "clusterer must be one of" in capsys.readouterr().err


# -- real data ----------------------------------------------------------------------------
@pytest.mark.realdata
def test_fashion_mnist_pixels_cluster_above_chance(real_data_dir):
    from reprlab.data import load_dataset

    test = load_dataset("fashion-mnist", "test", data_dir=str(real_data_dir), download=False)
    X = test.float01(slice(0, 2000)).reshape(2000, -1).numpy()
    y = test.labels[:2000].numpy()
    est = EmbeddingClusterer(reducer="pca", n_components=10, clusterer="gmm", n_clusters=10, random_state=0)
    scores = clustering_scores(y, est.fit_predict(X))
    # 10 classes: chance accuracy is about 0.1; PCA + GMM on pixels gets about 0.5
    assert scores["acc"] > 0.4 and scores["nmi"] > 0.45, scores


def test_codes_plus_hog_features(tiny_run):
    m = cluster_run(tiny_run.run_dir, split="all", features="codes+hog", reducer="pca", n_components=2,
                    clusterer="kmeans", n_clusters=3, figures=False, update_run=False)
    assert m["features"] == "codes+hog" and m["n_points"] == 120 and m["code_size"] == 4
    assert m["acc"] > 0.45  # above chance: random labels of 3 balanced-ish classes score about 0.4 here
    data = ImageData(torch.rand(10, 1, 12, 12))
    joint = clustering_features(np.random.default_rng(0).normal(size=(10, 4)), data, "codes+hog")
    from reprlab.capabilities.anomaly.scores import image_descriptors

    hog = image_descriptors(data.float01(), "hog", bins=9)
    assert joint.shape == (10, 4 + hog.shape[1])
    assert joint[:, :4].var(0).sum() == pytest.approx(1.0)  # each block gets unit total variance
    assert joint[:, 4:].var(0).sum() == pytest.approx((hog.std(0) > 0).mean(), rel=1e-6)  # constant features stay 0
    with pytest.raises(ConfigError, match=r"features must be one of 'codes', 'codes\+hog'.*Fix:"):
        cluster_run(tiny_run.run_dir, features="hog")
    from reprlab.config import RunConfig

    with pytest.raises(ConfigError, match=r"cluster\.features must be one of"):
        RunConfig.from_dict({"cluster": {"enabled": True, "features": "pixels"}})
