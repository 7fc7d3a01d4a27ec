"""Figures for training runs: loss curves, reconstructions, best/worst images, score histogram.

Every function builds its figure with :mod:`reprlab.reporting.style` (Agg canvas, no
global backend switch) and saves a PNG atomically.

Example:
    >>> rows = [{"epoch": 1, "train/loss": 0.9, "val/loss": 1.0},
    ...         {"epoch": 2, "train/loss": 0.5, "val/loss": 0.7}]
    >>> plot_loss_curves(rows, "/tmp/reprlab_curves.png").name
    'reprlab_curves.png'
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reprlab.data.dataset import ImageData
from reprlab.base.errors import DataError, ReprlabError
from reprlab.evaluation.reconstruction import ReconstructionReport, reconstruct01
from reprlab.reporting.style import PAGE_WIDTH, bare_axis, category_style, color, new_figure, save_figure, style_context

logger = logging.getLogger(__name__)

__all__ = [
    "loss_panels",
    "plot_loss_curves",
    "plot_reconstructions",
    "plot_score_histogram",
    "save_reconstruction_figures",
]

# Splits whose columns are drawn as curves, in drawing order.
_SPLITS: tuple[str, ...] = ("train", "val", "test")

# Pretty titles and y-axis labels (with units) of known loss terms.
_TERM_LABELS: dict[str, tuple[str, str]] = {
    "loss": ("Loss", "objective (per image)"),
    "mse": ("Mean squared error", "MSE (per pixel)"),
    "l1": ("Mean absolute error", "L1 (per pixel)"),
    "bce": ("Binary cross-entropy", "BCE (nats / image)"),
    "nll": ("Negative log-likelihood", "NLL (nats / image)"),
    "kl": ("KL divergence", "KL (nats / image)"),
    "elbo": ("ELBO", "ELBO (nats / image)"),
    "elbo_nats": ("ELBO", "ELBO (nats / image)"),
    "psnr": ("PSNR", "PSNR (dB)"),
    "ssim": ("SSIM", "SSIM (unitless)"),
    "beta": ("KL weight", "beta (unitless)"),
}


# ----------------------------------------------------------------------------------------
# loss curves
# ----------------------------------------------------------------------------------------
def _to_float(value: Any) -> float:
    """Parse a metrics.csv cell; empty / missing / unparsable cells become NaN."""
    if value is None:
        return math.nan
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean()) if value.numel() else math.nan
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _term_label(term: str) -> tuple[str, str]:
    if term in _TERM_LABELS:
        return _TERM_LABELS[term]
    return (term.replace("_", " "), term)


def _duplicates_of_loss(rows: Sequence[Mapping[str, Any]], terms: Sequence[str]) -> dict[str, str]:
    """Terms whose curves equal the ``loss`` curves in every split (a plain autoencoder's ``mse``).

    Example:
        >>> _duplicates_of_loss([{"train/loss": "0.5", "train/mse": "0.5"}], ["loss", "mse"])
        {'mse': 'loss'}
    """
    if "loss" not in terms:
        return {}
    out = {}
    for term in terms:
        if term == "loss":
            continue
        seen = False
        for split in _SPLITS:
            a = np.array([_to_float(r.get(f"{split}/loss")) for r in rows], dtype=float)
            b = np.array([_to_float(r.get(f"{split}/{term}")) for r in rows], dtype=float)
            if not np.array_equal(np.isfinite(a), np.isfinite(b)) or not np.allclose(
                    a[np.isfinite(a)], b[np.isfinite(b)], rtol=1e-6, atol=1e-12):
                break
            seen = seen or bool(np.isfinite(a).any())
        else:
            if seen:
                out[term] = "loss"
    return out


def loss_panels(metrics_rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """The panels :func:`plot_loss_curves` draws: ``(term, title, y label)`` in drawing order.

    Terms are the ``<split>/<term>`` columns (splits train/val/test). A term whose curves
    equal the ``loss`` curves in every split (``mse`` of a plain autoencoder) gets no panel
    of its own: the loss panel is titled ``"Loss (= mean squared error)"``.

    Example:
        >>> loss_panels([{"train/loss": "0.5", "train/mse": "0.5", "train/kl": "0.1"}])
        [('loss', 'Loss (= mean squared error)', 'MSE (per pixel)'), ('kl', 'KL divergence', 'KL (nats / image)')]
    """
    rows = list(metrics_rows)
    if not rows:
        raise ReprlabError("no metrics rows to plot", fix="train for at least one epoch before plotting curves")
    terms: list[str] = []
    for row in rows:
        for key in row:
            split, sep, term = str(key).partition("/")
            if sep and split in _SPLITS and term and term not in terms:
                terms.append(term)
    if not terms:
        raise ReprlabError(f"metrics rows have no 'train/...' or 'val/...' columns (columns: "
                           f"{', '.join(map(str, rows[0]))})",
                           fix="pass the rows of a run's metrics.csv")
    labels = {term: _term_label(term) for term in terms}
    for term in _duplicates_of_loss(rows, terms):
        terms.remove(term)
        title = labels[term][0]
        labels["loss"] = (f"Loss (= {title[:1].lower() + title[1:]})", labels[term][1])
    return [(t, *labels[t]) for t in terms]


def plot_loss_curves(metrics_rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """One panel per loss term with its train and val curves against epoch; saves a PNG.

    ``metrics_rows`` are rows of ``metrics.csv`` (``csv.DictReader`` strings or numbers)
    with keys such as ``"epoch"``, ``"train/loss"``, ``"val/loss"``, ``"train/mse"``,
    ``"val/kl"``. Columns ``"<split>/<term>"`` for splits train/val/test are plotted;
    other columns (``lr``, ``time``...) are ignored. Missing or empty cells are skipped,
    so runs without validation just show the train curve. Without an ``epoch`` column
    the row number (from 1) is used. Terms spanning more than two decades, all
    positive, get a log y-axis. A term whose curves equal the ``loss`` curves in every
    split (``mse`` of a plain autoencoder) is not drawn twice: the loss panel is titled
    ``"Loss (= mean squared error)"`` instead.

    Raises :class:`ReprlabError` when there are no rows or no ``split/term`` columns.

    Example:
        >>> plot_loss_curves([{"epoch": "1", "train/loss": "0.5"}], "/tmp/c.png").suffix
        '.png'
    """
    rows = list(metrics_rows)
    if not rows:
        raise ReprlabError("no metrics rows to plot", fix="train for at least one epoch before plotting curves")
    panels = loss_panels(rows)
    terms = [t for t, _, _ in panels]
    labels = {t: (title, ylabel) for t, title, ylabel in panels}
    epochs = np.array([_to_float(r.get("epoch")) for r in rows], dtype=float)
    if np.isnan(epochs).all():
        epochs = np.arange(1, len(rows) + 1, dtype=float)

    ncols = min(3, len(terms))
    nrows = math.ceil(len(terms) / ncols)
    with style_context():
        fig = new_figure(width=PAGE_WIDTH, height=0.6 + 2.2 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for i, term in enumerate(terms):
            ax = axes[i // ncols][i % ncols]
            title, ylabel = labels[term]
            all_values: list[np.ndarray] = []
            for split in _SPLITS:
                key = f"{split}/{term}"
                values = np.array([_to_float(r.get(key)) for r in rows], dtype=float)
                ok = np.isfinite(values) & np.isfinite(epochs)
                if not ok.any():
                    continue
                x, y = epochs[ok], values[ok]
                order = np.argsort(x, kind="stable")
                x, y = x[order], y[order]
                ax.plot(x, y, label=split, color=color(split),
                        marker="o" if len(x) <= 25 else None, linestyle="-" if split == "train" else "--")
                all_values.append(y)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            if all_values:
                ys = np.concatenate(all_values)
                if (ys > 0).all() and ys.max() / ys.min() > 100:
                    ax.set_yscale("log")
                ax.legend(loc="best")
            else:
                ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
            ax.xaxis.get_major_locator().set_params(integer=True)
        for j in range(len(terms), nrows * ncols):
            axes[j // ncols][j % ncols].set_visible(False)
        fig.tight_layout()
        return save_figure(fig, path)


# ----------------------------------------------------------------------------------------
# reconstructions
# ----------------------------------------------------------------------------------------
def _as_images(x: Any, what: str) -> np.ndarray:
    """``(k, C, H, W)`` tensor/array in [0, 1] -> float array ``(k, H, W)`` or ``(k, H, W, 3)``."""
    arr = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[1] not in (1, 3) or arr.shape[0] == 0:
        raise DataError(f"{what} must have shape (k, C, H, W) with k >= 1 and C in (1, 3), got {arr.shape}",
                        fix="pass a batch of grayscale or RGB images in [0, 1]")
    arr = np.nan_to_num(arr.astype(np.float32), nan=0.0).clip(0.0, 1.0)
    return arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)


def plot_reconstructions(originals01: Any, reconstructions01: Any, path: str | os.PathLike, *,
                         titles: Sequence[str] | None = None, mse: Iterable[float] | None = None,
                         suptitle: str = "") -> Path:
    """Originals (top row) over reconstructions (bottom row), each labelled with its MSE.

    Images are ``(k, C, H, W)`` (C = 1 or 3) tensors or arrays in ``[0, 1]``. ``mse``
    gives the per-image scores printed under the reconstructions (3 significant digits);
    by default they are computed from the images. ``titles`` label the columns.

    Example:
        >>> import torch
        >>> x = torch.rand(4, 1, 8, 8)
        >>> plot_reconstructions(x, x.flip(0), "/tmp/r.png", titles=list("abcd")).name
        'r.png'
    """
    orig = _as_images(originals01, "originals01")
    rec = _as_images(reconstructions01, "reconstructions01")
    if orig.shape != rec.shape:
        raise DataError(f"originals {orig.shape} and reconstructions {rec.shape} differ in shape",
                        fix="pass one reconstruction per original, same size")
    k = orig.shape[0]
    if mse is None:
        mse_values = [float(((o - r) ** 2).mean()) for o, r in zip(orig, rec)]
    else:
        mse_values = [float(v) for v in mse]
        if len(mse_values) != k:
            raise DataError(f"{len(mse_values)} MSE values for {k} images", fix="pass one MSE per image")
    if titles is not None and len(titles) != k:
        raise DataError(f"{len(titles)} titles for {k} images", fix="pass one title per image")

    # Cells follow the images' aspect ratio (faces are taller than wide), and the
    # constrained layout reserves room for the column titles, the MSE labels and the
    # suptitle, so no text overlaps another or an image whatever the image shape.
    h_px, w_px = orig.shape[1], orig.shape[2]
    cell = min(1.1, (PAGE_WIDTH - 0.4) / k)
    cell_h = cell * h_px / w_px
    title_lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    height = 2 * cell_h + 0.35 + 0.13 * title_lines + (0.3 if suptitle else 0.0)
    gray = orig.ndim == 3
    with style_context():
        fig = new_figure(width=0.4 + cell * k, height=height)
        fig.set_layout_engine("constrained", w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
        axes = fig.subplots(2, k, squeeze=False)
        for j in range(k):
            for i, img in enumerate((orig[j], rec[j])):
                ax = axes[i][j]
                if gray:
                    ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                else:
                    ax.imshow(img, interpolation="nearest")
                bare_axis(ax)
            if titles is not None:
                axes[0][j].set_title(str(titles[j]), fontsize=7)
            axes[1][j].set_xlabel(f"MSE {mse_values[j]:.3g}", fontsize=7)
        axes[0][0].set_ylabel("original", fontsize=8)
        axes[1][0].set_ylabel("reconstruction", fontsize=8)
        if suptitle:
            fig.suptitle(suptitle)
        return save_figure(fig, path)


def plot_score_histogram(values: Any, path: str | os.PathLike, *, metric: str = "mse",
                         title: str = "") -> Path:
    """Histogram of per-image scores with mean and median marked; saves a PNG.

    Scores spanning more than two decades (all positive) get log-spaced bins.

    Example:
        >>> import numpy as np
        >>> plot_score_histogram(np.random.rand(50) / 10, "/tmp/h.png").name
        'h.png'
    """
    v = np.asarray(values, dtype=float).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise DataError("no finite scores to plot", fix="evaluate the model on at least one image")
    _, unit_label = _term_label(metric)
    log = bool((v > 0).all() and v.max() / v.min() > 100)
    bins: Any = min(50, max(5, int(np.sqrt(v.size)) * 2))
    if log:
        bins = np.logspace(np.log10(v.min()), np.log10(v.max()), bins + 1)
    with style_context():
        fig = new_figure(width=4.5, height=3.0)
        ax = fig.add_subplot()
        ax.hist(v, bins=bins, color=color("train"), alpha=0.85, edgecolor="white", linewidth=0.4)
        ax.axvline(float(v.mean()), color=color("mean"), linestyle="-", label=f"mean {v.mean():.3g}")
        ax.axvline(float(np.median(v)), color=color("median"), linestyle="--", label=f"median {np.median(v):.3g}")
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(f"{unit_label}, per image")
        ax.set_ylabel("images")
        ax.set_title(title or f"{_term_label(metric)[0]} over {v.size} images")
        ax.legend(loc="best")
        fig.tight_layout()
        return save_figure(fig, path)


def _titles(data: ImageData, indices: Sequence[int]) -> list[str]:
    titles = []
    for idx in indices:
        t = f"#{int(idx)}"
        if data.labels is not None:
            label = int(data.labels[int(idx)])
            names = data.class_names
            t += f"\n{names[label]}" if names is not None and 0 <= label < len(names) else f"\nlabel {label}"
        titles.append(t)
    return titles


def save_reconstruction_figures(model: nn.Module, data: ImageData, report: ReconstructionReport,
                                figures_dir: str | os.PathLike, *, chosen: Sequence[int] | None = None,
                                k: int = 8) -> list[Path]:
    """Write ``reconstructions.png``, ``best.png``, ``worst.png`` and ``score_histogram.png``.

    ``reconstructions.png`` shows ``chosen`` dataset indices (default: the first ``k``
    evaluated images); ``best.png`` / ``worst.png`` the ``k`` lowest / highest-MSE images of
    ``report``. Reconstructions are made with ``model`` (mapped to and from its output
    range, eval mode, no gradients); the histogram shows the report's per-image MSE.
    Returns the written paths.

    Example:
        >>> # rep = evaluate_reconstruction(model, test_data)
        >>> # save_reconstruction_figures(model, test_data, rep, run_dir / "figures")
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ReprlabError(f"k must be a positive integer, got {k!r}", fix="e.g. k=8")
    figures_dir = Path(figures_dir)
    if chosen is None:
        chosen_idx = [int(i) for i in report.indices[:k]]
    else:
        chosen_idx = [int(i) for i in chosen]
        bad = [i for i in chosen_idx if not 0 <= i < len(data)]
        if bad or not chosen_idx:
            raise DataError(f"chosen indices {bad or chosen_idx} are not valid for {len(data)} images",
                            fix=f"choose indices in 0..{len(data) - 1}")

    panels = [
        ("reconstructions.png", chosen_idx, f"Reconstructions ({data.name})"),
        ("best.png", [int(i) for i in report.best(k)], f"Best {min(k, len(report))} reconstructions (lowest MSE)"),
        ("worst.png", [int(i) for i in report.worst(k)], f"Worst {min(k, len(report))} reconstructions (highest MSE)"),
    ]
    paths: list[Path] = []
    for name, idx, suptitle in panels:
        x01 = data.float01(torch.as_tensor(idx, dtype=torch.long))
        xhat01 = reconstruct01(model, x01)
        paths.append(plot_reconstructions(x01, xhat01, figures_dir / name, titles=_titles(data, idx),
                                          suptitle=suptitle))
    paths.append(plot_score_histogram(report.per_image["mse"], figures_dir / "score_histogram.png", metric="mse",
                                      title=f"Per-image reconstruction MSE ({len(report)} {data.name} images)"))
    logger.info("wrote %d reconstruction figures to %s", len(paths), figures_dir)
    return paths


def plot_robustness(curves: Mapping[str, Any], path: str | os.PathLike, *, relative: bool = True,
                    title: str = "Decoder robustness to latent noise") -> Path:
    """Reconstruction MSE against latent noise scale, one curve (± 1 std band) per model.

    ``curves`` maps a model name to a :class:`~reprlab.capabilities.analysis.latent.RobustnessResult` or
    to a dict with ``scales``, ``mse`` and optionally ``mse_std`` sequences.

    Example:
        >>> plot_robustness({"AE": {"scales": [0, 1], "mse": [0.01, 0.05]},
        ...                  "VAE": {"scales": [0, 1], "mse": [0.02, 0.03]}}, "/tmp/rob.png").name
        'rob.png'
    """
    if not curves:
        raise DataError("no robustness curves to plot", fix="pass at least one model's result")
    with style_context():
        fig = new_figure(width=4.8, height=3.2)
        ax = fig.add_subplot()
        for i, (name, res) in enumerate(curves.items()):
            get = (lambda k: res.get(k)) if isinstance(res, Mapping) else (lambda k: getattr(res, k, None))
            s = np.asarray(get("scales"), dtype=float)
            m = np.asarray(get("mse"), dtype=float)
            sd = get("mse_std")
            col, marker = category_style(i)
            ax.plot(s, m, color=col, marker=marker, label=str(name))
            if sd is not None:
                sd = np.asarray(sd, dtype=float)
                ax.fill_between(s, np.maximum(m - sd, 0), m + sd, color=col, alpha=0.15, linewidth=0)
        ax.set_xlabel("noise scale (× per-dimension std of the codes)" if relative else "noise std (latent units)")
        ax.set_ylabel("MSE vs. input (per pixel)")
        ax.set_title(title)
        ax.legend(loc="upper left")
        fig.tight_layout()
        return save_figure(fig, path)
