"""``rotnet``: a self-supervised transformation classifier for anomaly detection (GEOM/ARNet style).

Each training image is shown to the network under a fixed set of geometric
transformations (the four 90-degree rotations, optionally mirrored and/or shifted), and a
small convolutional network learns to tell which transformation was applied. A network
trained only on *normal* images recognises the transformations of new normal images far
more confidently than those of anomalies, so the mean negative log-likelihood of the
correct transformations, ``extras["transform_nll_per_image"]``, is an anomaly score
(Golan & El-Yaniv 2018, "Deep anomaly detection using geometric transformations";
Hendrycks et al. 2019). The global-average-pooled features of the untransformed image are
the code (``encode``), so the latent-space scores (k-NN, KMeans, PCA) work on it too.

Like every reprlab model it has a decoder: a small conv decoder trained on the *detached*
code (it never changes the encoder), so ``reconstruct`` gives images for figures and the
reconstruction metrics of a run.

Architecture: stage 0 is ``conv3x3 -> norm -> act`` at full resolution with
``channels[0]`` channels; every further entry of ``channels`` and a last stage with
``latent_dim`` channels each add ``conv3x3/stride 2 -> norm -> act -> conv3x3 -> norm ->
act``; then global average pooling gives the ``latent_dim`` code, and a linear layer the
transformation logits.

Example:
    >>> import torch
    >>> from reprlab.models import create_model
    >>> m = create_model("rotnet", input_shape=(1, 28, 28), latent_dim=32, channels=(8, 16), transforms="rot")
    >>> out = m(torch.rand(3, 1, 28, 28))
    >>> m.num_transforms, out.extras["transform_nll_per_image"].shape, out.latent.shape
    (4, torch.Size([3]), torch.Size([3, 32]))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprlab.base.errors import ConfigError
from reprlab.models.base import ModelConfig, ModelOutput, ReprModel, check_choice, check_float
from reprlab.models.conv import build_conv_decoder, build_dense_from_latent, plan_conv_stages
from reprlab.models.layers import ACTIVATIONS, NORMS, check_channels, init_weights, make_activation, make_norm, \
    output_activation
from reprlab.models.registry import register_model

logger = logging.getLogger(__name__)

#: Named transformation sets: the 4 rotations by multiples of 90 degrees, optionally with a
#: left-right flip and/or cyclic shifts (see :func:`transformation_list`).
TRANSFORM_SETS: tuple[str, ...] = ("rot", "rotflip", "rotshift", "rotflipshift")


def transformation_list(kind: str, size: tuple[int, int]) -> list[tuple[bool, int, int, int]]:
    """The transformations ``(flip, shift_y, shift_x, quarter_turns)`` of set ``kind``.

    ``rot``: 4 rotations; ``rotflip``: x2 with a left-right flip; ``rotshift``: x5 with no
    shift or a cyclic shift by 1/7 of the image (4 px at 28) up, down, left or right;
    ``rotflipshift``: all 40 combinations. The identity is always first.

    Example:
        >>> len(transformation_list("rotflip", (28, 28))), transformation_list("rot", (28, 28))[1]
        (8, (False, 0, 0, 1))
    """
    check_choice("transforms", kind, TRANSFORM_SETS)
    flips = (False, True) if "flip" in kind else (False,)
    dy, dx = max(1, round(size[0] / 7)), max(1, round(size[1] / 7))
    shifts = ((0, 0), (dy, 0), (-dy, 0), (0, dx), (0, -dx)) if "shift" in kind else ((0, 0),)
    return [(f, sy, sx, r) for f in flips for (sy, sx) in shifts for r in range(4)]


def apply_transformation(x: torch.Tensor, t: tuple[bool, int, int, int]) -> torch.Tensor:
    """Apply one ``(flip, shift_y, shift_x, quarter_turns)`` transformation to a ``(N, C, H, W)`` batch.

    Example:
        >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
        >>> apply_transformation(x, (False, 0, 0, 1)).flatten().tolist()
        [1.0, 3.0, 0.0, 2.0]
    """
    flip, sy, sx, r = t
    if flip:
        x = x.flip(-1)
    if sy or sx:
        x = torch.roll(x, (sy, sx), (-2, -1))
    if r:
        x = torch.rot90(x, r, (-2, -1))
    return x


@dataclass
class RotNetConfig(ModelConfig):
    """Options of ``rotnet``.

    ``channels``: widths of the stages before the last (the last has ``latent_dim``
    channels; each stage after the first halves the image, so there are ``len(channels)``
    halvings); ``transforms``: one of ``rot`` (4), ``rotflip`` (8), ``rotshift`` (20),
    ``rotflipshift`` (40); ``recon_weight``: weight of the decoder's MSE in the loss (the
    decoder sees the detached code, so this only sets how fast it learns); ``label_smoothing``
    of the transformation classifier.

    Rotating needs square images: non-square inputs are rejected.

    Example:
        >>> RotNetConfig(input_shape=(1, 28, 28), channels=[16, 32]).channels
        (16, 32)
    """

    latent_dim: int = 64
    channels: tuple = (16, 32)
    transforms: str = "rotflip"
    norm: str = "batch"
    activation: str = "relu"
    recon_weight: float = 1.0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.channels = check_channels("channels", self.channels)
        check_choice("transforms", self.transforms, TRANSFORM_SETS)
        check_choice("norm", self.norm, NORMS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_float("recon_weight", self.recon_weight, minimum=0, exclusive_min=True)
        check_float("label_smoothing", self.label_smoothing, minimum=0, maximum=0.5)
        h, w = self.input_shape[1:]
        if h != w:
            raise ConfigError(f"rotnet rotates images by 90 degrees, so they must be square; got {h}x{w}",
                              fix="resize the images to a square size (data.resize=[H,H])")
        # one stride-2 stage per entry of channels after the first, one more for the last stage
        plan_conv_stages(self.input_shape, self.channels)


def pooled_conv_features(c: Any) -> nn.Sequential:
    """The small conv net of ``rotnet`` and ``simclr`` (its output is global-average-pooled into the code).

    Stage 0 is ``conv3x3 -> norm -> act`` with ``c.channels[0]`` channels at full resolution;
    every further entry of ``c.channels`` and a last stage of ``c.latent_dim`` channels add
    ``conv3x3/stride 2 -> norm -> act -> conv3x3 -> norm -> act``.

    Example:
        >>> from types import SimpleNamespace
        >>> c = SimpleNamespace(channels=(4,), latent_dim=8, input_shape=(1, 16, 16), norm="batch", activation="relu")
        >>> pooled_conv_features(c)(torch.rand(2, 1, 16, 16)).shape
        torch.Size([2, 8, 8, 8])
    """
    widths = tuple(c.channels) + (c.latent_dim,)
    layers: list[nn.Module] = []
    in_ch = c.input_shape[0]
    for i, ch in enumerate(widths):
        if i > 0:
            layers += [nn.Conv2d(in_ch, ch, 3, stride=2, padding=1, bias=c.norm == "none"),
                       make_norm(c.norm, ch), make_activation(c.activation)]
            in_ch = ch
        layers += [nn.Conv2d(in_ch, ch, 3, padding=1, bias=c.norm == "none"), make_norm(c.norm, ch),
                   make_activation(c.activation)]
        in_ch = ch
    return nn.Sequential(*layers)


def code_decoder(c: Any) -> tuple[nn.Module, nn.Module]:
    """``(from_latent, decoder)`` mapping a ``c.latent_dim`` code back to images: it undoes the
    ``len(c.channels)`` halvings with the sizes of a ``conv_ae`` with these channels. ``rotnet`` and
    ``simclr`` train it on the *detached* code, so it never changes the encoder."""
    plans = plan_conv_stages(c.input_shape, tuple(c.channels))
    h, w = plans[-1].out_size
    from_latent = build_dense_from_latent(c.latent_dim, (c.channels[-1], h, w), norm=c.norm, activation=c.activation)
    return from_latent, build_conv_decoder(plans, norm=c.norm, activation=c.activation, upsample="transpose")


@register_model("rotnet", config=RotNetConfig)
class RotNet(ReprModel):
    """Self-supervised transformation classifier (rotations, flips, shifts) with a detached decoder.

    ``forward(x)`` classifies every transformation of every image; its ``extras`` hold
    ``transform_nll_per_image`` (mean negative log-likelihood of the correct
    transformations: the anomaly score) and ``logits``.

    Example:
        >>> m = RotNet(RotNetConfig(input_shape=(1, 16, 16), latent_dim=8, channels=(4,), transforms="rot"))
        >>> m.encode(torch.rand(2, 1, 16, 16)).shape, m.reconstruct(torch.rand(2, 1, 16, 16)).shape
        (torch.Size([2, 8]), torch.Size([2, 1, 16, 16]))
    """

    config: RotNetConfig

    def __init__(self, config: RotNetConfig) -> None:
        super().__init__(config)
        c = config
        self.features = pooled_conv_features(c)
        self.transform_list = transformation_list(c.transforms, (c.input_shape[1], c.input_shape[2]))
        self.head = nn.Linear(c.latent_dim, len(self.transform_list))
        self.from_latent, self.decoder = code_decoder(c)
        self.out_act = output_activation(c.output_range)
        init_weights(self, c.activation)

    @property
    def num_transforms(self) -> int:
        """Number of transformations the classifier tells apart."""
        return len(self.transform_list)

    def transform_batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All transformations of ``x``: ``(N*T, C, H, W)`` images (transformation-major) and their ``T`` labels.

        Example:
            >>> m = RotNet(RotNetConfig(input_shape=(1, 8, 8), latent_dim=4, channels=(2,), transforms="rot"))
            >>> xs, ys = m.transform_batch(torch.rand(3, 1, 8, 8))
            >>> xs.shape, ys.tolist()
            (torch.Size([12, 1, 8, 8]), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
        """
        xs = torch.cat([apply_transformation(x, t) for t in self.transform_list])
        ys = torch.arange(self.num_transforms, device=x.device).repeat_interleave(x.shape[0])
        return xs, ys

    def _codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled features of the untransformed images, ``(N, latent_dim)``."""
        return self._codes(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Codes of every transformation of each image, concatenated: ``(N, T * latent_dim)``.

        A richer description than :meth:`encode` for latent-space anomaly scores (k-NN).

        Example:
            >>> m = RotNet(RotNetConfig(input_shape=(1, 8, 8), latent_dim=4, channels=(2,), transforms="rot"))
            >>> m.embed(torch.rand(3, 1, 8, 8)).shape
            torch.Size([3, 16])
        """
        xs, _ = self.transform_batch(x)
        return self._stack_views(self._codes(xs), x.shape[0])

    def _stack_views(self, codes: torch.Tensor, n: int) -> torch.Tensor:
        return codes.view(self.num_transforms, n, -1).transpose(0, 1).reshape(n, -1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images from codes, in the model's output range."""
        return self.out_act(self.decoder(self.from_latent(z)))

    def transformation_nll(self, x: torch.Tensor, *, marginalize: bool = True) -> torch.Tensor:
        """Per-image mean negative log-likelihood of the correct transformations (the anomaly score).

        With ``marginalize`` (default) the classifier's probabilities of transformations
        that share a rotation are added, so only the *rotation* has to be recognised:
        mirror-symmetric objects (a T-shirt and its mirror image look alike) then do not
        count as uncertain. Without it, every transformation must be told apart.

        Example:
            >>> m = RotNet(RotNetConfig(input_shape=(1, 8, 8), latent_dim=4, channels=(2,), transforms="rot"))
            >>> m.transformation_nll(torch.rand(5, 1, 8, 8)).shape
            torch.Size([5])
        """
        return self.nll_and_embedding(x, marginalize=marginalize)[0]

    def nll_and_embedding(self, x: torch.Tensor, *, marginalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`transformation_nll` and :meth:`embed` from one pass over the transformed images.

        Example:
            >>> m = RotNet(RotNetConfig(input_shape=(1, 8, 8), latent_dim=4, channels=(2,), transforms="rot"))
            >>> [tuple(t.shape) for t in m.nll_and_embedding(torch.rand(5, 1, 8, 8))]
            [(5,), (5, 16)]
        """
        n = x.shape[0]
        xs, ys = self.transform_batch(x)
        codes = self._codes(xs)
        logp = F.log_softmax(self.head(codes), dim=1)
        if marginalize:
            rot = torch.tensor([t[3] for t in self.transform_list], device=x.device)
            same = (rot[ys][:, None] == rot[None, :]).to(logp.dtype)  # (N*T, T): same rotation as the true one
            nll = -torch.logsumexp(logp + torch.log(same), dim=1)
        else:
            nll = -logp.gather(1, ys[:, None]).squeeze(1)
        return nll.view(self.num_transforms, n).mean(0), self._stack_views(codes, n)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        n = x.shape[0]
        xs, ys = self.transform_batch(x)
        codes = self._codes(xs)
        logits = self.head(codes)
        nll = F.cross_entropy(logits, ys, reduction="none")
        xent = nll.mean() if self.config.label_smoothing == 0 else \
            F.cross_entropy(logits, ys, label_smoothing=self.config.label_smoothing)
        z = codes[:n]  # the identity transformation comes first
        recon = self.decode(z.detach())
        mse = F.mse_loss(recon, x)
        loss = xent + self.config.recon_weight * mse
        acc = (logits.argmax(1) == ys).float().mean()
        per_image = nll.detach().view(self.num_transforms, n).mean(0)
        terms = {"loss": loss, "xent": xent, "accuracy": acc, "mse": mse}
        return ModelOutput(loss=loss, terms=terms, reconstruction=recon, latent=z,
                           extras={"transform_nll_per_image": per_image,
                                   "logits": logits.detach().view(self.num_transforms, n, -1).transpose(0, 1)})
