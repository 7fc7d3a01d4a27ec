"""The offline feature network of the generation metrics: trained once on the real training images, cached.

No Inception weights can be downloaded here, so the features that the Fréchet distance,
KID and the precision/recall of the sample manifold are computed on come from a small
convolutional network trained by reprlab itself on real *training* images (the generate
task passes every training image of the dataset, not only the run's capped split; see
``generation.feature_data``):

* ``objective="classes"`` (labelled data: Fashion-MNIST, MNIST, USPS, ...): a classifier
  of the labels; its head also gives the predicted class of every sample (class coverage);
* ``objective="rotation"`` (unlabelled data: a folder of faces): rotation prediction
  (which of 0/90/180/270 degrees was applied; the self-supervised task of Gidaris et al.
  2018 that the ``rotnet`` model also learns), so no labels are needed;
* ``"auto"``: classes when the data has labels, else rotation.

Architecture (:class:`FeatureNet`): four 3x3 convolutions (32, 64, 64, 128 channels,
the last three with stride 2) with batch norm and ReLU, global average pooling, a
linear layer to ``feature_dim`` (64) features and ReLU, and a linear head. The pooling
makes it work for any image size; the network still records the shape it was trained
on and refuses other shapes (:class:`~reprlab.base.errors.ModelError`).

Determinism and the cache: training is seeded (weights, batch order and rotations all come
from ``seed``) and runs on the CPU; the result is cached under
``CACHE/features/<key>/`` (``CACHE`` is ``cache_dir``, else ``$REPRLAB_CACHE``, else
``~/.cache/reprlab``) where ``key`` is the sha256 of the recipe (objective, architecture,
seed, epochs, image count) and of the training images and labels themselves. The
weights are ``weights.safetensors`` and ``meta.json`` records their sha256; a cached file
whose checksum does not match is retrained (and a copy in a run directory with a wrong
checksum is refused). With ``run_dir`` a copy goes to ``RUN_DIR/generation/feature_net.*``
so a run carries the exact network its metrics were computed with. Hand-written because
no library ships an offline feature network for 28x28 grey or 64x64 face images.

Example:
    >>> import torch
    >>> from reprlab.data.dataset import ImageData
    >>> data = ImageData(torch.rand(64, 1, 12, 12), torch.arange(64) % 2)
    >>> net = train_feature_net(data, epochs=1, width=4, feature_dim=8)
    >>> net.objective, net(torch.rand(3, 1, 12, 12)).shape
    ('classes', torch.Size([3, 8]))
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprlab.base.errors import ConfigError, ModelError
from reprlab.base.io import atomic_write, write_json
from reprlab.base.validation import check_choice, check_int
from reprlab.data.dataset import ImageData

logger = logging.getLogger(__name__)

OBJECTIVES: tuple[str, ...] = ("auto", "classes", "rotation")
RECIPE_VERSION = 2  # 2: cosine learning-rate decay


class FeatureNet(nn.Module):
    """Images in [0, 1] ``(N, C, H, W)`` -> features ``(N, feature_dim)``; ``logits`` adds the head."""

    def __init__(self, input_shape: tuple[int, int, int], num_outputs: int, *, objective: str = "classes",
                 width: int = 32, feature_dim: int = 64) -> None:
        super().__init__()
        self.input_shape = tuple(int(v) for v in input_shape)
        self.objective = objective
        self.num_outputs = int(num_outputs)
        self.num_features = int(feature_dim)  # read by torchmetrics
        self.width = int(width)
        c = self.input_shape[0]
        w = self.width

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(*block(c, w, 1), *block(w, 2 * w, 2), *block(2 * w, 2 * w, 2),
                                  *block(2 * w, 4 * w, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(4 * w, feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(feature_dim, self.num_outputs)

    def spec(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape), "num_outputs": self.num_outputs, "objective": self.objective,
                "width": self.width, "feature_dim": self.num_features}

    def check_images(self, x: torch.Tensor) -> None:
        """Refuse images of another shape than the training images (ModelError)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ModelError(f"the generation feature network was trained on images of shape {self.input_shape}, "
                             f"got images of shape {tuple(x.shape[1:])}",
                             fix="compute the metrics on images prepared like the run's data (same data.resize and "
                                 "data.channels), or train a feature network on such images")

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        self.check_images(x01)
        return self.body(x01.float())

    def logits(self, x01: torch.Tensor) -> torch.Tensor:
        return self.head(self(x01))


def _rotate_batch(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.rot90(img, int(r), dims=(1, 2)) for img, r in zip(x, k)])


def train_feature_net(data: ImageData, *, objective: str = "auto", seed: int = 0, epochs: int = 5,
                      batch_size: int = 128, lr: float = 2e-3, max_images: int | None = 20000, width: int = 32,
                      feature_dim: int = 64) -> FeatureNet:
    """Train a :class:`FeatureNet` on ``data`` (seeded, CPU, eval mode on return); no caching.

    ``max_images`` caps the training images (a seeded subset) to keep it a minute or two. Adam with
    a cosine decay of the learning rate to zero over all steps: in a one-off check at a constant
    rate (20,000 Fashion-MNIST images, 8 epochs), the test accuracy swung between 86% and 89%
    from epoch to epoch after the third.
    """
    check_choice("generation.feature_objective", objective, OBJECTIVES)
    check_int("generation.feature_epochs", epochs, minimum=1)
    if objective == "auto":
        objective = "classes" if data.labels is not None else "rotation"
    if objective == "classes" and data.labels is None:
        raise ConfigError(f"the feature network objective 'classes' needs labels, but {data.name} has none",
                          fix="set generation.feature_objective=rotation (or auto)")
    c, h, w = data.shape
    if objective == "rotation" and h != w:
        raise ConfigError(f"rotation prediction needs square images, got {h}x{w}",
                          fix=f"resize to a square (data.resize=[{max(h, w)},{max(h, w)}])")
    gen = torch.Generator().manual_seed(int(seed))
    n = len(data)
    index = torch.randperm(n, generator=gen)[:max_images] if max_images and n > max_images else torch.arange(n)
    x_all = data.float01(index)
    if objective == "classes":
        y_all = data.labels[index]
        num_outputs = int(data.labels.max()) + 1
    else:
        y_all = None
        num_outputs = 4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = FeatureNet((c, h, w), num_outputs, objective=objective, width=width, feature_dim=feature_dim)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        steps = int(epochs) * max(1, -(-len(x_all) // batch_size))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        net.train()
        for _ in range(int(epochs)):
            perm = torch.randperm(len(x_all), generator=gen)
            for start in range(0, len(perm), batch_size):
                idx = perm[start:start + batch_size]
                if len(idx) < 2:
                    continue
                x = x_all[idx]
                if objective == "classes":
                    y = y_all[idx]
                else:
                    y = torch.randint(0, 4, (len(idx),), generator=gen)
                    x = _rotate_batch(x, y)
                loss = F.cross_entropy(net.logits(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    return net.eval()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def recipe_key(data: ImageData, **recipe: Any) -> str:
    """sha256 of the recipe and of the training images and labels (the cache key)."""
    h = hashlib.sha256(json.dumps({"version": RECIPE_VERSION, **recipe}, sort_keys=True).encode())
    h.update(str(tuple(data.images.shape)).encode() + str(data.images.dtype).encode())
    h.update(data.images.contiguous().numpy().tobytes())
    if data.labels is not None:
        h.update(data.labels.contiguous().numpy().tobytes())
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$REPRLAB_CACHE`` or ``~/.cache/reprlab``."""
    return Path(os.environ.get("REPRLAB_CACHE") or Path.home() / ".cache" / "reprlab")


def save_feature_net(net: FeatureNet, folder: str | Path, *, stem: str = "weights", extra: dict | None = None) -> Path:
    """Write ``FOLDER/STEM.safetensors`` and ``FOLDER/STEM.json`` (spec + sha256 of the weights)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{stem}.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic_write(weights, lambda tmp: save_file(state, tmp))
    write_json(folder / f"{stem}.json", {**net.spec(), **(extra or {}), "sha256": _sha256_file(weights)})
    return weights


def load_feature_net(folder: str | Path, *, stem: str = "weights") -> FeatureNet:
    """Load a network written by :func:`save_feature_net`, verifying the weights' sha256 (ModelError if it differs)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    weights, meta_path = folder / f"{stem}.safetensors", folder / f"{stem}.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the feature network description {meta_path}: {exc}",
                         fix="delete the folder; the network is retrained") from None
    if not weights.exists() or _sha256_file(weights) != meta.get("sha256"):
        raise ModelError(f"the feature network weights {weights} are missing or do not match their sha256 checksum",
                         fix="delete the folder; the network is retrained from the training images")
    net = FeatureNet(tuple(meta["input_shape"]), int(meta["num_outputs"]), objective=meta["objective"],
                     width=int(meta["width"]), feature_dim=int(meta["feature_dim"]))
    net.load_state_dict(load_file(str(weights)))
    return net.eval()


def feature_network(train: ImageData, *, objective: str = "auto", seed: int = 0, epochs: int = 5,
                    max_images: int | None = 20000, cache_dir: str | Path | None = None,
                    run_dir: str | Path | None = None, width: int = 32, feature_dim: int = 64) -> FeatureNet:
    """The feature network for ``train`` (the real training images): from the cache, else trained and cached.

    With ``run_dir`` a copy is written to ``RUN_DIR/generation/feature_net.*``.
    """
    check_choice("generation.feature_objective", objective, OBJECTIVES)
    resolved = objective if objective != "auto" else ("classes" if train.labels is not None else "rotation")
    recipe = dict(objective=resolved, seed=int(seed), epochs=int(epochs), max_images=max_images, width=width,
                  feature_dim=feature_dim)
    key = recipe_key(train, **recipe)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / "features" / key[:24]
    net = None
    if (folder / "weights.json").exists():
        try:
            net = load_feature_net(folder)
            logger.info("generation feature network from the cache %s", folder)
        except ModelError as exc:
            logger.warning("%s; retraining", exc)
    if net is None:
        started = time.perf_counter()
        net = train_feature_net(train, **recipe)
        seconds = time.perf_counter() - started
        try:
            save_feature_net(net, folder, extra={"key": key, "recipe": recipe, "train_seconds": round(seconds, 2),
                                                 "train_images": len(train)})
        except OSError as exc:  # a read-only cache is not fatal
            logger.warning("could not cache the feature network in %s (%s)", folder, exc)
        logger.info("generation feature network trained in %.1f s (%s, %d images)", seconds, resolved, len(train))
    if run_dir is not None:
        out = Path(run_dir) / "generation"
        out.mkdir(parents=True, exist_ok=True)
        if (folder / "weights.safetensors").exists():
            shutil.copyfile(folder / "weights.safetensors", out / "feature_net.safetensors")
            shutil.copyfile(folder / "weights.json", out / "feature_net.json")
        else:
            save_feature_net(net, out, stem="feature_net", extra={"key": key, "recipe": recipe})
    return net


@torch.no_grad()
def extract(net: FeatureNet, images01: torch.Tensor | ImageData, *, batch_size: int = 512,
            logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Features ``(N, d)`` (and, with ``logits``, the head's logits) of images in [0, 1], in batches, on the CPU."""
    x = images01.float01() if isinstance(images01, ImageData) else images01
    net.check_images(x)
    net.eval()
    dev = next(net.parameters()).device
    feats, outs = [], []
    for start in range(0, x.shape[0], batch_size):
        f = net(x[start:start + batch_size].to(dev).float())
        feats.append(f.cpu())
        if logits:
            outs.append(net.head(f).cpu())
    f = torch.cat(feats)
    return (f, torch.cat(outs)) if logits else f
