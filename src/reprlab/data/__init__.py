"""Datasets: loaders for canonical datasets, arrays and image folders; batch transforms.

Example:
    >>> from reprlab.data import load_dataset, list_datasets
    >>> "fashion-mnist-sample" in list_datasets()
    True
    >>> data = load_dataset("fashion-mnist-sample", "test")
    >>> data.images.shape
    torch.Size([1000, 1, 28, 28])
"""

from reprlab.data.arrays import load_arrays
from reprlab.data.dataset import ImageData
from reprlab.data.embedded import load_embedded
from reprlab.data.folders import load_image_folder
from reprlab.data.idx import load_idx_split, read_idx
from reprlab.data.registry import list_datasets, load_dataset
from reprlab.data.sources import describe as describe_datasets
from reprlab.data.sources import locate
from reprlab.data.transforms import Augmenter, convert_channels, from_model_range, resize, to_model_range

__all__ = [
    "ImageData",
    "load_dataset",
    "list_datasets",
    "load_arrays",
    "load_image_folder",
    "load_embedded",
    "load_idx_split",
    "read_idx",
    "locate",
    "describe_datasets",
    "Augmenter",
    "to_model_range",
    "from_model_range",
    "resize",
    "convert_channels",
]
