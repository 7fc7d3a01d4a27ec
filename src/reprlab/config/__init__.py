"""The run config: YAML + dotted overrides, every field validated before anything runs.

Each section is a pydantic v2 dataclass in strict mode (:func:`section`); every bad value
is one :class:`~reprlab.base.errors.ConfigError` naming the dotted key, the value and the
fix. YAML is read with YAML 1.2 numbers (:mod:`reprlab.config.yamlio`), so ``0_1`` stays a
string and ``1e-3`` is a number.

Config sections register themselves (:func:`register_section`), as models do: the
``cluster`` section belongs to the clustering capability, which registers it; this package
imports no capability.

Example:
    >>> from reprlab.config import RunConfig
    >>> RunConfig.from_dict({"train": {"epochs": 2}}).train.epochs
    2
"""

from reprlab.config.core import (AugmentConfig, DataConfig, EarlyStoppingConfig, EvalConfig, GroupConfig, RunConfig,
                                 TrainConfig, apply_overrides, read_config_file, register_section)
from reprlab.config.typed import section
from reprlab.config.yamlio import dump_yaml, load_yaml

__all__ = ["AugmentConfig", "DataConfig", "EarlyStoppingConfig", "EvalConfig", "GroupConfig", "RunConfig", "TrainConfig",
           "apply_overrides", "dump_yaml", "load_yaml", "read_config_file", "register_section", "section"]
