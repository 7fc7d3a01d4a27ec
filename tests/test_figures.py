"""Tests of reprlab.reporting.figures / style: files exist, are valid PNGs of sane size."""

from __future__ import annotations

import csv

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from reprlab.data.dataset import ImageData
from reprlab.base.errors import DataError, ReprlabError
from reprlab.evaluation import evaluate_reconstruction
from reprlab.models.base import ModelConfig
from reprlab.reporting import figures as figures_module
from reprlab.reporting.figures import (
    loss_panels,
    plot_loss_curves,
    plot_reconstructions,
    plot_score_histogram,
    save_reconstruction_figures,
)
from conftest import LinearAE
from reprlab.reporting.style import (OKABE_ITO, PAGE_WIDTH, category_style, color, new_figure, save_figure,
                                    style_context)


def _check_png(path, *, min_px: int = 100, max_px: int = 3000) -> tuple[int, int]:
    assert path.exists() and path.suffix == ".png"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
    assert min_px <= w <= max_px and min_px // 2 <= h <= max_px, (w, h)
    return w, h


def _no_temp_files(folder) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def _rows(val: bool = True, n: int = 6) -> list[dict]:
    rows = []
    for e in range(n):
        r = {"epoch": e, "train/loss": 1.0 / (e + 1), "train/mse": 0.1 / (e + 1),
             "train/kl": 5.0 + e, "lr": 1e-3, "time_s": 1.2}
        if val:
            r.update({"val/loss": 1.2 / (e + 1), "val/mse": 0.12 / (e + 1), "val/kl": 5.5 + e})
        rows.append(r)
    return rows


# ----------------------------------------------------------------------------------------
# style
# ----------------------------------------------------------------------------------------
def test_style_does_not_leak_or_switch_backend(tmp_path) -> None:
    backend = matplotlib.get_backend()
    before = dict(matplotlib.rcParams)
    with style_context():
        fig = new_figure(width=20, height=2)  # capped at the page width
        assert fig.get_size_inches()[0] == pytest.approx(PAGE_WIDTH)
        fig.add_subplot().plot([0, 1], [0, 1])
        save_figure(fig, tmp_path / "x.png")
    _check_png(tmp_path / "x.png")
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == before
    assert color("train") == OKABE_ITO["blue"] and color("val") == OKABE_ITO["orange"]


# ----------------------------------------------------------------------------------------
# loss curves
# ----------------------------------------------------------------------------------------
def test_loss_curves_train_and_val(tmp_path) -> None:
    path = plot_loss_curves(_rows(), tmp_path / "curves.png")
    w, _ = _check_png(path)
    assert w <= PAGE_WIDTH * 150 + 10
    assert _no_temp_files(tmp_path)


def test_loss_curves_missing_val_columns(tmp_path) -> None:
    _check_png(plot_loss_curves(_rows(val=False), tmp_path / "train_only.png"))


def test_loss_curves_from_csv_strings_with_empty_cells(tmp_path) -> None:
    """Rows as csv.DictReader gives them: strings, blanks where val was not computed."""
    rows = _rows()
    for i, r in enumerate(rows):
        if i % 2:
            r["val/loss"] = ""
            r["val/kl"] = "nan"
    fields = sorted({k for r in rows for k in r})
    with open(tmp_path / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    with open(tmp_path / "metrics.csv", newline="") as fh:
        read = list(csv.DictReader(fh))
    _check_png(plot_loss_curves(read, tmp_path / "curves.png"))


def test_loss_curves_single_epoch_and_no_epoch_column(tmp_path) -> None:
    _check_png(plot_loss_curves([{"epoch": "0", "train/loss": "0.5"}], tmp_path / "one.png"))
    rows = [{"train/loss": v, "val/loss": None} for v in (3.0, 2.0, 1.0)]
    _check_png(plot_loss_curves(rows, tmp_path / "noepoch.png"))


def test_loss_curves_reject_empty_input(tmp_path) -> None:
    with pytest.raises(ReprlabError, match="no metrics rows"):
        plot_loss_curves([], tmp_path / "x.png")
    with pytest.raises(ReprlabError, match="train/"):
        plot_loss_curves([{"epoch": 1, "lr": 0.1}], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


# ----------------------------------------------------------------------------------------
# reconstructions
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
def test_plot_reconstructions_gray_and_rgb(tmp_path, channels: int) -> None:
    x = torch.rand(8, channels, 16, 16)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    path = plot_reconstructions(x, y, tmp_path / "rec.png", titles=[f"#{i}" for i in range(8)],
                                suptitle="Reconstructions")
    w, h = _check_png(path)
    assert w > h  # two rows of eight images
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    assert arr.std() > 5  # not blank


def test_plot_reconstructions_numpy_and_given_mse(tmp_path) -> None:
    x = np.random.rand(3, 1, 10, 10).astype(np.float32)
    _check_png(plot_reconstructions(x, x, tmp_path / "r.png", mse=[0.0, 1e-3, 0.123456]))


def test_plot_reconstructions_rejects_bad_input(tmp_path) -> None:
    x = torch.rand(3, 1, 8, 8)
    with pytest.raises(DataError, match="shape"):
        plot_reconstructions(x, torch.rand(2, 1, 8, 8), tmp_path / "r.png")
    with pytest.raises(DataError, match="MSE"):
        plot_reconstructions(x, x, tmp_path / "r.png", mse=[0.1])
    with pytest.raises(DataError, match="titles"):
        plot_reconstructions(x, x, tmp_path / "r.png", titles=["a"])
    with pytest.raises(DataError, match=r"\(k, C, H, W\)"):
        plot_reconstructions(torch.rand(3, 8, 8), torch.rand(3, 8, 8), tmp_path / "r.png")


def test_score_histogram_linear_and_log(tmp_path) -> None:
    _check_png(plot_score_histogram(np.random.rand(200) * 0.05, tmp_path / "h.png"))
    _check_png(plot_score_histogram(10.0 ** np.random.uniform(-6, -1, 200), tmp_path / "hlog.png"))
    with pytest.raises(DataError):
        plot_score_histogram([float("nan")], tmp_path / "bad.png")


@pytest.mark.parametrize("output_range", ["0_1", "-1_1"])
def test_save_reconstruction_figures(tmp_path, output_range: str) -> None:
    torch.manual_seed(0)
    shape = (1, 12, 12)
    model = LinearAE(ModelConfig(input_shape=shape, latent_dim=4, output_range=output_range))
    data = ImageData(torch.randint(0, 256, (20, *shape), dtype=torch.uint8), torch.arange(20) % 4,
                     name="toy", class_names=["a", "b", "c", "d"])
    rep = evaluate_reconstruction(model, data, batch_size=8)
    out_dir = tmp_path / "figures"
    paths = save_reconstruction_figures(model, data, rep, out_dir)
    assert [p.name for p in paths] == ["reconstructions.png", "best.png", "worst.png", "score_histogram.png"]
    for p in paths:
        _check_png(p)
    assert _no_temp_files(out_dir)
    # explicit chosen indices and a small k
    paths2 = save_reconstruction_figures(model, data, rep, tmp_path / "f2", chosen=[3, 19], k=3)
    assert len(paths2) == 4 and all(p.exists() for p in paths2)
    with pytest.raises(DataError, match="chosen"):
        save_reconstruction_figures(model, data, rep, tmp_path / "f3", chosen=[25])


# ----------------------------------------------------------------------------------------
# what a person sees: distinct colours, no overlapping text, native-size samples, no duplicates
# ----------------------------------------------------------------------------------------
def _rgb(hex_colour: str) -> np.ndarray:
    return np.array(matplotlib.colors.to_rgb(hex_colour)) * 255


@pytest.mark.parametrize("n", [10, 12])
def test_first_categories_get_pairwise_distinct_colours(n) -> None:
    """Fashion-MNIST's 10 classes (and up to 12 categories) never share a colour (T-shirt vs Bag)."""
    colours = [category_style(i)[0] for i in range(n)]
    dists = [float(np.linalg.norm(_rgb(a) - _rgb(b))) for i, a in enumerate(colours) for b in colours[i + 1:]]
    assert min(dists) >= 60, (min(dists), colours)


def test_ten_class_embedding_scatter_draws_ten_distinct_colours(tmp_path, monkeypatch) -> None:
    from reprlab.capabilities.analysis import plots

    figs = _captured_figures(monkeypatch, plots)
    xy = np.random.default_rng(0).normal(size=(100, 2))
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    plots.plot_embedding_panels([(xy, "PCA")], tmp_path / "e.png", labels=np.arange(100) % 10, label_names=names)
    collections = [c for c in figs[-1].axes[0].collections if c.get_label() in names]
    colours = {c.get_label(): tuple(np.round(c.get_facecolor()[0][:3] * 255)) for c in collections}
    assert len(colours) == 10 and len(set(colours.values())) == 10, colours
    assert colours["T-shirt/top"] != colours["Bag"]


def _captured_figures(monkeypatch, module) -> list:
    figs: list = []
    real = module.save_figure

    def capture(fig, path):
        figs.append(fig)
        return real(fig, path)

    monkeypatch.setattr(module, "save_figure", capture)
    return figs


def _text_overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of visible texts whose boxes overlap each other or an image axis (not their own)."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    boxes = [(t.get_text(), t.get_window_extent(r), t.axes) for t in texts]
    images = [(f"image {i}", ax.get_window_extent(r), ax) for i, ax in enumerate(fig.axes) if ax.get_images()]
    hits = []
    for i, (n1, b1, a1) in enumerate(boxes):
        for n2, b2, a2 in boxes[i + 1:] + [im for im in images if im[2] is not a1]:
            if b1.overlaps(b2) and min(b1.x1, b2.x1) - max(b1.x0, b2.x0) > 1 and min(b1.y1, b2.y1) - max(b1.y0, b2.y0) > 1:
                hits.append((n1, n2))
    return hits


@pytest.mark.parametrize("shape", [(112, 92), (20, 12), (12, 20), (28, 28)])
def test_reconstruction_titles_never_overlap_on_non_square_images(tmp_path, monkeypatch, shape) -> None:
    figs = _captured_figures(monkeypatch, figures_module)
    x = torch.rand(8, 1, *shape, generator=torch.Generator().manual_seed(0))
    plot_reconstructions(x, x.flip(0), tmp_path / "r.png", titles=[f"#{i}\nAnkle boot" for i in range(8)],
                         suptitle="Best 8 reconstructions (lowest MSE)")
    assert _text_overlaps(figs[-1]) == []


@pytest.mark.parametrize("shape,n", [((1, 112, 92), 16), ((1, 28, 28), 64), ((3, 20, 12), 8)])
def test_prior_sample_grid_is_drawn_at_least_at_native_size(tmp_path, monkeypatch, shape, n) -> None:
    from reprlab.capabilities.analysis import plots

    figs = _captured_figures(monkeypatch, plots)
    plots.plot_image_grid(torch.rand(n, *shape), tmp_path / "samples.png", ncols=8,
                          title=f"{n} samples from the prior N(0, I)")
    fig = figs[-1]
    fig.canvas.draw()
    ax = fig.axes[0]
    drawn = ax.get_window_extent(fig.canvas.get_renderer())  # at the saved dpi (savefig.dpi == figure dpi)
    mosaic_h, mosaic_w = ax.get_images()[0].get_array().shape[:2]
    assert drawn.width >= mosaic_w - 0.5 and drawn.height >= mosaic_h - 0.5, (drawn, mosaic_w, mosaic_h)


def test_loss_and_mse_are_one_panel_for_a_plain_autoencoder(tmp_path) -> None:
    ae_rows = [{"epoch": e, "train/loss": 1 / (e + 1), "train/mse": 1 / (e + 1), "val/loss": 2 / (e + 1),
                "val/mse": 2 / (e + 1)} for e in range(3)]
    panels = loss_panels(ae_rows)
    assert [p[0] for p in panels] == ["loss"] and panels[0][1] == "Loss (= mean squared error)"
    _check_png(plot_loss_curves(ae_rows, tmp_path / "ae.png"))
    # a VAE's loss differs from its MSE: both panels stay
    assert [p[0] for p in loss_panels(_rows())] == ["loss", "mse", "kl"]
    # equal on train but not on val: not a duplicate
    rows = [dict(r, **{"val/mse": 0.5}) for r in ae_rows]
    assert [p[0] for p in loss_panels(rows)] == ["loss", "mse"]
