"""One entry point for every dataset: :func:`load_dataset` and :func:`list_datasets`.

* ``fashion-mnist``, ``mnist``, ``usps``, ``svhn``, ``mnist-m``: canonical files found (or
  downloaded) by :func:`reprlab.data.sources.locate` and read by the reader registered for
  their format in :data:`READERS`;
* ``fashion-mnist-sample``: the small sample shipped with the package (offline);
* ``arrays``: a ``.npy``/``.npz`` file given by ``path`` (see :func:`load_arrays`);
* ``folder``: a folder of images given by ``path`` (see :func:`load_image_folder`).

Example:
    >>> from reprlab.data import load_dataset
    >>> data = load_dataset("fashion-mnist-sample", "test", resize=(32, 32))
    >>> data.shape
    (1, 32, 32)
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path
from typing import Callable, Sequence

from reprlab.data import sources
from reprlab.data.arrays import load_arrays
from reprlab.data.dataset import ImageData
from reprlab.data.embedded import SAMPLE_NAME, load_embedded
from reprlab.data.folders import load_image_folder
from reprlab.data.idx import load_idx_split
from reprlab.data.mnistm import read_mnistm, read_mnistm_archive
from reprlab.data.svhn import read_svhn_mat
from reprlab.data.transforms import convert_channels, resize as resize_images
from reprlab.data.usps import read_usps_h5, read_usps_libsvm
from reprlab.base.errors import DataError

logger = logging.getLogger(__name__)

_SPLITS = ("train", "test")

#: A canonical dataset's reader: ``(files by role from sources.locate, split, dataset name) -> ImageData``.
Reader = Callable[[dict[str, Path], str, str], ImageData]


def _read_idx(files: dict[str, Path], split: str, name: str) -> ImageData:
    return load_idx_split(files["images"], files["labels"], name=name)


def _read_usps(files: dict[str, Path], split: str, name: str) -> ImageData:
    if "h5" in files:
        return read_usps_h5(files["h5"], split, name=name)
    return read_usps_libsvm(files["libsvm"], name=name)


def _read_svhn(files: dict[str, Path], split: str, name: str) -> ImageData:
    return read_svhn_mat(files["mat"], name=name)


def _read_mnistm(files: dict[str, Path], split: str, name: str) -> ImageData:
    if "archive" in files:
        return read_mnistm_archive(files["archive"], split, name=name)
    return read_mnistm(files["labels"].parent, split, name=name)


#: Readers of the canonical datasets' formats, keyed by ``sources.DatasetFiles.reader``.
READERS: dict[str, Reader] = {"idx": _read_idx, "usps": _read_usps, "svhn": _read_svhn, "mnist-m": _read_mnistm}

#: Every name :func:`load_dataset` accepts: the canonical datasets, then the embedded sample and
#: the user's own files.
_DATASETS = (*sources.DATASETS, SAMPLE_NAME, "arrays", "folder")


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`.

    Example:
        >>> list_datasets()
        ['fashion-mnist', 'mnist', 'usps', 'svhn', 'mnist-m', 'fashion-mnist-sample', 'arrays', 'folder']
    """
    return list(_DATASETS)


def _check_name(name: str) -> str:
    """Return ``name`` if it is a dataset name (exact spelling), else raise with a suggestion."""
    if name in _DATASETS:
        return name
    key = str(name).strip().lower().replace("_", "-")
    compact = {d.replace("-", ""): d for d in _DATASETS}
    if key.replace("-", "") in compact:
        close = [compact[key.replace("-", "")]]
    else:
        close = difflib.get_close_matches(key, _DATASETS, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise DataError(f"unknown dataset {name!r}", fix=f"{hint}choose one of: {', '.join(_DATASETS)}")


def load_dataset(name: str, split: str = "train", *, data_dir: str | os.PathLike | None = None,
                 path: str | os.PathLike | None = None, labels_path: str | os.PathLike | None = None,
                 resize: int | Sequence[int] | None = None, channels: int | None = None,
                 download: bool = True, image_shape: Sequence[int] | None = None) -> ImageData:
    """Load split ``"train"`` or ``"test"`` of dataset ``name`` as :class:`ImageData`.

    ``data_dir`` is searched first for canonical datasets; ``path`` (and ``labels_path``)
    name the file or folder for ``arrays``/``folder``. ``resize`` (``[H, W]`` or an int) and
    ``channels`` (1 or 3) are applied after loading. ``download=False`` never touches the
    network. ``image_shape`` (``arrays`` only) gives the shape of flat ``(N, H*W)`` rows.
    ``meta["split"]`` records the split.

    Example:
        >>> data = load_dataset("mnist", "test", data_dir="~/datasets")  # doctest: +SKIP
        >>> len(data), data.class_names[:3]  # doctest: +SKIP
        (10000, ['0', '1', '2'])
    """
    key = _check_name(name)
    if split not in _SPLITS:
        raise DataError(f"unknown split {split!r} for dataset {key!r}", fix="use 'train' or 'test'")
    if key in ("arrays", "folder"):
        if path is None:
            example = "images.npz" if key == "arrays" else "path/to/images/"
            raise DataError(f"dataset {key!r} needs a path", fix=f"set data.path={example} (or pass path=...)")
        if key == "arrays":
            data = load_arrays(path, labels_path, split=split, image_shape=image_shape)
        else:
            if labels_path is not None:
                raise DataError("labels_path is not used with the 'folder' dataset",
                                fix="drop labels_path; put images in one sub-folder per class to get labels")
            data = load_image_folder(path, resize=resize, channels=channels)
    else:
        if image_shape is not None:
            raise DataError(f"image_shape is only for the 'arrays' dataset, not {key!r}",
                            fix="drop image_shape (data.resize=[H,W] resizes images)")
        if path is not None or labels_path is not None:
            raise DataError(f"path/labels_path are only for the 'arrays' and 'folder' datasets, not {key!r}",
                            fix=f"use data_dir (or --data-dir / {sources.ENV_VAR}) to say where {key} lives")
        if key == SAMPLE_NAME:
            data = load_embedded(split)
        else:
            data = _load_canonical(key, split, data_dir, download)
    if resize is not None:
        size = (resize, resize) if isinstance(resize, int) else tuple(resize)
        if tuple(data.images.shape[-2:]) != size:
            data.images = resize_images(data.images, size)
    if channels is not None:
        data.images = convert_channels(data.images, channels)
    data.meta["split"] = split
    data.validate()
    return data


def _load_canonical(name: str, split: str, data_dir: str | os.PathLike | None, download: bool) -> ImageData:
    spec = sources.get_spec(name)
    try:
        files = sources.locate(name, split, data_dir=data_dir, download=download)
    except DataError as exc:
        hint = _only_other_split(name, split, data_dir, exc)
        if hint is None:
            raise
        raise hint from exc
    data = READERS[spec.reader](files, split, name)
    data.class_names = list(spec.class_names)
    return data


def _only_other_split(name: str, split: str, data_dir: str | os.PathLike | None, exc: DataError) -> DataError | None:
    """For MNIST-M's train split (rarely distributed) when its test split is present: an error
    pointing at the adaptation protocol, which splits the test images; else ``None``."""
    if name != "mnist-m" or split != "train":
        return None
    try:
        test = sources.locate(name, "test", data_dir=data_dir, download=False)
    except DataError:
        return None
    if "labels" not in test:
        return None
    folder = test["labels"].parent
    return DataError(f"{name} train split not found: only the test split is present, in {folder} ({exc.problem})",
                     fix=f"domain adaptation with MNIST-M as the target uses the available test images: the adaptation "
                         f"protocol (the 'adapt' task, reprlab.data.protocols.split_for_adaptation) splits them into an "
                         f"adaptation part and a held-out evaluation part; or, to use the train split, place "
                         f"mnist_m_train/ and mnist_m_train_labels.txt in {folder}/ (or mnist_m.tar.gz beside them)")
