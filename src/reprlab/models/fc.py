"""Fully connected autoencoder ``fc_ae`` and the MLP builders it shares with the VAE.

The image is flattened, passed through an MLP (``hidden_sizes``) to the ``latent_dim``
code, and decoded by the mirrored MLP back to ``C*H*W`` values, reshaped and squashed by
the output activation (sigmoid for ``"0_1"``, tanh for ``"-1_1"``). The loss is the
per-pixel mean squared error.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("fc_ae", input_shape=(1, 28, 28), latent_dim=8, hidden_sizes=(64,))
    >>> out = m(torch.rand(3, 1, 28, 28))
    >>> out.latent.shape, sorted(out.terms)
    (torch.Size([3, 8]), ['loss', 'mse'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from reprlab.models.base import ModelConfig, check_choice
from reprlab.models.layers import (Autoencoder, check_channels, check_dropout, make_activation, make_norm,
                                   ACTIVATIONS)
from reprlab.models.registry import register_model

FC_NORMS: tuple[str, ...] = ("batch", "none")


def build_mlp(in_features: int, sizes: tuple[int, ...], *, norm: str = "batch", activation: str = "relu",
              dropout: float = 0.0) -> nn.Sequential:
    """``Linear -> norm -> activation -> dropout`` for each size in ``sizes``.

    The linear bias is dropped when a batch norm follows (the norm has its own shift).

    Example:
        >>> build_mlp(10, (8, 4), norm="none")[-3]
        Linear(in_features=8, out_features=4, bias=True)
    """
    layers: list[nn.Module] = []
    prev = in_features
    for size in sizes:
        layers.append(nn.Linear(prev, size, bias=norm == "none"))
        layers.append(make_norm(norm, size, dims=1))
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        prev = size
    return nn.Sequential(*layers)


def build_fc_encoder(input_shape: tuple[int, int, int], hidden_sizes: tuple[int, ...], out_features: int, *,
                     norm: str = "batch", activation: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    """``Flatten -> MLP(hidden_sizes) -> Linear(out_features)``: images to a flat code.

    ``out_features`` is ``latent_dim`` for an autoencoder, ``2 * latent_dim`` for a VAE.

    Example:
        >>> import torch
        >>> build_fc_encoder((1, 4, 4), (8,), 2)(torch.zeros(3, 1, 4, 4)).shape
        torch.Size([3, 2])
    """
    d = math.prod(input_shape)
    mlp = build_mlp(d, hidden_sizes, norm=norm, activation=activation, dropout=dropout)
    last = hidden_sizes[-1] if hidden_sizes else d
    return nn.Sequential(nn.Flatten(), *mlp, nn.Linear(last, out_features))


def build_fc_decoder(input_shape: tuple[int, int, int], hidden_sizes: tuple[int, ...], latent_dim: int, *,
                     norm: str = "batch", activation: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    """Mirror of :func:`build_fc_encoder`: code to image logits ``(N, C, H, W)``.

    ``hidden_sizes`` are given in encoder order and used reversed.

    Example:
        >>> import torch
        >>> build_fc_decoder((1, 4, 4), (8,), 2)(torch.zeros(3, 2)).shape
        torch.Size([3, 1, 4, 4])
    """
    d = math.prod(input_shape)
    sizes = tuple(reversed(hidden_sizes))
    mlp = build_mlp(latent_dim, sizes, norm=norm, activation=activation, dropout=dropout)
    last = sizes[-1] if sizes else latent_dim
    return nn.Sequential(*mlp, nn.Linear(last, d), nn.Unflatten(1, tuple(input_shape)))


def validate_fc_options(hidden_sizes: object, activation: str, norm: str, *, prefix: str = "") -> tuple[int, ...]:
    """Validate the MLP options shared by ``fc_ae`` and the fc VAE; return ``hidden_sizes`` as a tuple.

    Example:
        >>> validate_fc_options([64, 32], "relu", "batch")
        (64, 32)
    """
    sizes = check_channels(f"{prefix}hidden_sizes", hidden_sizes, allow_empty=True)
    check_choice(f"{prefix}activation", activation, ACTIVATIONS)
    check_choice(f"{prefix}norm", norm, FC_NORMS)
    return sizes


@dataclass
class FCAEConfig(ModelConfig):
    """Options of ``fc_ae``.

    ``hidden_sizes`` are the encoder's hidden widths (the decoder mirrors them; empty
    gives a linear autoencoder), ``norm`` is ``"batch"`` or ``"none"``, ``dropout`` the
    drop probability after each hidden layer.

    Example:
        >>> FCAEConfig(latent_dim=8, hidden_sizes=[128]).hidden_sizes
        (128,)
    """

    hidden_sizes: tuple = (512, 256)
    activation: str = "relu"
    dropout: float = 0.0
    norm: str = "batch"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.hidden_sizes = validate_fc_options(self.hidden_sizes, self.activation, self.norm)
        check_dropout("dropout", self.dropout)


@register_model("fc_ae", config=FCAEConfig)
class FCAE(Autoencoder):
    """Fully connected autoencoder; loss = per-pixel MSE (terms ``loss`` and ``mse``).

    Example:
        >>> m = FCAE(FCAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_sizes=(16,)))
        >>> m.num_parameters() > 0
        True
    """

    config: FCAEConfig

    def __init__(self, config: FCAEConfig) -> None:
        super().__init__(config, loss="mse")
        opts = dict(norm=config.norm, activation=config.activation, dropout=float(config.dropout))
        self.encoder = build_fc_encoder(config.input_shape, config.hidden_sizes, config.latent_dim, **opts)
        self.decoder = build_fc_decoder(config.input_shape, config.hidden_sizes, config.latent_dim, **opts)
        self._finish(config.activation)
