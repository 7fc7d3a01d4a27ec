"""``analyze(run_dir)``: run the analyses of a trained run and write them to ``RUN_DIR/analysis/``.

What it writes (``what`` picks the analyses; by default every one the model supports)::

    analysis/index.json                         what was produced (read by the report)
    analysis/embeddings/<split>_codes.npz       latent codes, dataset indices, labels
    analysis/embeddings/<split>_<method>.npz/.csv   2-D (n-D) coordinates per method
    analysis/embedding_<split>_<method>.png     scatter coloured by label / binary attribute / domain
    analysis/embedding_latent2d_vs_pixels.png   2-D latents beside PCA and t-SNE of the raw pixels
    analysis/traversal.png, traversal_grid.png  latent traversals from a chosen image
    analysis/interpolation.png                  latent (and pixel) interpolation between two images
    analysis/samples.png                        prior samples (VAEs)
    analysis/robustness.{png,csv,json}, robustness_examples.png   latent-noise robustness
    analysis/kernels/NN_<layer>.png, activations.png             inside the network
    analysis/score_histogram_<split>.png        per-image reconstruction error

Automatic fallbacks, each logged: more images than ``max_points`` are subsampled (seeded);
with ``what`` left at its default, analyses the model cannot do (prior samples of a plain
autoencoder, kernels of a model without convolutions) are skipped and listed under
``"skipped"`` in the index; asked for explicitly they raise a :class:`ModelError`.

Example:
    >>> from reprlab.capabilities.analysis import analyze
    >>> index = analyze("runs/conv_ae-fashion-mnist-20261123-101500", method=("pca", "tsne"))  # doctest: +SKIP
    >>> [item["kind"] for item in index["items"]]  # doctest: +SKIP
    ['embeddings', 'embeddings', 'traversal', ...]
"""

from __future__ import annotations

import csv
import datetime as _dt
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprlab.capabilities.analysis import inside, latent, plots
from reprlab.features.embeddings import METHODS, Reducer, encode_dataset
from reprlab.data.dataset import ImageData
from reprlab.base.errors import ConfigError, ModelError
from reprlab.base.validation import check_choice, check_int
from reprlab.config import RunConfig
from reprlab.models import load_model
from reprlab.runs import RunDir, load_split, prepare_data, resolve_device
from reprlab.base.io import atomic_write, read_json, write_json
from reprlab.evaluation import evaluate_reconstruction
from reprlab.reporting.figures import plot_score_histogram

logger = logging.getLogger(__name__)

__all__ = ["ANALYSES", "analyze", "load_index"]

ANALYSES: tuple[str, ...] = ("embeddings", "traversal", "interpolation", "samples", "robustness", "kernels",
                             "activations", "scores")
SPLITS: tuple[str, ...] = ("train", "val", "test")
METHOD_TITLES = {"pca": "PCA", "kpca": "Kernel PCA", "tsne": "t-SNE", "umap": "UMAP"}
METHOD_AXES = {"pca": "PC", "kpca": "KPC", "tsne": "t-SNE", "umap": "UMAP"}
#: Raw-pixel t-SNE beside a 2-D latent is computed on at most this many images.
PIXEL_COMPARISON_POINTS = 2000
ROBUSTNESS_POINTS = 500  # images whose codes get noise (decoding them at 6 scales dominates the time)


def load_index(run_dir: str | Path) -> dict[str, Any]:
    """``RUN_DIR/analysis/index.json`` as a dict (empty index when absent or unreadable).

    Example:
        >>> load_index("/nonexistent")["items"]
        []
    """
    path = Path(run_dir) / "analysis" / "index.json"
    try:
        index = read_json(path)
        if isinstance(index, dict) and isinstance(index.get("items"), list):
            return index
    except (OSError, ValueError):
        pass
    return {"items": [], "skipped": []}


def _normalise_what(what: Sequence[str] | str | None) -> tuple[list[str], bool]:
    if what is None:
        return list(ANALYSES), False
    items = [what] if isinstance(what, str) else list(what)
    unknown = [w for w in items if w not in ANALYSES]
    if unknown or not items:
        raise ConfigError(f"unknown analysis {', '.join(map(repr, unknown)) or '(none given)'}",
                          fix=f"choose from {', '.join(ANALYSES)}")
    return list(dict.fromkeys(items)), True


def _normalise_methods(method: Sequence[str] | str) -> list[str]:
    items = [method] if isinstance(method, str) else list(method)
    bad = [m for m in items if m not in METHODS]
    if bad or not items:
        raise ConfigError(f"unknown embedding method {', '.join(map(repr, bad)) or '(none given)'}",
                          fix=f"choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(items))


class _Writer:
    """Collects index items while the analyses run."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.items: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []

    def rel(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    def add(self, key: str, kind: str, title: str, files: Sequence[Path], caption: str = "", seconds: float = 0.0,
            **extra: Any) -> None:
        self.items.append({"key": key, "kind": kind, "title": title, "files": [self.rel(Path(f)) for f in files],
                           "caption": caption, "seconds": round(seconds, 3), **extra})

    def skip(self, what: str, reason: str) -> None:
        logger.info("analysis '%s' skipped: %s", what, reason)
        self.skipped.append({"what": what, "reason": reason})


def _write_csv(path: Path, header: list[str], rows: Sequence[Sequence[Any]]) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
    return atomic_write(path, write)


def _save_npz(path: Path, **arrays: Any) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return atomic_write(path, write)


def _load_split(cfg: Any, split: str, data_dir: str | None) -> ImageData:
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    splits = prepare_data(cfg)
    data = getattr(splits, split)
    if data is None:
        raise ConfigError(f"the run has no {split} split (data.val_fraction=0)", fix="use split=test or split=train")
    return data


def analyze(run_dir: str | Path, *, what: Sequence[str] | str | None = None, split: str = "test",
            method: Sequence[str] | str = "pca", n_components: int = 2, max_points: int | None = 5000,
            color_by: str = "label", binary_classes: Sequence[int] | None = None, attribute: str = "attribute",
            other_data: str | None = None, image_index: int = 0, other_index: int | None = None,
            dims: Sequence[int] | None = None, n_steps: int = 9, span: float = 3.0,
            noise_scales: Sequence[float] = latent.DEFAULT_NOISE_SCALES, n_samples: int = 64,
            reducer_options: dict[str, Any] | None = None, tag: str = "best", data_dir: str | None = None,
            device: str = "auto", batch_size: int = 256, seed: int = 0, model: torch.nn.Module | None = None,
            data: ImageData | None = None, strict: bool | None = None) -> dict[str, Any]:
    """Run the analyses ``what`` on a run and write them to ``RUN_DIR/analysis/``; returns the index.

    ``split`` (train/val/test, the run's own seeded splits) is encoded; at most
    ``max_points`` of its images (a seeded subsample) are embedded with each ``method``
    (``pca``, ``kpca``, ``tsne``, ``umap``; ``reducer_options`` go to :class:`Reducer`).
    Points are coloured by class label, by ``binary_classes`` (label in that set -> "yes",
    named ``attribute``) with ``color_by="binary"``, or by dataset with ``other_data`` (the
    test images of another dataset, e.g. ``"mnist"``, are embedded too; ``color_by="domain"``).
    Traversals start from image ``image_index`` along ``dims`` (default: the 4 dimensions
    with the largest spread, in steps of ``span`` standard deviations); interpolation goes
    to ``other_index`` (default: the first image of another class). ``model``/``data``
    skip reloading them (used at the end of training). Returns the index written to
    ``analysis/index.json``; repeated calls update it.

    Raises :class:`ConfigError` / :class:`ModelError` for analyses the model cannot do when
    they are asked for explicitly (prior samples of an autoencoder, a traversal dimension
    outside the latent, ...). ``strict=False`` skips them instead (``None``: strict exactly
    when ``what`` is given).
    """
    started = time.perf_counter()
    run = RunDir.open(run_dir, kinds=("train",), command="analyze")
    todo, explicit = _normalise_what(what)
    if strict is not None:
        explicit = bool(strict)
    methods = _normalise_methods(method)
    check_choice("split", split, SPLITS)
    check_choice("color_by", color_by, plots.COLOR_BY)
    check_int("n_components", n_components, minimum=1)
    if max_points is not None:
        check_int("max_points", max_points, minimum=4)
    if color_by == "binary" and not binary_classes:
        raise ConfigError("color_by='binary' needs binary_classes (the labels that count as 'yes')",
                          fix="e.g. binary_classes=[0, 2, 4, 6] with attribute='upper body'")
    if color_by == "domain" and not other_data:
        raise ConfigError("color_by='domain' needs other_data (a second dataset to compare with)",
                          fix="e.g. other_data='mnist'")
    cfg = RunConfig.from_yaml(run.path / "config.yaml")
    given = model is not None
    if model is None:
        model = load_model(run.model_path(tag))
    was_training = model.training
    first = next(model.parameters(), None)
    if given and device == "auto" and first is not None:
        dev = first.device  # a model handed in (e.g. at the end of training) stays where it is
    else:
        dev = resolve_device(device)
    model = model.to(dev).eval()
    try:
        return _analyze(run, model, dev, cfg, todo, explicit, methods, split, n_components, max_points, color_by,
                        binary_classes, attribute, other_data, image_index, other_index, dims, n_steps, span,
                        noise_scales, n_samples, reducer_options, data_dir, batch_size, seed, data, started)
    finally:
        model.train(was_training)


def _analyze(run: RunDir, model, dev, cfg, todo, explicit, methods, split, n_components, max_points, color_by,
             binary_classes, attribute, other_data, image_index, other_index, dims, n_steps, span, noise_scales,
             n_samples, reducer_options, data_dir, batch_size, seed, data, started) -> dict[str, Any]:
    if data is None:
        data = _load_split(cfg, split, data_dir)
    name = getattr(model, "registry_name", type(model).__name__)
    variational = bool(getattr(model, "is_variational", False))

    n_all = len(data)
    if max_points is not None and n_all > max_points:
        gen = torch.Generator().manual_seed(int(seed))
        sel = torch.sort(torch.randperm(n_all, generator=gen)[:max_points]).values
        logger.warning("analysing %d of %d %s images (random subsample, max_points=%d)", max_points, n_all, split,
                       max_points)
        sub = data.subset(sel)
        indices = sel.numpy()
    else:
        sub = data
        indices = np.arange(n_all)
    labels = None if sub.labels is None else sub.labels.numpy()
    out = run.path / "analysis"
    out.mkdir(exist_ok=True)
    w = _Writer(out)
    codes = encode_dataset(model, sub, batch_size=batch_size, device=dev)
    code_dim = int(codes.shape[1])
    spread = codes.std(axis=0) if codes.shape[0] > 1 else np.ones(code_dim)
    spread = np.where(spread > 1e-8, spread, 1.0)
    if not 0 <= int(image_index) < len(sub):
        raise ConfigError(f"image_index {image_index} is outside the {len(sub)} analysed {split} images",
                          fix=f"choose an index in 0..{len(sub) - 1}")
    # refuse what cannot be done before anything is written
    if "traversal" in todo and dims is not None:
        for d in dims:
            latent._check_dim(model, d, code_dim)
    if explicit and "samples" in todo and not variational:
        latent.prior_samples(model, 1)  # raises the ModelError with its fix
    if explicit and ("kernels" in todo or "activations" in todo):
        inside.conv_kernels(model)  # raises a ModelError for models without convolutions

    for item in todo:
        t0 = time.perf_counter()
        if item == "embeddings":
            _embeddings(w, model, sub, codes, indices, labels, split, methods, n_components, color_by, binary_classes,
                        attribute, other_data, cfg, data_dir, reducer_options or {}, batch_size, dev, seed)
        elif item == "traversal":
            _traversal(w, model, sub, codes, spread, f"{split} image #{int(indices[image_index])}", image_index,
                       dims, n_steps, span)
        elif item == "interpolation":
            _interpolation(w, model, sub, labels, split, indices, image_index, other_index)
        elif item == "samples":
            if not variational:
                w.skip("samples", f"{name} is a plain autoencoder and has no prior to sample from")
                continue
            gen = torch.Generator().manual_seed(int(seed))
            imgs = latent.prior_samples(model, n_samples, generator=gen)
            path = plots.plot_image_grid(imgs, out / "samples.png", ncols=min(8, n_samples),
                                         title=f"{n_samples} samples from the prior N(0, I)")
            w.add("samples", "samples", "Samples from the prior", [path], f"{name}, decoded means of z ~ N(0, I)",
                  time.perf_counter() - t0)
        elif item == "robustness":
            _robustness(w, model, sub, split, noise_scales, seed, name, variational)
        elif item == "kernels":
            try:
                layers = inside.conv_kernels(model)
            except ModelError as exc:
                if explicit:
                    raise
                w.skip("kernels", exc.problem)
                continue
            files = []
            for i, layer in enumerate(layers):
                safe = layer.name.replace(".", "_")
                files.append(plots.plot_kernels(layer.weights, out / "kernels" / f"{i:02d}_{safe}.png",
                                                name=f"{layer.name} ({layer.kind})"))
            w.add("kernels", "kernels", "Convolution kernels", files,
                  f"{len(files)} convolution layers, in module order", time.perf_counter() - t0)
        elif item == "activations":
            x = sub.float01(slice(int(image_index), int(image_index) + 1))
            try:
                acts = inside.activation_maps(model, x)
            except ModelError as exc:
                if explicit:
                    raise
                w.skip("activations", exc.problem)
                continue
            path = plots.plot_activations(acts, out / "activations.png", image=x[0],
                                          title=f"Activation maps for {split} image #{int(indices[image_index])}")
            w.add("activations", "activations", "Activation maps", [path],
                  f"outputs of each convolution for {split} image #{int(indices[image_index])}",
                  time.perf_counter() - t0)
        elif item == "scores":
            rep = evaluate_reconstruction(model, sub, batch_size=batch_size, device=dev)
            path = out / f"score_histogram_{split}.png"
            plot_score_histogram(rep.per_image["mse"], path, metric="mse",
                                 title=f"Per-image reconstruction MSE ({len(sub)} {split} images)")
            w.add(f"scores:{split}", "scores", f"Reconstruction error ({split})", [path],
                  f"mean MSE {rep.summary['mse']:.4g}, median {float(np.median(rep.per_image['mse'])):.4g}",
                  time.perf_counter() - t0)

    index = load_index(run.path)
    keys = {i["key"] for i in w.items}
    skipped_what = {s["what"] for s in w.skipped}
    done_what = {i["kind"] for i in w.items}
    index["items"] = [i for i in index["items"] if i.get("key") not in keys] + w.items
    index["skipped"] = [s for s in index.get("skipped", []) if s.get("what") not in skipped_what | done_what] + w.skipped
    index.update({"run": run.path.name, "model": name, "variational": variational, "code_size": code_dim,
                  "split": split, "n_points": len(sub), "n_split": n_all,
                  "updated": _dt.datetime.now().isoformat(timespec="seconds"),
                  "seconds": round(time.perf_counter() - started, 3)})
    write_json(out / "index.json", index)
    logger.info("analysis of %s written to %s (%.1f s)", run.path.name, out, time.perf_counter() - started)
    return index


# ----------------------------------------------------------------------------------------
# the analyses
# ----------------------------------------------------------------------------------------
def _embeddings(w: _Writer, model, sub: ImageData, codes: np.ndarray, indices: np.ndarray, labels, split: str,
                methods: list[str], n_components: int, color_by: str, binary_classes, attribute: str,
                other_data: str | None, cfg, data_dir, reducer_options: dict, batch_size: int, dev, seed: int) -> None:
    out = w.out
    emb = out / "embeddings"
    X = codes
    domains = None
    color_values = labels
    all_labels = labels
    if other_data:
        if data_dir is not None:
            cfg.data.data_dir = data_dir
        other = load_split(cfg, "test", name=other_data)
        if other.shape != sub.shape:
            raise ConfigError(f"{other_data} images have shape {other.shape} but the model expects {sub.shape}",
                              fix="compare with a dataset of the same size and channels (set data.resize/channels)")
        n_other = min(len(other), len(sub))
        other = other.subset(torch.arange(n_other))
        X = np.concatenate([codes, encode_dataset(model, other, batch_size=batch_size, device=dev)])
        domains = np.concatenate([np.zeros(len(sub), int), np.ones(n_other, int)])
        if color_by == "domain":
            color_values = domains
        all_labels = (np.concatenate([labels, other.labels.numpy()])
                      if labels is not None and other.labels is not None else None)
        if color_by != "domain":
            color_values = all_labels
    if color_by == "binary":
        if labels is None:
            raise ConfigError("color_by='binary' needs labelled images", fix="use color_by='label' or 'none'")
        if all_labels is None:
            raise ConfigError(f"color_by='binary' needs labels for the {other_data} images too",
                              fix="use color_by='domain' with other_data")
        color_values = np.isin(np.asarray(all_labels), [int(c) for c in binary_classes]).astype(int)
    if color_by == "none":
        color_values = None
    _save_npz(emb / f"{split}_codes.npz", codes=codes, indices=indices,
              labels=labels if labels is not None else np.zeros(0, int))
    names = sub.class_names
    label_names = None
    if color_by == "domain":
        label_names = [sub.name, other_data or "other"]
    elif color_by == "label":
        label_names = names
    for m in methods:
        t0 = time.perf_counter()
        opts = dict(reducer_options)
        opts.setdefault("random_state", seed)
        reducer = Reducer(m, n_components, **opts)
        coords = reducer.fit_transform(X)
        fit_s = time.perf_counter() - t0
        arrays = {"coords": coords, "indices": indices, "labels": labels if labels is not None else np.zeros(0, int)}
        if domains is not None:
            arrays["domains"] = domains
        _save_npz(emb / f"{split}_{m}.npz", **arrays)
        header = ["index", "domain", "label"] + [f"{METHOD_AXES[m].lower()}{j + 1}" for j in range(coords.shape[1])]
        rows = []
        for r in range(coords.shape[0]):
            own = r < len(sub)
            idx = int(indices[r]) if own else r - len(sub)
            lab = "" if all_labels is None else int(all_labels[r])
            rows.append([idx, int(domains[r]) if domains is not None else 0, lab, *[f"{v:.6g}" for v in coords[r]]])
        csv_path = _write_csv(emb / f"{split}_{m}.csv", header, rows)
        fig = out / f"embedding_{split}_{m}.png"
        what_pts = f"{len(sub)} {split} images" + (f" + {len(X) - len(sub)} {other_data} images" if other_data else "")
        if coords.shape[1] >= 2:
            plots.plot_embedding(coords, fig, labels=color_values, color_by=color_by if color_values is not None else "none",
                                 label_names=label_names, attribute=attribute,
                                 title=f"{METHOD_TITLES[m]} of the latent codes ({what_pts})", axis_name=METHOD_AXES[m])
            files = [fig, emb / f"{split}_{m}.npz", csv_path]
        else:
            files = [emb / f"{split}_{m}.npz", csv_path]
        notice = ""
        if getattr(reducer, "fit_indices_", None) is not None:
            notice = f"; fitted on {reducer.n_fit_points_} points, the rest placed with transform"
        w.add(f"embeddings:{split}:{m}", "embeddings", f"{METHOD_TITLES[m]} embedding ({split})", files,
              f"{METHOD_TITLES[m]} of {X.shape[1]}-dim codes of {what_pts}{notice}; {fit_s:.1f} s",
              time.perf_counter() - t0, method=m, split=split)
    if codes.shape[1] == 2:
        t0 = time.perf_counter()
        k = min(len(sub), PIXEL_COMPARISON_POINTS)
        pixels = sub.float01(slice(0, k)).reshape(k, -1).numpy()
        panels = [(codes[:k], "2-D latent (direct)")]
        panels.append((Reducer("pca", 2, random_state=seed).fit_transform(pixels), "PCA of raw pixels"))
        if k >= 8:
            panels.append((Reducer("tsne", 2, random_state=seed).fit_transform(pixels), "t-SNE of raw pixels"))
        fig = plots.plot_embedding_panels(panels, out / "embedding_latent2d_vs_pixels.png",
                                          labels=None if labels is None else labels[:k],
                                          color_by="label" if labels is not None else "none", label_names=names,
                                          axis_names=["z", "PC", "t-SNE"])
        w.add(f"embeddings:{split}:latent2d", "embeddings", "2-D latent against raw-pixel embeddings", [fig],
              f"{k} {split} images: the model's own 2-D code beside PCA and t-SNE of the pixels",
              time.perf_counter() - t0, method="latent2d", split=split)


def _traversal(w: _Writer, model, sub: ImageData, codes: np.ndarray, spread: np.ndarray, source: str, image_index: int,
               dims: Sequence[int] | None, n_steps: int, span: float) -> None:
    t0 = time.perf_counter()
    size = codes.shape[1]
    if dims is None:
        chosen = [int(d) for d in np.argsort(-spread, kind="stable")[:min(4, size)]]
    else:
        chosen = [int(d) for d in dims]
        for d in chosen:
            latent._check_dim(model, d, size)
    x = sub.float01(slice(int(image_index), int(image_index) + 1))
    rows, row_labels = [], []
    for d in chosen:
        imgs, _ = latent.traversal(model, x, d, n_steps=n_steps, span=span, scale=float(spread[d]))
        rows.append(imgs)
        row_labels.append(f"z{d}")
    steps = np.linspace(-span, span, n_steps)
    col_labels = [f"{s:+.1f}σ" for s in steps]
    path = plots.plot_image_grid(torch.cat(rows), w.out / "traversal.png", ncols=n_steps, row_labels=row_labels,
                                 col_labels=col_labels, xlabel="offset from the image's code (std of the dimension)",
                                 title=f"Latent traversal from {source}")
    files = [path]
    if size >= 2:
        pair = (chosen[0], chosen[1]) if len(chosen) >= 2 else (0, 1)
        g = min(n_steps, 9)
        imgs, _, _ = latent.traversal_grid(model, x, pair, n_steps=g, span=span,
                                           scale=(float(spread[pair[0]]), float(spread[pair[1]])))
        gsteps = [f"{s:+.1f}" for s in np.linspace(-span, span, g)]
        files.append(plots.plot_image_grid(imgs, w.out / "traversal_grid.png", ncols=g, row_labels=gsteps,
                                           col_labels=gsteps, ylabel=f"z{pair[0]} (σ)", xlabel=f"z{pair[1]} (σ)",
                                           title=f"2-D traversal over z{pair[0]} and z{pair[1]}"))
    w.add("traversal", "traversal", "Latent traversals", files,
          f"dimensions {', '.join(map(str, chosen))} of {size} (largest spread first), ±{span:g} std", time.perf_counter() - t0,
          dims=chosen, image_index=int(image_index))


def _interpolation(w: _Writer, model, sub: ImageData, labels, split: str, indices: np.ndarray, image_index: int,
                   other_index: int | None) -> None:
    t0 = time.perf_counter()
    n = len(sub)
    if n < 2:
        raise ConfigError("interpolation needs at least two images", fix="analyse a split with more images")
    if other_index is None:
        other_index = next((j for j in range(n) if labels is not None and j != image_index
                            and labels[j] != labels[image_index]), (image_index + 1) % n)
    if not 0 <= int(other_index) < n or int(other_index) == int(image_index):
        raise ConfigError(f"other_index {other_index} must be another image in 0..{n - 1}",
                          fix="choose two different images")
    a = sub.float01(slice(int(image_index), int(image_index) + 1))
    b = sub.float01(slice(int(other_index), int(other_index) + 1))
    steps = 10
    imgs, t = latent.interpolate(model, a, b, n_steps=steps)
    tt = torch.linspace(0, 1, steps)[:, None, None, None]
    pixel = (1 - tt) * a + tt * b
    path = plots.plot_image_grid(torch.cat([imgs, pixel]), w.out / "interpolation.png", ncols=steps,
                                 row_labels=["latent", "pixels"], col_labels=[f"{v:.2f}" for v in t],
                                 xlabel="t (0 = first image, 1 = second)",
                                 title=f"Interpolation between {split} images #{int(indices[image_index])} and "
                                       f"#{int(indices[other_index])}")
    w.add("interpolation", "interpolation", "Interpolation", [path],
          "top: decoded linear interpolation of the codes; bottom: pixel cross-fade for comparison",
          time.perf_counter() - t0, images=[int(image_index), int(other_index)])


def _robustness(w: _Writer, model, sub: ImageData, split: str, scales: Sequence[float], seed: int, name: str,
                variational: bool) -> None:
    t0 = time.perf_counter()
    k = min(len(sub), ROBUSTNESS_POINTS)
    x = sub.float01(slice(0, k))
    res = latent.latent_noise_robustness(model, x, scales=scales, k=min(8, k),
                                         generator=torch.Generator().manual_seed(int(seed)))
    label = f"{name} ({'VAE' if variational else 'autoencoder'})"
    curve = plots.plot_robustness({label: res}, w.out / "robustness.png")
    ex = plots.plot_robustness_examples(res, w.out / "robustness_examples.png")
    csv_path = _write_csv(w.out / "robustness.csv", ["noise_scale", "mse", "mse_std"],
                          [[r["noise_scale"], r["mse"], r["mse_std"]] for r in res.rows()])
    write_json(w.out / "robustness.json", {"label": label, "relative": True, "n_images": k, "rows": res.rows()})
    w.add("robustness", "robustness", "Decoder robustness to latent noise", [curve, ex, csv_path],
          f"{k} {split} images; Gaussian noise with std = scale × each dimension's spread",
          time.perf_counter() - t0, label=label)
