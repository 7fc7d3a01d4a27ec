"""Inside the network: convolution kernels and per-layer activation maps.

:func:`conv_kernels` lists the weights of every ``Conv2d`` / ``ConvTranspose2d`` as
``(out_channels, in_channels, kh, kw)`` arrays; :func:`activation_maps` runs one image
through ``decode(encode(x))`` with forward hooks and returns each layer's output for it.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("conv_ae", input_shape=(1, 12, 12), latent_dim=2, channels=[4, 8])
    >>> [k.name for k in conv_kernels(m)][:2]
    ['encoder.stage0.0', 'encoder.stage1.0']
    >>> acts = activation_maps(m, torch.rand(1, 12, 12))
    >>> acts[0].name, acts[0].values.shape
    ('encoder.stage0.0', (4, 6, 6))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from reprlab.base.errors import ConfigError, ModelError
from reprlab.evaluation.reconstruction import to_model_range

logger = logging.getLogger(__name__)

__all__ = ["LayerActivation", "LayerKernels", "activation_maps", "conv_kernels"]

_CONV_TYPES = (nn.Conv2d, nn.ConvTranspose2d)


@dataclass
class LayerKernels:
    """One convolution layer's weights as ``(out_channels, in_channels, kh, kw)``."""

    name: str
    kind: str
    weights: np.ndarray


@dataclass
class LayerActivation:
    """One layer's output for a single image, ``(channels, h, w)``."""

    name: str
    kind: str
    values: np.ndarray


def conv_kernels(model: nn.Module) -> list[LayerKernels]:
    """Weights of every 2-D (transposed) convolution, in module order.

    Transposed convolutions store ``(in, out, kh, kw)``; they are returned as
    ``(out, in, kh, kw)`` like ordinary ones. Raises :class:`ModelError` when the model has
    no convolution layers (e.g. ``fc_ae``).

    Example:
        >>> from reprlab.models import create_model
        >>> m = create_model("conv_ae", input_shape=(1, 12, 12), latent_dim=2, channels=[4, 8])
        >>> conv_kernels(m)[0].weights.shape
        (4, 1, 3, 3)
    """
    out = []
    for name, module in model.named_modules():
        if isinstance(module, _CONV_TYPES):
            w = module.weight.detach().float().cpu().numpy()
            if isinstance(module, nn.ConvTranspose2d):
                w = w.transpose(1, 0, 2, 3)
            out.append(LayerKernels(name, type(module).__name__, w))
    if not out:
        raise ModelError(f"{getattr(model, 'registry_name', type(model).__name__)} has no convolution layers",
                         fix="kernels exist only for convolutional models (conv_ae, resnet_ae, vae with arch=conv)")
    return out


def activation_maps(model: nn.Module, image: torch.Tensor, *, layers: str = "conv") -> list[LayerActivation]:
    """Outputs of each layer for one image ``(C, H, W)`` or ``(1, C, H, W)`` in ``[0, 1]``.

    ``layers="conv"`` hooks every convolution, ``"all"`` every leaf module whose output is
    a 4-D feature map (convolutions, normalisations, activations). The image goes through
    ``decode(encode(x))``, so encoder and decoder layers appear, in call order.

    Example:
        >>> import torch
        >>> from reprlab.models import create_model
        >>> m = create_model("conv_ae", input_shape=(1, 12, 12), latent_dim=2, channels=[4, 8])
        >>> len(activation_maps(m, torch.rand(1, 12, 12), layers="all")) > len(activation_maps(m, torch.rand(1, 12, 12)))
        True
    """
    if layers not in ("conv", "all"):
        raise ConfigError(f"layers must be 'conv' or 'all', got {layers!r}", fix="use layers='conv' or 'all'")
    x = torch.as_tensor(image).float()
    if x.ndim == 3:
        x = x.unsqueeze(0)
    expected = tuple(getattr(getattr(model, "config", None), "input_shape", x.shape[1:]))
    if x.ndim != 4 or x.shape[0] != 1 or tuple(x.shape[1:]) != expected:
        raise ModelError(f"activation maps need one image of shape {expected}, got {tuple(x.shape)}",
                         fix="pass a single image prepared like the training data")
    found: list[LayerActivation] = []

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple, output: object) -> None:
            if isinstance(output, torch.Tensor) and output.ndim == 4:
                found.append(LayerActivation(name, type(module).__name__, output[0].detach().float().cpu().numpy()))
        return hook

    hooks = []
    for name, module in model.named_modules():
        if not name:
            continue
        if isinstance(module, _CONV_TYPES) or (layers == "all" and not list(module.children())):
            hooks.append(module.register_forward_hook(hook_for(name)))
    if not hooks:
        raise ModelError(f"{getattr(model, 'registry_name', type(model).__name__)} has no layers to hook",
                         fix="activation maps exist only for convolutional models")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model.decode(model.encode(to_model_range(x.to(device), model)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not found:
        raise ModelError("no layer produced a 2-D feature map for this input",
                         fix="activation maps exist only for convolutional models")
    return found
