"""Optimisers and learning-rate schedules by name.

Example:
    >>> import torch
    >>> opt = build_optimizer([torch.nn.Parameter(torch.zeros(2))], name="adamw", lr=1e-3, weight_decay=0.01)
    >>> type(opt).__name__
    'AdamW'
"""

from __future__ import annotations

import torch

from reprlab.errors import ConfigError


def build_optimizer(params, *, name: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.9):
    """``adam``, ``adamw`` or ``sgd`` (with momentum) over ``params``."""
    params = list(params)
    if not params:
        raise ConfigError("the model has no trainable parameters", fix="check the model configuration")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}", fix="use adam, adamw or sgd")


def build_scheduler(optimizer, *, name: str, epochs: int, step_size: int = 10, gamma: float = 0.1,
                    plateau_patience: int = 3):
    """Epoch-level schedule: ``none``, ``step``, ``cosine`` or ``plateau`` (on the monitored metric)."""
    if name == "none":
        return None
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=gamma, patience=plateau_patience)
    raise ConfigError(f"unknown scheduler {name!r}", fix="use none, step, cosine or plateau")
