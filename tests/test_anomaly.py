"""Anomaly detection: metrics, scores, the PyOD-style detector, protocols, figures, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reprlab.capabilities.anomaly import (AnomalyDetector, KMeansScorer, KNNScorer, PCAScorer, auroc, average_precision,
                             check_no_overlap, detect, evaluate_scores, load_images, one_class_split, run_one_class,
                             threshold_at_contamination, threshold_metrics)
from reprlab.capabilities.anomaly.plots import save_detection_figures
from reprlab.data.dataset import ImageData
from reprlab.base.errors import ConfigError, DataError

SIZE = 16
TINY_AE = {"hidden_sizes": (32,), "latent_dim": 4}


def bars(n: int, vertical: bool, seed: int) -> torch.Tensor:
    """``n`` 1x16x16 images in [0, 1]: a bright horizontal (or vertical) bar at a random place, plus noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, SIZE, SIZE, generator=g) * 0.1
    pos = torch.randint(4, SIZE - 5, (n,), generator=g)
    for i, p in enumerate(pos.tolist()):
        if vertical:
            x[i, 0, 2:-2, p:p + 2] = 0.9
        else:
            x[i, 0, p:p + 2, 2:-2] = 0.9
    return x


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def sets():
    normal = bars(160, vertical=False, seed=0)
    test = torch.cat([bars(40, vertical=False, seed=1), bars(40, vertical=True, seed=2)])
    y = np.array([0] * 40 + [1] * 40)
    return normal, test, y


@pytest.fixture(scope="module")
def fitted_ae(sets):
    normal, _, _ = sets
    return AnomalyDetector(score="mse", model="fc_ae", model_options=TINY_AE, epochs=10, batch_size=16, lr=5e-3,
                           contamination=0.1).fit(normal)


# -- metrics ------------------------------------------------------------------------------
def test_auroc_is_one_for_separable_scores_and_about_half_for_shuffled_ones():
    rng = np.random.default_rng(0)
    y = np.array([0] * 1000 + [1] * 1000)
    s = np.concatenate([rng.normal(0, 1, 1000), rng.normal(10, 1, 1000)])
    assert auroc(y, s) == 1.0 and average_precision(y, s) == 1.0
    shuffled = rng.permutation(s)
    assert abs(auroc(y, shuffled) - 0.5) < 0.05
    assert abs(average_precision(y, shuffled) - 0.5) < 0.05


def test_threshold_metrics_and_contamination_threshold():
    m = threshold_metrics([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.2], threshold=0.5)
    assert (m["precision"], m["recall"], m["f1"], m["flagged_fraction"]) == (0.5, 0.5, 0.5, 0.5)
    assert threshold_at_contamination(np.arange(1000.0), 0.05) == pytest.approx(949.05)
    full = evaluate_scores([0, 1], [0.0, 1.0], threshold=0.5)
    assert {"auroc", "average_precision", "precision", "recall", "f1", "threshold"} <= set(full)


# -- the detector ---------------------------------------------------------------------------
def test_separable_anomalies_get_auroc_near_one_and_higher_scores(sets, fitted_ae):
    _, test, y = sets
    s = fitted_ae.decision_function(test)
    assert s.shape == (80,)
    assert auroc(y, s) > 0.95
    assert s[y == 1].mean() > s[y == 0].mean()  # sign convention: higher = more anomalous
    assert fitted_ae.predict(test)[y == 1].mean() > 0.8  # anomalies are flagged with 1
    assert fitted_ae.evaluate(test, y)["auroc"] == pytest.approx(auroc(y, s))


@pytest.mark.parametrize("contamination", [0.05, 0.1, 0.25])
def test_threshold_flags_the_contamination_fraction_of_training_images(sets, contamination):
    normal, _, _ = sets
    det = AnomalyDetector(score="pixel_knn", contamination=contamination).fit(normal)
    assert det.labels_.mean() == pytest.approx(contamination, abs=1.0 / len(normal))
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 100 * (1 - contamination)))


def test_threshold_fraction_on_training_images_through_predict(sets, fitted_ae):
    normal, _, _ = sets
    assert fitted_ae.predict(normal).mean() == pytest.approx(0.1, abs=1.0 / len(normal))


def test_predict_and_predict_proba_shapes_and_ranges(sets, fitted_ae):
    _, test, _ = sets
    pred = fitted_ae.predict(test)
    assert pred.shape == (80,) and set(np.unique(pred)) <= {0, 1} and pred.dtype == np.int64
    for method in ("linear", "unify"):
        proba = fitted_ae.predict_proba(test, method=method)
        assert proba.shape == (80, 2)
        assert np.all((proba >= 0) & (proba <= 1))
        np.testing.assert_allclose(proba.sum(1), 1.0)
    # more anomalous -> higher anomaly probability
    s = fitted_ae.decision_function(test)
    p = fitted_ae.predict_proba(test)[:, 1]
    assert np.all(np.diff(p[np.argsort(s)]) >= -1e-12)


def test_fit_returns_self_and_sets_fitted_attributes(sets):
    normal, _, _ = sets
    det = AnomalyDetector(score="pixel_knn")
    assert not hasattr(det, "threshold_")
    assert det.fit(normal) is det
    for attr in ("decision_scores_", "threshold_", "labels_", "scores_", "score_stats_", "input_shape_"):
        assert hasattr(det, attr)
    with pytest.raises(TypeError):
        AnomalyDetector("mse")  # keyword-only


@pytest.mark.parametrize("score,model,options,min_auroc", [
    ("l1", "fc_ae", TINY_AE, 0.75),
    ("ssim", "fc_ae", TINY_AE, 0.75),
    ("knn", "conv_ae", {"latent_dim": 4, "channels": (4, 8)}, 0.75),
    ("kmeans", "fc_ae", TINY_AE, 0.75),
    ("pca", "fc_ae", TINY_AE, 0.5),  # a 4-d code of a 2-epoch model leaves PCA little to work with
    ("elbo", "vae", {"arch": "fc", "latent_dim": 4}, 0.75),
    ("transform", "rotnet", {"channels": (8,), "latent_dim": 16, "transforms": "rot"}, 0.75),
    (("transform", "knn"), "rotnet", {"channels": (8,), "latent_dim": 16, "transforms": "rotflip"}, 0.75),
])
def test_each_score_works_on_a_tiny_trained_model(sets, score, model, options, min_auroc):
    normal, test, y = sets
    det = AnomalyDetector(score=score, model=model, model_options=options, epochs=2, batch_size=32, lr=3e-3,
                          n_clusters=4, n_components=2).fit(normal)
    s = det.decision_function(test)
    assert s.shape == (80,) and np.isfinite(s).all()
    assert auroc(y, s) > min_auroc, score


def test_model_free_scores_blurred_pixels_and_gradient_histograms(sets):
    normal, test, y = sets
    det = AnomalyDetector(score=("pixel_knn", "hog_knn"), pixel_blur=1.0, hog_bins=6).fit(normal)
    assert det.model_ is None and auroc(y, det.decision_function(test)) > 0.95
    # the standardised sum: each part has mean 0 and std 1 over the training images
    assert det.decision_scores_.mean() == pytest.approx(0.0, abs=1e-9)


def test_a_trained_model_instance_is_used_as_it_is(sets, fitted_ae):
    normal, test, y = sets
    model = fitted_ae.model_
    before = {k: v.clone() for k, v in model.state_dict().items()}
    det = AnomalyDetector(score="knn", model=model, n_neighbors=3).fit(normal)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert det.history_ == [] and auroc(y, det.decision_function(test)) > 0.9


def test_knn_training_scores_leave_each_image_out():
    z = np.array([[0.0], [1.0], [3.0]])
    sc = KNNScorer(n_neighbors=1, metric="euclidean").fit(z)
    np.testing.assert_allclose(sc.train_scores_, [1.0, 1.0, 2.0])
    np.testing.assert_allclose(sc.score(z), [0.0, 0.0, 0.0])


def test_latent_scorers_rank_outliers_last():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 3)) * [1.0, 1.0, 0.01]
    q = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    for scorer in (KNNScorer(metric="euclidean"), KMeansScorer(n_clusters=3), PCAScorer(n_components=2)):
        s = scorer.fit(z).score(q)
        assert s[1] > s[0], type(scorer).__name__


# -- protocols --------------------------------------------------------------------------------
def test_one_class_protocol_on_a_labelled_pair(sets):
    normal, test, y = sets
    train = ImageData(torch.cat([normal, bars(160, vertical=True, seed=3)]), torch.tensor([0] * 160 + [1] * 160))
    test_data = ImageData(test, torch.as_tensor(y))
    n, t, yy = one_class_split(train, test_data, 1)
    assert len(n) == 160 and yy.tolist() == (1 - y).tolist()
    results = run_one_class({"score": "pixel_knn"}, dataset=(train, test_data), normal_classes=[0, 1])
    assert [r.normal_class for r in results] == [0, 1]
    assert all(r.metrics["auroc"] > 0.95 for r in results)
    assert {"auroc", "average_precision", "precision", "recall", "f1"} <= set(results[0].metrics)


def test_user_sets_from_files_with_and_without_labels(tmp_path, sets):
    normal, test, y = sets
    np.savez(tmp_path / "normal.npz", x=(normal[:, 0].numpy() * 255).astype(np.uint8))
    np.save(tmp_path / "test.npy", (test[:, 0].numpy() * 255).astype(np.uint8))
    np.save(tmp_path / "labels.npy", y)
    r = detect(tmp_path / "normal.npz", tmp_path / "test.npy", test_labels=tmp_path / "labels.npy",
               detector=AnomalyDetector(score="pixel_knn"))
    assert r.metrics["auroc"] > 0.95
    unlabelled = detect(tmp_path / "normal.npz", tmp_path / "test.npy", detector={"score": "pixel_knn"})
    assert "auroc" not in unlabelled.metrics and 0 <= unlabelled.metrics["flagged_fraction"] <= 1
    assert unlabelled.scores == pytest.approx(r.scores)
    r.to_csv(tmp_path / "scores.csv")
    assert (tmp_path / "scores.csv").read_text().splitlines()[0] == "index,score,predicted,label"
    assert load_images(tmp_path / "test.npy").shape == (1, SIZE, SIZE)


def test_figures_are_written(tmp_path, sets, fitted_ae):
    normal, test, y = sets
    r = detect(normal, test, test_labels=y, detector=fitted_ae.get_params())
    paths = save_detection_figures(r, tmp_path, k=4)
    assert sorted(p.name for p in paths) == ["least_anomalous.png", "most_anomalous.png", "roc_curve.png",
                                             "score_histogram.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("contamination", [0, 0.0, 0.6, -0.1, 1.0, float("nan"), "0.1", True])
def test_contamination_outside_zero_half_is_a_clear_error(sets, contamination):
    normal, _, _ = sets
    with pytest.raises(ConfigError, match=r"contamination must be in \(0, 0.5\].*Fix:"):
        AnomalyDetector(score="pixel_knn", contamination=contamination).fit(normal)


def test_single_class_test_set_for_auc_is_a_clear_error(sets):
    normal, test, _ = sets
    with pytest.raises(DataError, match="needs both normal and anomalous test images.*Fix:"):
        detect(normal, test, test_labels=np.zeros(80, dtype=int), detector={"score": "pixel_knn"})
    with pytest.raises(DataError, match="needs both"):
        auroc([1, 1, 1], [0.1, 0.2, 0.3])


def test_training_data_containing_test_images_is_a_clear_error(sets):
    normal, test, y = sets
    with pytest.raises(DataError, match=r"contain 40 of the 80 test images.*Fix:"):
        detect(torch.cat([normal, test[:40]]), test, test_labels=y, detector={"score": "pixel_knn"})
    check_no_overlap(normal, test)  # disjoint: no error


def test_other_bad_input_is_a_clear_error(sets):
    normal, test, _ = sets
    with pytest.raises(ConfigError, match="score must be one of"):
        AnomalyDetector(score="nope").fit(normal)
    with pytest.raises(ConfigError, match="needs a variational model"):
        AnomalyDetector(score="elbo", model="fc_ae", model_options=TINY_AE, epochs=1).fit(normal)
    with pytest.raises(ConfigError, match="not fitted"):
        AnomalyDetector().decision_function(test)
    det = AnomalyDetector(score="pixel_knn").fit(normal)
    with pytest.raises(DataError, match="fitted on images of shape"):
        det.decision_function(torch.rand(3, 1, 8, 8))
    with pytest.raises(DataError, match="0 .normal. or 1 .anomaly."):
        auroc([0, 2], [0.1, 0.2])


# -- real data --------------------------------------------------------------------------------
@pytest.mark.realdata
def test_fashion_mnist_one_class_real_data(real_data_dir):
    results = run_one_class({"score": ("transform", "knn"), "model": "rotnet", "epochs": 1, "batch_size": 32,
                             "lr": 2e-3, "model_options": {"channels": (8, 16), "latent_dim": 32}},
                            dataset="fashion-mnist", normal_classes=[1], data_dir=real_data_dir, max_train=300,
                            max_test=400, download=False)
    assert results[0].metrics["auroc"] > 0.7


def test_presets_merge_overrides_and_name_unknown_ones():
    from reprlab.capabilities.anomaly import PRESETS

    for name in PRESETS:
        det = AnomalyDetector.from_preset(name)
        det._validate()  # every preset is a valid parameter set
        assert det.get_params()["score"] == PRESETS[name]["score"]
    full = AnomalyDetector.from_preset("full", epochs=1, model_options={"latent_dim": 8})
    assert (full.model, full.epochs, full.pixel_blur) == ("rotnet", 1, 1.0)
    assert full.model_options == {"channels": (16, 32), "latent_dim": 8, "transforms": "rotflip"}
    assert PRESETS["full"]["model_options"]["latent_dim"] == 64  # the preset itself is untouched
    with pytest.raises(ConfigError, match=r"unknown anomaly-detection preset 'fastest'.*Fix: use one of fast, full, ae"):
        AnomalyDetector.from_preset("fastest")


def test_fast_preset_separates_the_toy_anomalies(sets):
    normal, test, y = sets
    scores = AnomalyDetector.from_preset("fast").fit(normal).decision_function(test)
    assert auroc(y, scores) > 0.9
