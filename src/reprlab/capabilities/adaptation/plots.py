"""Figures of domain adaptation: source and target features (t-SNE) by domain and by class, before and
after adaptation side by side, and PixelDA's source images over their translations.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> coords = rng.normal(size=(40, 2))
    >>> dom, lab = np.repeat([0, 1], 20), np.tile(np.arange(4), 10)
    >>> plot_domain_embeddings([("run", coords, dom, lab)], "/tmp/reprlab_adapt_tsne.png",
    ...                        domain_names=("mnist", "usps")).name
    'reprlab_adapt_tsne.png'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from reprlab.base.errors import ReprlabError
from reprlab.data.dataset import ImageData
from reprlab.evaluation.classification import predict_logits
from reprlab.reporting.style import PAGE_WIDTH, bare_axis, category_style, new_figure, save_figure, style_context


def _sample(data: ImageData, n: int, seed: int) -> ImageData:
    if len(data) <= n:
        return data
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return data.subset(idx)


def domain_features(model: torch.nn.Module, source: ImageData, target: ImageData, *, n: int = 500, seed: int = 0,
                    device: Any = "cpu", batch_size: int = 256) -> dict[str, np.ndarray]:
    """``model.features`` of up to ``n`` seeded source and ``n`` target images: ``features``,
    ``domain`` (0 source, 1 target) and ``label`` (-1 where unknown)."""
    parts, domains, labels = [], [], []
    for d, data in enumerate((source, target)):
        sub = _sample(data, n, seed + d)
        parts.append(predict_logits(model, sub, method="features", device=device, batch_size=batch_size))
        domains.append(np.full(len(sub), d))
        labels.append(sub.labels.numpy() if sub.labels is not None else np.full(len(sub), -1))
    return {"features": np.concatenate(parts), "domain": np.concatenate(domains), "label": np.concatenate(labels)}


def tsne_2d(features: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """2-D t-SNE coordinates (openTSNE through :class:`reprlab.features.embeddings.Reducer`)."""
    from reprlab.features.embeddings import Reducer

    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3.5)))
    return Reducer("tsne", perplexity=perplexity, random_state=seed).fit_transform(features)


def plot_domain_embeddings(panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], path: str | Path, *,
                           domain_names: Sequence[str] = ("source", "target"), title: str | None = None) -> Path:
    """One row per ``(name, coords, domain, label)``: left coloured by domain, right by class."""
    if not panels:
        raise ReprlabError("no embeddings to draw", fix="pass at least one (name, coords, domain, label) panel")
    with style_context():
        fig = new_figure(width=min(PAGE_WIDTH, 7.0), height=3.1 * len(panels) + 0.4)
        axes = fig.subplots(len(panels), 2, squeeze=False)
        for r, (name, coords, domain, label) in enumerate(panels):
            ax = axes[r][0]
            for d, dname in enumerate(domain_names):
                m = domain == d
                colour, marker = category_style(d)
                ax.scatter(coords[m, 0], coords[m, 1], s=4, color=colour, marker=marker, alpha=0.6, label=dname,
                           linewidths=0)
            ax.set_title(f"{name}: by domain", fontsize=8)
            ax.legend(loc="best", fontsize=6, markerscale=3)
            ax = axes[r][1]
            for i, c in enumerate(sorted(set(label.tolist()) - {-1})):
                for d in range(len(domain_names)):
                    m = (label == c) & (domain == d)
                    colour, _ = category_style(i)
                    ax.scatter(coords[m, 0], coords[m, 1], s=4, color=colour, marker="o" if d == 0 else "x",
                               alpha=0.6, linewidths=0.5 if d else 0, label=str(c) if d == 0 else None)
            ax.set_title(f"{name}: by class (o source, x target)", fontsize=8)
            ax.legend(loc="best", fontsize=5, markerscale=2, ncol=2)
            for ax in axes[r]:
                bare_axis(ax)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return save_figure(fig, path)


def embedding_figure(models: Sequence[tuple[str, torch.nn.Module]], source: ImageData, target: ImageData,
                     path: str | Path, *, n: int = 500, seed: int = 0, device: Any = "cpu",
                     domain_names: Sequence[str] = ("source", "target")) -> Path:
    """t-SNE of each model's source and target features, one row per model (e.g. source-only, then DANN:
    before and after adaptation), coloured by domain and by class; each row is fitted on its own."""
    panels = []
    for name, model in models:
        f = domain_features(model, source, target, n=n, seed=seed, device=device)
        panels.append((name, tsne_2d(f["features"], seed=seed), f["domain"], f["label"]))
    return plot_domain_embeddings(panels, path, domain_names=domain_names)


def plot_translations(source01: torch.Tensor, translated01: torch.Tensor, path: str | Path, *,
                      title: str = "Source images (top) and their translations (bottom)") -> Path:
    """Two rows of images in ``[0, 1]``: the source images over their translations into the target style.

    Example:
        >>> plot_translations(torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8), "/tmp/reprlab_translations.png").suffix
        '.png'
    """
    if source01.shape != translated01.shape:
        raise ReprlabError(f"{tuple(source01.shape)} source images but {tuple(translated01.shape)} translations",
                           fix="translate every source image once")
    return plot_image_rows([("", source01), ("", translated01)], path, title=title)


def plot_image_rows(rows: Sequence[tuple[str, torch.Tensor]], path: str | Path, *, title: str = "") -> Path:
    """One row per ``(label, images)``, images in ``[0, 1]`` of one shape; the label on the row's left.

    Example:
        >>> plot_image_rows([("source", torch.rand(3, 1, 8, 8)), ("warped", torch.rand(3, 1, 8, 8))],
        ...                 "/tmp/reprlab_rows.png").suffix
        '.png'
    """
    shapes = {tuple(images.shape) for _, images in rows}
    if len(shapes) != 1:
        raise ReprlabError(f"rows of images of different shapes: {sorted(shapes)}",
                           fix="give every row as many images of the same size")
    k = len(rows[0][1])
    with style_context():
        labelled = any(label for label, _ in rows)
        width = min(PAGE_WIDTH, 0.7 * k + 0.3 + (1.0 if labelled else 0))
        cell = width / (k + (1.6 if labelled else 0.2))  # square images, one row of cells per row of images
        fig = new_figure(width=width, height=cell * len(rows) + (0.35 if title else 0.1))
        axes = fig.subplots(len(rows), k, squeeze=False)
        for row, (label, images) in enumerate(rows):
            for i in range(k):
                img = images[i].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
                axes[row][i].imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                                    vmin=0, vmax=1)
                bare_axis(axes[row][i])
            if label:
                axes[row][0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
        if title:
            fig.suptitle(title, fontsize=8)
        fig.tight_layout()
        return save_figure(fig, path)


__all__ = ["domain_features", "embedding_figure", "plot_domain_embeddings", "plot_image_rows", "plot_translations",
           "tsne_2d"]
