"""Few-label classification from pretrained encoders.

* :mod:`~reprlab.capabilities.classification.budgets`: seeded, class-balanced label budgets
  (the same labelled images for every method at a seed);
* :mod:`~reprlab.capabilities.classification.task`: the ``classify`` task (accuracy,
  per-class accuracy, confusion matrix, learning curves);
* :mod:`~reprlab.capabilities.classification.finetune`: a classifier on the encoder of a run
  directory, and the config of ``reprlab finetune``;
* :mod:`~reprlab.capabilities.classification.baselines`: logistic regression and k-NN on
  frozen codes (scikit-learn);
* :mod:`~reprlab.capabilities.classification.plots`: the confusion matrix, and accuracy
  against the number of labels (mean ± std over seeds).

The models are in :mod:`reprlab.models`: ``resnet18`` and ``classifier`` (a head on any encoder).

Example:
    >>> import torch
    >>> from reprlab.capabilities.classification import label_budget
    >>> label_budget(torch.arange(40) % 4, 8, seed=1).shape
    torch.Size([8])
"""

from __future__ import annotations

from reprlab.capabilities.classification import config as _config  # noqa: F401  (the `classify` section)
from reprlab.capabilities.classification.baselines import BASELINES, code_baselines, frozen_code_baselines
from reprlab.capabilities.classification.budgets import STANDARD_BUDGETS, label_budget, num_classes_of, parse_budget
from reprlab.capabilities.classification.finetune import encoder_spec, finetune_config, resolve_pretrained
from reprlab.capabilities.classification.plots import (markdown_table, plot_accuracy_vs_labels, plot_confusion_matrix,
                                                       summarise)
from reprlab.capabilities.classification.task import (ClassifyTask, budget_splits, class_names,
                                                      classification_metrics, predict)

__all__ = ["BASELINES", "ClassifyTask", "STANDARD_BUDGETS", "budget_splits", "class_names", "classification_metrics",
           "code_baselines", "encoder_spec", "finetune_config", "frozen_code_baselines", "label_budget",
           "markdown_table", "num_classes_of", "parse_budget", "plot_accuracy_vs_labels", "plot_confusion_matrix",
           "predict", "resolve_pretrained", "summarise"]
