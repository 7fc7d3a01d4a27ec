"""The final evaluation of an ``adapt`` run and its report items (``RUN/adaptation/``).

Metrics: ``test/*`` for the label-free checkpoint (the default, ``best``), ``oracle/acc`` /
``oracle/balanced_acc`` / ``oracle/epoch`` for the checkpoint of the best target accuracy
(picked WITH target labels: an upper reference, not a result a user without labels gets),
``last/*`` for the last epoch, ``select/*`` (criterion, epoch, value) and ``adapt/*`` (the
protocol and sizes). Files: ``selection.csv`` (the three checkpoints side by side, labelled,
with the protocol), ``per_class.csv`` / ``confusion.csv`` (label-free checkpoint),
``protocol.json``, and with figures on ``confusion.png``, ``tsne.png`` (source and target features
by domain and by class; with ``adapt.compare_with`` the other run's row first) and, for models
with ``translate``, ``translations.png``; ``index.json`` lists them for the report.

Example:
    >>> best_epoch([{"val/acc": 0.5}, {"val/acc": 0.7}, {"val/acc": 0.7}], "val/acc", "max")
    2
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from reprlab.base.io import atomic_write, write_json
from reprlab.capabilities.adaptation.config import SELECTIONS
from reprlab.capabilities.adaptation.selection import ORACLE_KEY
from reprlab.capabilities.adaptation.task import protocol_line
from reprlab.evaluation.classification import class_names, classification_metrics, predict, write_class_tables
from reprlab.models import load_model
from reprlab.models.base import from_model_range, to_model_range
from reprlab.runs import PostRunContext
from reprlab.training.checkpoint import resolve_checkpoint

logger = logging.getLogger(__name__)


def best_epoch(history: Sequence[dict[str, float]], key: str, mode: str) -> int | None:
    """The first epoch (1-based) with the best finite ``key`` (``None`` when no epoch has it)."""
    values = [(i, float(r[key])) for i, r in enumerate(history) if key in r and math.isfinite(float(r[key]))]
    if not values:
        return None
    pick = max if mode == "max" else min
    target = pick(v for _, v in values)
    return next(i for i, v in values if v == target) + 1


def selection_monitor(cfg: Any) -> tuple[str, str]:
    """The key and mode the label-free checkpoint was picked by (as the trainer's checkpointer saw it)."""
    key, mode = SELECTIONS[cfg.adapt.selection]
    if cfg.train.early_stopping.monitor:
        key = cfg.train.early_stopping.monitor
    if cfg.data.val_fraction <= 0:
        key = key.replace("val/", "train/")
    return key, mode


def _checkpoint_metrics(run: Any, tag: str, test: Any, n_classes: int, cfg: Any, device: Any) -> dict[str, float] | None:
    folder = resolve_checkpoint(run.checkpoints, tag)
    if folder is None:
        return None
    model = load_model(folder / "model").to(device)
    logits, labels = predict(model, test, batch_size=cfg.eval.batch_size, device=device, max_images=cfg.eval.max_images)
    return classification_metrics(logits, labels, n_classes, prefix=tag)[0]


def write_adaptation_report(ctx: PostRunContext, history: list[dict[str, float]]) -> dict[str, Any]:
    """Evaluate the label-free, oracle and last checkpoints on the target evaluation images; write the items."""
    cfg, model, run, splits = ctx.cfg, ctx.model, ctx.run, ctx.splits
    protocol = dict(getattr(splits, "protocol", {}) or {})
    logits, labels = predict(model, splits.test, batch_size=cfg.eval.batch_size, device=ctx.device,
                             max_images=cfg.eval.max_images)
    n_classes = int(getattr(model.config, "num_classes", 0) or protocol.get("classes") or labels.max() + 1)
    metrics: dict[str, Any] = {}
    test, cm = classification_metrics(logits, labels, n_classes)
    metrics.update(test)
    key, mode = selection_monitor(cfg)
    metrics["select/criterion"] = cfg.adapt.selection
    metrics["select/monitor"] = key
    sel_epoch = best_epoch(history, key, mode)
    if sel_epoch is not None:
        metrics["select/epoch"] = sel_epoch
        metrics["select/value"] = float(history[sel_epoch - 1][key])
    for tag in ("oracle", "last"):
        found = _checkpoint_metrics(run, tag, splits.test, n_classes, cfg, ctx.device)
        if found:
            metrics.update({k: v for k, v in found.items() if not k.startswith(f"{tag}/acc_class_")})
    oracle_epoch = best_epoch(history, ORACLE_KEY, "max")
    if oracle_epoch is not None:
        metrics["oracle/epoch"] = oracle_epoch
    metrics.update({f"adapt/{k}": v for k, v in protocol.items() if v is not None and k != "method"})
    metrics["adapt/method"] = cfg.adapt.method
    out = run.path / "adaptation"
    out.mkdir(parents=True, exist_ok=True)
    names = class_names(splits.test, n_classes)
    write_class_tables(out, cm, names)
    write_json(out / "protocol.json", protocol)
    _write_selection_table(out / "selection.csv", metrics, protocol, len(history))
    line = protocol_line(protocol) if protocol else ""
    items = [{"key": "adaptation/selection", "kind": "table",
              "title": "Target accuracy: label-free selection (default) and oracle selection (uses target labels)",
              "caption": f"label-free: checkpoint picked by {cfg.adapt.selection} ({key}), no target label used; "
                         f"oracle: the epoch of the best target accuracy, picked WITH the target labels (not "
                         f"available in practice); last: the final epoch. {line}",
              "files": ["selection.csv", "protocol.json"]},
             {"key": "adaptation/tables", "kind": "table", "title": "Per-class target accuracy (label-free checkpoint)",
              "caption": f"target accuracy {metrics['test/acc']:.4f}. {line}",
              "files": ["per_class.csv", "confusion.csv"]}]
    if cfg.eval.figures:
        items += _figures(ctx, out, cm, names, line)
    write_json(out / "index.json", {"items": items, "skipped": []})
    return metrics


def _write_selection_table(path: Path, metrics: dict[str, Any], protocol: dict[str, Any], epochs: int) -> None:
    rows = [("label-free (default)", f"{metrics['select/criterion']} ({metrics['select/monitor']})",
             metrics.get("select/epoch", ""), metrics.get("test/acc"), metrics.get("test/balanced_acc")),
            ("oracle (uses target labels)", "target accuracy", metrics.get("oracle/epoch", ""),
             metrics.get("oracle/acc"), metrics.get("oracle/balanced_acc")),
            ("last epoch", "none", epochs, metrics.get("last/acc"), metrics.get("last/balanced_acc"))]

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["selection", "criterion", "epoch", "target_acc", "target_balanced_acc", "protocol",
                        "adaptation_images", "evaluation_images", "split_seed"])
            for name, crit, epoch, acc, bal in rows:
                w.writerow([name, crit, epoch, "" if acc is None else f"{acc:.6f}", "" if bal is None else f"{bal:.6f}",
                            protocol.get("protocol", ""), protocol.get("adaptation_images", ""),
                            protocol.get("evaluation_images", ""), protocol.get("split_seed", "")])

    atomic_write(path, write)


def _figures(ctx: PostRunContext, out: Path, cm: np.ndarray, names: list[str], line: str) -> list[dict[str, Any]]:
    from reprlab.capabilities.adaptation.plots import embedding_figure, plot_translations
    from reprlab.reporting.classification import plot_confusion_matrix
    from reprlab.reporting.figures import plot_loss_curves

    cfg, splits = ctx.cfg, ctx.splits
    plot_loss_curves(ctx.history, ctx.run.figures / "loss_curves.png")
    plot_confusion_matrix(cm, names, out / "confusion.png", title="Confusion matrix (target, label-free checkpoint)")
    items = [{"key": "adaptation/confusion", "kind": "figure", "title": "Confusion matrix on the target",
              "caption": f"label-free checkpoint; rows: true class, columns: predicted. {line}",
              "files": ["confusion.png"]}]
    models = []
    if cfg.adapt.compare_with:
        from reprlab.config import RunConfig
        from reprlab.runs import load_run_model

        other = RunConfig.from_yaml(Path(cfg.adapt.compare_with) / "config.yaml").adapt.method
        models.append((f"before: {other}", load_run_model(cfg.adapt.compare_with)))
    models.append((f"after: {cfg.adapt.method}" if models else cfg.adapt.method, ctx.model))
    train_name = "target (labelled)" if cfg.adapt.method == "target_only" else f"source ({cfg.data.name})"
    embedding_figure(models, splits.train, splits.test, out / "tsne.png",
                     n=cfg.adapt.tsne_points, seed=cfg.seed, device=ctx.device,
                     domain_names=(train_name, f"target ({cfg.adapt.target}, evaluation)"))
    items.append({"key": "adaptation/tsne", "kind": "figure", "title": "Source and target features (t-SNE)",
                  "caption": "model features of (up to adapt.tsne_points) training images and target evaluation images, coloured by "
                             "domain (left) and by class (right)" + ("; top row: the compared run (before), bottom: "
                                                                    "this run (after)" if cfg.adapt.compare_with else ""),
                  "files": ["tsne.png"]})
    if hasattr(ctx.model, "translate"):
        x01 = splits.train.float01(slice(0, 8)).to(ctx.device)
        model = ctx.model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            translated = from_model_range(model.translate(to_model_range(x01, model)), model).clamp(0, 1)
        plot_translations(x01.cpu(), translated.cpu(), out / "translations.png")
        items.append({"key": "adaptation/translations", "kind": "figure", "title": "PixelDA translations",
                      "caption": "source images (top) and the generator's translations into the target style (bottom)",
                      "files": ["translations.png"]})
    return items


def compare_run_embeddings(run_dirs: Sequence[str | Path], path: str | Path, *, n: int = 500, seed: int = 0,
                           device: Any = "cpu") -> Path:
    """The t-SNE figure of several finished ``adapt`` runs (e.g. source-only, DANN, PixelDA), one row each,
    on the data of the LAST run (its source training and target evaluation images); rows named by method."""
    from reprlab.capabilities.adaptation.plots import embedding_figure
    from reprlab.config import RunConfig
    from reprlab.runs import RunDir, load_run_model
    from reprlab.tasks import get_task

    last = RunDir.open(run_dirs[-1])
    cfg = RunConfig.from_yaml(last.path / "config.yaml")
    splits = get_task("adapt").prepare_data(cfg)
    models = []
    for r in run_dirs:
        method = RunConfig.from_yaml(Path(r) / "config.yaml").adapt.method
        models.append((f"{method} ({Path(r).name})" if len(Path(r).name) <= 20 else method, load_run_model(r)))
    return embedding_figure(models, splits.train, splits.test, path,
                            n=n, seed=seed, device=device,
                            domain_names=(f"source ({cfg.data.name})", f"target ({cfg.adapt.target})"))


__all__ = ["best_epoch", "compare_run_embeddings", "selection_monitor", "write_adaptation_report"]
