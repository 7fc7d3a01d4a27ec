"""Figures of the analyses, in the house style of :mod:`reprlab.reporting.style`.

Scatter plots of embeddings (coloured by class label, a binary attribute or a domain,
with a legend; Okabe-Ito colours, and marker shapes once there are more classes than
colours), image grids (traversals, interpolations, samples), robustness curves,
convolution kernels and activation maps. Image grids are drawn as one mosaic per axes,
so a 9x9 traversal is as quick as a single image.

Example:
    >>> import numpy as np
    >>> xy = np.random.default_rng(0).normal(size=(100, 2))
    >>> plot_embedding(xy, "/tmp/reprlab_emb.png", labels=np.arange(100) % 3).name
    'reprlab_emb.png'
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprlab.base.errors import DataError
from reprlab.reporting.figures import plot_robustness  # noqa: F401  (moved there; re-exported)
from reprlab.reporting.style import DPI, PAGE_WIDTH, bare_axis, category_style, color, new_figure, save_figure, style_context

logger = logging.getLogger(__name__)

__all__ = ["plot_activations", "plot_embedding", "plot_embedding_panels", "plot_image_grid", "plot_kernels",
           "plot_robustness", "plot_robustness_examples"]

COLOR_BY: tuple[str, ...] = ("label", "binary", "domain", "none")


# ----------------------------------------------------------------------------------------
# embeddings
# ----------------------------------------------------------------------------------------

def _category_names(values: np.ndarray, color_by: str, names: Sequence[str] | Mapping[int, str] | None,
                    attribute: str) -> list[tuple[Any, str]]:
    cats = list(np.unique(values))
    out = []
    for c in cats:
        if names is not None:
            try:
                label = names[int(c)] if isinstance(names, Sequence) else names.get(int(c), str(c))  # type: ignore[union-attr]
            except (IndexError, KeyError, ValueError, TypeError):
                label = str(c)
        elif color_by == "binary":
            label = f"{attribute} = {'yes' if bool(c) else 'no'}"
        elif color_by == "domain":
            label = f"domain {c}"
        else:
            label = f"class {c}"
        out.append((c, str(label)))
    return out


def _check_coords(coords: Any, what: str = "coords") -> np.ndarray:
    xy = np.asarray(coords, dtype=float)
    if xy.ndim != 2 or xy.shape[1] < 2 or xy.shape[0] == 0:
        raise DataError(f"{what} must be (n_points, >=2), got shape {xy.shape}",
                        fix="reduce the codes to 2-D first (Reducer(n_components=2))")
    return xy


def plot_embedding_panels(panels: Sequence[tuple[Any, str]], path: str | os.PathLike, *, labels: Any = None,
                          color_by: str = "label", label_names: Sequence[str] | Mapping[int, str] | None = None,
                          attribute: str = "attribute", axis_names: Sequence[str] | str = "component",
                          suptitle: str = "") -> Path:
    """Side-by-side scatter plots ``[(coords, title), ...]`` sharing one colour legend.

    ``labels`` (one per point, same for every panel) colour the points; ``color_by`` is
    ``"label"`` (classes, named by ``label_names``), ``"binary"`` (an attribute that is true
    or false, named ``attribute``), ``"domain"`` or ``"none"``. The first two coordinates of
    each panel are drawn; ``axis_names`` label the axes (``"PC"`` gives "PC 1", "PC 2").

    Example:
        >>> import numpy as np
        >>> a = np.random.default_rng(0).normal(size=(50, 2))
        >>> plot_embedding_panels([(a, "one"), (a * 2, "two")], "/tmp/p.png", labels=np.arange(50) % 2,
        ...                       color_by="binary", attribute="upper body").name
        'p.png'
    """
    if color_by not in COLOR_BY:
        raise DataError(f"color_by must be one of {', '.join(COLOR_BY)}, got {color_by!r}",
                        fix="use label, binary, domain or none")
    if not panels:
        raise DataError("no embeddings to plot", fix="pass at least one (coords, title) pair")
    coords = [_check_coords(c, f"panel '{t}'") for c, t in panels]
    n = coords[0].shape[0]
    if any(c.shape[0] != n for c in coords):
        raise DataError("all panels must have the same points", fix="reduce the same points for every panel")
    values = None
    if labels is not None and color_by != "none":
        values = np.asarray(labels).reshape(-1)
        if color_by == "binary":
            values = values.astype(bool).astype(int)
        if values.shape[0] != n:
            raise DataError(f"{values.shape[0]} labels for {n} points", fix="pass one label per point")
    names = [axis_names] * len(panels) if isinstance(axis_names, str) else list(axis_names)
    k = len(panels)
    size = 1.5 if n > 20000 else (3.0 if n > 3000 else 8.0)
    with style_context():
        legend_w = 1.3 if values is not None else 0.0
        width = min(PAGE_WIDTH, 0.3 + 2.9 * k + legend_w)
        fig = new_figure(width=width, height=(width - legend_w) / k + 0.45 + (0.25 if suptitle else 0.0))
        axes = fig.subplots(1, k, squeeze=False)[0]
        handles = []
        for ax, xy, (_, title), axis in zip(axes, coords, panels, names):
            if values is None:
                ax.scatter(xy[:, 0], xy[:, 1], s=size, color=color(0), alpha=0.6, linewidths=0, rasterized=True)
            else:
                handles = []
                for i, (c, label) in enumerate(_category_names(values, color_by, label_names, attribute)):
                    col, marker = category_style(i)
                    m = values == c
                    h = ax.scatter(xy[m, 0], xy[m, 1], s=size, color=col, marker=marker, alpha=0.7, linewidths=0,
                                   label=label, rasterized=True)
                    handles.append(h)
            ax.set_title(title)
            ax.set_xlabel(f"{axis} 1")
            ax.set_ylabel(f"{axis} 2")
            ax.tick_params(labelsize=7)
        if handles:
            title = {"label": "class", "binary": attribute, "domain": "domain"}[color_by]
            fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), title=title,
                       markerscale=max(1.5, (36.0 / size) ** 0.5), fontsize=7, title_fontsize=8)
        if suptitle:
            fig.suptitle(suptitle)
        fig.tight_layout()
        return save_figure(fig, path)


def plot_embedding(coords: Any, path: str | os.PathLike, *, labels: Any = None, color_by: str = "label",
                   label_names: Sequence[str] | Mapping[int, str] | None = None, attribute: str = "attribute",
                   title: str = "Embedding", axis_name: str = "component") -> Path:
    """One scatter plot of 2-D ``coords`` coloured by ``labels`` (see :func:`plot_embedding_panels`).

    Example:
        >>> import numpy as np
        >>> plot_embedding(np.zeros((3, 2)), "/tmp/e.png", labels=[0, 1, 1], color_by="domain").suffix
        '.png'
    """
    return plot_embedding_panels([(coords, title)], path, labels=labels, color_by=color_by, label_names=label_names,
                                 attribute=attribute, axis_names=axis_name)


# ----------------------------------------------------------------------------------------
# image grids
# ----------------------------------------------------------------------------------------
def _images_hwc(images: Any) -> np.ndarray:
    arr = images.detach().cpu().float().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float32)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3) or arr.shape[0] == 0:
        raise DataError(f"images must be (N, C, H, W) with C in (1, 3), got shape {arr.shape}",
                        fix="pass a batch of grayscale or RGB images in [0, 1]")
    return np.nan_to_num(arr, nan=0.0).clip(0, 1).transpose(0, 2, 3, 1)


def mosaic(images: np.ndarray, nrows: int, ncols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile ``(N, H, W, C)`` images row-major into one ``(rows*(H+pad)-pad, ..., C)`` array.

    Example:
        >>> mosaic(np.zeros((4, 2, 2, 1)), 2, 2).shape
        (5, 5, 1)
    """
    n, h, w, c = images.shape
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad, c), fill, dtype=np.float32)
    for i in range(min(n, nrows * ncols)):
        r, q = divmod(i, ncols)
        out[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = images[i]
    return out


def plot_image_grid(images: Any, path: str | os.PathLike, *, ncols: int | None = None, title: str = "",
                    row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
                    xlabel: str = "", ylabel: str = "", cell: float = 0.55) -> Path:
    """Images ``(N, C, H, W)`` in [0, 1] as a grid (row-major), with optional row/column labels.

    Example:
        >>> import torch
        >>> plot_image_grid(torch.rand(6, 1, 8, 8), "/tmp/g.png", ncols=3, col_labels=["a", "b", "c"]).name
        'g.png'
    """
    arr = _images_hwc(images)
    n, h, w, c = arr.shape
    ncols = int(ncols) if ncols else min(n, 10)
    nrows = math.ceil(n / ncols)
    tile = mosaic(arr, nrows, ncols)
    grid = tile[..., 0] if c == 1 else tile
    label_w = 0.9 if (row_labels or ylabel) else 0.1
    # Inches per mosaic pixel: ``cell`` inches per image, shrunk to fit the page width, but
    # never below native size (one image pixel >= one figure pixel at DPI), so prior samples
    # of 112x92 faces are not blurred; such grids may be wider than the page.
    mh, mw = grid.shape[:2]
    per_px = max(min(cell * ncols, PAGE_WIDTH - label_w) / mw, 1.0 / DPI)
    with style_context():
        fig = new_figure(width=1, height=1)
        fig.set_size_inches(label_w + 0.15 + mw * per_px, 0.35 + mh * per_px + (0.3 if title else 0)
                            + (0.25 if col_labels or xlabel else 0))
        ax = fig.add_subplot()
        if c == 1:
            ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(grid, interpolation="nearest")
        bare_axis(ax, keep_ticks=True)
        ax.set_xticks([q * (w + 1) + (w - 1) / 2 for q in range(ncols)] if col_labels else [])
        ax.set_yticks([r * (h + 1) + (h - 1) / 2 for r in range(nrows)] if row_labels else [])
        if col_labels:
            ax.set_xticklabels([str(s) for s in col_labels][:ncols], fontsize=6)
        if row_labels:
            ax.set_yticklabels([str(s) for s in row_labels][:nrows], fontsize=6)
        ax.tick_params(length=0)
        if xlabel:
            ax.set_xlabel(xlabel, fontsize=8)
        if ylabel:
            ax.set_ylabel(ylabel, fontsize=8)
        if title:
            ax.set_title(title)
        fig.tight_layout(pad=0.3)
        return save_figure(fig, path)


# ----------------------------------------------------------------------------------------
# robustness
# ----------------------------------------------------------------------------------------
def plot_robustness_examples(result: Any, path: str | os.PathLike, *, title: str = "") -> Path:
    """Originals (top row) and their decodings under each noise scale (one row per scale).

    Example:
        >>> import torch, numpy as np
        >>> from reprlab.capabilities.analysis.latent import RobustnessResult
        >>> r = RobustnessResult(np.array([0., 1.]), np.zeros(2), np.zeros(2), torch.rand(2, 3, 1, 8, 8), torch.rand(3, 1, 8, 8))
        >>> plot_robustness_examples(r, "/tmp/rx.png").name
        'rx.png'
    """
    ex = result.examples  # (S, k, C, H, W)
    k = int(ex.shape[1])
    images = torch.cat([result.originals[:k].float(), ex.reshape(-1, *ex.shape[2:]).float()])
    rows = ["input"] + [f"noise {float(s):g}" for s in result.scales]
    return plot_image_grid(images, path, ncols=k, row_labels=rows,
                           title=title or "Decoded codes with Gaussian noise added")


# ----------------------------------------------------------------------------------------
# inside the network
# ----------------------------------------------------------------------------------------
def plot_kernels(weights: np.ndarray, path: str | os.PathLike, *, name: str = "conv", max_out: int = 16,
                 max_in: int = 8) -> Path:
    """Kernels ``(out, in, kh, kw)`` as a grid: row = output channel, column = input channel.

    A diverging colour map centred at zero (blue negative, red positive) with one scale per
    layer; at most ``max_out`` x ``max_in`` kernels are drawn.

    Example:
        >>> import numpy as np
        >>> plot_kernels(np.random.default_rng(0).normal(size=(4, 2, 3, 3)), "/tmp/k.png").name
        'k.png'
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 4:
        raise DataError(f"kernels must be (out, in, kh, kw), got shape {w.shape}", fix="pass a conv layer's weight")
    o, i, kh, kw = w.shape
    ro, ri = min(o, max_out), min(i, max_in)
    sub = w[:ro, :ri]
    tiles = sub.reshape(ro * ri, kh, kw, 1)
    grid = mosaic(tiles, ro, ri, pad=1, fill=np.nan)[..., 0]
    vmax = float(np.nanmax(np.abs(grid))) or 1.0
    cell = max(0.12, min(0.45, 4.2 / max(ri, ro)))
    with style_context():
        fig = new_figure(width=1.6 + cell * ri, height=0.9 + cell * ro)
        ax = fig.add_subplot()
        import matplotlib

        cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
        im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
        bare_axis(ax, keep_ticks=True)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"input channel (first {ri} of {i})", fontsize=7)
        ax.set_ylabel(f"output channel (first {ro} of {o})", fontsize=7)
        ax.set_title(f"{name}: {kh}x{kw} kernels", fontsize=9)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label("weight", fontsize=7)
        cb.ax.tick_params(labelsize=6)
        fig.tight_layout(pad=0.3)
        return save_figure(fig, path)


def plot_activations(activations: Sequence[Any], path: str | os.PathLike, *, image: Any = None,
                     max_channels: int = 8, max_layers: int = 16, title: str = "Activation maps") -> Path:
    """One row per layer with its first ``max_channels`` feature maps (each scaled to its own range).

    ``activations`` are :class:`~reprlab.capabilities.analysis.inside.LayerActivation` objects (``name``,
    ``values`` ``(C, h, w)``); ``image`` (the input, ``(C, H, W)`` in [0, 1]) is drawn first.
    Beyond ``max_layers`` layers, evenly spaced ones are kept.

    Example:
        >>> import numpy as np
        >>> from reprlab.capabilities.analysis.inside import LayerActivation
        >>> acts = [LayerActivation("conv1", "Conv2d", np.random.rand(4, 6, 6))]
        >>> plot_activations(acts, "/tmp/a.png").name
        'a.png'
    """
    acts = list(activations)
    if not acts:
        raise DataError("no activations to plot", fix="compute them with activation_maps(model, image)")
    if len(acts) > max_layers:
        keep = np.unique(np.linspace(0, len(acts) - 1, max_layers).round().astype(int))
        acts = [acts[j] for j in keep]
    rows: list[tuple[str, np.ndarray, bool]] = []
    if image is not None:
        img = _images_hwc(torch.as_tensor(image).reshape(1, *torch.as_tensor(image).shape[-3:]))[0]
        rows.append(("input", img if img.shape[-1] == 3 else img[..., 0], False))
    for a in acts:
        v = np.asarray(a.values, dtype=np.float32)[:max_channels]
        lo = v.reshape(v.shape[0], -1).min(1)[:, None, None]
        hi = v.reshape(v.shape[0], -1).max(1)[:, None, None]
        v = (v - lo) / np.where(hi - lo > 0, hi - lo, 1.0)
        grid = mosaic(v[..., None], 1, v.shape[0], pad=1, fill=np.nan)[..., 0]
        c_all = np.asarray(a.values).shape[0]
        rows.append((f"{a.name}\n{c_all}x{v.shape[1]}x{v.shape[2]}", grid, True))
    with style_context():
        fig = new_figure(width=PAGE_WIDTH, height=0.4 + 0.62 * len(rows))
        axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
        import matplotlib

        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
        for ax, (label, grid, is_map) in zip(axes, rows):
            if is_map:
                ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            elif grid.ndim == 3:
                ax.imshow(grid, interpolation="nearest")
            else:
                ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_anchor("W")
            bare_axis(ax)
            ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=6)
        axes[0].set_title(f"{title} (first {max_channels} channels per layer, each scaled to its own range)",
                          fontsize=8, loc="left")
        fig.tight_layout(pad=0.3, h_pad=0.2)
        return save_figure(fig, path)
