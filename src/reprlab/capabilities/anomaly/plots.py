"""Figures of anomaly detection: ROC curves, score histograms, most/least anomalous images.

All figures use the house style of :mod:`reprlab.reporting.style` (Agg canvas, no pyplot,
no global backend switch) and are saved atomically as PNG.

Example:
    >>> import numpy as np
    >>> y = np.array([0] * 50 + [1] * 50)
    >>> s = np.concatenate([np.random.default_rng(0).normal(0, 1, 50), np.random.default_rng(1).normal(2, 1, 50)])
    >>> plot_roc_curves({"detector": (y, s)}, "/tmp/reprlab_roc.png").name
    'reprlab_roc.png'
    >>> plot_score_histograms(s, y, "/tmp/reprlab_hist.png", threshold=1.0).name
    'reprlab_hist.png'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reprlab.capabilities.anomaly.metrics import auroc, roc_points
from reprlab.base.errors import DataError
from reprlab.reporting.style import OKABE_ITO, PAGE_WIDTH, bare_axis, color, new_figure, save_figure, style_context
from reprlab.evaluation.reconstruction import reconstruct01

logger = logging.getLogger(__name__)

__all__ = ["plot_extremes", "plot_roc_curves", "plot_score_histograms", "save_detection_figures"]

NORMAL_COLOR = OKABE_ITO["blue"]
ANOMALY_COLOR = OKABE_ITO["vermillion"]


def plot_roc_curves(curves: Mapping[str, tuple[Any, Any]], path: str | os.PathLike, *, title: str = "") -> Path:
    """ROC curves, one per entry ``name -> (labels, scores)`` (1 = anomaly), AUC in the legend.

    Example:
        >>> plot_roc_curves({"a": ([0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6])}, "/tmp/roc1.png").suffix
        '.png'
    """
    if not curves:
        raise DataError("no ROC curves to plot", fix="pass at least one name -> (labels, scores) entry")
    with style_context():
        fig = new_figure(width=4.0, height=3.6)
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color=color("median"), linestyle=":", linewidth=1.0, label="chance (AUC 0.5)")
        for i, (name, (labels, scores)) in enumerate(curves.items()):
            fpr, tpr = roc_points(labels, scores)
            ax.plot(fpr, tpr, color=color(i), label=f"{name} (AUC {auroc(labels, scores):.3f})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("false-positive rate (normal images flagged)")
        ax.set_ylabel("true-positive rate (anomalies flagged)")
        ax.set_title(title or "ROC curve")
        ax.legend(loc="lower right")
        fig.tight_layout()
        return save_figure(fig, path)


def plot_score_histograms(scores: Any, labels: Any, path: str | os.PathLike, *, threshold: float | None = None,
                          title: str = "", score_label: str = "anomaly score") -> Path:
    """Histograms of the scores of normal and anomalous test images (same bins), threshold marked.

    ``labels`` may be ``None`` (one histogram of all scores). Each histogram is normalised
    to unit area, so a rare class stays visible.

    Example:
        >>> plot_score_histograms([0.1, 0.2, 0.9], None, "/tmp/hist1.png").name
        'hist1.png'
    """
    s = np.asarray(scores, dtype=float).reshape(-1)
    if s.size == 0 or not np.isfinite(s).all():
        raise DataError("scores must be a non-empty array of finite numbers", fix="score at least one image")
    bins = np.histogram_bin_edges(s, bins=min(60, max(10, int(np.sqrt(s.size)))))
    with style_context():
        fig = new_figure(width=5.0, height=3.0)
        ax = fig.add_subplot()
        if labels is None:
            ax.hist(s, bins=bins, color=color("test"), alpha=0.85, label=f"test images ({s.size})")
        else:
            y = np.asarray(labels).reshape(-1)
            if y.size != s.size:
                raise DataError(f"{y.size} labels for {s.size} scores", fix="pass one label per score")
            for value, name, col in ((0, "normal", NORMAL_COLOR), (1, "anomalous", ANOMALY_COLOR)):
                part = s[y == value]
                if part.size:
                    ax.hist(part, bins=bins, density=True, color=col, alpha=0.55, label=f"{name} ({part.size})",
                            edgecolor="white", linewidth=0.3)
            ax.set_ylabel("density")
        if labels is None:
            ax.set_ylabel("images")
        if threshold is not None:
            ax.axvline(float(threshold), color=color("median"), linestyle="--", label=f"threshold {threshold:.3g}")
        ax.set_xlabel(f"{score_label} (higher = more anomalous)")
        ax.set_title(title or "Scores of the test images")
        ax.legend(loc="best")
        fig.tight_layout()
        return save_figure(fig, path)


def _to_display(x: Any) -> np.ndarray:
    arr = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
    arr = np.nan_to_num(arr, nan=0.0).clip(0.0, 1.0)
    return arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)


def plot_extremes(images01: Any, scores: Sequence[float], path: str | os.PathLike, *,
                  reconstructions01: Any = None, titles: Sequence[str] | None = None, suptitle: str = "") -> Path:
    """A row of images (and a row of their reconstructions), each labelled with its score.

    ``images01``: ``(k, C, H, W)`` in [0, 1]; ``scores``: one per image; ``titles``: one
    per image (e.g. the index and class).

    Example:
        >>> import torch
        >>> plot_extremes(torch.rand(3, 1, 8, 8), [3.0, 2.0, 1.0], "/tmp/ext.png",
        ...               reconstructions01=torch.rand(3, 1, 8, 8)).name
        'ext.png'
    """
    imgs = _to_display(images01)
    k = imgs.shape[0]
    recs = None if reconstructions01 is None else _to_display(reconstructions01)
    vals = [float(v) for v in scores]
    if len(vals) != k or (recs is not None and recs.shape != imgs.shape) or (titles is not None and len(titles) != k):
        raise DataError(f"{k} images need as many scores, titles and reconstructions",
                        fix="pass one score (and title, reconstruction) per image")
    rows = 1 if recs is None else 2
    cell = min(1.0, (PAGE_WIDTH - 0.5) / k)
    with style_context():
        fig = new_figure(width=0.5 + cell * k, height=rows * cell + 0.75 + (0.3 if suptitle else 0.0))
        axes = fig.subplots(rows, k, squeeze=False)
        for j in range(k):
            for i in range(rows):
                ax = axes[i][j]
                img = imgs[j] if i == 0 else recs[j]  # type: ignore[index]
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
                bare_axis(ax)
            if titles is not None:
                axes[0][j].set_title(str(titles[j]), fontsize=6.5)
            axes[rows - 1][j].set_xlabel(f"score {vals[j]:.3g}", fontsize=6.5)
        axes[0][0].set_ylabel("image", fontsize=8)
        if recs is not None:
            axes[1][0].set_ylabel("reconstruction", fontsize=8)
        if suptitle:
            fig.suptitle(suptitle)
        fig.tight_layout(pad=0.3, w_pad=0.2, h_pad=0.4)
        return save_figure(fig, path)


def save_detection_figures(result: Any, figures_dir: str | os.PathLike, *, model: nn.Module | None = None,
                           k: int = 8, score_label: str = "anomaly score") -> list[Path]:
    """Write ``roc_curve.png`` (if labelled), ``score_histogram.png``, ``most_anomalous.png``, ``least_anomalous.png``.

    ``result`` is a :class:`~reprlab.capabilities.anomaly.protocols.DetectionResult` with its test
    images; ``model`` (default: the detector's) draws the reconstructions under the images.

    Example:
        >>> # res = detect(normal, test, test_labels=y, detector={"score": "mse"})
        >>> # save_detection_figures(res, "out/figures")
    """

    figures_dir = Path(figures_dir)
    paths: list[Path] = []
    scores = np.asarray(result.scores, dtype=float)
    labelled = result.labels is not None and 0 < int(np.sum(result.labels)) < len(result.labels)
    if labelled:
        paths.append(plot_roc_curves({score_label: (result.labels, scores)}, figures_dir / "roc_curve.png"))
    paths.append(plot_score_histograms(scores, result.labels, figures_dir / "score_histogram.png",
                                       threshold=result.threshold, score_label=score_label))
    test = result.test
    if test is None:
        return paths
    if model is None and result.detector is not None:
        model = getattr(result.detector, "model_", None)
    order = np.argsort(scores, kind="stable")
    k = max(1, min(int(k), len(order)))
    for name, idx, what in (("most_anomalous.png", order[::-1][:k], "Most anomalous"),
                            ("least_anomalous.png", order[:k], "Least anomalous")):
        index = torch.as_tensor(idx.copy(), dtype=torch.long)
        x01 = test.float01(index)
        recs = reconstruct01(model, x01) if model is not None and hasattr(model, "reconstruct") else None
        titles = []
        for i in idx:
            t = f"#{int(i)}"
            if result.labels is not None:
                t += "\nanomaly" if int(result.labels[i]) else "\nnormal"
            titles.append(t)
        paths.append(plot_extremes(x01, scores[idx], figures_dir / name, reconstructions01=recs, titles=titles,
                                   suptitle=f"{what} {k} test images"))
    logger.info("wrote %d anomaly figures to %s", len(paths), figures_dir)
    return paths
