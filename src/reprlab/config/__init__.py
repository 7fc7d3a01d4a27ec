"""The run config: YAML + dotted overrides, every field validated before anything runs.

Config sections register themselves (:func:`register_section`), as models do: the
``cluster`` section belongs to the clustering capability, which registers it; this package
imports no capability.

Example:
    >>> from reprlab.config import RunConfig
    >>> RunConfig.from_dict({"train": {"epochs": 2}}).train.epochs
    2
"""

from reprlab.config.core import (AugmentConfig, DataConfig, EarlyStoppingConfig, EvalConfig, RunConfig, TrainConfig,
                                 apply_overrides, register_section)

__all__ = ["AugmentConfig", "DataConfig", "EarlyStoppingConfig", "EvalConfig", "RunConfig", "TrainConfig",
           "apply_overrides", "register_section"]
