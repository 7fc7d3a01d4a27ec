"""The domain-adaptation models ``dann`` and ``pixelda`` and the engine's per-step schedule hooks.

Both models: build on (3, 32, 32) and (1, 28, 28) with the interface the ``adapt`` task uses
(``logits``, ``features``, ``forward``'s ``extras["logits"]``, ``validation_step``), train through
the real :class:`Trainer` on tiny two-domain data (a source domain and its inverted copy as the
target), refuse a batch without its target batch, and round-trip through safetensors. DANN: the
gradient reversal layer, the lambda and learning-rate schedules, and the reversed domain gradient
in the feature extractor. Engine: ``ctx.fraction`` and ``ctx.set_lr_factor`` (never cumulative,
also after a resume; refused next to an epoch-level scheduler).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reprlab.base.errors import ConfigError, ModelError
from reprlab.data.batch import Batch
from reprlab.data.dataset import ImageData
from reprlab.models import create_model, load_model, save_model
from reprlab.models.dann import DANN, GradReverse, grad_reverse
from reprlab.models.pixelda import AffineWarp, pmse
from reprlab.models.semisup import pseudo_labels, strong_view
from reprlab.training.callbacks import Callback
from reprlab.training.engine import Trainer, _StepContext

pytestmark = pytest.mark.usefixtures("single_thread")

MODELS = ("dann", "pixelda")
SHAPES = [(3, 32, 32), (1, 28, 28)]
#: Small but complete versions (pixelda's generator and discriminator narrowed for speed).
TINY: dict[str, dict] = {"dann": {}, "pixelda": {"gen_channels": 8, "gen_blocks": 1, "disc_channels": 8,
                                                 "disc_blocks": 3}}


def tiny(name: str, shape=(1, 16, 16), **kwargs):
    opts = {"input_shape": shape, "num_classes": 3, **TINY[name], **kwargs}
    if name == "pixelda":
        opts.setdefault("output_range", "-1_1")
    return create_model(name, **opts)


def to_range(model, x01: torch.Tensor) -> torch.Tensor:
    return x01 * 2 - 1 if model.output_range[0] < 0 else x01


def two_domains(n: int = 48, shape=(1, 16, 16), k: int = 3, seed: int = 0) -> tuple[ImageData, ImageData]:
    """Class c lights band c of the image rows; the target domain is the inverted images, unlabelled."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    x = torch.rand(n, *shape, generator=g) * 0.2
    band = shape[1] // k
    for c in range(k):
        x[labels == c, :, c * band:(c + 1) * band, :] += 0.7
    x = x.clamp(0, 1)
    return ImageData(x, labels, name="source"), ImageData(1 - x, name="target")


class FakeCtx:
    """A StepContext that only backpropagates (no optimiser steps), recording the gradients."""

    def __init__(self, model, fraction: float = 0.5) -> None:
        self.model, self.fraction, self.factors = model, fraction, []
        self.epoch = self.step_in_epoch = 0

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def step(self, name, loss):
        self.model.zero_grad(set_to_none=True)
        loss.backward()

    def set_lr_factor(self, name, factor):
        self.factors.append((name, factor))


def _batch(model, source: ImageData, target: ImageData | None, n: int = 8) -> Batch:
    tgt = None if target is None else Batch(to_range(model, target.images[:n]), None, torch.ones(n, dtype=torch.long))
    return Batch(to_range(model, source.images[:n]), source.labels[:n], torch.zeros(n, dtype=torch.long), tgt)


# -- building and the interface ----------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", MODELS)
def test_builds_with_the_adapt_interface(name, shape):
    model = tiny(name, shape, num_classes=10)
    model.check_input()
    model.eval()
    x = to_range(model, torch.rand(4, *shape))
    logits, feats = model.logits(x), model.features(x)
    assert logits.shape == (4, 10) and feats.ndim == 2 and feats.shape[0] == 4
    out = model(x)  # a plain tensor, no labels
    assert torch.allclose(out.extras["logits"], logits)
    assert model.reconstructs is False and not hasattr(model, "decode")
    terms = model.validation_step(Batch(x, torch.arange(4)))
    assert {"loss", "acc"} <= set(terms)
    assert float(terms["loss"]) == pytest.approx(float(F.cross_entropy(logits.detach(), torch.arange(4))), rel=1e-5)
    model.train()
    model.sanity_check(x)
    if name == "pixelda":
        assert model.translate(x).shape == x.shape
        z = model.noise(4)
        assert torch.equal(model.translate(x, z), model.translate(x, z))  # eval: deterministic given the noise
        tiny(name, shape, num_classes=10, feature_weight=1.0).sanity_check(x)  # the domain head gets gradients too


@pytest.mark.parametrize("preset, dims", [("mnist", (1200, 768)), ("svhn", (2048, 1152)), ("lenet", (256, 256))])
def test_dann_presets_fit_both_digit_shapes(preset, dims):
    for shape, dim in zip(SHAPES, dims):
        m = create_model("dann", input_shape=shape, preset=preset)
        m.check_input()
        assert m.feature_dim == dim and m.features(torch.zeros(2, *shape)).shape == (2, dim)
    hidden = [mod.out_features for mod in m.domain_classifier if isinstance(mod, torch.nn.Linear)]
    assert hidden == {"mnist": [100, 1], "svhn": [1024, 1024, 1], "lenet": [1024, 1024, 1]}[preset]
    label = [mod.out_features for mod in m.label_predictor if isinstance(mod, torch.nn.Linear)]
    assert label == {"mnist": [100, 100, 10], "svhn": [3072, 2048, 10], "lenet": [10]}[preset]


# -- DANN: gradient reversal and schedules -------------------------------------------------------
@pytest.mark.parametrize("lam", [0.0, 0.3, 2.0])
def test_grl_reverses_and_scales_gradients(lam):
    w = torch.randn(5)
    x = torch.randn(5, requires_grad=True)
    y = grad_reverse(x, lam)
    assert torch.equal(y, x)  # identity forward
    (y.pow(2) * w).sum().backward()
    reversed_grad = x.grad.clone()
    x.grad = None
    (-lam * (x.pow(2) * w).sum()).backward()
    assert torch.allclose(reversed_grad, x.grad)
    assert GradReverse.apply(x, lam).requires_grad


def test_lambda_schedule_values():
    ganin = create_model("dann", input_shape=(1, 28, 28), adapt_weight=0.5)
    expected = [0.0, 0.5 * (2 / (1 + math.exp(-5)) - 1), 0.5 * (2 / (1 + math.exp(-10)) - 1)]
    assert [ganin.grl_lambda(p) for p in (0.0, 0.5, 1.0)] == pytest.approx(expected)
    assert ganin.grl_lambda(1.0) == pytest.approx(0.49995, abs=1e-5)
    steeper = create_model("dann", input_shape=(1, 28, 28), lambda_gamma=20.0)
    assert steeper.grl_lambda(0.1) > create_model("dann", input_shape=(1, 28, 28)).grl_lambda(0.1)
    constant = create_model("dann", input_shape=(1, 28, 28), adapt_weight=0.7, lambda_schedule="constant")
    assert [constant.grl_lambda(p) for p in (0.0, 0.5, 1.0)] == pytest.approx([0.7] * 3)
    assert [DANN.lr_factor(p) for p in (0.0, 0.5, 1.0)] == pytest.approx([1.0, 6 ** -0.75, 11 ** -0.75])


def test_dann_domain_gradient_reaches_the_features_reversed():
    source, target = two_domains()
    torch.manual_seed(1)
    adapted = tiny("dann", adapt_weight=0.8, lambda_schedule="constant", lr_annealing=False)
    plain = tiny("dann", adapt_weight=0.0, lr_annealing=False)
    plain.load_state_dict(adapted.state_dict())
    batch = _batch(adapted, source, target)
    param = "feature_extractor.0.weight"

    adapted.training_step(batch, FakeCtx(adapted))
    g_adapted = dict(adapted.named_parameters())[param].grad.clone()
    d_head = adapted.domain_classifier[0].weight.grad.clone()
    plain.training_step(Batch(batch.images, batch.labels), FakeCtx(plain))  # source-only: no target needed
    g_plain = dict(plain.named_parameters())[param].grad.clone()
    assert plain.domain_classifier[0].weight.grad is None  # no domain loss at all

    # the domain loss's own gradient, without reversal
    adapted.zero_grad(set_to_none=True)
    x = torch.cat([batch.images, batch.target.images])
    dom = adapted.domain_terms(adapted.domain_classifier(adapted.features(x)).squeeze(1), len(batch))["domain_loss"]
    dom.backward()
    g_domain = dict(adapted.named_parameters())[param].grad.clone()
    assert g_domain.abs().sum() > 0
    assert torch.allclose(g_adapted, g_plain - 0.8 * g_domain, atol=1e-6)  # reversed and scaled by lambda
    assert torch.allclose(d_head, adapted.domain_classifier[0].weight.grad, atol=1e-6)  # the head: not reversed


class RecordingCtx(FakeCtx):
    """A FakeCtx that keeps every forward's outputs and each group's gradients after its step."""

    def __init__(self, model, fraction: float = 0.5) -> None:
        super().__init__(model, fraction)
        self.outputs, self.grads = [], {}

    def forward(self, *args, **kwargs):
        self.outputs.append(super().forward(*args, **kwargs))
        return self.outputs[-1]

    def step(self, name, loss):
        super().step(name, loss)
        self.grads[name] = {n: p.grad.clone() for n, p in self.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("feature_source", ["both", "source", "translated"])
def test_pixelda_feature_alignment_reverses_the_domain_gradient_in_the_task_classifier(feature_source):
    """With ``feature_weight``, the task classifier's features get the domain loss's gradient reversed and
    scaled by ``task_weight * lambda``; the domain head gets it unreversed; without it nothing changes.
    ``feature_source`` picks the domain classifier's source side; with ``source`` the generator gets no
    domain gradient."""
    source, target = two_domains()
    torch.manual_seed(1)
    aligned = tiny("pixelda", feature_weight=0.8, task_preset="mnist", shape=(1, 28, 28), disc_blocks=2,
                   feature_source=feature_source)
    plain = tiny("pixelda", task_preset="mnist", shape=(1, 28, 28), disc_blocks=2)
    assert not hasattr(plain, "domain_classifier")
    missing, unexpected = plain.load_state_dict(aligned.state_dict(), strict=False)
    assert not missing and all(k.startswith("domain_classifier.") for k in unexpected) and unexpected
    big = lambda d: ImageData(F.interpolate(d.images, size=(28, 28)), d.labels)  # noqa: E731
    batch = _batch(aligned, big(source), big(target))
    param = "classifier.body.0.weight"

    torch.manual_seed(5)
    ctx = RecordingCtx(aligned, fraction=0.5)
    terms = aligned.training_step(batch, ctx)
    lam = aligned.feature_lambda(0.5)
    assert float(terms["lambda"]) == pytest.approx(lam) and 0 < lam < 0.8
    assert {"domain_loss", "domain_acc"} <= set(terms)
    g_aligned = ctx.grads[("generator", "classifier")][param]
    d_head = ctx.grads[("generator", "classifier")]["domain_classifier.0.weight"]
    torch.manual_seed(5)
    ctx_plain = RecordingCtx(plain, fraction=0.5)
    plain_terms = plain.training_step(Batch(batch.images, batch.labels, batch.domains, batch.target), ctx_plain)
    assert "domain_loss" not in plain_terms and "lambda" not in plain_terms
    g_plain = ctx_plain.grads[("generator", "classifier")][param]
    grads, plain_grads = ctx.grads[("generator", "classifier")], ctx_plain.grads[("generator", "classifier")]
    same_generator_grads = all(torch.allclose(grads[k], plain_grads[k], atol=1e-7) for k in grads
                               if k.startswith("generator."))
    assert same_generator_grads == (feature_source == "source")  # only translations carry it to the generator

    # the domain loss's own gradient in the task classifier, without reversal
    aligned.zero_grad(set_to_none=True)
    translated = ctx_plain.outputs[0][0].detach()  # same noise, same generator: the same translations
    sides = {"both": [translated, batch.images], "source": [batch.images], "translated": [translated]}[feature_source]
    feats = aligned.classifier.body(torch.cat([*sides, batch.target.images]))
    n_source = len(sides) * len(batch)
    assert aligned.n_domain_source(len(batch)) == n_source
    dom = aligned.domain_terms(aligned.domain_classifier(feats).squeeze(1), n_source)["domain_loss"]
    (aligned.config.task_weight * dom).backward()
    g_domain = dict(aligned.named_parameters())[param].grad.clone()
    assert g_domain.abs().sum() > 0
    assert torch.allclose(g_aligned, g_plain - lam * g_domain, atol=1e-6)
    assert torch.allclose(d_head, aligned.domain_classifier[0].weight.grad, atol=1e-6)
    trainer, _ = _engine(aligned)
    assert {id(p) for p in aligned.domain_classifier.parameters()} <= {id(p) for p in trainer.param_groups["classifier"]}


def test_pixelda_domain_terms_weigh_both_domains_equally():
    logits = torch.tensor([-2.0, -2.0, -2.0, -2.0, 1.0])  # 4 source-side, 1 target
    t = create_model("pixelda", input_shape=(1, 28, 28), feature_weight=1.0, disc_blocks=2).domain_terms(logits, 4)
    expected = (F.softplus(torch.tensor(-2.0)) + F.softplus(torch.tensor(-1.0))) / 2
    assert float(t["domain_loss"]) == pytest.approx(float(expected))
    assert float(t["domain_acc"]) == 1.0


def test_dann_step_logs_its_terms_and_anneals_through_the_context():
    source, target = two_domains()
    model = tiny("dann")
    ctx = FakeCtx(model, fraction=0.5)
    terms = model.training_step(_batch(model, source, target), ctx)
    assert set(terms) == {"loss", "class_loss", "domain_loss", "acc", "domain_acc", "lambda"}
    assert float(terms["lambda"]) == pytest.approx(model.grl_lambda(0.5))
    assert float(terms["loss"]) == pytest.approx(float(terms["class_loss"] + terms["domain_loss"]))
    assert ctx.factors == [("main", pytest.approx(6 ** -0.75))]
    off = tiny("dann", lr_annealing=False)
    ctx = FakeCtx(off)
    off.training_step(_batch(off, source, target), ctx)
    assert ctx.factors == []


@pytest.mark.parametrize("name", MODELS)
def test_adaptation_without_a_target_batch_is_refused(name):
    source, _ = two_domains()
    model = tiny(name)
    with pytest.raises(ConfigError, match="needs unlabelled target images") as err:
        model.training_step(_batch(model, source, None), FakeCtx(model))
    assert "task=adapt" in str(err.value)
    with pytest.raises(ConfigError, match="no labels"):
        model.training_step(Batch(torch.zeros(2, 1, 16, 16)), FakeCtx(model))


# -- the engine's schedule hooks ----------------------------------------------------------------
class LrLog(Callback):
    def __init__(self, group: str = "main") -> None:
        self.group = group
        self.rows: list[tuple[int, float]] = []

    def on_batch_end(self, trainer, step, batch_size):
        self.rows.append((step, trainer.optimizers[self.group].param_groups[0]["lr"]))


@pytest.mark.parametrize("annealing", [True, False])
def test_lr_annealing_through_the_trainer(annealing):
    source, target = two_domains(n=32)
    log = LrLog()
    Trainer(epochs=2, batch_size=16, callbacks=[log], lr=0.5).fit(tiny("dann", lr_annealing=annealing), source,
                                                                   target=target)
    total = 2 * 2  # epochs x steps per epoch
    assert [s for s, _ in log.rows] == [1, 2, 3, 4]
    # the model's declared 0.01 (train.lr=0.5 does not override it), times (1 + 10 p) ** -0.75 at p = step / total
    expected = [0.01 * (DANN.lr_factor((s - 1) / total) if annealing else 1.0) for s, _ in log.rows]
    assert [lr for _, lr in log.rows] == pytest.approx(expected)
    if annealing:
        assert log.rows[-1][1] < log.rows[0][1]


@pytest.mark.parametrize("annealing", [True, False])
def test_pixelda_classifier_annealing_follows_danns_schedule_on_its_group_only(annealing):
    source, target = two_domains(n=32)
    logs = {name: LrLog(name) for name in ("classifier", "generator")}
    groups = {"classifier": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9}}
    model = tiny("pixelda", feature_weight=1.0, classifier_annealing=annealing)
    Trainer(epochs=2, batch_size=16, callbacks=list(logs.values()), group_options=groups).fit(model, source,
                                                                                             target=target)
    total = 2 * 2  # epochs x steps per epoch
    expected = [0.1 * (DANN.lr_factor((s - 1) / total) if annealing else 1.0) for s in (1, 2, 3, 4)]
    assert [lr for _, lr in logs["classifier"].rows] == pytest.approx(expected)
    assert [lr for _, lr in logs["generator"].rows] == pytest.approx([2e-4] * 4)  # the generator's rate stays


def _engine(model, **kwargs) -> tuple[Trainer, _StepContext]:
    trainer = Trainer(epochs=4, **kwargs)
    trainer._build_optimizers(model)
    trainer._forward_module = model
    return trainer, _StepContext(trainer)


def test_set_lr_factor_is_not_cumulative_and_survives_resume():
    model = tiny("dann")
    trainer, ctx = _engine(model, group_options={"main": {"lr": 0.2}})
    opt = trainer.optimizers["main"]
    ctx.progress = 2.0
    assert ctx.fraction == 0.5
    for _ in range(3):
        ctx.set_lr_factor("main", 0.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)  # 0.2 * 0.5, not 0.2 * 0.5 ** 3
    ctx.set_lr_factor("main", 1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)
    ctx.set_lr_factor("main", 0.25)
    state = trainer.resume_state()
    resumed, ctx2 = _engine(tiny("dann"), group_options={"main": {"lr": 0.2}})
    resumed._load_resume_state(state)
    assert resumed.optimizers["main"].param_groups[0]["lr"] == pytest.approx(0.05)  # restored as it was
    ctx2.set_lr_factor("main", 0.5)
    assert resumed.optimizers["main"].param_groups[0]["lr"] == pytest.approx(0.1)  # from the base, not 0.05


def test_set_lr_factor_refuses_an_epoch_scheduler_on_the_group():
    _, ctx = _engine(tiny("dann"), scheduler="cosine")
    with pytest.raises(ConfigError, match="train.scheduler=cosine"):
        ctx.set_lr_factor("main", 0.5)


def test_declared_optimizer_settings_and_overrides():
    trainer, _ = _engine(tiny("dann"), lr=0.3, optimizer="adam")
    s = trainer.group_settings["main"]
    assert (s.optimizer, s.lr, s.momentum) == ("sgd", 0.01, 0.9)  # the model's declaration beats train.*
    assert isinstance(trainer.optimizers["main"], torch.optim.SGD)
    trainer, _ = _engine(tiny("dann"), group_options={"main": {"lr": 0.05}})
    assert trainer.group_settings["main"].lr == 0.05  # train.groups.main.lr beats the declaration
    trainer, _ = _engine(tiny("pixelda"), group_options={"discriminator": {"lr": 1e-4}})
    g, d = trainer.group_settings["generator"], trainer.group_settings["discriminator"]
    assert (g.optimizer, g.lr, g.betas) == ("adam", 2e-4, (0.5, 0.999)) and d.lr == 1e-4
    assert trainer.group_settings["classifier"].optimizer == "adam"
    model = tiny("pixelda")
    trainer, _ = _engine(model, group_options={"classifier": {"optimizer": "sgd", "lr": 0.01}})
    assert isinstance(trainer.optimizers["classifier"], torch.optim.SGD)
    assert isinstance(trainer.optimizers["generator"], torch.optim.Adam)
    groups = {k: {id(p) for p in v} for k, v in trainer.param_groups.items()}
    assert groups["generator"] == {id(p) for p in model.generator.parameters()}
    assert groups["classifier"] == {id(p) for p in model.classifier.parameters()}
    assert groups["discriminator"] == {id(p) for p in model.discriminator.parameters()}


# -- training through the Trainer -----------------------------------------------------------------
def _source_ce(model, data: ImageData) -> float:
    model.eval()
    with torch.no_grad():
        return float(F.cross_entropy(model.logits(to_range(model, data.images)), data.labels))


@pytest.mark.parametrize("name, groups, extra", [
    ("dann", {"main": {"lr": 0.3}}, {}),
    ("dann", {"main": {"lr": 0.3}}, {"adapt_weight": 0.0}),  # source-only: plain labelled batches
    ("pixelda", {"generator": {"lr": 2e-3}, "classifier": {"lr": 2e-3}}, {"content_weight": 0.1}),
    ("pixelda", {"generator": {"lr": 2e-3}, "classifier": {"lr": 2e-3}}, {"feature_weight": 1.0}),
    ("pixelda", {"generator": {"lr": 2e-3}, "classifier": {"lr": 2e-3}}, {"gen_warp": "affine", "content_weight": 0.1}),
    ("pixelda", {"generator": {"lr": 2e-3}, "classifier": {"lr": 2e-3}}, {"target_weight": 1.0,
                                                                         "target_confidence": 0.4}),
], ids=["dann", "dann-source-only", "pixelda", "pixelda-feature-alignment", "pixelda-warp", "pixelda-self-training"])
def test_training_reduces_the_class_loss(name, groups, extra):
    source, target = two_domains(n=48)
    model = tiny(name, **extra)
    before = _source_ce(model, source)
    adapts = extra.get("adapt_weight", 1.0) > 0
    trainer = Trainer(epochs=6 if name == "dann" else 4, batch_size=16, group_options=groups, seed=0).fit(
        model, source, source, target=target if adapts else None)
    after = _source_ce(model, source)
    assert after < 0.7 * before, (before, after)
    rows = trainer.history
    assert rows[-1]["train/class_loss"] < rows[0]["train/class_loss"]
    keys = {"train/loss", "train/class_loss", "train/acc", "val/loss", "val/acc"}
    keys |= {"dann": {"train/domain_loss", "train/domain_acc", "train/lambda"},
             "pixelda": {"train/d_loss", "train/g_adv_loss", "train/d_real", "train/d_fake"}}[name] if adapts else set()
    if extra.get("content_weight"):
        keys.add("train/content_loss")
    if extra.get("feature_weight"):
        keys |= {"train/domain_loss", "train/domain_acc", "train/lambda"}
    if extra.get("gen_warp") == "affine":
        keys.add("train/warp_scale")
    if extra.get("target_weight"):
        keys |= {"train/target_loss", "train/target_mask_rate"}
        assert rows[-1]["train/target_mask_rate"] > 0  # some target images taught their pseudo-label
    assert keys <= set(rows[-1])
    assert all(math.isfinite(v) for v in rows[-1].values())


def _squares(half: int, n: int = 8, size: int = 16) -> torch.Tensor:
    """``n`` images in [-1, 1]: a bright square of side ``2 * half`` in the middle of a dark frame."""
    x = -torch.ones(n, 1, size, size)
    c = size // 2
    x[:, :, c - half:c + half, c - half:c + half] = 1.0
    return x


def test_the_generators_warp_learns_to_enlarge_a_digit():
    """The spatial transformer can do what the residual blocks cannot: resize the shape (MNIST's digits
    sit inside a margin, USPS's fill the frame). Fitted alone to map small squares onto big ones."""
    torch.manual_seed(0)
    warp = tiny("pixelda", gen_warp="affine").generator.warp
    small, big = _squares(3), _squares(6)
    opt = torch.optim.Adam(warp.parameters(), lr=1e-2)
    with torch.no_grad():
        before = float(F.mse_loss(warp(small), big))
    for _ in range(150):
        opt.zero_grad()
        F.mse_loss(warp(small), big).backward()
        opt.step()
    with torch.no_grad():
        scale = float(AffineWarp.scale(warp.theta(small)))
        after = float(F.mse_loss(warp(small), big))
    assert after < 0.2 * before, (before, after)
    assert 0.5 <= scale < 0.75, scale  # about 0.5 would double the side; the bound keeps it at 0.5 or above


def test_pixelda_content_loss_compares_the_output_with_the_warped_image():
    model = tiny("pixelda", gen_warp="affine", content_weight=1.0)
    warp = model.generator.warp
    with torch.no_grad():  # a fixed zoom: every image's digit doubles in size
        warp.loc[-1].bias.copy_(torch.tensor([-10.0, 0.0, 0.0, 0.0, -10.0, 0.0]))
    x = _squares(3)
    z = model.noise(8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        parts = model(x, mode="generate", z=z)
    translated, (warped, theta) = parts[0], parts[5]
    assert float(AffineWarp.scale(theta)) == pytest.approx(0.5, abs=1e-3)
    assert ((warped > 0).flatten(1).sum(1) == 144).all()  # the 6x6 square now covers 12x12 pixels
    _, terms = model.generator_objective(x, torch.zeros(8, dtype=torch.long), parts)
    assert float(terms["content_loss"]) == pytest.approx(float(pmse(translated, warped)))
    assert float(terms["content_loss"]) != pytest.approx(float(pmse(translated, x)), rel=0.05)
    assert float(terms["warp_scale"]) == pytest.approx(0.5, abs=1e-3)


def test_pixelda_self_training_teaches_the_strong_views_the_confident_pseudo_labels():
    """``target_terms`` is FixMatch on the target batch: the pseudo-labels of the plain images where the
    classifier is confident enough, taught to strongly augmented views (no flip, large crops)."""
    _, target = two_domains()
    model = tiny("pixelda", target_weight=1.0)
    xt = to_range(model, target.images[:16])
    with torch.no_grad():
        weak = model.logits(xt)
    top = torch.softmax(weak, 1).max(1).values
    model.config.target_confidence = float(top.median())  # about half the images are confident enough
    torch.manual_seed(3)
    terms = model.target_terms(xt)
    torch.manual_seed(3)
    pseudo, mask = pseudo_labels(weak, confidence=float(top.median()))
    strong = strong_view(xt, value_range=(-1.0, 1.0), options={"flip": 0.0, "crop_scale": (0.6, 1.0)})
    expected = (F.cross_entropy(model.logits(strong), pseudo, reduction="none") * mask).mean()
    assert 0 < float(mask.mean()) < 1
    assert float(terms["target_mask_rate"]) == pytest.approx(float(mask.mean()))
    assert float(terms["target_loss"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


class GradCtx(FakeCtx):
    """A FakeCtx that keeps each group's gradients from the step that updates the classifier."""

    def step(self, name, loss):
        super().step(name, loss)
        if "classifier" in name:
            self.grads = {k: p.grad.clone() for k, p in self.model.named_parameters() if p.grad is not None}


def test_pixelda_self_training_reaches_the_task_classifier_only():
    source, target = two_domains()
    grads, weights = {}, tiny("pixelda").state_dict()
    for weight in (0.0, 2.0):
        model = tiny("pixelda", target_weight=weight, target_confidence=0.01)  # every target image teaches
        model.load_state_dict(weights)
        torch.manual_seed(0)
        ctx = GradCtx(model)
        terms = model.training_step(_batch(model, source, target), ctx)
        grads[weight] = ctx.grads
        assert ("target_loss" in terms) == (weight > 0)
    assert float(terms["target_mask_rate"]) == 1.0 and float(terms["target_loss"]) > 0
    generator = [k for k in grads[0.0] if k.startswith("generator.")]
    classifier = [k for k in grads[0.0] if k.startswith("classifier.")]
    assert generator and classifier
    assert all(torch.equal(grads[0.0][k], grads[2.0][k]) for k in generator)  # the same noise, no path to G
    assert any(not torch.allclose(grads[0.0][k], grads[2.0][k]) for k in classifier)


def test_pmse_ignores_a_constant_shift():
    x = torch.rand(3, 1, 4, 4)
    assert float(pmse(x, x + 0.3)) == pytest.approx(0.0, abs=1e-6)
    y = torch.rand(3, 1, 4, 4)
    d = (x - y).flatten(1)
    assert float(pmse(x, y)) == pytest.approx(float((d.pow(2).mean(1) - d.mean(1) ** 2).mean()))


# -- saving ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, extra", [("dann", {"domain_hidden": [12, 6]}), ("pixelda", {}),
                                         ("pixelda", {"feature_weight": 0.5}), ("pixelda", {"gen_warp": "affine"})],
                         ids=["dann", "pixelda", "pixelda-feature-alignment", "pixelda-warp"])
def test_save_load_round_trip_gives_the_same_logits(name, extra, tmp_path):
    source, target = two_domains()
    model = tiny(name, **extra)
    model.training_step(_batch(model, source, target), FakeCtx(model))  # BatchNorm statistics move
    stem = save_model(model, tmp_path / "m")
    assert stem.with_suffix(".safetensors").is_file()
    loaded = load_model(stem)
    model.eval()
    x = to_range(model, source.images[:6])
    with torch.no_grad():
        assert torch.equal(model.logits(x), loaded.logits(x))
        assert torch.equal(model.features(x), loaded.features(x))
        if name == "pixelda":
            z = model.noise(6, generator=torch.Generator().manual_seed(0))
            assert torch.equal(model.translate(x, z), loaded.eval().translate(x, z))
    assert loaded.config == model.config


# -- bad options ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, options, error, words", [
    ("dann", {"adapt_weight": -1.0}, ConfigError, "adapt_weight"),
    ("dann", {"preset": "alexnet"}, ConfigError, "preset"),
    ("dann", {"lambda_schedule": "linear"}, ConfigError, "lambda_schedule"),
    ("dann", {"lambda_gamma": 0.0}, ConfigError, "lambda_gamma"),
    ("dann", {"domain_hidden": [100, 0]}, ConfigError, "domain_hidden"),
    ("dann", {"domain_hidden": "wide"}, ConfigError, "domain_hidden"),
    ("dann", {"dropout": 1.0}, ConfigError, "dropout"),
    ("dann", {"input_shape": (1, 8, 8)}, ModelError, "preset='mnist' cannot take images of shape (1, 8, 8)"),
    ("dann", {"input_shape": (3, 8, 8), "preset": "svhn"}, ModelError, "data.resize"),
    ("pixelda", {"noise_dim": 0}, ConfigError, "noise_dim"),
    ("pixelda", {"output_range": "0_1"}, ConfigError, "data.scale=-1_1"),
    ("pixelda", {"adv_loss": "wgan"}, ConfigError, "adv_loss"),
    ("pixelda", {"task_weight": 0.0}, ConfigError, "task_weight"),
    ("pixelda", {"feature_weight": -0.5}, ConfigError, "feature_weight"),
    ("pixelda", {"feature_gamma": 0.0}, ConfigError, "feature_gamma"),
    ("pixelda", {"classifier_annealing": "yes"}, ConfigError, "model.classifier_annealing=true or false"),
    ("pixelda", {"feature_source": "target"}, ConfigError, "feature_source"),
    ("pixelda", {"gen_warp": "tps"}, ConfigError, "gen_warp"),
    ("pixelda", {"warp_bound": 1.5}, ConfigError, "warp_bound"),
    ("pixelda", {"warp_bound": 0.0}, ConfigError, "warp_bound"),
    ("pixelda", {"target_weight": -1.0}, ConfigError, "target_weight"),
    ("pixelda", {"target_confidence": 0.0}, ConfigError, "target_confidence"),
    ("pixelda", {"target_augment": {"rotate": 10}}, ConfigError, "target_augment"),
    ("pixelda", {"target_augment": {"crop_scale": [0.6]}}, ConfigError, "target_augment"),
    ("pixelda", {"input_shape": (1, 8, 8)}, ModelError, "task_preset"),
    ("pixelda", {"input_shape": (1, 16, 16), "task_preset": "mnist"}, ModelError, "disc_blocks=3 or less"),
])
def test_bad_options_give_clear_errors(name, options, error, words):
    opts = {"input_shape": (1, 28, 28), **options}
    with pytest.raises(error) as err:
        create_model(name, **opts)
    assert words in str(err.value) and "Fix:" in str(err.value)
