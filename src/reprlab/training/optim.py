"""Optimisers and learning-rate schedules by name, with settings per parameter group.

A model names its parameter groups (``optimizer_groups()``: one ``"main"`` group for an
autoencoder; a generator and a discriminator for a GAN; an encoder and a head for
fine-tuning). Each group gets its own optimiser built from :class:`GroupSettings`:
the run's global ``train.*`` values, replaced by what the model declares for that group
(:class:`ParamGroup`, e.g. a DCGAN's Adam 2e-4 with betas (0.5, 0.999)), replaced by the
config's ``train.groups.NAME.*``.

Example:
    >>> import torch
    >>> opt = build_optimizer([torch.nn.Parameter(torch.zeros(2))], name="adamw", lr=1e-3, weight_decay=0.01)
    >>> type(opt).__name__
    'AdamW'
    >>> resolve_group_settings("head", GroupSettings(lr=1e-3), {"lr": 1e-2}, {"head": {"betas": [0.5, 0.9]}})
    GroupSettings(optimizer='adam', lr=0.01, betas=(0.5, 0.9), momentum=0.9, weight_decay=0.0, scheduler='none')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from reprlab.base.errors import ConfigError
from reprlab.models.base import ParamGroup  # noqa: F401  (re-exported: models declare their groups with it)

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")
SCHEDULERS: tuple[str, ...] = ("none", "step", "cosine", "plateau")


@dataclass(frozen=True)
class GroupSettings:
    """The optimiser settings of one parameter group."""

    optimizer: str = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: str = "none"


GROUP_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(GroupSettings))




def check_group_options(groups: Mapping[str, Any], configured: Mapping[str, Mapping[str, Any]] | None) -> None:
    """Refuse ``train.groups`` entries naming no parameter group of the model, or no optimiser setting.

    Example:
        >>> check_group_options({"main": []}, {"decoder": {"lr": 0.1}})  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        reprlab.base.errors.ConfigError: train.groups names decoder, but the model's parameter groups are main. Fix: ...
    """
    configured = configured or {}
    unknown = sorted(set(configured) - set(groups))
    if unknown:
        raise ConfigError(f"train.groups names {', '.join(unknown)}, but the model's parameter groups are "
                          f"{', '.join(groups)}", fix=f"use train.groups.<{'|'.join(groups)}>.lr=...")
    for name, settings in configured.items():
        bad = sorted(set(settings or {}) - set(GROUP_KEYS))
        if bad:
            raise ConfigError(f"train.groups.{name} has no optimiser setting {bad[0]!r}",
                              fix=f"use only: {', '.join(GROUP_KEYS)}")


def resolve_group_settings(name: str, base: GroupSettings, declared: Mapping[str, Any] | None,
                           configured: Mapping[str, Mapping[str, Any]] | None) -> GroupSettings:
    """``base`` (the run's ``train.*``) updated by the model's ``declared`` settings, then ``configured[name]``."""
    values = dataclasses.asdict(base)
    for source, where in ((declared or {}, f"model group {name!r}"), ((configured or {}).get(name) or {}, f"train.groups.{name}")):
        for key, value in source.items():
            if key not in GROUP_KEYS:
                raise ConfigError(f"{where} has no optimiser setting {key!r}", fix=f"use only: {', '.join(GROUP_KEYS)}")
            values[key] = value
    values["betas"] = tuple(float(b) for b in values["betas"])
    return GroupSettings(**values)


def build_optimizer(params, *, name: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.9,
                    betas: tuple[float, float] = (0.9, 0.999)):
    """``adam``, ``adamw`` or ``sgd`` (with momentum) over ``params``."""
    params = list(params)
    if not params:
        raise ConfigError("the model has no trainable parameters", fix="check the model configuration")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}", fix=f"use one of {', '.join(OPTIMIZERS)}")


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
    raise ConfigError(f"unknown scheduler {name!r}", fix=f"use one of {', '.join(SCHEDULERS)}")
