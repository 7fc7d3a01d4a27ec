"""Residual autoencoder ``resnet_ae``.

Encoder: a 3x3 stem conv to ``channels[0]``, then per stage ``blocks_per_stage``
:class:`~reprlab.models.layers.ResidualBlock` s followed by a learned 2x2 stride-2 conv
that halves the size (and moves to the next stage's width); a dense bottleneck maps the
last feature map to ``latent_dim``. The decoder mirrors it: linear back to the feature
map, then per stage a sub-pixel (PixelShuffle) x2 upsampling and residual blocks, and a
3x3 conv to the image channels followed by the output activation.

Any input size works: before each 2x2 downsampling conv an odd height/width is
zero-padded by one row/column (bottom/right), so sizes round up (50 -> 25 -> 13 -> 7),
and after each upsampling the decoder crops back to the encoder's size at that stage
(7 -> 14 -> 13). Too many stages for the input (a stage receiving a 1-pixel map) is
rejected when the config is built.

Training details: BatchNorm by default, Kaiming init, residual blocks start as the
identity (zero-initialised last norm scale), ICNR init for the PixelShuffle convs.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("resnet_ae", input_shape=(1, 28, 28), latent_dim=8, channels=(8, 16))
    >>> m(torch.rand(2, 1, 28, 28)).reconstruction.shape
    torch.Size([2, 1, 28, 28])
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from torch import nn

from reprlab.base.errors import ModelError
from reprlab.models.base import ModelConfig, check_choice, check_int
from reprlab.models.conv import format_size, build_dense_from_latent, build_dense_to_latent
from reprlab.models.layers import (ACTIVATIONS, NORMS, Autoencoder, FitTo, PadToEven, PixelShuffleUp, check_channels,
                                   check_recon_loss, make_activation, make_norm, residual_blocks)
from reprlab.models.registry import register_model


def plan_resnet_sizes(input_shape: tuple[int, int, int], channels: tuple[int, ...]) -> list[tuple[int, int]]:
    """Spatial size before each stage and after the last: ``[in, ceil(in/2), ...]``.

    Raises :class:`ModelError` when a stage would have to halve a 1-pixel map.

    Example:
        >>> plan_resnet_sizes((3, 50, 50), (8, 16, 32))
        [(50, 50), (25, 25), (13, 13), (7, 7)]
    """
    size = (int(input_shape[1]), int(input_shape[2]))
    sizes = [size]
    for i, ch in enumerate(channels):
        if min(size) < 2:
            trail = " -> ".join(format_size(s) for s in sizes)
            raise ModelError(
                f"too many stages for a {format_size(sizes[0])} input: stage {i} (channels[{i}]={ch}) receives a "
                f"{format_size(size)} map that cannot be halved (sizes: {trail})",
                fix=f"use at most {i} stages (e.g. channels={list(channels[:i])}), or enlarge the input (data.resize)")
        size = (math.ceil(size[0] / 2), math.ceil(size[1] / 2))
        sizes.append(size)
    return sizes


@dataclass
class ResNetAEConfig(ModelConfig):
    """Options of ``resnet_ae``.

    ``channels`` has one entry per stage (each stage halves the size),
    ``blocks_per_stage`` residual blocks per stage (0 is allowed: plain conv stages),
    ``loss`` is ``"mse"``, ``"l1"`` or ``"bce"`` (``"bce"`` needs ``output_range="0_1"``).

    Example:
        >>> ResNetAEConfig(latent_dim=32).channels
        (32, 64, 128)
    """

    channels: tuple = (32, 64, 128)
    blocks_per_stage: int = 1
    norm: str = "batch"
    activation: str = "relu"
    loss: str = "mse"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.channels = check_channels("channels", self.channels)
        check_int("blocks_per_stage", self.blocks_per_stage, minimum=0)
        check_choice("norm", self.norm, NORMS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_recon_loss(self.loss, self.output_range)
        plan_resnet_sizes(self.input_shape, self.channels)


@register_model("resnet_ae", config=ResNetAEConfig)
class ResNetAE(Autoencoder):
    """Residual conv autoencoder with a dense bottleneck (see the module docstring).

    Example:
        >>> m = ResNetAE(ResNetAEConfig(input_shape=(3, 32, 32), latent_dim=4, channels=(8, 16)))
        >>> m.feature_shape
        (16, 8, 8)
    """

    config: ResNetAEConfig

    def __init__(self, config: ResNetAEConfig) -> None:
        super().__init__(config, loss=config.loss)
        c = config
        chans = c.channels
        sizes = plan_resnet_sizes(c.input_shape, chans)
        bias = c.norm == "none"

        def blocks(ch: int) -> list[nn.Module]:
            return residual_blocks(ch, c.blocks_per_stage, norm=c.norm, activation=c.activation)

        enc: OrderedDict[str, nn.Module] = OrderedDict()
        enc["stem"] = nn.Sequential(nn.Conv2d(c.input_shape[0], chans[0], 3, padding=1, bias=bias),
                                    make_norm(c.norm, chans[0]), make_activation(c.activation))
        for i, ch in enumerate(chans):
            nxt = chans[min(i + 1, len(chans) - 1)]
            enc[f"stage{i}"] = nn.Sequential(*blocks(ch), PadToEven(), nn.Conv2d(ch, nxt, 2, stride=2, bias=bias),
                                             make_norm(c.norm, nxt), make_activation(c.activation))
        self.feature_shape: tuple[int, int, int] = (chans[-1], *sizes[-1])  # type: ignore[assignment]
        enc["to_latent"] = build_dense_to_latent(self.feature_shape, c.latent_dim)

        dec: OrderedDict[str, nn.Module] = OrderedDict()
        dec["from_latent"] = build_dense_from_latent(c.latent_dim, self.feature_shape, norm=c.norm,
                                                     activation=c.activation)
        for i in reversed(range(len(chans))):
            src = chans[min(i + 1, len(chans) - 1)]
            layers: list[nn.Module] = [PixelShuffleUp(src, chans[i], bias=bias)]
            produced = (2 * sizes[i + 1][0], 2 * sizes[i + 1][1])
            if produced != sizes[i]:
                layers.append(FitTo(sizes[i]))
            layers += [make_norm(c.norm, chans[i]), make_activation(c.activation), *blocks(chans[i])]
            dec[f"stage{i}"] = nn.Sequential(*layers)
        dec["head"] = nn.Conv2d(chans[0], c.input_shape[0], 3, padding=1)
        self.encoder = nn.Sequential(enc)
        self.decoder = nn.Sequential(dec)
        self._finish(c.activation)
