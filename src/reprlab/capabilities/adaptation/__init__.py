"""Unsupervised domain adaptation: a labelled source, an unlabelled target, honest selection.

* :mod:`~reprlab.capabilities.adaptation.config`: the ``adapt`` section (target, method,
  protocol, selection criterion);
* :mod:`~reprlab.capabilities.adaptation.task`: the ``adapt`` task (the data protocol: adaptation
  images without labels, held-out evaluation images; the bad-input checks);
* :mod:`~reprlab.capabilities.adaptation.selection`: label-free criteria (source validation
  accuracy, target prediction entropy, deep embedded validation, soft neighbourhood density),
  the oracle, and the callback keeping both checkpoints;
* :mod:`~reprlab.capabilities.adaptation.report`: the final evaluation and report items;
* :mod:`~reprlab.capabilities.adaptation.plots`: t-SNE of source and target features, PixelDA grids.

The models are in :mod:`reprlab.models` (``dann``, ``pixelda``); ``reprlab adapt`` builds the config.

Example:
    >>> import numpy as np
    >>> from reprlab.capabilities.adaptation import prediction_entropy
    >>> round(prediction_entropy(np.zeros((3, 10))), 4)  # uniform predictions over 10 digits: log 10
    2.3026
    >>> import reprlab
    >>> reprlab.train({"task": "adapt", "model": {"name": "dann", "preset": "mnist"},
    ...                "data": {"name": "mnist", "max_train": 2000},
    ...                "adapt": {"target": "mnist-m", "method": "dann"}})  # doctest: +SKIP
"""

from __future__ import annotations

from reprlab.capabilities.adaptation import config as _config  # noqa: F401  (the `adapt` section)
from reprlab.capabilities.adaptation.config import METHODS, PROTOCOLS, SELECTIONS, AdaptConfig, allow_model
from reprlab.capabilities.adaptation.selection import (SelectionCallback, deep_embedded_validation, dev_from_weights,
                                                       prediction_entropy, soft_neighbourhood_density)
from reprlab.capabilities.adaptation.task import AdaptSplits, AdaptTask, holdout_split, prepare_adaptation

__all__ = ["AdaptConfig", "AdaptSplits", "AdaptTask", "METHODS", "PROTOCOLS", "SELECTIONS", "SelectionCallback",
           "allow_model", "deep_embedded_validation", "dev_from_weights", "holdout_split", "prediction_entropy",
           "prepare_adaptation", "soft_neighbourhood_density"]
