"""Latent-space analysis: encoding, reducers, traversals, samples, robustness, kernels, the pipeline, the CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reprlab import api
from reprlab.capabilities.analysis import (Reducer, activation_maps, analyze, conv_kernels, encode_dataset, interpolate,
                              latent_noise_robustness, prior_samples, traversal, traversal_grid)
from reprlab.capabilities.analysis import plots
from reprlab.features.embeddings import KPCA_HARD_LIMIT
from reprlab.data.dataset import ImageData
from reprlab.base.errors import ConfigError, DataError, ModelError
from reprlab.models import create_model

from conftest import write_tiny_npz


# ----------------------------------------------------------------------------------------
# tiny runs shared by this module and test_report*.py (trained once per session)
# ----------------------------------------------------------------------------------------
def _train(root: Path, name: str, model: dict, report: bool) -> Path:
    cfg = {"seed": 0, "output_dir": str(root / "runs"), "name": name,
           "data": {"name": "arrays", "path": str(root / "tiny.npz"), "val_fraction": 0.2},
           "model": model, "train": {"epochs": 1, "batch_size": 16, "progress": "off"},
           "eval": {"k": 4, "report": report, "figures": report}}
    return api.train(cfg).run_dir


_RUNS: dict[str, Path] = {}  # shared with test_report*.py, which import this fixture (trained once per session)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """``ae``: conv_ae with a 2-D latent (figures and report written by training); ``vae``: conv VAE, neither."""
    if not _RUNS:
        root = tmp_path_factory.mktemp("analysis_runs")
        write_tiny_npz(root / "tiny.npz")
        _RUNS["ae"] = _train(root, "ae", {"name": "conv_ae", "latent_dim": 2, "channels": [4, 8]}, report=True)
        _RUNS["vae"] = _train(root, "vae", {"name": "vae", "arch": "conv", "latent_dim": 3, "channels": [4, 8]},
                              report=False)
    return dict(_RUNS)


def _png_ok(path: Path) -> None:
    with Image.open(path) as im:
        im.verify()


# ----------------------------------------------------------------------------------------
# encoding and reducers
# ----------------------------------------------------------------------------------------
def test_encode_dataset_matches_model_encode_and_rejects_bad_input():
    m = create_model("conv_ae", input_shape=(1, 12, 12), latent_dim=3, channels=[4, 8], output_range="-1_1")
    data = ImageData(torch.randint(0, 256, (10, 1, 12, 12), dtype=torch.uint8), torch.arange(10))
    z = encode_dataset(m, data, batch_size=3)
    m.eval()
    with torch.no_grad():
        ref = m.encode(data.float01() * 2 - 1).numpy()
    assert z.shape == (10, 3) and z.dtype == np.float32
    np.testing.assert_allclose(z, ref, atol=1e-5)
    with pytest.raises(ModelError, match="shape"):
        encode_dataset(m, torch.rand(2, 1, 8, 8))
    with pytest.raises(DataError):
        encode_dataset(m, np.zeros((2, 3)))  # type: ignore[arg-type]


def _clusters(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = np.array([[0.0] * 6, [8.0] + [0.0] * 5, [0.0, 8.0] + [0.0] * 4])
    return centres[y] + rng.normal(0, 1, (n, 6)), y


@pytest.mark.parametrize("method", ["pca", "kpca", "tsne"])
def test_reducer_fit_transform_and_transform_new_points(method):
    X, y = _clusters()
    r = Reducer(method, 2, gamma=0.05, random_state=0)
    coords = r.fit_transform(X[:120])
    assert coords.shape == (120, 2) and np.isfinite(coords).all()
    assert r.n_features_in_ == 6 and r.n_fit_points_ == 120 and r.fit_indices_ is None
    new = r.transform(X[120:])
    assert new.shape == (30, 2)
    # new points land nearer the centre of their own cluster than of the others
    centres = np.stack([coords[y[:120] == c].mean(0) for c in range(3)])
    nearest = np.argmin(((new[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest == y[120:]).mean() > 0.8
    assert Reducer(method, 2, gamma=0.05, random_state=0).fit_transform(X[:120]) == pytest.approx(coords)


def test_kpca_subsamples_above_its_limit_with_a_notice_and_refuses_huge_fits(caplog):
    X, _ = _clusters(300)
    with caplog.at_level(logging.WARNING, logger="reprlab.features.embeddings"):
        r = Reducer("kpca", max_fit_points=100, random_state=0)
        coords = r.fit_transform(X)
    assert coords.shape == (300, 2) and r.n_fit_points_ == 100 and len(r.fit_indices_) == 100
    assert "subsample of 100 of 300" in caplog.text
    np.testing.assert_allclose(coords[r.fit_indices_], r.embedding_)
    big = np.zeros((KPCA_HARD_LIMIT + 1, 2))
    with pytest.raises(ConfigError, match="kernel matrix") as exc:
        Reducer("kpca", max_fit_points=KPCA_HARD_LIMIT + 1).fit(big)
    assert "max_fit_points" in str(exc.value)


def test_reducer_bad_input_gives_clear_errors(caplog):
    X, _ = _clusters(40)
    with pytest.raises(ConfigError, match="method"):
        Reducer("lda").fit(X)
    with pytest.raises(ConfigError, match="n_components"):
        Reducer("pca", 10).fit(X[:, :3])
    with pytest.raises(ConfigError, match="not fitted"):
        Reducer("pca").transform(X)
    with pytest.raises(DataError, match="NaN"):
        Reducer("pca").fit(np.full((5, 2), np.nan))
    with pytest.raises(DataError, match="features"):
        Reducer("pca").fit(X).transform(X[:, :2])
    with pytest.raises(ConfigError, match="at least 4 points"):
        Reducer("tsne").fit(X[:3])
    with caplog.at_level(logging.WARNING, logger="reprlab.features.embeddings"):
        assert Reducer("tsne", random_state=0).fit_transform(X[:20]).shape == (20, 2)
    assert "perplexity 30 is too high" in caplog.text


class _FakeUMAP:
    """Stands in for umap.UMAP (whose numba compilation takes ~20 s); bench/embeddings.py runs the real one."""

    made: list[dict] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        _FakeUMAP.made.append(kwargs)

    def fit_transform(self, X):
        assert X.dtype == np.float32
        return X[:, : self.kwargs["n_components"]] * 2

    def transform(self, X):
        return X[:, : self.kwargs["n_components"]] * 2


def test_umap_wrapper_passes_options_and_transforms(monkeypatch, caplog):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=_FakeUMAP))
    X, _ = _clusters(12)
    with caplog.at_level(logging.WARNING, logger="reprlab.features.embeddings"):
        r = Reducer("umap", 2, n_neighbors=15, min_dist=0.3, n_jobs=2, random_state=None)
        coords = r.fit_transform(X)
    assert "n_neighbors 15 is too high for 12 points" in caplog.text and r.n_neighbors_ == 11
    kw = _FakeUMAP.made[-1]
    assert kw["n_neighbors"] == 11 and kw["min_dist"] == 0.3 and kw["n_jobs"] == 2 and kw["random_state"] is None
    np.testing.assert_allclose(coords, X[:, :2] * 2, rtol=1e-6)
    assert r.transform(X[:3]).shape == (3, 2)
    Reducer("umap", 2, n_jobs=2, random_state=0).fit(X)
    assert _FakeUMAP.made[-1]["n_jobs"] == 1  # seeded UMAP is single-threaded (reproducible)


# ----------------------------------------------------------------------------------------
# latent exploration
# ----------------------------------------------------------------------------------------
def test_traversal_grid_interpolation_and_bad_dimensions():
    m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=32)
    x = torch.rand(1, 8, 8)
    imgs, values = traversal(m, x, dim=31, n_steps=5, span=2.0, scale=0.5)
    assert imgs.shape == (5, 1, 8, 8) and float(imgs.min()) >= 0 and float(imgs.max()) <= 1
    with torch.no_grad():
        z31 = float(m.eval().encode(x[None])[0, 31])
    assert values[2] == pytest.approx(z31, abs=1e-5)
    assert np.diff(values) == pytest.approx([0.5] * 4)
    with pytest.raises(ConfigError, match="dimension 40 of the 32-dim latent") as exc:
        traversal(m, x, dim=40)
    assert "0..31" in str(exc.value)
    grid, vi, vj = traversal_grid(m, x, (0, 5), n_steps=3)
    assert grid.shape == (9, 1, 8, 8) and vi.shape == vj.shape == (3,)
    with pytest.raises(ConfigError):
        traversal_grid(m, x, (3, 3))
    a, b = torch.rand(1, 8, 8), torch.rand(1, 8, 8)
    path, t = interpolate(m, a, b, n_steps=4)
    assert t.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    with torch.no_grad():
        ends = m.reconstruct(torch.stack([a, b]))
    torch.testing.assert_close(path[[0, -1]], ends, atol=1e-5, rtol=0)
    with pytest.raises(DataError, match="one image"):
        traversal(m, torch.rand(2, 1, 8, 8), dim=0)


def test_prior_samples_need_a_vae():
    ae = create_model("conv_ae", input_shape=(1, 12, 12), latent_dim=2, channels=[4, 8])
    with pytest.raises(ModelError, match="plain autoencoder") as exc:
        prior_samples(ae, 4)
    assert "vae" in str(exc.value)
    vae = create_model("vae", input_shape=(1, 12, 12), latent_dim=2, arch="conv", channels=[4, 8])
    s1 = prior_samples(vae, 6, generator=torch.Generator().manual_seed(3))
    s2 = prior_samples(vae, 6, generator=torch.Generator().manual_seed(3))
    assert s1.shape == (6, 1, 12, 12) and torch.equal(s1, s2)


def test_latent_noise_robustness_grows_with_noise():
    m = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=4)
    x = torch.rand(40, 1, 8, 8)
    res = latent_noise_robustness(m, x, scales=[0, 0.5, 5.0], k=3)
    with torch.no_grad():
        base = (m.eval().reconstruct(x) - x).pow(2).flatten(1).mean(1).mean()
    assert res.mse[0] == pytest.approx(float(base), rel=1e-4)
    assert res.mse[2] > res.mse[0]
    assert res.examples.shape == (3, 3, 1, 8, 8) and res.originals.shape == (3, 1, 8, 8)
    assert [r["noise_scale"] for r in res.rows()] == [0, 0.5, 5.0]
    with pytest.raises(ConfigError):
        latent_noise_robustness(m, x, scales=[-1])


def test_kernels_and_activation_maps():
    m = create_model("conv_ae", input_shape=(1, 12, 12), latent_dim=2, channels=[4, 8])
    layers = conv_kernels(m)
    names = [layer.name for layer in layers]
    assert names[0] == "encoder.stage0.0" and layers[0].weights.shape == (4, 1, 3, 3)
    transposed = [layer for layer in layers if layer.kind == "ConvTranspose2d"]
    assert transposed and transposed[0].weights.shape[:2] == (4, 8)  # (out, in) like ordinary convs
    acts = activation_maps(m, torch.rand(1, 12, 12))
    assert [a.name for a in acts] == names and acts[0].values.shape == (4, 6, 6)
    assert all(not mod._forward_hooks for mod in m.modules())  # hooks removed
    fc = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2)
    with pytest.raises(ModelError, match="no convolution"):
        conv_kernels(fc)
    with pytest.raises(ModelError):
        activation_maps(fc, torch.rand(1, 8, 8))


def test_plots_write_valid_pngs(tmp_path):
    rng = np.random.default_rng(0)
    xy, labels = rng.normal(size=(200, 2)), np.arange(200) % 10
    _png_ok(plots.plot_embedding(xy, tmp_path / "ten.png", labels=labels, label_names=[f"c{i}" for i in range(10)]))
    _png_ok(plots.plot_embedding(xy, tmp_path / "bin.png", labels=labels < 5, color_by="binary", attribute="top"))
    _png_ok(plots.plot_embedding_panels([(xy, "a"), (xy, "b")], tmp_path / "dom.png", labels=labels % 2,
                                        color_by="domain", label_names=["fashion", "mnist"]))
    _png_ok(plots.plot_image_grid(torch.rand(12, 3, 8, 8), tmp_path / "grid.png", ncols=4,
                                  row_labels=["a", "b", "c"]))
    with pytest.raises(DataError):
        plots.plot_embedding(np.zeros((5, 1)), tmp_path / "bad.png")
    with pytest.raises(DataError):
        plots.plot_embedding(xy, tmp_path / "bad.png", labels=labels[:3])


# ----------------------------------------------------------------------------------------
# the pipeline and the CLI
# ----------------------------------------------------------------------------------------
def test_analyze_autoencoder_run(tiny_runs):
    run = tiny_runs["ae"]
    index = analyze(run, method=["pca", "kpca"], dims=[1, 0], device="cpu")
    keys = [i["key"] for i in index["items"]]
    for key in ("embeddings:test:pca", "embeddings:test:kpca", "embeddings:test:latent2d", "traversal",
                "interpolation", "robustness", "kernels", "activations", "scores:test"):
        assert key in keys
    assert "samples" not in keys and any(s["what"] == "samples" for s in index["skipped"])
    assert index["code_size"] == 2
    on_disk = json.loads((run / "analysis" / "index.json").read_text())
    assert [i["key"] for i in on_disk["items"]] == keys or set(keys) <= {i["key"] for i in on_disk["items"]}
    for item in index["items"]:
        for rel in item["files"]:
            p = run / "analysis" / rel
            assert p.exists(), rel
            if p.suffix == ".png":
                _png_ok(p)
    npz = np.load(run / "analysis" / "embeddings" / "test_pca.npz")
    rows = (run / "analysis" / "embeddings" / "test_pca.csv").read_text().splitlines()
    assert npz["coords"].shape == (len(rows) - 1, 2) and rows[0] == "index,domain,label,pc1,pc2"
    assert len(npz["labels"]) == len(npz["indices"]) == npz["coords"].shape[0]


def test_analyze_explicit_requests_the_model_cannot_do(tiny_runs):
    run = tiny_runs["ae"]
    with pytest.raises(ModelError, match="plain autoencoder"):
        analyze(run, what=["samples"], device="cpu")
    with pytest.raises(ConfigError, match="dimension 40"):
        analyze(run, what=["traversal"], dims=[40], device="cpu")
    with pytest.raises(ConfigError, match="unknown analysis"):
        analyze(run, what=["colours"])
    with pytest.raises(ConfigError, match="binary_classes"):
        analyze(run, what=["embeddings"], color_by="binary")


def test_analyze_vae_samples_binary_colouring_and_subsampling(tiny_runs, caplog):
    run = tiny_runs["vae"]
    with caplog.at_level(logging.WARNING, logger="reprlab.capabilities.analysis.pipeline"):
        index = analyze(run, what=["embeddings", "samples", "traversal"], method="tsne", max_points=20,
                        color_by="binary", binary_classes=[0], attribute="top blob", n_samples=8, device="cpu")
    assert "analysing 20 of 24 test images" in caplog.text
    assert {i["key"] for i in index["items"]} >= {"embeddings:test:tsne", "samples", "traversal"}
    assert index["n_points"] == 20
    _png_ok(run / "analysis" / "samples.png")


def test_cli_analyze(tiny_runs, capsys):
    from reprlab.cli import main

    run = tiny_runs["vae"]
    assert main(["analyze", str(run), "--what", "interpolation", "robustness", "--device", "cpu"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == str(run / "analysis" / "index.json") and any(line.startswith("Interpolation:") for line in out)


def test_cli_analyze_bad_input_is_one_line_exit_2(tiny_runs, capsys):
    from reprlab.cli import main

    assert main(["analyze", str(tiny_runs["vae"]), "--what", "traversal", "--dims", "40", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot traverse dimension 40 of the 3-dim latent")
    assert "Fix: choose a dimension in 0..2" in err[-1] and "Traceback" not in "".join(err)
    assert main(["analyze", str(tiny_runs["ae"]), "--what", "samples", "--device", "cpu"]) == 2
    assert "plain autoencoder" in capsys.readouterr().err


@pytest.mark.realdata
def test_fashion_mnist_embeddings_separate_classes(real_data_dir):
    """2,000 real Fashion-MNIST images encoded; 1,000 mapped, 1,000 placed into the map: classes separate."""
    from sklearn.neighbors import KNeighborsClassifier

    from reprlab.data import load_dataset

    data = load_dataset("fashion-mnist", "test", data_dir=str(real_data_dir), download=False)
    data = data.subset(torch.arange(2000))
    m = create_model("conv_ae", input_shape=data.shape, latent_dim=16, channels=[8, 16])  # untrained encoder
    codes = encode_dataset(m, data, batch_size=500)
    assert codes.shape == (2000, 16)
    y = data.labels.numpy()
    for method in ("pca", "tsne"):
        r = Reducer(method, 2, random_state=0)
        xy_fit = r.fit_transform(codes[:1000])
        xy_new = r.transform(codes[1000:])  # t-SNE: placed into the existing map
        assert xy_new.shape == (1000, 2) and np.isfinite(xy_new).all()
        acc = KNeighborsClassifier(10).fit(xy_fit, y[:1000]).score(xy_new, y[1000:])
        assert acc > (0.35 if method == "pca" else 0.5), (method, acc)
