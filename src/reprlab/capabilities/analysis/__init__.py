"""Latent-space exploration and visual analysis of trained models.

* :mod:`~reprlab.features.embeddings`: :func:`encode_dataset` and the :class:`Reducer`
  (PCA, kernel PCA, openTSNE t-SNE, UMAP; fit / transform of new points);
* :mod:`~reprlab.capabilities.analysis.latent`: traversals, 2-D grids, interpolation, prior samples,
  robustness of the decoder to latent noise;
* :mod:`~reprlab.capabilities.analysis.inside`: convolution kernels and activation maps;
* :mod:`~reprlab.capabilities.analysis.plots`: their figures in the house style;
* :mod:`~reprlab.capabilities.analysis.pipeline`: :func:`analyze` a run directory into ``RUN_DIR/analysis/``.

Heavy dependencies (openTSNE, umap-learn) load only when their method is used.

Example:
    >>> from reprlab.capabilities.analysis import Reducer
    >>> import numpy as np
    >>> Reducer("pca").fit_transform(np.random.default_rng(0).normal(size=(20, 4))).shape
    (20, 2)
"""

from __future__ import annotations

from reprlab.features.embeddings import METHODS, Reducer, encode_dataset, reduce
from reprlab.capabilities.analysis.inside import activation_maps, conv_kernels
from reprlab.capabilities.analysis.latent import (RobustnessResult, interpolate, latent_noise_robustness, prior_samples, traversal,
                                     traversal_grid)
from reprlab.capabilities.analysis.pipeline import ANALYSES, analyze, load_index

__all__ = ["ANALYSES", "METHODS", "Reducer", "RobustnessResult", "activation_maps", "analyze", "conv_kernels",
           "encode_dataset", "interpolate", "latent_noise_robustness", "load_index", "prior_samples", "reduce",
           "traversal", "traversal_grid"]
