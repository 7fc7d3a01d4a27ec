"""Training health: a verdict on every run (``healthy`` or ``suspect``, with findings and advice).

A run can end "finished" with exit 0 and still have learnt nothing: all-black
reconstructions after ``train.lr=1e6``, a VAE whose KL term explodes, a decoder that
ignores its code. After training, :func:`diagnose` runs the checks a careful researcher
would run and returns :class:`Finding` objects (``check``, ``evidence``, ``advice``):

======================  ===========================================================================
check                   fires when
======================  ===========================================================================
``no_better_than_mean`` test MSE >= 0.9 x the MSE of predicting the mean training image
``constant_output``     reconstructions hardly vary across test images (per-pixel variance
                        < 1 % of the data's): the decoder ignores its input
``posterior_collapse``  a VAE whose every latent dimension carries < 0.01 nats of KL, or whose
                        decoding of codes shuffled across the batch changes < 1 % of the data variance
``kl_explodes``         KL > 1e4 nats per image (test, or any epoch's train/val mean)
``loss_explodes``       an epoch's train/val loss > 100 x that of the first epoch
``val_rises``           the best checkpoint is epoch 1 of >= 3 (validation loss rose from the start)
``lr_out_of_range``     a parameter group's lr outside the usual range of its optimiser
                        (adam/adamw: 1e-6..0.1; sgd: 1e-6..1)
``accuracy_at_chance``  a classifier's test/acc within 5 % of chance (the majority class share)
======================  ===========================================================================

Each check is registered with :func:`register_health_check` (a plugin can add its own, e.g.
GAN mode collapse); a check that itself fails is logged and skipped, so health checking never
fails a finished run. The headline baselines (the mean training image, PCA with as many
components as the latent, fitted with scikit-learn) are computed on the same test images as
``test/mse`` and written to ``metrics.json`` as ``health/baseline_mean_mse`` and
``health/baseline_pca_mse``, next to ``health/verdict`` and ``health/findings``; the
orchestration copies the verdict into ``status.json`` and the report shows it first.

The thresholds are deliberately loose: a finding means "look at this before trusting the
numbers", not "the run is wrong".

Example:
    >>> import torch
    >>> from reprlab.data.dataset import ImageData
    >>> from reprlab.models import create_model
    >>> model = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2, hidden_sizes=(16,))
    >>> with torch.no_grad():
    ...     for p in model.parameters(): _ = p.zero_()   # sabotage: the decoder outputs 0.5 everywhere
    >>> data = ImageData(torch.rand(64, 1, 8, 8))
    >>> report = diagnose(model, train=data, test=data)
    >>> report.verdict, sorted(f.check for f in report.findings)
    ('suspect', ['constant_output', 'no_better_than_mean'])
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from reprlab.data.dataset import ImageData
from reprlab.models.base import from_model_range, to_model_range
from reprlab.runs.hooks import PostRunContext, register_post_run_hook
from reprlab.training.optim import GroupSettings, ParamGroup, resolve_group_settings

logger = logging.getLogger(__name__)

__all__ = ["Finding", "HealthProbe", "HealthReport", "diagnose", "health_hook", "health_lines",
           "list_health_checks", "register_health_check"]

#: test MSE at or above this share of the mean-image MSE is "no better than the mean image".
MEAN_IMAGE_RATIO = 0.9
#: per-pixel variance of reconstructions across images below this share of the data's is "constant".
CONSTANT_OUTPUT_RATIO = 0.01
#: a latent dimension with less KL (nats, averaged over images) than this carries no information.
KL_ACTIVE_NATS = 0.01
#: decoding shuffled codes changes less than this share of the data variance: the code is ignored.
SHUFFLE_RATIO = 0.01
#: KL per image (nats) above this has exploded.
KL_EXPLODES_NATS = 1e4
#: a loss that grows by this factor over the first epoch's has exploded.
LOSS_GROWTH = 100.0
#: the usual learning-rate range per optimiser: (low, high).
LR_RANGE: dict[str, tuple[float, float]] = {"adam": (1e-6, 0.1), "adamw": (1e-6, 0.1), "sgd": (1e-6, 1.0)}
#: accuracy within this share of (1 - chance) above chance is "at chance".
CHANCE_MARGIN = 0.05
#: model-dependent probes (variance, shuffle, KL per dimension) use at most this many test images.
PROBE_IMAGES = 512
#: the PCA baseline is fitted on at most this many training images (seeded subsample).
PCA_FIT_IMAGES = 2000


@dataclass
class Finding:
    """One reason to distrust a run: which ``check``, the ``evidence`` (numbers) and a concrete ``advice``."""

    check: str
    evidence: str
    advice: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class HealthReport:
    """The verdict (``healthy`` / ``suspect``), the findings, and the baseline numbers."""

    findings: list[Finding] = field(default_factory=list)
    baselines: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "suspect" if self.findings else "healthy"

    def to_metrics(self) -> dict[str, Any]:
        """The ``health/*`` entries of ``metrics.json``."""
        return {"health/verdict": self.verdict, "health/findings": [f.to_dict() for f in self.findings],
                **{f"health/{k}": v for k, v in self.baselines.items()}}

    def to_status(self) -> dict[str, Any]:
        """The ``health`` entry of ``status.json``."""
        return {"verdict": self.verdict, "findings": [f.to_dict() for f in self.findings]}


@dataclass
class HealthProbe:
    """Everything the checks look at, measured once (``None`` where it does not apply)."""

    metrics: Mapping[str, Any]
    history: Sequence[Mapping[str, float]]
    optimizers: dict[str, GroupSettings]
    lr_keys: dict[str, str] = field(default_factory=dict)  # group -> the config key its lr comes from
    model_mse: float | None = None          # test/mse, else the MSE on the probe images
    mean_mse: float | None = None           # predicting the mean training image
    pca_mse: float | None = None            # PCA with pca_components components
    pca_components: int | None = None
    data_var: float | None = None           # mean per-pixel variance of the probe images
    recon_var: float | None = None          # ... of their reconstructions
    kl_per_dim: list[float] | None = None   # VAE: mean KL of each latent dimension (nats)
    shuffle_change: float | None = None     # MSE between decode(z) and decode(shuffled z), / data_var
    test_labels: torch.Tensor | None = None
    best_epoch: int | None = None
    monitor: str | None = None


_CHECKS: dict[str, Callable[[HealthProbe], Finding | None]] = {}


def register_health_check(name: str) -> Callable[[Callable[[HealthProbe], Finding | None]],
                                                   Callable[[HealthProbe], Finding | None]]:
    """Decorator registering ``fn(probe) -> Finding | None`` as health check ``name`` (re-registering replaces)."""

    def wrap(fn: Callable[[HealthProbe], Finding | None]) -> Callable[[HealthProbe], Finding | None]:
        _CHECKS[name] = fn
        return fn

    return wrap


def list_health_checks() -> list[str]:
    """Names of the registered checks, in the order they run."""
    return list(_CHECKS)


# ----------------------------------------------------------------------------------------
# the checks
# ----------------------------------------------------------------------------------------
@register_health_check("no_better_than_mean")
def _no_better_than_mean(p: HealthProbe) -> Finding | None:
    if p.model_mse is None or not p.mean_mse or p.model_mse < MEAN_IMAGE_RATIO * p.mean_mse:
        return None
    pca = (f"; PCA with {p.pca_components} components reaches {p.pca_mse:.4g}" if p.pca_mse is not None else "")
    return Finding("no_better_than_mean",
                   f"test MSE {p.model_mse:.4g} vs {p.mean_mse:.4g} for predicting the mean training image{pca}",
                   "the model learnt (almost) nothing: if the loss did not fall, lower train.lr (e.g. train.lr=1e-3); "
                   "otherwise train longer (train.epochs) or raise model.latent_dim")


@register_health_check("constant_output")
def _constant_output(p: HealthProbe) -> Finding | None:
    if p.recon_var is None or not p.data_var or p.recon_var >= CONSTANT_OUTPUT_RATIO * p.data_var:
        return None
    return Finding("constant_output",
                   f"reconstructions vary {p.recon_var:.3g} per pixel across test images vs {p.data_var:.3g} in the "
                   f"data ({p.recon_var / p.data_var:.2%}): the decoder's output hardly depends on its input",
                   "lower train.lr (e.g. train.lr=1e-3), check that data.scale matches model.output_range, "
                   "and train longer")


@register_health_check("posterior_collapse")
def _posterior_collapse(p: HealthProbe) -> Finding | None:
    if p.kl_per_dim is None:
        return None
    active = sum(k >= KL_ACTIVE_NATS for k in p.kl_per_dim)
    ignored = p.shuffle_change is not None and p.shuffle_change < SHUFFLE_RATIO
    if active > 0 and not ignored:
        return None
    parts = [f"{active} of {len(p.kl_per_dim)} latent dimensions carry >= {KL_ACTIVE_NATS} nats of KL "
             f"(largest {max(p.kl_per_dim):.3g})"]
    if p.shuffle_change is not None:
        parts.append(f"decoding codes shuffled across the batch changes the output by {p.shuffle_change:.2%} "
                     "of the data variance")
    return Finding("posterior_collapse", "; ".join(parts),
                   "the decoder ignores the latent code: warm the KL term up (model.kl_warmup_epochs=10), "
                   "lower the KL weight (model.name=beta_vae with model.beta<1), or use a weaker decoder")


def _max_in_history(history: Sequence[Mapping[str, float]], leaf: str) -> tuple[float, str] | None:
    best: tuple[float, str] | None = None
    for row in history:
        for split in ("train", "val"):
            v = row.get(f"{split}/{leaf}")
            if isinstance(v, (int, float)) and math.isfinite(v) and (best is None or v > best[0]):
                best = (float(v), f"{split}/{leaf} at epoch {int(row.get('epoch', 0))}")
    return best


@register_health_check("kl_explodes")
def _kl_explodes(p: HealthProbe) -> Finding | None:
    candidates = []
    test_kl = p.metrics.get("test/kl")
    if isinstance(test_kl, (int, float)) and math.isfinite(test_kl):
        candidates.append((float(test_kl), "test/kl"))
    peak = _max_in_history(p.history, "kl")
    if peak is not None:
        candidates.append(peak)
    worst = max(candidates, default=None)
    if worst is None or worst[0] <= KL_EXPLODES_NATS:
        return None
    return Finding("kl_explodes", f"KL {worst[0]:.3g} nats per image ({worst[1]}), above {KL_EXPLODES_NATS:.0e}",
                   "lower the KL weight (model.name=beta_vae with model.beta<1) or warm it up "
                   "(model.kl_warmup_epochs=10), lower train.lr (e.g. train.lr=1e-4), and check that "
                   "model.recon_loss fits the data (bernoulli for images in [0, 1])")


@register_health_check("loss_explodes")
def _loss_explodes(p: HealthProbe) -> Finding | None:
    if not p.history:
        return None
    for split in ("train", "val"):
        first = p.history[0].get(f"{split}/loss")
        if not isinstance(first, (int, float)) or not math.isfinite(first) or first <= 0:
            continue  # a loss that can be negative (a Gaussian NLL) has no meaningful growth factor
        later = [(float(r[f"{split}/loss"]), int(r.get("epoch", 0))) for r in p.history[1:]
                 if isinstance(r.get(f"{split}/loss"), (int, float))]
        peak = max(later, default=None)
        if peak is not None and peak[0] > LOSS_GROWTH * first:
            return Finding("loss_explodes",
                           f"{split}/loss grew from {first:.4g} (epoch 1) to {peak[0]:.4g} (epoch {peak[1]})",
                           "lower train.lr (e.g. ten times smaller) and set train.grad_clip=1.0")
    return None


@register_health_check("val_rises")
def _val_rises(p: HealthProbe) -> Finding | None:
    epochs = len(p.history)
    if p.best_epoch != 1 or epochs < 3 or not (p.monitor or "").endswith("loss"):
        return None
    last = p.history[-1].get(p.monitor) if p.monitor else None
    first = p.history[0].get(p.monitor) if p.monitor else None
    trend = f" ({first:.4g} at epoch 1, {last:.4g} at epoch {epochs})" if isinstance(first, float) and isinstance(last, float) else ""
    return Finding("val_rises", f"{p.monitor} never improved after epoch 1 of {epochs}{trend}: the best checkpoint "
                   "is the first epoch's",
                   "lower train.lr (e.g. train.lr=1e-4); if the training loss still falls the model overfits: "
                   "use more data, train.weight_decay=1e-4, or a smaller model")


@register_health_check("lr_out_of_range")
def _lr_out_of_range(p: HealthProbe) -> Finding | None:
    bad: dict[str, tuple[str, str]] = {}  # config key -> (evidence, advice); groups sharing train.lr once
    for name, s in p.optimizers.items():
        low, high = LR_RANGE.get(s.optimizer, (1e-6, 1.0))
        if not (low <= float(s.lr) <= high):
            key = p.lr_keys.get(name, "train.lr")
            usual = 1e-3 if s.optimizer != "sgd" else 1e-2
            bad.setdefault(key, (f"{key}={s.lr:g} for {s.optimizer} (usual range {low:g}..{high:g})", f"{key}={usual:g}"))
    if not bad:
        return None
    return Finding("lr_out_of_range", "; ".join(b[0] for b in bad.values()),
                   "set " + ", ".join(b[1] for b in bad.values()) + " (or search the learning rate on a log scale)")


@register_health_check("accuracy_at_chance")
def _accuracy_at_chance(p: HealthProbe) -> Finding | None:
    acc = p.metrics.get("test/acc")
    if not isinstance(acc, (int, float)) or p.test_labels is None or len(p.test_labels) == 0:
        return None
    counts = torch.bincount(p.test_labels.long().flatten())
    chance = float(counts.max()) / float(counts.sum())
    if acc > chance + CHANCE_MARGIN * (1.0 - chance):
        return None
    return Finding("accuracy_at_chance",
                   f"test/acc {acc:.3f} vs {chance:.3f} for always predicting the most frequent class "
                   f"({int((counts > 0).sum())} classes)",
                   "the classifier learnt nothing: lower train.lr (e.g. train.lr=1e-3), train longer, "
                   "and check that the labels belong to the images")


# ----------------------------------------------------------------------------------------
# measuring
# ----------------------------------------------------------------------------------------
def _flat(data: ImageData, index: slice | torch.Tensor) -> np.ndarray:
    return data.float01(index).flatten(1).numpy().astype(np.float32, copy=False)


def _baselines(train: ImageData, test: ImageData, n_test: int, latent_dim: int | None, seed: int,
               chunk: int = 1024) -> dict[str, float]:
    """MSE of the mean training image and of PCA (``latent_dim`` components) on the first ``n_test`` test images."""
    from sklearn.decomposition import PCA

    n_train = len(train)
    mean = np.zeros(int(np.prod(train.shape)), dtype=np.float64)
    for s in range(0, n_train, chunk):
        mean += _flat(train, slice(s, s + chunk)).sum(0, dtype=np.float64)
    mean = (mean / max(n_train, 1)).astype(np.float32)
    pca = None
    k = None
    if latent_dim:
        pick = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))[:PCA_FIT_IMAGES]
        fit = _flat(train, pick)
        k = int(min(latent_dim, fit.shape[0], fit.shape[1]))
        if k >= 1:
            solver = "randomized" if k < 0.8 * min(fit.shape) else "full"
            pca = PCA(n_components=k, svd_solver=solver, random_state=seed).fit(fit)
    se_mean = se_pca = 0.0
    count = 0
    for s in range(0, n_test, chunk):
        x = _flat(test, slice(s, min(s + chunk, n_test)))
        se_mean += float(((x - mean) ** 2).sum(dtype=np.float64))
        if pca is not None:
            xr = np.clip(pca.inverse_transform(pca.transform(x)), 0.0, 1.0)
            se_pca += float(((x - xr) ** 2).sum(dtype=np.float64))
        count += x.size
    out = {"baseline_mean_mse": se_mean / max(count, 1)}
    if pca is not None:
        out.update(baseline_pca_mse=se_pca / max(count, 1), baseline_pca_components=k)
    return out


@torch.no_grad()
def _model_probes(model: torch.nn.Module, x01: torch.Tensor, seed: int) -> dict[str, Any]:
    """Reconstruction variance, the shuffled-code change and (VAE) the KL per dimension on ``x01``."""
    out: dict[str, Any] = {}
    device = next(iter(model.parameters()), torch.zeros(())).device
    was_training = model.training
    model.eval()
    try:
        xm = to_model_range(x01.to(device), model)
        z = model.encode(xm)
        recon = from_model_range(model.decode(z).float(), model).clamp(0, 1).cpu()
        out["model_mse"] = float((recon - x01).pow(2).mean())
        out["data_var"] = float(x01.var(0, unbiased=False).mean())
        out["recon_var"] = float(recon.var(0, unbiased=False).mean())
        if x01.shape[0] >= 2 and out["data_var"] > 0:
            perm = torch.randperm(x01.shape[0], generator=torch.Generator().manual_seed(seed))
            perm = torch.roll(perm, 1) if bool((perm == torch.arange(len(perm))).all()) else perm
            shuffled = from_model_range(model.decode(z[perm.to(z.device)]).float(), model).clamp(0, 1).cpu()
            out["shuffle_change"] = float((shuffled - recon).pow(2).mean()) / out["data_var"]
        if getattr(model, "is_variational", False) and hasattr(model, "encode_distribution"):
            mu, logvar = model.encode_distribution(xm)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
            out["kl_per_dim"] = [float(v) for v in kl.flatten(2).sum(2).mean(0)] if kl.ndim > 2 \
                else [float(v) for v in kl.mean(0)]
    finally:
        model.train(was_training)
    return out


def _optimizer_settings(model: torch.nn.Module, train_cfg: Any) -> tuple[dict[str, GroupSettings], dict[str, str]]:
    """The optimiser settings of every parameter group, resolved like the trainer does, and the
    config key each group's learning rate comes from (``train.lr``, ``train.groups.NAME.lr``)."""
    if train_cfg is None:
        return {}, {}
    base = GroupSettings(optimizer=str(getattr(train_cfg, "optimizer", "adam")), lr=float(getattr(train_cfg, "lr", 1e-3)))
    groups = model.optimizer_groups() if hasattr(model, "optimizer_groups") else {"main": []}
    configured = getattr(train_cfg, "groups", None) or {}
    out, keys = {}, {}
    for name, group in groups.items():
        declared = group.settings if isinstance(group, ParamGroup) else {}
        try:
            out[name] = resolve_group_settings(name, base, declared, configured)
        except ValueError:  # settings the trainer would have refused: nothing to judge here
            continue
        own = "lr" in (configured.get(name) or {}) or "lr" in (declared or {})
        keys[name] = f"train.groups.{name}.lr" if own else "train.lr"
    return out, keys


def diagnose(model: torch.nn.Module, *, train: ImageData, test: ImageData,
             history: Sequence[Mapping[str, float]] = (), metrics: Mapping[str, Any] | None = None,
             train_cfg: Any = None, max_images: int | None = None, seed: int = 0) -> HealthReport:
    """Run every registered health check on a trained ``model`` (see the module docstring).

    ``metrics`` are the run's final metrics (``test/mse``, ``test/kl``, ``test/acc``,
    ``best/epoch``, ...), ``history`` its per-epoch rows, ``train_cfg`` its ``train`` config
    section (for the learning-rate check). ``max_images`` limits the baselines to the test
    images ``test/mse`` was computed on.
    """
    metrics = dict(metrics or {})
    optimizers, lr_keys = _optimizer_settings(model, train_cfg)
    probe = HealthProbe(metrics=metrics, history=list(history), optimizers=optimizers, lr_keys=lr_keys,
                        test_labels=test.labels, best_epoch=_int_or_none(metrics.get("best/epoch")),
                        monitor=metrics.get("best/monitor") if isinstance(metrics.get("best/monitor"), str) else None)
    baselines: dict[str, float] = {}
    reconstructs = hasattr(model, "encode") and hasattr(model, "decode") and test.shape == tuple(
        getattr(getattr(model, "config", None), "input_shape", test.shape))
    if reconstructs and len(test) > 0 and len(train) > 0:
        n_test = len(test) if max_images is None else min(len(test), int(max_images))
        latent = getattr(getattr(model, "config", None), "latent_dim", None)
        for name, fn in (("baselines", lambda: _baselines(train, test, n_test, latent, seed)),
                         ("model probes", lambda: _model_probes(model, test.float01(slice(0, min(n_test, PROBE_IMAGES))), seed))):
            try:
                measured = fn()
            except Exception as exc:  # a probe that fails must not fail a finished run
                logger.warning("health: the %s could not be measured (%s: %s)", name, type(exc).__name__, exc)
                continue
            for key, value in measured.items():
                if key.startswith("baseline_"):
                    baselines[key] = value
                    key = {"baseline_mean_mse": "mean_mse", "baseline_pca_mse": "pca_mse",
                           "baseline_pca_components": "pca_components"}[key]
                setattr(probe, key, value)
        if isinstance(metrics.get("test/mse"), (int, float)):
            probe.model_mse = float(metrics["test/mse"])
    report = HealthReport(baselines=baselines)
    for name, check in _CHECKS.items():
        try:
            finding = check(probe)
        except Exception as exc:  # noqa: BLE001 - a broken check is reported, never fatal
            logger.warning("health check %s failed (%s: %s); skipped", name, type(exc).__name__, exc)
            continue
        if finding is not None:
            report.findings.append(finding)
    return report


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


# ----------------------------------------------------------------------------------------
# the post-run hook and the closing lines
# ----------------------------------------------------------------------------------------
def health_hook(ctx: PostRunContext) -> dict[str, Any]:
    """Post-run hook (order 5): diagnose the run's best model; returns the ``health/*`` metrics."""
    cfg = ctx.cfg
    report = diagnose(ctx.model, train=ctx.splits.train, test=ctx.splits.test, history=ctx.history,
                      metrics=ctx.metrics, train_cfg=getattr(cfg, "train", None),
                      max_images=getattr(getattr(cfg, "eval", None), "max_images", None), seed=int(getattr(cfg, "seed", 0)))
    for f in report.findings:
        logger.info("health: %s: %s. Advice: %s", f.check, f.evidence, f.advice)
    if report.findings:
        logger.warning("the run's health verdict is SUSPECT (%s): see the closing lines, status.json or the report",
                       ", ".join(f.check for f in report.findings))
    return report.to_metrics()


def health_lines(metrics: Mapping[str, Any]) -> str:
    """The closing lines about health: ``health: healthy``, or ``health: SUSPECT`` and one line per finding.

    Example:
        >>> print(health_lines({"health/verdict": "suspect", "health/findings": [
        ...     {"check": "lr_out_of_range", "evidence": "train.lr=1e+06", "advice": "set train.lr=0.001"}]}))
        health: SUSPECT (1 finding; the run finished but its numbers should not be trusted yet)
          - lr_out_of_range: train.lr=1e+06. Advice: set train.lr=0.001
        >>> health_lines({})
        ''
    """
    verdict = metrics.get("health/verdict")
    if verdict is None:
        return ""
    if verdict != "suspect":
        return f"health: {verdict}"
    findings = [f for f in metrics.get("health/findings", []) if isinstance(f, Mapping)]
    n = len(findings)
    lines = [f"health: SUSPECT ({n} finding{'s' if n != 1 else ''}; the run finished but its numbers "
             "should not be trusted yet)"]
    lines += [f"  - {f.get('check')}: {f.get('evidence')}. Advice: {f.get('advice')}" for f in findings]
    return "\n".join(lines)


register_post_run_hook("health", health_hook, order=5)
