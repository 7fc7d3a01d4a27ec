"""Shared features: image descriptors, encoders' codes and reducers, the one k-NN search.

Below the capabilities, so analysis, clustering and anomaly detection share them without
importing each other.

Example:
    >>> from reprlab.features import Reducer, image_descriptors, knn_search
"""

from reprlab.features.descriptors import (as_images01, gaussian_blur, gradient_histograms, image_descriptors,
                                          scattering_coefficients)
from reprlab.features.embeddings import METHODS, Reducer, encode_dataset, reduce
from reprlab.features.neighbors import knn_search

__all__ = ["METHODS", "Reducer", "as_images01", "encode_dataset", "gaussian_blur", "gradient_histograms",
           "image_descriptors", "knn_search", "reduce", "scattering_coefficients"]
