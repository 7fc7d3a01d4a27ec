"""Tests of reprlab.capabilities.clustering.scan (neighbour-consistency clustering) and its wiring into
EmbeddingClusterer, cluster_run, the config and the CLI; one real-data check."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import NearestNeighbors

from reprlab.capabilities.clustering import EmbeddingClusterer, cluster_accuracy, clustering_scores
from reprlab.capabilities.clustering.pipeline import clustering_features
from reprlab.capabilities.clustering.scan import ScanClusterer, nearest_neighbours, scan_loss
from reprlab.data.dataset import ImageData
from reprlab.base.errors import ConfigError, DataError

from conftest import gaussian_blobs as blobs, tiny_cluster_config

pytestmark = pytest.mark.usefixtures("single_thread")

FAST = {"epochs": 6, "n_heads": 4, "consensus_heads": 2, "n_restarts": 2, "n_neighbors": 5, "batch_size": 64}


def test_nearest_neighbours_match_scikit_learn():
    X = np.random.default_rng(0).normal(size=(300, 6))
    ours = nearest_neighbours(X, 7, chunk=64)  # several chunks
    ref = NearestNeighbors(n_neighbors=8, metric="cosine").fit(X).kneighbors(X, return_distance=False)[:, 1:]
    assert ours.shape == (300, 7)
    assert (np.sort(ours, 1) == np.sort(ref, 1)).mean() > 0.99  # ties aside, the same sets
    assert not (ours == np.arange(300)[:, None]).any()  # never itself


def test_scan_loss_rewards_agreement_and_balance():
    agree = torch.tensor([[[0.9, 0.1], [0.1, 0.9]]])
    disagree = torch.tensor([[[0.1, 0.9], [0.9, 0.1]]])
    assert scan_loss(agree, agree, 0.0) < scan_loss(agree, disagree, 0.0)
    collapsed = torch.tensor([[[0.99, 0.01], [0.99, 0.01]]])
    # with the entropy term, using one cluster for everything costs more than using both
    assert scan_loss(collapsed, collapsed, 5.0) > scan_loss(agree, agree, 5.0)
    assert scan_loss(collapsed, collapsed, 0.0) < scan_loss(agree, agree, 0.0)


def test_scan_clusterer_finds_blobs_and_assigns_new_points():
    X, y = blobs()
    before = torch.random.get_rng_state()
    est = ScanClusterer(n_clusters=3, random_state=0, **FAST).fit(X)
    assert torch.equal(before, torch.random.get_rng_state())  # global random state untouched
    assert cluster_accuracy(y, est.labels_) == 1.0
    X_new, y_new = blobs(seed=0)  # same centres, same seed: predict must agree with fit
    assert (est.predict(X_new) == est.labels_).all()
    assert est.neighbours_.shape == (240, 5) and est.head_losses_.shape == (2, 4) and len(est.nets_) == 2
    assert est.heads_used_.shape == (2, 2)
    for losses, used in zip(est.head_losses_, est.heads_used_):  # the lowest-loss heads of each restart
        assert losses[used].max() <= np.sort(losses)[1]
    assert est.transform(X[:3]).shape == (3, 2 * 2 * 3) and [len(h) for h in est.history_] == [6, 6]
    assert set(est.timings_) == {"neighbours_cpu_s", "train_cpu_s", "consensus_cpu_s"}
    again = ScanClusterer(n_clusters=3, random_state=0, **FAST).fit(X)
    assert (again.labels_ == est.labels_).all() and np.allclose(again.head_losses_, est.head_losses_)
    np_state = np.random.get_state()[1].copy()
    ScanClusterer(n_clusters=3, random_state=None, **FAST).fit(X)  # a fresh seed, still no global state used
    assert (np.random.get_state()[1] == np_state).all() and torch.equal(before, torch.random.get_rng_state())


def test_scan_clusterer_bad_input():
    X, _ = blobs()
    with pytest.raises(ConfigError, match="consensus_heads=5 is more than n_heads=4.*Fix"):
        ScanClusterer(n_heads=4, consensus_heads=5).fit(X)
    with pytest.raises(ConfigError, match="entropy_weight"):
        ScanClusterer(entropy_weight=-1.0).fit(X)
    with pytest.raises(ConfigError, match="n_neighbors=20 needs more than 20 points"):
        ScanClusterer(n_clusters=2).fit(X[:10])
    with pytest.raises(ConfigError, match="n_clusters=12 is more than the 10 points"):
        ScanClusterer(n_clusters=12, n_neighbors=3).fit(X[:10])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        ScanClusterer(**FAST).fit(bad)
    with pytest.raises(DataError, match="shape"):
        ScanClusterer(**FAST).fit(X[:, 0])
    with pytest.raises(NotFittedError):
        ScanClusterer().predict(X)
    est = ScanClusterer(n_clusters=3, **FAST).fit(X)
    with pytest.raises(DataError, match="points have 4 features, the clusterer was fitted on 8"):
        est.predict(X[:, :4])


def test_embedding_clusterer_with_scan_and_clusterer_options():
    X, y = blobs()
    est = EmbeddingClusterer(reducer="none", clusterer="scan", n_clusters=3, clusterer_options=FAST, random_state=1)
    assert cluster_accuracy(y, est.fit_predict(X)) == 1.0
    assert isinstance(est.clusterer_, ScanClusterer) and est.clusterer_.epochs == 6
    assert (est.predict(X) == est.labels_).all() and "silhouette" in est.scores_
    # options reach scikit-learn's clusterers too
    gmm = EmbeddingClusterer(reducer="none", clusterer="gmm", n_clusters=3, clusterer_options={"max_iter": 7}).fit(X)
    assert gmm.clusterer_.max_iter == 7
    with pytest.raises(ConfigError, match=r"clusterer_options \['epoch'\] are not options of clusterer='scan'.*epochs"):
        EmbeddingClusterer(clusterer="scan", clusterer_options={"epoch": 3}).fit(X)
    with pytest.raises(ConfigError, match="may not set n_clusters"):
        EmbeddingClusterer(clusterer="kmeans", clusterer_options={"n_clusters": 3}).fit(X)
    with pytest.raises(ConfigError, match="must be a dict"):
        EmbeddingClusterer(clusterer="scan", clusterer_options=["epochs", 3]).fit(X)


def test_pixel_and_hog_feature_blocks():
    data = ImageData(torch.rand(10, 1, 12, 12))
    codes = np.random.default_rng(0).normal(size=(10, 4))
    both = clustering_features(codes, data, "pixels+hog")
    three = clustering_features(codes, data, "codes+pixels+hog")
    assert both.shape[1] == 144 + (three.shape[1] - 4 - 144) and three.shape[1] == 4 + both.shape[1]
    assert three[:, :4].var(0).sum() == pytest.approx(1.0) and three[:, 4:148].var(0).sum() == pytest.approx(1.0)
    assert np.allclose(three[:, 4:], both)  # the same blocks, whatever comes before


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import reprlab

    root = tmp_path_factory.mktemp("scan")
    cfg = tiny_cluster_config(root, {"split": "all", "features": "pixels+hog", "reducer": "none", "clusterer": "scan",
                                     "n_clusters": 3, "clusterer_options": FAST})
    return reprlab.train(cfg)


def test_config_runs_scan_at_the_end_of_training(tiny_run):
    m = json.loads((tiny_run.run_dir / "clustering" / "metrics.json").read_text())
    assert m["features"] == "pixels+hog" and m["options"]["clusterer"] == "scan" and m["n_points"] == 120
    assert m["options"]["clusterer_options"]["n_heads"] == 4 and 0 <= m["acc"] <= 1
    from reprlab.config import RunConfig

    with pytest.raises(ConfigError, match=r"cluster\.clusterer_options \['heads'\] are not options"):
        RunConfig.from_dict({"cluster": {"enabled": True, "clusterer": "scan", "clusterer_options": {"heads": 2}}})
    with pytest.raises(ConfigError, match=r"cluster\.clusterer_options: epochs must be >= 1, got 0"):
        RunConfig.from_dict({"cluster": {"enabled": True, "clusterer": "scan", "clusterer_options": {"epochs": 0}}})


def test_cli_cluster_with_scan_options(tiny_run, capsys):
    from reprlab.cli import main

    argv = ["cluster", str(tiny_run.run_dir), "--split", "all", "--features", "codes+pixels+hog", "--reducer",
            "none", "--clusterer", "scan", "--n-clusters", "3"] + [f"--clusterer-option={k}={v}" for k, v in FAST.items()]
    assert main(argv) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["features"] == "codes+pixels+hog" and m["options"]["clusterer_options"] == FAST
    assert main(["cluster", str(tiny_run.run_dir), "--clusterer", "scan", "--clusterer-option", "epochs"]) == 2
    assert "is not of the form key=value" in capsys.readouterr().err
    assert main(["cluster", str(tiny_run.run_dir), "--clusterer", "scan", "--clusterer-option", "epochs=0"]) == 2
    assert "epochs" in capsys.readouterr().err


@pytest.mark.realdata
def test_fashion_mnist_scan_beats_kmeans_on_the_same_features(real_data_dir):
    from reprlab.data import load_dataset

    test = load_dataset("fashion-mnist", "test", data_dir=str(real_data_dir), download=False)
    data = test.subset(torch.arange(3000))
    X = clustering_features(np.zeros((3000, 0)), data, "pixels+hog")
    y = data.labels.numpy()
    scan = ScanClusterer(n_clusters=10, epochs=15, n_heads=10, consensus_heads=5, n_restarts=2, batch_size=256,
                         random_state=0)
    kmeans = EmbeddingClusterer(reducer="none", clusterer="kmeans", n_clusters=10, random_state=0)
    s_scan, s_km = clustering_scores(y, scan.fit_predict(X)), clustering_scores(y, kmeans.fit_predict(X))
    # 10 balanced classes: chance is 0.1; k-means on these features gets about 0.5
    assert s_scan["acc"] > 0.55 and s_scan["acc"] > s_km["acc"] and s_scan["nmi"] > 0.5, (s_scan, s_km)
