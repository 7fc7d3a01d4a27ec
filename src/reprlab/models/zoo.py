"""Imports every built-in model module so that their ``@register_model`` decorators run.

Registered names: ``fc_ae`` (:mod:`.fc`), ``conv_ae`` (:mod:`.conv`), ``resnet_ae``
(:mod:`.resnet`), ``vae`` and ``beta_vae`` (:mod:`.vae`).

Example:
    >>> from reprlab.models.registry import list_models
    >>> {"fc_ae", "conv_ae", "resnet_ae", "vae", "beta_vae"} <= set(list_models())
    True
"""

from reprlab.models import conv, fc, resnet, vae  # noqa: F401  (registration side effects)
from reprlab.models import classifier, resnet18  # noqa: F401  (ResNet-18 and heads on encoders, issue 15)
from reprlab.models import rotnet  # noqa: F401  (self-supervised anomaly scorer, issue 5)
from reprlab.models import dcgan  # noqa: F401  (generative adversarial network, issue 13)
from reprlab.models import dann, pixelda  # noqa: F401  (domain adaptation, issue 14)
from reprlab.models.conv import ConvAE, ConvAEConfig
from reprlab.models.fc import FCAE, FCAEConfig
from reprlab.models.resnet import ResNetAE, ResNetAEConfig
from reprlab.models.vae import VAE, BetaVAE, BetaVAEConfig, VAEConfig

__all__ = ["BetaVAE", "BetaVAEConfig", "ConvAE", "ConvAEConfig", "FCAE", "FCAEConfig", "ResNetAE",
           "ResNetAEConfig", "VAE", "VAEConfig"]
