"""Issue 17, messages and defaults of the clustering stage: k defaults to the number of classes (with a notice),
log lines and captions name the features actually clustered, long steps show progress (quiet with --quiet),
the closing summary of `reprlab train` prints the clustering headline, and a clustering that does not use
the model says so when training starts."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from conftest import tiny_cluster_config
from reprlab.capabilities.clustering import checkpoint_curve, cluster_run
from reprlab.capabilities.clustering import pipeline as clustering_pipeline
from reprlab.data.dataset import ImageData

pytestmark = pytest.mark.usefixtures("single_thread")

FAST = {"reducer": "pca", "n_components": 2, "clusterer": "kmeans"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One epoch on 120 labelled 12x12 images of 3 classes, clustered (k unset) at the end."""
    import reprlab

    root = tmp_path_factory.mktemp("i17")
    cfg = tiny_cluster_config(root, {**FAST, "split": "all"}, epochs=2)
    cfg["train"]["checkpoint_every"] = 1
    return reprlab.train(cfg)


def _unlabelled(splits):
    strip = lambda d: None if d is None else ImageData(d.images, None, d.name)  # noqa: E731
    return type(splits)(strip(splits.train), strip(splits.val), strip(splits.test))


# -- 2. the default number of clusters ---------------------------------------------------
def test_default_k_is_the_number_of_classes(tiny_run, caplog):
    m = json.loads((tiny_run.run_dir / "clustering" / "metrics.json").read_text())
    assert m["n_clusters"] == 3 and m["options"]["n_clusters"] == 3  # through the training's post-run step
    with caplog.at_level(logging.INFO, logger="reprlab"):
        m = cluster_run(tiny_run.run_dir, split="all", figures=False, update_run=False, **FAST)
    assert m["n_clusters"] == 3
    assert "into 3 clusters, the number of classes" in caplog.text
    from reprlab.config import RunConfig

    c = RunConfig.from_dict({"cluster": {"enabled": True}}).cluster
    assert c.n_clusters is None  # validated with the fallback, resolved from the labels later


def test_unlabelled_gets_ten_or_the_given_k(tiny_run, caplog):
    from reprlab.config import RunConfig
    from reprlab.runs import prepare_data

    splits = _unlabelled(prepare_data(RunConfig.from_yaml(tiny_run.run_dir / "config.yaml")))
    with caplog.at_level(logging.INFO, logger="reprlab"):
        m = cluster_run(tiny_run.run_dir, split="all", splits=splits, figures=False, update_run=False, **FAST)
    assert m["n_clusters"] == 10 and "acc" not in m
    assert "have no labels: clustering into 10 clusters" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="reprlab"):
        m = cluster_run(tiny_run.run_dir, split="all", splits=splits, n_clusters=4, figures=False, update_run=False,
                        **FAST)
    assert m["n_clusters"] == 4 and "n_clusters not set" not in caplog.text


def test_checkpoint_curve_and_cli_default_k(tiny_run, capsys):
    rows = checkpoint_curve(tiny_run.run_dir, max_eval_points=None, **FAST)
    assert [r["epoch"] for r in rows] == [1, 2]
    from reprlab.cli import main

    assert main(["cluster", str(tiny_run.run_dir), "--reducer", "pca", "--n-components", "2", "--clusterer",
                 "kmeans", "--split", "all"]) == 0
    assert json.loads(capsys.readouterr().out)["n_clusters"] == 3


# -- 3. progress and the features named ---------------------------------------------------
def test_log_lines_and_caption_name_the_features(tiny_run, caplog, monkeypatch):
    monkeypatch.setattr(clustering_pipeline, "PROGRESS_CHUNK", 50)  # 120 images: three steps
    with caplog.at_level(logging.INFO, logger="reprlab"):
        m = cluster_run(tiny_run.run_dir, split="all", features="scattering", figures=False, update_run=False, **FAST)
    text = caplog.text
    assert "on wavelet-scattering coefficients of the images (the trained model is not used)" in text
    assert "wavelet-scattering coefficients: 50/120 images" in text and "120/120 images" in text
    assert "codes" not in text  # scattering coefficients are not "codes"
    assert m["features_text"] == "wavelet-scattering coefficients of the images" and "code_size" not in m
    index = json.loads((tiny_run.run_dir / "clustering" / "index.json").read_text())
    caption = next(i["caption"] for i in index["items"] if i["key"] == "clustering:metrics")
    assert "of wavelet-scattering coefficients of the images" in caption
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="reprlab"):
        m = cluster_run(tiny_run.run_dir, split="all", figures=False, update_run=False, **FAST)
    assert "on the model's codes" in caplog.text and "encoding all images with checkpoint best: 100/120" in caplog.text
    assert m["code_size"] == m["feature_size"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="reprlab"):  # what --quiet sets
        cluster_run(tiny_run.run_dir, split="all", features="scattering", figures=False, update_run=False, **FAST)
    assert caplog.text == ""


def test_scan_restarts_are_logged(caplog):
    import numpy as np

    from reprlab.capabilities.clustering import EmbeddingClusterer

    X = np.random.default_rng(0).normal(size=(60, 4))
    opts = {"epochs": 2, "n_heads": 2, "consensus_heads": 1, "n_restarts": 2, "n_neighbors": 5, "batch_size": 64}
    with caplog.at_level(logging.INFO, logger="reprlab"):
        EmbeddingClusterer(reducer="none", clusterer="scan", n_clusters=3, clusterer_options=opts).fit(X)
    assert "restart 1/2" in caplog.text and "restart 2/2" in caplog.text


# -- 4. the closing summary; 5. the notice at the start --------------------------------------
def test_train_summary_prints_clustering_headline(tmp_path, capsys):
    from reprlab.cli import main

    cfg = tiny_cluster_config(tmp_path, {**FAST, "split": "test"}, epochs=1)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "c.yaml")]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "runs" / "tiny" / "metrics.json").read_text())
    for key in ("cluster/acc", "cluster/nmi", "cluster/ari"):
        assert f"{key}={metrics[key]:.4f}" in out
    assert "test/mse=" in out


@pytest.mark.parametrize("features,noticed", [("pixels+hog", True), ("codes", False)])
def test_model_free_clustering_is_announced_at_the_start(tmp_path, caplog, features, noticed):
    import reprlab

    cfg = tiny_cluster_config(tmp_path, {**FAST, "split": "test", "features": features}, epochs=1)
    with caplog.at_level(logging.INFO, logger="reprlab"):
        reprlab.train(cfg)
    notice = [r for r in caplog.records if "does not change the clustering results" in r.getMessage()]
    assert bool(notice) == noticed
    if noticed:
        first_epoch = next(i for i, r in enumerate(caplog.records) if r.getMessage().startswith("epoch 1/"))
        assert caplog.records.index(notice[0]) < first_epoch  # said at the start, not after training
        assert "pixels + HOG descriptors of the images, not the model" in notice[0].getMessage()
