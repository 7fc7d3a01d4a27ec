"""Evaluation protocols: one-class over a labelled dataset, and user-defined normal/test sets.

* **One-class** (:func:`run_one_class`): each class of a labelled dataset is taken as
  normal in turn; the detector is trained on that class's *training* images and scores
  the *whole* test set, in which every other class is an anomaly (label 1).
* **User-defined sets** (:func:`detect`): normal images and test images given as
  :class:`ImageData`, arrays, ``.npy``/``.npz`` files or image folders, with or without
  0/1 anomaly labels for the test images.

Both refuse training data that contains test images (:func:`check_no_overlap`, exact
pixel matches found by hashing rows), which would make every score look better than it is.

Example:
    >>> import torch
    >>> from reprlab.data.dataset import ImageData
    >>> train = ImageData(torch.rand(40, 1, 8, 8), torch.arange(40) % 2)
    >>> test = ImageData(torch.rand(20, 1, 8, 8), torch.arange(20) % 2)
    >>> normal, test_c, y = one_class_split(train, test, normal_class=0)
    >>> len(normal), int(y.sum())
    (20, 10)
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from reprlab.capabilities.anomaly.detector import AnomalyDetector
from reprlab.capabilities.anomaly.metrics import evaluate_scores
from reprlab.capabilities.anomaly.scores import as_images01
from reprlab.data.dataset import ImageData
from reprlab.base.errors import ConfigError, DataError
from reprlab.base.io import atomic_write
from reprlab.data import convert_channels, load_arrays, load_image_folder
from reprlab.data.transforms import resize as resize_images
from reprlab.data.arrays import _load_labels
from reprlab.data import load_dataset

logger = logging.getLogger(__name__)

__all__ = ["DetectionResult", "check_no_overlap", "detect", "image_hashes", "load_images", "one_class_split",
           "run_one_class"]


@dataclass
class DetectionResult:
    """Test scores, labels and metrics of one detection experiment.

    ``metrics`` has ``auroc``, ``average_precision``, ``precision``, ``recall``, ``f1``
    (at ``threshold``), ``threshold`` and ``flagged_fraction`` when the test images are
    labelled, else only ``threshold`` and ``flagged_fraction``. Times are in seconds
    (CPU time of the whole process, all threads).

    Example:
        >>> r = DetectionResult(np.array([0.1, 0.9]), np.array([0, 1]), {"auroc": 1.0}, 0.5)
        >>> r.prefixed()
        {'test/auroc': 1.0}
    """

    scores: np.ndarray
    labels: np.ndarray | None
    metrics: dict[str, float]
    threshold: float
    detector: AnomalyDetector | None = None
    test: ImageData | None = None
    normal_class: int | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def prefixed(self, prefix: str = "test") -> dict[str, float]:
        """Metrics with keys ``f"{prefix}/{name}"``."""
        return {f"{prefix.rstrip('/')}/{k}": v for k, v in self.metrics.items()}

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Atomically write one row per test image: ``index``, ``score``, ``predicted``, ``label`` if known
        (1 = anomaly) and, in the one-class protocol, the image's ``class``."""
        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                with_class = self.normal_class is not None and self.test is not None and self.test.labels is not None
                w.writerow(["index", "score", "predicted"] + (["label"] if self.labels is not None else [])
                           + (["class"] if with_class else []))
                for i, s in enumerate(self.scores):
                    row: list = [i, repr(float(s)), int(s > self.threshold)]
                    if self.labels is not None:
                        row.append(int(self.labels[i]))
                    if with_class:
                        row.append(int(self.test.labels[i]))  # type: ignore[union-attr]
                    w.writerow(row)
        return atomic_write(path, write)


# ----------------------------------------------------------------------------------------
# inputs and checks
# ----------------------------------------------------------------------------------------
def load_images(source: Any, labels: Any = None, *, name: str | None = None, resize: Any = None,
                channels: int | None = None) -> ImageData:
    """Images from an :class:`ImageData`, an array/tensor, a ``.npy``/``.npz`` file or an image folder.

    ``labels`` (optional) is an array or a ``.npy``/``.npz`` path. Folders go through
    :func:`reprlab.data.load_image_folder` (``resize``/``channels`` apply), files through
    :func:`reprlab.data.load_arrays`.

    Example:
        >>> load_images(np.zeros((3, 8, 8), np.uint8), name="toy").shape
        (1, 8, 8)
    """

    if isinstance(source, ImageData):
        data = source
        if labels is not None:
            data = ImageData(data.images, _labels_tensor(labels, len(data)), data.name, data.source,
                             data.class_names, dict(data.meta))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            data = load_image_folder(path, resize=resize, channels=channels)
            if labels is not None:
                data = ImageData(data.images, _labels_tensor(labels, len(data)), data.name, data.source, None,
                                 dict(data.meta))
        elif path.exists():
            data = load_arrays(path, labels)
        else:
            raise DataError(f"{path} does not exist", fix="pass an image folder or a .npy/.npz file")
    else:
        x = as_images01(source)
        data = ImageData(x.contiguous(), None if labels is None else _labels_tensor(labels, x.shape[0]),
                         name=name or "images")
    if name:
        data.name = name
    if resize is not None and not (isinstance(source, (str, os.PathLike)) and Path(source).is_dir()):
        size = (resize, resize) if isinstance(resize, int) else tuple(resize)
        if tuple(data.images.shape[-2:]) != size:
            data.images = resize_images(data.images, size)
    if channels is not None:
        data.images = convert_channels(data.images, channels)
    data.validate()
    return data


def _labels_tensor(labels: Any, n: int) -> torch.Tensor:
    if isinstance(labels, (str, os.PathLike)):
        arr, _ = _load_labels(labels, None)
    else:
        arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    arr = np.asarray(arr).reshape(-1)
    if arr.size != n:
        raise DataError(f"{arr.size} labels for {n} images", fix="pass exactly one label per image")
    if arr.dtype.kind not in "biu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise DataError(f"labels must be integers, got dtype {arr.dtype}", fix="pass integer labels (0 normal, 1 anomaly)")
    return torch.from_numpy(arr.astype(np.int64))


def image_hashes(data: ImageData | Any) -> list[bytes]:
    """One digest per image of its 8-bit pixels (floats are rounded to k/255 first).

    Example:
        >>> a = image_hashes(np.zeros((2, 4, 4), np.uint8))
        >>> len(a), a[0] == a[1]
        (2, True)
    """
    x = data.images if isinstance(data, ImageData) else as_images01(data)
    if x.dtype != torch.uint8:
        x = (x.float() * 255).round().clamp(0, 255).to(torch.uint8)
    arr = np.ascontiguousarray(x.cpu().numpy()).reshape(x.shape[0], -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in arr]


def check_no_overlap(train: ImageData | Any, test: ImageData | Any, *, train_name: str = "training images",
                     test_name: str = "test images") -> None:
    """Raise :class:`DataError` if any test image also appears (pixel for pixel) in the training images.

    Example:
        >>> x = np.random.default_rng(0).integers(0, 255, (5, 4, 4)).astype(np.uint8)
        >>> check_no_overlap(x[:3], x[3:])
        >>> check_no_overlap(x, x[3:])
        Traceback (most recent call last):
        ...
        reprlab.base.errors.DataError: the training images contain 2 of the 2 test images (100.0%): ...
    """
    train_h = set(image_hashes(train))
    test_h = image_hashes(test)
    shared = [i for i, h in enumerate(test_h) if h in train_h]
    if shared:
        frac = 100.0 * len(shared) / len(test_h)
        raise DataError(f"the {train_name} contain {len(shared)} of the {len(test_h)} {test_name} ({frac:.1f}%): "
                        f"e.g. test indices {shared[:5]}; scores of images seen in training look falsely normal",
                        fix="train on images disjoint from the test set (e.g. the dataset's train split, or "
                            "remove the shared images from the normal set)")


def one_class_split(train: ImageData, test: ImageData, normal_class: int) -> tuple[ImageData, ImageData, np.ndarray]:
    """Normal training images (class ``normal_class``), the whole test set, and its 0/1 anomaly labels.

    Example:
        >>> tr = ImageData(torch.zeros(4, 1, 4, 4), torch.tensor([0, 1, 0, 1]))
        >>> te = ImageData(torch.zeros(3, 1, 4, 4), torch.tensor([0, 1, 1]))
        >>> n, t, y = one_class_split(tr, te, 1)
        >>> len(n), y.tolist()
        (2, [1, 0, 0])
    """
    for d, what in ((train, "training"), (test, "test")):
        if d.labels is None:
            raise DataError(f"the one-class protocol needs class labels, but the {what} images ({d.name}) have none",
                            fix="use a labelled dataset, or the user-defined protocol (reprlab detect --normal --test)")
    classes = sorted(set(train.labels.tolist()))
    if isinstance(normal_class, bool) or not isinstance(normal_class, (int, np.integer)) or int(normal_class) not in classes:
        raise ConfigError(f"normal class {normal_class!r} is not among the training labels {classes}",
                          fix=f"choose one of {classes}")
    c = int(normal_class)
    normal = train.subset(torch.nonzero(train.labels == c).flatten())
    y = (test.labels != c).numpy().astype(np.int64)
    return normal, test, y


# ----------------------------------------------------------------------------------------
# protocols
# ----------------------------------------------------------------------------------------
def _make_detector(detector: AnomalyDetector | dict | None) -> AnomalyDetector:
    if detector is None:
        return AnomalyDetector()
    if isinstance(detector, AnomalyDetector):
        return AnomalyDetector(**detector.get_params())  # a fresh, unfitted copy
    if isinstance(detector, dict):
        return AnomalyDetector(**detector)
    raise ConfigError(f"detector must be an AnomalyDetector or a dict of its parameters, got {type(detector).__name__}",
                      fix="e.g. detector={'score': 'mse', 'model': 'conv_ae', 'epochs': 5}")


def detect(normal: Any, test: Any, *, test_labels: Any = None, detector: AnomalyDetector | dict | None = None,
           check_overlap: bool = True, normal_class: int | None = None) -> DetectionResult:
    """Fit ``detector`` on ``normal`` images and score ``test`` images (user-defined sets).

    ``normal``/``test`` are anything :func:`load_images` accepts. With ``test_labels``
    (0 = normal, 1 = anomaly; an array or a ``.npy``/``.npz`` path) the result has ROC AUC,
    average precision and precision/recall/F1 at the detector's threshold; a labelled test
    set with only one kind of image raises :class:`DataError` (AUC is undefined). Without
    labels, only scores, the threshold and the flagged fraction. ``detector`` may be an
    :class:`AnomalyDetector` (a fresh copy is fitted) or a dict of its parameters.

    Example:
        >>> import torch
        >>> normal = torch.rand(60, 1, 8, 8) * 0.3
        >>> test = torch.cat([torch.rand(10, 1, 8, 8) * 0.3, 0.7 + torch.rand(10, 1, 8, 8) * 0.3])
        >>> r = detect(normal, test, test_labels=[0] * 10 + [1] * 10,
        ...            detector={"score": "pixel_knn", "contamination": 0.1})
        >>> r.metrics["auroc"]
        1.0
    """
    normal_data = load_images(normal, name="normal")
    test_data = load_images(test, test_labels, name="test")
    if normal_data.shape != test_data.shape:
        raise DataError(f"normal images have shape {normal_data.shape} but test images {test_data.shape}",
                        fix="resize both to the same size and channels (resize=..., channels=...)")
    labels = None
    if test_labels is not None:
        labels = test_data.labels.numpy().astype(np.int64)
    if check_overlap:
        check_no_overlap(normal_data, test_data, train_name="normal (training) images")
    det = _make_detector(detector)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    det.fit(normal_data)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    scores = det.decision_function(test_data)
    cpu2, wall2 = time.process_time(), time.perf_counter()
    if labels is not None:
        metrics = evaluate_scores(labels, scores, threshold=det.threshold_)
    else:
        metrics = {"threshold": float(det.threshold_), "flagged_fraction": float((scores > det.threshold_).mean()),
                   "num_images": int(scores.size)}
    timings = {"fit_cpu_seconds": cpu1 - cpu0, "fit_wall_seconds": wall1 - wall0,
               "score_cpu_seconds": cpu2 - cpu1, "score_wall_seconds": wall2 - wall1}
    return DetectionResult(scores, labels, metrics, float(det.threshold_), det, test_data, normal_class, timings)


def run_one_class(detector: AnomalyDetector | dict | None = None, *, dataset: str | tuple[ImageData, ImageData] = "fashion-mnist",
                  normal_classes: Sequence[int] | None = None, data_dir: str | os.PathLike | None = None,
                  max_train: int | None = None, max_test: int | None = None, seed: int = 0,
                  download: bool = True, check_overlap: bool = True) -> list[DetectionResult]:
    """The one-class protocol: each class as normal in turn, scored on the whole test set.

    ``dataset`` is a dataset name (its train and test splits) or a ``(train, test)`` pair
    of labelled :class:`ImageData`. ``max_train`` keeps at most that many normal training
    images per class and ``max_test`` that many test images (seeded subsets, for quick
    runs). Returns one :class:`DetectionResult` per normal class.

    Example:
        >>> results = run_one_class({"score": "mse", "model": "conv_ae", "epochs": 5},
        ...                         dataset="fashion-mnist", normal_classes=[0])  # doctest: +SKIP
        >>> results[0].metrics["auroc"]  # doctest: +SKIP
        0.89
    """
    if isinstance(dataset, tuple):
        train, test = dataset
    else:
        train = load_dataset(dataset, "train", data_dir=data_dir, download=download)
        test = load_dataset(dataset, "test", data_dir=data_dir, download=download)
    if check_overlap:
        check_no_overlap(train, test)
    gen = torch.Generator().manual_seed(int(seed))
    if max_test is not None and max_test < len(test):
        test = test.subset(torch.randperm(len(test), generator=gen)[:max_test])
    if train.labels is None:
        raise DataError(f"the one-class protocol needs class labels, but {train.name} has none",
                        fix="use a labelled dataset, or the user-defined protocol")
    classes = sorted(set(train.labels.tolist())) if normal_classes is None else list(normal_classes)
    results = []
    for c in classes:
        normal, test_c, y = one_class_split(train, test, c)
        if max_train is not None and max_train < len(normal):
            normal = normal.subset(torch.randperm(len(normal), generator=gen)[:max_train])
        det = _make_detector(detector)
        if isinstance(detector, dict) and "random_state" not in detector:
            det.random_state = int(seed)
        res = detect(normal, test_c, test_labels=y, detector=det, check_overlap=False, normal_class=int(c))
        name = train.class_names[c] if train.class_names and 0 <= c < len(train.class_names) else str(c)
        logger.info("one-class %s: normal class %s (%s): AUROC %.4f", getattr(train, "name", "data"), c, name,
                    res.metrics["auroc"])
        results.append(res)
    return results
