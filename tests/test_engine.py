"""The training engine: loop, several optimisers, NaN handling, schedules, resume equivalence."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch import nn

from conftest import LinearAE
from reprlab.base.errors import TrainingError
from reprlab.data.dataset import ImageData
from reprlab.models import create_model
from reprlab.models.base import ModelConfig, ModelOutput, ReprModel, images_of
from reprlab.training import engine
from reprlab.training.callbacks import Callback, EarlyStopping
from reprlab.training.engine import Trainer
from reprlab.training.loader import BatchLoader


def _data(n=96, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.rand(n, 1, size, size, generator=g))


def _model(**kw):
    return create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=3, hidden_sizes=(16,), **kw)


def test_loss_decreases_and_history_has_every_term():
    trainer = Trainer(epochs=6, batch_size=16, lr=3e-3).fit(_model(), _data(), _data(32, seed=1))
    losses = [r["train/loss"] for r in trainer.history]
    assert losses[-1] < losses[0] * 0.9
    assert {"epoch", "train/loss", "train/mse", "val/loss", "val/mse", "lr", "images_per_s"} <= set(trainer.history[-1])


class TwoOptimizerModel(ReprModel):
    """A toy model with two parameter groups stepped separately (like a GAN)."""

    registry_name = "two_opt_test"

    def __init__(self):
        super().__init__(ModelConfig(input_shape=(1, 8, 8), latent_dim=2))
        self.enc = nn.Linear(64, 2)
        self.dec = nn.Linear(2, 64)
        self.steps = {"enc": 0, "dec": 0}

    def encode(self, x):
        return self.enc(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)

    def forward(self, x):
        z = self.encode(x)
        r = self.decode(z)
        loss = ((r - x) ** 2).mean()
        return ModelOutput(loss, {"loss": loss}, r, z)

    def optimizer_groups(self):
        return {"enc": list(self.enc.parameters()), "dec": list(self.dec.parameters())}

    def training_step(self, batch, ctx):
        x = images_of(batch)
        dec_before = self.dec.weight.detach().clone()
        out = ctx.forward(x)
        ctx.step("enc", out.loss)
        self.steps["enc"] += 1
        # the encoder step must not have touched the decoder
        assert torch.equal(dec_before, self.dec.weight)
        out = ctx.forward(x)
        ctx.step("dec", out.loss)
        self.steps["dec"] += 1
        return {"loss": out.loss.detach(), "enc_loss": out.loss.detach()}


def test_several_optimizers_each_stepped():
    model = TwoOptimizerModel()
    trainer = Trainer(epochs=2, batch_size=32, lr=1e-2).fit(model, _data())
    assert set(trainer.optimizers) == {"enc", "dec"}
    assert model.steps == {"enc": 6, "dec": 6}
    assert "lr/enc" in trainer.history[0] and "train/enc_loss" in trainer.history[0]


class SharedLossModel(TwoOptimizerModel):
    """Both groups minimise one loss and step from one backward pass."""

    def training_step(self, batch, ctx):
        out = ctx.forward(images_of(batch))
        ctx.step(("enc", "dec"), out.loss)
        return {"loss": out.loss.detach()}


def test_one_backward_steps_several_groups_each_with_its_own_settings():
    torch.manual_seed(0)
    model = SharedLossModel()
    x = _data(16).images
    trainer = Trainer(epochs=1, batch_size=16, optimizer="sgd", momentum=0.0,
                      group_options={"enc": {"lr": 0.5}, "dec": {"lr": 0.05}})
    trainer._build_optimizers(model)
    trainer._forward_module = model
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.zero_grad()
    model(x).loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    engine._StepContext(trainer).step(("enc", "dec"), model(x).loss)
    for k, p in model.named_parameters():
        lr = 0.5 if k.startswith("enc") else 0.05
        assert torch.allclose(p.detach(), before[k] - lr * grads[k], atol=1e-6), k


class ExplodingModel(TwoOptimizerModel):
    def training_step(self, batch, ctx):
        out = ctx.forward(images_of(batch))
        loss = out.loss * (float("nan") if ctx.global_step == 4 else 1.0)
        ctx.step("enc", loss)
        return {"loss": loss.detach()}


def test_non_finite_loss_names_epoch_and_step_and_keeps_weights():
    model = ExplodingModel()
    trainer = Trainer(epochs=3, batch_size=32)
    with pytest.raises(TrainingError, match=r"epoch 2, step 2") as info:
        trainer.fit(model, _data())
    assert "lower train.lr" in str(info.value)
    assert all(torch.isfinite(p).all() for p in model.parameters())


class StopAfter(Callback):
    """Simulates an interruption: stop once ``epochs`` epochs are done."""

    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, trainer, epoch, row):
        trainer.should_stop = epoch + 1 >= self.epochs


def test_resume_state_replays_exactly():
    data, val = _data(), _data(32, seed=1)
    torch.manual_seed(7)
    full_model = _model(dropout=0.2)
    part_model = _model(dropout=0.2)
    part_model.load_state_dict(full_model.state_dict())
    full = Trainer(epochs=4, batch_size=16, scheduler="cosine", seed=3).fit(full_model, data, val)
    part = Trainer(epochs=4, batch_size=16, scheduler="cosine", seed=3, callbacks=[StopAfter(2)]).fit(part_model, data, val)
    assert len(part.history) == 2
    state = part.resume_state()
    rest = Trainer(epochs=4, batch_size=16, scheduler="cosine", seed=3).fit(part_model, data, val, resume=state)
    assert len(rest.history) == 4
    for a, b in zip(full.history, rest.history):
        assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-5)
        assert a["val/loss"] == pytest.approx(b["val/loss"], rel=1e-5)
        assert a["lr"] == pytest.approx(b["lr"])
    for p, q in zip(full_model.parameters(), part_model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_fit_leaves_global_rng_untouched():
    model, data = _model(), _data()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    Trainer(epochs=1, batch_size=32).fit(model, data)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", ["step", "cosine"])
def test_schedulers_change_lr(name):
    trainer = Trainer(epochs=4, batch_size=32, lr=1e-2, scheduler=name, step_size=1, gamma=0.5)
    trainer.fit(_model(), _data(), _data(32, seed=1))
    lrs = [r["lr"] for r in trainer.history]
    assert lrs[-1] < lrs[0]


class ScriptedValModel(LinearAE):
    """A linear autoencoder whose validation loss is scripted per epoch (the training loss keeps falling)."""

    registry_name = "scripted_val_test"

    def __init__(self, val_losses):
        super().__init__(ModelConfig(input_shape=(1, 8, 8), latent_dim=2))
        self.val_losses, self.epoch = list(val_losses), 0

    def on_epoch_start(self, epoch):
        self.epoch = epoch

    def validation_step(self, batch):
        return {"loss": torch.tensor(self.val_losses[self.epoch])}


def test_plateau_cuts_lr_by_gamma_after_patience_epochs_without_improvement_of_the_monitor():
    # epoch:        1    2    3    4    5    6    7    8
    val_losses = [1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    trainer = Trainer(epochs=8, batch_size=32, lr=1e-2, scheduler="plateau", gamma=0.5, plateau_patience=2)
    trainer.fit(ScriptedValModel(val_losses), _data(), _data(32, seed=1))
    lrs = [r["lr"] for r in trainer.history]
    # the training loss falls every epoch, so only the monitored val/loss can trigger the cut:
    # epochs 3 and 4 do not improve (patience 2: no cut yet), epoch 5 is the third: lr * gamma;
    # then two more epochs of patience, and the third cuts again
    assert lrs == pytest.approx([1e-2] * 4 + [5e-3] * 3 + [2.5e-3])
    assert trainer.history[-1]["train/loss"] < trainer.history[0]["train/loss"]


def test_plateau_keeps_lr_while_the_monitor_improves():
    trainer = Trainer(epochs=5, batch_size=32, lr=1e-2, scheduler="plateau", gamma=0.5, plateau_patience=0)
    trainer.fit(ScriptedValModel([1.0, 0.8, 0.6, 0.4, 0.2]), _data(), _data(32, seed=1))
    assert [r["lr"] for r in trainer.history] == pytest.approx([1e-2] * 5)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_optimizers(optimizer):
    trainer = Trainer(epochs=3, batch_size=16, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 3e-3)
    trainer.fit(_model(), _data())
    assert trainer.history[-1]["train/loss"] < trainer.history[0]["train/loss"]


def test_l1_penalty_shrinks_weights():
    plain = _model()
    sparse = _model()
    sparse.load_state_dict(plain.state_dict())
    Trainer(epochs=3, batch_size=16, seed=1).fit(plain, _data())
    Trainer(epochs=3, batch_size=16, seed=1, l1_penalty=1e-2).fit(sparse, _data())
    l1 = lambda m: sum(p.abs().sum().item() for p in m.parameters())  # noqa: E731
    assert l1(sparse) < l1(plain)


class UpdateNorms(Callback):
    """The norm of every optimisation step's parameter update."""

    def __init__(self):
        self.norms, self._before = [], None

    def _snapshot(self, trainer):
        return torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])

    def on_fit_start(self, trainer):
        self._before = self._snapshot(trainer)

    def on_batch_end(self, trainer, step, batch_size):
        now = self._snapshot(trainer)
        self.norms.append(float((now - self._before).norm()))
        self._before = now


def test_grad_clip_bounds_every_update_and_an_unclipped_run_exceeds_the_bound():
    lr, clip = 0.1, 0.01
    norms = {}
    for name, grad_clip in (("clipped", clip), ("plain", None)):
        torch.manual_seed(3)
        cb = UpdateNorms()
        # plain SGD (no momentum): each update is lr * gradient, so clipping the gradient norm to
        # `clip` bounds every update norm by lr * clip
        Trainer(epochs=2, batch_size=16, seed=1, optimizer="sgd", momentum=0.0, lr=lr, grad_clip=grad_clip,
                callbacks=[cb]).fit(_model(), _data())
        norms[name] = cb.norms
    assert len(norms["clipped"]) == 12
    assert max(norms["clipped"]) <= lr * clip * (1 + 1e-3)
    assert min(norms["clipped"]) > 0.5 * lr * clip  # the gradients are larger than the bound: clipping acted
    assert max(norms["plain"]) > 3 * lr * clip


def test_early_stopping_stops():
    stopper = EarlyStopping(monitor="train/loss", patience=1, min_delta=10.0)  # nothing improves by 10
    trainer = Trainer(epochs=10, batch_size=32, callbacks=[stopper]).fit(_model(), _data())
    assert len(trainer.history) == 2
    assert trainer.should_stop


def test_loader_shards_partition_the_single_rank_batches():
    data = _data(40)
    single = BatchLoader(data, batch_size=8, seed=5).indices(2)
    shards = [BatchLoader(data, batch_size=4, seed=5, rank=r, world_size=2).indices(2) for r in range(2)]
    for step in range(5):
        union = torch.cat([s[step * 4:(step + 1) * 4] for s in shards]).sort().values
        assert torch.equal(union, single[step * 8:(step + 1) * 8].sort().values)
    assert not torch.equal(BatchLoader(data, batch_size=8, seed=5).indices(3), single)


def test_augmentation_is_applied_with_the_epoch_generator():
    seen = []

    def augment(x, generator):
        seen.append(torch.rand(1, generator=generator).item())
        return x

    Trainer(epochs=2, batch_size=48, augment=augment, seed=0).fit(_model(), _data())
    first = list(seen)
    seen.clear()
    Trainer(epochs=2, batch_size=48, augment=augment, seed=0).fit(_model(), _data())
    assert seen == first and len(set(first)) == 4 and not any(math.isnan(v) for v in first)


def test_tensorboard_logger_writes_events_or_explains_the_missing_package(tmp_path):
    from reprlab.base.errors import ConfigError
    from reprlab.training.callbacks import TensorBoardLogger

    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install tensorboard"):
            Trainer(epochs=1, batch_size=32, callbacks=[TensorBoardLogger(tmp_path)]).fit(_model(), _data())
    else:
        Trainer(epochs=1, batch_size=32, callbacks=[TensorBoardLogger(tmp_path)]).fit(_model(), _data())
        assert list(tmp_path.glob("events.out.tfevents.*"))


def test_progress_bar_can_be_forced_on(capsys):
    from reprlab.training.callbacks import ProgressBar

    Trainer(epochs=1, batch_size=32, callbacks=[ProgressBar(enabled=True)]).fit(_model(), _data())
    assert "epoch 1/1" in capsys.readouterr().err


def test_channels_last_trains_in_nhwc_and_matches_the_default_layout(tmp_path):
    from reprlab.models import load_model, save_model

    layouts = []

    class SeeLayout(Callback):
        def on_batch_end(self, trainer, step, batch_size):
            conv = next(m for m in trainer.model.modules() if isinstance(m, nn.Conv2d))
            layouts.append(conv.weight.is_contiguous(memory_format=torch.channels_last))

    seen_images = []

    def conv(seed=0):
        torch.manual_seed(seed)
        model = create_model("conv_ae", input_shape=(3, 16, 16), latent_dim=4, channels=(8, 16))
        forward = model.forward

        def spy(x, *args, **kwargs):  # the images the model receives during training
            if model.training:
                seen_images.append(x.is_contiguous(memory_format=torch.channels_last))
            return forward(x, *args, **kwargs)

        model.forward = spy
        return model

    data = ImageData(torch.rand(64, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    val = ImageData(torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    default = Trainer(epochs=2, batch_size=16, lr=1e-2, seed=0, callbacks=[SeeLayout()]).fit(conv(), data, val)
    assert layouts == [False] * 8 and seen_images and not any(seen_images)
    layouts.clear()
    seen_images.clear()
    nhwc_model = conv()
    nhwc = Trainer(epochs=2, batch_size=16, lr=1e-2, seed=0, channels_last=True,
                   callbacks=[SeeLayout()]).fit(nhwc_model, data, val)
    assert layouts == [True] * 8 and seen_images and all(seen_images)
    for a, b in zip(default.history, nhwc.history):
        for key in ("train/loss", "val/loss"):
            assert b[key] == pytest.approx(a[key], rel=1e-3), key
    # its weights save and load into an ordinary (NCHW) model, unchanged
    del nhwc_model.forward  # the spy
    loaded = load_model(save_model(nhwc_model.eval(), tmp_path / "m")).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(loaded(x).reconstruction, nhwc_model(x).reconstruction, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_train_channels_last_in_a_config_reaches_the_trainer(tmp_path, tiny_arrays, channels_last):
    import reprlab

    seen = []

    class SeeLayout(Callback):
        def on_batch_end(self, trainer, step, batch_size):
            # a conv with several input channels and a 3x3 kernel: for one of them both layouts coincide
            conv = next(m for m in trainer.model.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1)
            seen.append(conv.weight.is_contiguous(memory_format=torch.channels_last))

    cfg = {"seed": 0, "output_dir": str(tmp_path / "runs"), "name": "layout",
           "data": {"name": "arrays", "path": str(tiny_arrays)},
           "model": {"name": "conv_ae", "latent_dim": 2, "channels": [4, 8]},
           "train": {"epochs": 1, "batch_size": 32, "progress": "off", "channels_last": channels_last},
           "eval": {"figures": False, "report": False}}
    result = reprlab.train(cfg, callbacks=[SeeLayout()])
    assert seen and set(seen) == {channels_last}
    assert result.metrics["test/mse"] > 0


def _record_layer_dtypes(model: nn.Module, seen: dict[bool, set]) -> None:
    """Record, by train / eval mode, the dtypes the model's conv and linear layers compute in."""
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            layer.register_forward_hook(lambda m, _i, out: seen.setdefault(m.training, set()).add(out.dtype))


def test_bf16_precision_trains_under_autocast_and_validates_in_float32():
    data = ImageData(torch.rand(64, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    val = ImageData(torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    histories, models = {}, {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = create_model("conv_ae", input_shape=(3, 16, 16), latent_dim=4, channels=(8, 16))
        seen: dict[bool, set] = {}
        _record_layer_dtypes(model, seen)
        histories[precision] = Trainer(epochs=2, batch_size=16, lr=1e-2, seed=0, precision=precision).fit(
            model, data, val).history
        models[precision] = model
        low = torch.float32 if precision == "fp32" else torch.bfloat16
        assert seen == {True: {low}, False: {torch.float32}}, precision  # training steps only; validation exact
    assert {p.dtype for p in models["bf16"].parameters()} == {torch.float32}  # float32 master weights
    for a, b in zip(histories["fp32"], histories["bf16"]):
        for key in ("train/loss", "val/loss"):
            assert isinstance(b[key], float) and b[key] == pytest.approx(a[key], rel=5e-2), key
    assert histories["bf16"][0]["train/loss"] != histories["fp32"][0]["train/loss"]  # not the float32 run again


_CPUINFO_AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
_CPUINFO_PLAIN = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2\n"
_CPUINFO_ARM = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_cpu_bf16_flags_reads_cpuinfo_and_says_unknown_without_it(tmp_path):
    files = {"amx": _CPUINFO_AMX, "plain": _CPUINFO_PLAIN, "arm": _CPUINFO_ARM}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert engine.cpu_bf16_flags(str(tmp_path / "amx")) == {"avx512_bf16", "amx_bf16"}
    assert engine.cpu_bf16_flags(str(tmp_path / "plain")) == frozenset()
    assert engine.cpu_bf16_flags(str(tmp_path / "arm")) == {"bf16"}
    assert engine.cpu_bf16_flags(str(tmp_path / "missing")) is None


def test_bf16_on_a_cpu_without_bf16_instructions_warns_once_per_fit(tmp_path, monkeypatch, caplog):
    (tmp_path / "plain").write_text(_CPUINFO_PLAIN)
    (tmp_path / "amx").write_text(_CPUINFO_AMX)
    cpu = torch.device("cpu")
    with caplog.at_level(logging.WARNING, logger="reprlab.training.engine"):
        assert engine.warn_if_bf16_is_emulated("bf16", cpu, cpuinfo=str(tmp_path / "plain"))
        assert "train.precision=fp32" in caplog.text and "emulates bfloat16" in caplog.text
        caplog.clear()
        assert not engine.warn_if_bf16_is_emulated("bf16", cpu, cpuinfo=str(tmp_path / "amx"))
        assert not engine.warn_if_bf16_is_emulated("fp32", cpu, cpuinfo=str(tmp_path / "plain"))
        assert not engine.warn_if_bf16_is_emulated("bf16", cpu, cpuinfo=str(tmp_path / "missing"))  # unknown: silent
        assert caplog.text == ""

        real = engine.warn_if_bf16_is_emulated
        monkeypatch.setattr(engine, "warn_if_bf16_is_emulated",
                            lambda precision, device: real(precision, device, cpuinfo=str(tmp_path / "plain")))
        data = ImageData(torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
        model = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2, hidden_sizes=(8,))
        Trainer(epochs=2, batch_size=16, precision="bf16").fit(model, data)
        assert caplog.text.count("without bfloat16 instructions") == 1


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_precision_in_a_config_reaches_the_trainer(tmp_path, tiny_arrays, precision):
    import reprlab

    seen: dict[bool, set] = {}

    class RecordOnce(Callback):
        def on_fit_start(self, trainer):
            _record_layer_dtypes(trainer.model, seen)

    cfg = {"seed": 0, "output_dir": str(tmp_path / "runs"), "name": "precision",
           "data": {"name": "arrays", "path": str(tiny_arrays)},
           "model": {"name": "conv_ae", "latent_dim": 2, "channels": [4, 8]},
           "train": {"epochs": 1, "batch_size": 32, "progress": "off", "precision": precision},
           "eval": {"figures": False, "report": False}}
    result = reprlab.train(cfg, callbacks=[RecordOnce()])
    assert seen[True] == {torch.bfloat16 if precision == "bf16" else torch.float32}
    assert result.metrics["test/mse"] > 0


def test_an_unknown_or_unsupported_precision_is_refused_before_any_run_directory(tmp_path, tiny_arrays):
    import reprlab
    from reprlab.base.errors import ConfigError
    from reprlab.training.engine import training_autocast

    cfg = {"output_dir": str(tmp_path / "runs"), "data": {"name": "arrays", "path": str(tiny_arrays)},
           "model": {"name": "conv_ae", "latent_dim": 2, "channels": [4, 8]}, "train": {"precision": "fp16"}}
    with pytest.raises(ConfigError, match="train.precision") as info:
        reprlab.train(cfg)
    assert "bf16" in str(info.value) and not (tmp_path / "runs").exists()
    with pytest.raises(ConfigError, match="train.precision"):
        Trainer(precision="half")
    with pytest.raises(ConfigError, match="CPU or CUDA"):
        training_autocast("bf16", torch.device("mps"))


def test_ema_is_what_validation_scores_and_best_saves_and_it_resumes_exactly(tmp_path):
    """``ema_decay``: ``eval_model`` is the exponential moving average of the weights after every step (checked
    against one computed here), validation scores it, ``best`` saves it, ``last`` keeps the raw weights, and an
    interrupted run resumes the average exactly."""
    from reprlab.models import load_model
    from reprlab.training.callbacks import Checkpointer
    from reprlab.training.checkpoint import resolve_checkpoint

    class Average(Callback):  # AveragedModel's rule: the first update copies, each later one is 0.8 avg + 0.2 w
        def on_batch_end(self, trainer, step, batch_size):
            now = {k: v.detach().clone() for k, v in trainer.model.state_dict().items() if v.is_floating_point()}
            self.avg = now if step == 1 else {k: self.avg[k] * 0.8 + v * 0.2 for k, v in now.items()}

    data, val = _data(), _data(32, seed=1)
    torch.manual_seed(7)
    model = _model()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    avg = Average()
    trainer = Trainer(epochs=2, batch_size=16, seed=3, lr=1e-2, ema_decay=0.8,
                      callbacks=[avg, Checkpointer(tmp_path / "ck", monitor="val/loss")]).fit(model, data, val)
    ema = trainer.eval_model
    assert ema is not model
    for k, v in avg.avg.items():
        assert torch.allclose(ema.state_dict()[k], v, atol=1e-6), k
        assert not torch.allclose(v, model.state_dict()[k])  # not the raw weights
    raw = {k: v.clone() for k, v in model.state_dict().items()}
    assert any(not torch.equal(raw[k], init[k]) for k in raw)
    # validation scored the average: score it again and compare
    again = Trainer(epochs=1, batch_size=16)._validate(ema, BatchLoader(val, batch_size=256, shuffle=False), 0.0, False)
    assert again["val/loss"] == pytest.approx(trainer.history[-1]["val/loss"], rel=1e-6)
    assert trainer.history[-1]["val/loss"] != pytest.approx(
        Trainer(epochs=1, batch_size=16)._validate(model, BatchLoader(val, batch_size=256, shuffle=False), 0.0,
                                                   False)["val/loss"], rel=1e-6)
    assert trainer.history[1]["val/loss"] < trainer.history[0]["val/loss"]  # so `best` is the last epoch's average
    best = load_model(resolve_checkpoint(tmp_path / "ck", "best") / "model")
    assert all(torch.allclose(best.state_dict()[k], v) for k, v in ema.state_dict().items())
    last = load_model(resolve_checkpoint(tmp_path / "ck", "last") / "model")
    assert all(torch.equal(last.state_dict()[k], v) for k, v in raw.items())

    # resume: two epochs, stopped after one and resumed, give the same average as two straight
    torch.manual_seed(7)
    full_model, part_model = _model(), _model()
    part_model.load_state_dict(full_model.state_dict())
    full = Trainer(epochs=2, batch_size=16, seed=3, lr=1e-2, ema_decay=0.8).fit(full_model, data, val)
    part = Trainer(epochs=2, batch_size=16, seed=3, lr=1e-2, ema_decay=0.8, callbacks=[StopAfter(1)]).fit(
        part_model, data, val)
    state = part.resume_state()
    assert "ema" in state
    rest = Trainer(epochs=2, batch_size=16, seed=3, lr=1e-2, ema_decay=0.8).fit(part_model, data, val, resume=state)
    for k, v in full.eval_model.state_dict().items():
        assert torch.allclose(v.float(), rest.eval_model.state_dict()[k].float(), atol=1e-6), k
    assert rest.history[-1]["val/loss"] == pytest.approx(full.history[-1]["val/loss"], rel=1e-5)
    with pytest.raises(TrainingError, match="train.ema_decay"):
        Trainer(epochs=2, batch_size=16, seed=3, ema_decay=0.8).fit(_model(), data, val,
                                                                    resume={k: v for k, v in state.items() if k != "ema"})


def test_resume_state_without_a_group_of_the_model_is_refused():
    """A state saved when the model had other parameter groups (PixelDA before its ``classifier`` group)."""
    model = TwoOptimizerModel()
    trainer = Trainer(epochs=1, batch_size=32, lr=1e-2).fit(model, _data())
    state = trainer.resume_state()
    state["optimizers"].pop("dec")
    with pytest.raises(TrainingError, match="no optimiser state for parameter group\\(s\\) dec") as info:
        Trainer(epochs=2, batch_size=32, lr=1e-2).fit(TwoOptimizerModel(), _data(), resume=state)
    assert "start the run again" in str(info.value)
