"""The in-memory image container shared by every loader.

All loaders return an :class:`ImageData`: images as an ``(N, C, H, W)`` tensor, either
``uint8`` in ``[0, 255]`` or ``float32`` in ``[0, 1]``, plus optional integer labels.
Keeping the raw dtype (uint8 for MNIST-like data) keeps 70,000 images at 55 MB; batches
are converted to float (and to the model's range) on the fly by
:func:`reprlab.data.transforms.to_model_range`.

Example:
    >>> import torch
    >>> data = ImageData(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.arange(4))
    >>> data.shape, len(data)
    ((1, 28, 28), 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from reprlab.base.errors import DataError


@dataclass
class ImageData:
    """Images ``(N, C, H, W)`` (uint8 0..255 or float32 0..1) with optional int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    name: str = "images"
    source: str = ""
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)
    domains: torch.Tensor | None = None  # per-image domain index (0 = source, 1 = target, ...), where mixed

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check rank, dtype, value range, NaN and label length; raise :class:`DataError`."""
        x = self.images
        where = f"{self.name}" + (f" ({self.source})" if self.source else "")
        if not isinstance(x, torch.Tensor):
            raise DataError(f"{where}: images must be a torch.Tensor, got {type(x).__name__}",
                            fix="convert with torch.as_tensor(...)")
        if x.ndim != 4:
            raise DataError(f"{where}: images must have shape (N, C, H, W), got shape {tuple(x.shape)}",
                            fix="reshape to (N, C, H, W), or save the images with numpy.save and load them as data.name=arrays data.path=FILE.npy (NHWC, NCHW and NHW are accepted)")
        if x.shape[0] == 0:
            raise DataError(f"{where}: contains no images", fix="point to a non-empty dataset")
        if x.shape[1] not in (1, 3):
            raise DataError(f"{where}: images must have 1 or 3 channels, got {x.shape[1]} (shape {tuple(x.shape)})",
                            fix="convert to grayscale or RGB first")
        if x.dtype == torch.uint8:
            pass
        elif x.dtype == torch.float32:
            if not torch.isfinite(x).all():
                bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
                raise DataError(f"{where}: {bad} image(s) contain NaN or infinite pixels",
                                fix="remove or repair those images before training")
            lo, hi = float(x.min()), float(x.max())
            if lo < -1e-6 or hi > 1 + 1e-6:
                raise DataError(f"{where}: float images must lie in [0, 1], found values in [{lo:.3g}, {hi:.3g}]",
                                fix="rescale to [0, 1] (e.g. divide uint8-valued floats by 255)")
        else:
            raise DataError(f"{where}: images must be uint8 or float32, got {x.dtype}",
                            fix="cast to uint8 (0..255) or float32 (0..1)")
        if self.labels is not None:
            if self.labels.ndim != 1 or self.labels.shape[0] != x.shape[0]:
                raise DataError(f"{where}: {x.shape[0]} images but labels of shape {tuple(self.labels.shape)}",
                                fix="provide exactly one integer label per image")
            self.labels = self.labels.to(torch.int64)
        if self.domains is not None:
            if self.domains.ndim != 1 or self.domains.shape[0] != x.shape[0]:
                raise DataError(f"{where}: {x.shape[0]} images but domains of shape {tuple(self.domains.shape)}",
                                fix="provide exactly one integer domain index per image")
            self.domains = self.domains.to(torch.int64)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Per-image shape ``(C, H, W)``."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index: torch.Tensor) -> "ImageData":
        """Return the images (and labels, domains) at ``index`` as a new :class:`ImageData`."""
        labels = None if self.labels is None else self.labels[index]
        domains = None if self.domains is None else self.domains[index]
        return ImageData(self.images[index], labels, self.name, self.source, self.class_names, dict(self.meta), domains)

    def float01(self, index: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Images (optionally a subset) as float32 in [0, 1]."""
        x = self.images if index is None else self.images[index]
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
