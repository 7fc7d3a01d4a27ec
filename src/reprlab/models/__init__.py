"""Model zoo: autoencoders and VAEs behind one registry.

Example:
    >>> from reprlab.models import create_model, list_models
    >>> list_models()  # doctest: +SKIP
    ['beta_vae', 'conv_ae', 'fc_ae', 'resnet_ae', 'vae']
"""

from reprlab.models.base import ModelConfig, ModelOutput, ReprModel
from reprlab.models.io import load_model, save_model
from reprlab.models.registry import create_model, list_models, make_config, register_model

__all__ = ["ModelConfig", "ModelOutput", "ReprModel", "create_model", "list_models", "load_model",
           "make_config", "register_model", "save_model"]
