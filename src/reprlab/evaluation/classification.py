"""Classification evaluation shared by the tasks that classify (``classify``, ``adapt``).

:func:`predict` (logits and labels of a model on a dataset), :func:`classification_metrics`
(accuracy, loss, balanced and per-class accuracy, confusion matrix), :func:`class_names`,
:func:`num_classes_of` and :func:`write_class_tables` (``per_class.csv`` / ``confusion.csv``).
They live here, below the capabilities, so capabilities that classify share them without
importing each other.

Example:
    >>> import numpy as np
    >>> m, cm = classification_metrics(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0, 1]), 2)
    >>> m["test/acc"], cm.tolist()
    (1.0, [[1, 0], [0, 1]])
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from reprlab.base.errors import ConfigError
from reprlab.base.io import atomic_write
from reprlab.data.dataset import ImageData
from reprlab.models.base import to_model_range


@torch.no_grad()
def predict(model: torch.nn.Module, data: ImageData, *, batch_size: int = 256, device: Any = "cpu",
            max_images: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``(N, classes)`` and labels ``(N,)`` of ``model`` on ``data`` (eval mode; the first ``max_images``).

    Example:
        >>> from reprlab.models import create_model
        >>> m = create_model("resnet18", input_shape=(1, 8, 8), num_classes=3)
        >>> logits, y = predict(m, ImageData(torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1])))
        >>> logits.shape, y.tolist()
        ((5, 3), [0, 1, 2, 0, 1])
    """
    if data.labels is None:
        raise ConfigError("the evaluation images have no labels", fix="evaluate a classifier on a labelled dataset")
    logits = predict_logits(model, data, batch_size=batch_size, device=device, max_images=max_images)
    return logits, data.labels[: len(logits)].numpy()


@torch.no_grad()
def predict_logits(model: torch.nn.Module, data: ImageData, *, batch_size: int = 256, device: Any = "cpu",
                   max_images: int | None = None, method: str = "logits") -> np.ndarray:
    """``model.<method>(x)`` (``logits`` or ``features``) of the first ``max_images`` images of ``data``
    (labels not needed), in eval mode, batch by batch; inputs mapped to the model's range.

    Example:
        >>> from reprlab.models import create_model
        >>> m = create_model("resnet18", input_shape=(1, 8, 8), num_classes=3)
        >>> predict_logits(m, ImageData(torch.rand(4, 1, 8, 8))).shape
        (4, 3)
    """
    n = len(data) if max_images is None else min(len(data), int(max_images))
    dev = torch.device(device)
    model = model.to(dev)
    was = model.training
    model.eval()
    fn = getattr(model, method)
    parts = []
    try:
        for start in range(0, n, batch_size):
            x = to_model_range(data.float01(slice(start, min(n, start + batch_size))).to(dev), model)
            parts.append(fn(x).float().flatten(1).cpu())
    finally:
        model.train(was)
    return torch.cat(parts).numpy()


def classification_metrics(logits: np.ndarray, labels: np.ndarray, n_classes: int, *,
                           prefix: str = "test") -> tuple[dict[str, float], np.ndarray]:
    """``{prefix}/acc``, ``/loss``, ``/balanced_acc``, ``/acc_class_<i>``, ``/num_images``; and the confusion matrix.

    The confusion matrix (rows: true class, columns: predicted) comes from scikit-learn.

    Example:
        >>> m, cm = classification_metrics(np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]), np.array([0, 1, 1]), 2)
        >>> round(m["test/acc"], 3), m["test/acc_class_1"], cm.tolist()
        (0.667, 0.5, [[1, 0], [1, 1]])
    """
    from sklearn.metrics import confusion_matrix

    pred = logits.argmax(1)
    cm = confusion_matrix(labels, pred, labels=list(range(n_classes)))
    loss = float(F.cross_entropy(torch.as_tensor(logits), torch.as_tensor(labels, dtype=torch.int64)))
    support = cm.sum(1)
    per_class = np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)
    out = {f"{prefix}/acc": float((pred == labels).mean()), f"{prefix}/loss": loss,
           f"{prefix}/balanced_acc": float(np.nanmean(per_class)), f"{prefix}/num_images": int(len(labels))}
    out.update({f"{prefix}/acc_class_{c}": float(v) for c, v in enumerate(per_class) if np.isfinite(v)})
    return out, cm


def num_classes_of(labels: torch.Tensor, class_names: list[str] | None = None) -> int:
    """The number of classes: ``len(class_names)`` where known, else ``max(label) + 1``.

    Example:
        >>> num_classes_of(torch.tensor([0, 2, 1]))
        3
    """
    found = int(labels.max()) + 1 if len(labels) else 0
    return max(found, len(class_names)) if class_names else found


def class_names(data: ImageData, n_classes: int) -> list[str]:
    """The data's class names, or ``"0"``, ``"1"``, ... where it has none.

    Example:
        >>> class_names(ImageData(torch.zeros(1, 1, 2, 2)), 2)
        ['0', '1']
    """
    names = list(data.class_names or [])
    return names[:n_classes] if len(names) >= n_classes else [str(c) for c in range(n_classes)]


def write_class_tables(out: str | Path, cm: np.ndarray, names: Sequence[str]) -> None:
    """``out/per_class.csv`` (class, name, support, correct, accuracy) and ``out/confusion.csv``, written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def per_class(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["class", "name", "support", "correct", "accuracy"])
            for c, name in enumerate(names):
                support = int(cm[c].sum())
                w.writerow([c, name, support, int(cm[c, c]), f"{cm[c, c] / support:.6f}" if support else ""])

    def confusion(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["true \\ predicted"] + list(names))
            for c, name in enumerate(names):
                w.writerow([name] + [int(v) for v in cm[c]])

    atomic_write(out / "per_class.csv", per_class)
    atomic_write(out / "confusion.csv", confusion)


__all__ = ["class_names", "classification_metrics", "num_classes_of", "predict", "predict_logits",
           "write_class_tables"]
