"""Figures of a clustering, in the house style (:mod:`reprlab.reporting.style`).

* :func:`plot_confusion`: classes x clusters counts, clusters ordered by their matched
  class (the matched points lie on the diagonal), shaded by the row fraction;
* :func:`plot_cluster_scatter`: a 2-D view of the embedding coloured by cluster and, when
  labels exist, by class;
* :func:`plot_checkpoint_curve`: training-set reconstruction MSE against validation
  clustering accuracy, one point per checkpoint;
* :func:`plot_k_selection`: the label-free criterion over the candidate numbers of clusters.

Example:
    >>> import numpy as np
    >>> from reprlab.capabilities.clustering.metrics import aligned_confusion_matrix
    >>> cm = aligned_confusion_matrix([0, 0, 1, 1], [1, 1, 0, 1])
    >>> plot_confusion(cm, "/tmp/reprlab_confusion.png").name
    'reprlab_confusion.png'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import FormatStrFormatter, MaxNLocator

from reprlab.base.errors import DataError
from reprlab.reporting.style import PAGE_WIDTH, category_style, color, new_figure, save_figure, style_context

logger = logging.getLogger(__name__)

__all__ = ["plot_checkpoint_curve", "plot_cluster_scatter", "plot_confusion", "plot_k_selection"]

_style = category_style  # one definition, in reporting.style


def _name(names: Sequence[str] | Mapping[int, str] | None, value: Any, prefix: str) -> str:
    if names is not None:
        try:
            return str(names[int(value)]) if isinstance(names, Sequence) else str(names.get(int(value), value))
        except (IndexError, ValueError, TypeError):
            pass
    return f"{prefix}{value}"


def plot_confusion(confusion: Any, path: str | os.PathLike, *, class_names: Sequence[str] | None = None,
                   title: str = "Clusters against classes") -> Path:
    """Heat map of an :class:`~reprlab.capabilities.clustering.metrics.AlignedConfusion` with counts.

    Cell colour is the fraction of the class (row) in that cluster; the number is the
    count. Columns are labelled ``c<id>`` with the cluster id; the first ``n_matched``
    columns are the clusters matched to the rows' classes.
    """
    m = np.asarray(confusion.matrix)
    if m.ndim != 2 or m.size == 0:
        raise DataError(f"the confusion matrix must be 2-D and non-empty, got shape {m.shape}",
                        fix="build it with aligned_confusion_matrix(labels_true, labels_pred)")
    rows = [_name(class_names, c, "class ") for c in confusion.classes]
    cols = [f"c{int(c)}" if np.issubdtype(np.asarray(confusion.clusters).dtype, np.integer) else str(c)
            for c in confusion.clusters]
    frac = m / np.maximum(m.sum(1, keepdims=True), 1)
    n_r, n_c = m.shape
    with style_context():
        width = min(PAGE_WIDTH, 1.8 + 0.42 * n_c)
        fig = new_figure(width=width, height=1.0 + 0.36 * n_r)
        ax = fig.add_subplot()
        im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        ax.grid(False)
        small = n_c > 12
        for i in range(n_r):
            for j in range(n_c):
                if m[i, j] == 0 and small:
                    continue
                ax.text(j, i, f"{m[i, j]:d}", ha="center", va="center", fontsize=5.5 if small else 6.5,
                        color="white" if frac[i, j] > 0.55 else "black")
        ax.set_xticks(range(n_c), cols, rotation=90 if n_c > 10 else 0, fontsize=7)
        ax.set_yticks(range(n_r), rows, fontsize=7)
        ax.set_xlabel("cluster (matched to the row's class on the diagonal)")
        ax.set_ylabel("class")
        ax.set_title(title)
        cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        cb.set_label("fraction of the class", fontsize=7)
        cb.ax.tick_params(labelsize=7)
        fig.tight_layout()
        return save_figure(fig, path)


def plot_cluster_scatter(coords: Any, clusters: Any, path: str | os.PathLike, *, labels: Any = None,
                         class_names: Sequence[str] | None = None, axis_name: str = "component",
                         title: str = "") -> Path:
    """2-D scatter coloured by cluster, and a second panel coloured by class when ``labels`` are given.

    Example:
        >>> import numpy as np
        >>> xy = np.random.default_rng(0).normal(size=(30, 2))
        >>> plot_cluster_scatter(xy, np.arange(30) % 3, "/tmp/reprlab_scatter.png", labels=np.arange(30) % 2).suffix
        '.png'
    """
    xy = np.asarray(coords, dtype=float)
    if xy.ndim != 2 or xy.shape[1] < 2 or xy.shape[0] == 0:
        raise DataError(f"coords must be (n_points, >=2), got shape {xy.shape}", fix="reduce to 2-D first")
    c = np.asarray(clusters).reshape(-1)
    if c.shape[0] != xy.shape[0]:
        raise DataError(f"{c.shape[0]} cluster labels for {xy.shape[0]} points", fix="pass one cluster per point")
    panels: list[tuple[np.ndarray, str, str, Any]] = [(c, "by cluster", "cluster ", None)]
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        if y.shape[0] != xy.shape[0]:
            raise DataError(f"{y.shape[0]} labels for {xy.shape[0]} points", fix="pass one label per point")
        panels.append((y, "by class (hidden from the clustering)", "class ", class_names))
    n = xy.shape[0]
    size = 1.2 if n > 20000 else (2.5 if n > 3000 else 7.0)
    k = len(panels)
    with style_context():
        fig = new_figure(width=PAGE_WIDTH if k == 2 else 4.2, height=3.3)
        axes = fig.subplots(1, k, squeeze=False)[0]
        for ax, (values, sub, prefix, names) in zip(axes, panels):
            cats = np.unique(values)
            handles = []
            for i, v in enumerate(cats):
                col, marker = _style(i)
                m = values == v
                handles.append(ax.scatter(xy[m, 0], xy[m, 1], s=size, color=col, marker=marker, alpha=0.7,
                                          linewidths=0, rasterized=True, label=_name(names, v, prefix)))
            ax.set_title(sub)
            ax.set_xlabel(f"{axis_name} 1")
            ax.set_ylabel(f"{axis_name} 2")
            ax.tick_params(labelsize=7)
            if len(cats) <= 20:
                ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(5, len(cats)),
                          fontsize=6, markerscale=6 / size, handletextpad=0.1, columnspacing=0.6)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return save_figure(fig, path)


def plot_checkpoint_curve(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *,
                          x_key: str = "train_mse", y_key: str = "val_acc",
                          title: str = "Reconstruction error against clustering accuracy") -> Path:
    """One point per checkpoint: training-set MSE (x) against validation clustering accuracy (y).

    Points are joined in epoch order and labelled with their epoch; a second panel shows
    both against the epoch, so the point where lower MSE stops helping clustering is visible.

    Example:
        >>> rows = [{"epoch": e, "train_mse": 0.05 / e, "val_acc": 0.5 + 0.02 * e} for e in range(1, 5)]
        >>> plot_checkpoint_curve(rows, "/tmp/reprlab_ckpt_curve.png").name
        'reprlab_ckpt_curve.png'
    """
    if not rows:
        raise DataError("no checkpoints to plot", fix="train with train.checkpoint_every=1 so epoch_NNNN checkpoints exist")
    rows = sorted(rows, key=lambda r: r["epoch"])
    ep = np.array([r["epoch"] for r in rows], dtype=float)
    x = np.array([r[x_key] for r in rows], dtype=float)
    y = np.array([r[y_key] for r in rows], dtype=float)
    best = int(np.nanargmax(y))
    with style_context():
        fig = new_figure(width=PAGE_WIDTH, height=2.9)
        ax, ax2 = fig.subplots(1, 2)
        ax.plot(x, y, "-", color=color(0), alpha=0.5, zorder=1)
        sc = ax.scatter(x, y, c=ep, cmap="viridis", s=22, zorder=2, linewidths=0)
        ax.scatter([x[best]], [y[best]], s=80, facecolors="none", edgecolors=color("mean"), linewidths=1.4, zorder=3)
        step = max(1, len(rows) // 8)
        for i in range(0, len(rows), step):
            ax.annotate(f"{int(ep[i])}", (x[i], y[i]), textcoords="offset points", xytext=(3, 3), fontsize=6)
        ax.set_xlabel("training-set reconstruction MSE (per pixel)")
        ax.set_ylabel("validation clustering accuracy")
        ax.invert_xaxis()
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        cb = fig.colorbar(sc, ax=ax, fraction=0.05, pad=0.02)
        cb.set_label("epoch", fontsize=7)
        cb.ax.tick_params(labelsize=7)
        ax2.plot(ep, y, "o-", color=color("val"), label="val accuracy")
        ax2.set_xlabel("epoch")
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.set_ylabel("validation clustering accuracy", color=color("val"))
        twin = ax2.twinx()
        twin.plot(ep, x, "s--", color=color("train"), label="train MSE")
        twin.set_ylabel("training MSE", color=color("train"))
        twin.grid(False)
        twin.spines["right"].set_visible(True)
        ax.set_title(f"MSE falls to the right; ring: best accuracy (epoch {int(ep[best])})", fontsize=8)
        ax2.set_title("both per epoch", fontsize=9)
        fig.suptitle(title)
        fig.tight_layout()
        return save_figure(fig, path)


def plot_k_selection(k_scores: Mapping[int, float], criterion: str, chosen: int, path: str | os.PathLike) -> Path:
    """The label-free criterion for each candidate number of clusters, the chosen one marked.

    Example:
        >>> plot_k_selection({2: 0.3, 3: 0.6, 4: 0.5}, "silhouette", 3, "/tmp/reprlab_k.png").name
        'reprlab_k.png'
    """
    if not k_scores:
        raise DataError("no candidate k to plot", fix="fit with n_clusters='auto'")
    ks = sorted(k_scores)
    vals = [k_scores[k] for k in ks]
    with style_context():
        fig = new_figure(width=4.0, height=2.6)
        ax = fig.add_subplot()
        ax.plot(ks, vals, "o-", color=color(0))
        if chosen in k_scores:
            ax.scatter([chosen], [k_scores[chosen]], s=80, facecolors="none", edgecolors=color("mean"), linewidths=1.5,
                       label=f"chosen k = {chosen}", zorder=3)
            ax.legend(fontsize=7)
        ax.set_xlabel("number of clusters k")
        ax.set_ylabel(f"{criterion} ({'higher' if criterion == 'silhouette' else 'lower'} is better)")
        ax.set_title("Choosing k without labels")
        fig.tight_layout()
        return save_figure(fig, path)
