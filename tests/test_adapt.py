"""The ``adapt`` task: data protocol, label-free selection vs oracle, bad input, CLI, report items.

A toy two-domain classifier (pixels -> tanh features -> logits, a domain head behind gradient
reversal weighted by ``adapt_weight``) is registered as ``toy_adapt`` and allowed for
``adapt.method=dann``; the source is :func:`conftest.write_tiny_npz` (120 12x12 images, 3 classes),
the target the same kind of images on a grey background with less contrast (a second domain), written by the tests.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.nn import functional as F

import reprlab
from reprlab.base.errors import ConfigError, DataError, ModelError
from reprlab.capabilities.adaptation import (allow_model, dev_from_weights, prediction_entropy,
                                             soft_neighbourhood_density)
from reprlab.capabilities.adaptation.config import METHOD_MODELS
from reprlab.capabilities.adaptation.selection import deep_embedded_validation, density_ratio
from reprlab.cli.main import main as cli_main
from reprlab.data.dataset import ImageData
from reprlab.models import registry as model_registry
from reprlab.models.base import ModelConfig, ModelOutput, ReprModel
from reprlab.runs import load_run_model
from reprlab.tasks import get_task

from conftest import write_tiny_npz

pytestmark = pytest.mark.usefixtures("single_thread", "restore_logging")


# -- the toy two-domain model ------------------------------------------------------------------
@dataclass
class ToyAdaptConfig(ModelConfig):
    num_classes: int = 3
    hidden: int = 8
    adapt_weight: float = 1.0
    domain_in: int | None = None
class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.weight * grad, None


class ToyAdaptModel(ReprModel):
    seen_targets: list[bool] = []

    def __init__(self, config: ToyAdaptConfig) -> None:
        super().__init__(config)
        if config.domain_in is not None and config.domain_in != config.hidden:
            raise ModelError(f"the domain classifier takes {config.domain_in} features but the feature extractor "
                             f"gives {config.hidden}", fix="drop model.domain_in (it follows the features)")
        n = 1
        for s in config.input_shape:
            n *= s
        self.body = nn.Linear(n, config.hidden)
        self.head = nn.Linear(config.hidden, config.num_classes)
        self.domain = nn.Linear(config.hidden, 1)

    @property
    def decode(self):  # a classifier: hasattr(model, "decode") is false (the quick latent analysis skips it)
        raise AttributeError("toy_adapt has no decoder")

    def features(self, x):
        return torch.tanh(self.body(x.flatten(1)))

    def logits(self, x):
        return self.head(self.features(x))

    def forward(self, x):
        f = self.features(x)
        logits = self.head(f)
        loss = logits.pow(2).mean() + self.domain(f).pow(2).mean()
        return ModelOutput(loss, {"loss": loss}, latent=logits)

    def check_input(self, input_shape=None) -> None:
        self(torch.zeros(2, *(input_shape or self.config.input_shape)))

    def training_step(self, batch, ctx):
        f = self.features(batch.images)
        loss = F.cross_entropy(self.head(f), batch.labels)
        ToyAdaptModel.seen_targets.append(batch.target is not None)
        if batch.target is not None and self.config.adapt_weight > 0:
            ft = self.features(batch.target.images)
            d = self.domain(_Reverse.apply(torch.cat([f, ft]), self.config.adapt_weight)).squeeze(1)
            y = torch.cat([torch.zeros(len(f)), torch.ones(len(ft))])
            loss = loss + F.binary_cross_entropy_with_logits(d, y)
        ctx.step("main", loss)
        return {"loss": loss.detach()}

    @torch.no_grad()
    def validation_step(self, batch):
        logits = self.logits(batch.images)
        return {"loss": F.cross_entropy(logits, batch.labels), "acc": (logits.argmax(1) == batch.labels).float().mean()}


@pytest.fixture(scope="module", autouse=True)
def _toy_model():
    model_registry.register_model("toy_adapt", config=ToyAdaptConfig)(ToyAdaptModel)
    allow_model("dann", "toy_adapt")
    yield
    model_registry._MODELS.pop("toy_adapt", None)
    METHOD_MODELS["dann"].remove("toy_adapt")


def _write_target(path: Path, source: Path, *, invert: bool = True) -> Path:
    z = np.load(source)
    x = (z["x"].astype(np.float32) * 0.6 + 90).astype(np.uint8) if invert else z["x"]  # dimmer, grey background
    np.savez_compressed(path, x=x, y=z["y"])
    return path


def _cfg(tmp_path: Path, **adapt) -> dict:
    src = write_tiny_npz(tmp_path / "source.npz")
    tgt = _write_target(tmp_path / "target.npz", src)
    return {"seed": 0, "task": "adapt", "output_dir": str(tmp_path / "runs"), "name": "run",
            "data": {"name": "arrays", "path": str(src), "val_fraction": 0.25, "test_fraction": 0.2},
            "model": {"name": "toy_adapt"},
            "train": {"epochs": 4, "batch_size": 16, "lr": 0.01, "progress": "off", "num_threads": 1},
            "eval": {"figures": False, "report": False},
            "adapt": {"target": "arrays", "target_path": str(tgt), "method": "dann", "preprocess": "data",
                      "eval_fraction": 0.3, **adapt}}


def _rows(path: Path) -> list[dict[str, float]]:
    with open(path) as f:
        return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]


def _acc(model, data: ImageData) -> float:
    from reprlab.evaluation.classification import predict

    logits, labels = predict(model, data)
    return float((logits.argmax(1) == labels).mean())


def _prepare(tmp_path: Path, **adapt):
    from reprlab.experiments.train import as_config

    cfg = as_config(_cfg(tmp_path, **adapt))
    return cfg, get_task("adapt").prepare_data(cfg)


def _hashes(data: ImageData) -> set[bytes]:
    return {row.numpy().tobytes() for row in data.images.reshape(len(data), -1)}


# -- data protocol ------------------------------------------------------------------------------
def test_holdout_protocol_is_disjoint_seeded_and_drops_the_adaptation_labels(tmp_path):
    cfg, s = _prepare(tmp_path)
    p = s.protocol
    assert p["protocol"] == "holdout" and p["split_seed"] == 0 and p["eval_fraction"] == 0.3
    assert (p["adaptation_images"], p["evaluation_images"]) == (84, 36) == (len(s.target), len(s.test))
    assert s.target.labels is None and s.adaptation.labels is None  # labels dropped on the adaptation side
    assert s.test.labels is not None and s.train.labels is not None
    assert not (_hashes(s.target) & _hashes(s.test))  # the evaluation images are never adapted on
    assert float(s.test.float01().mean()) > 0.35 > float(s.train.float01().mean())  # the target: grey background
    assert s.test.labels.bincount().tolist() == [12, 12, 12] or len(set(s.test.labels.tolist())) == 3  # stratified
    _, again = _prepare(tmp_path)
    assert torch.equal(again.test.images, s.test.images)  # seeded
    _, other = _prepare(tmp_path, split_seed=5)
    assert not torch.equal(other.test.images, s.test.images)


def test_splits_protocol_uses_separate_evaluation_images(tmp_path):
    src = write_tiny_npz(tmp_path / "source.npz")
    z = np.load(src)
    np.savez_compressed(tmp_path / "t_adapt.npz", x=255 - z["x"][:80], y=z["y"][:80])
    np.savez_compressed(tmp_path / "t_eval.npz", x=255 - z["x"][80:], y=z["y"][80:])
    cfg, s = _prepare(tmp_path, target_path=str(tmp_path / "t_adapt.npz"), target_test_path=str(tmp_path / "t_eval.npz"))
    assert s.protocol["protocol"] == "splits" and (len(s.target), len(s.test)) == (80, 40)
    assert s.target.labels is None and s.protocol["eval_fraction"] is None


def test_bounds_train_without_target_batches_and_target_only_uses_target_labels(tmp_path):
    cfg, s = _prepare(tmp_path, method="source_only")
    assert s.target is None and s.adaptation is not None and cfg.model["adapt_weight"] == 0.0
    assert float(s.train.float01().mean()) < 0.35  # the source
    cfg, s = _prepare(tmp_path, method="target_only")
    assert s.target is None and s.train.labels is not None and float(s.train.float01().mean()) > 0.35
    assert len(s.train) + len(s.val) == s.protocol["adaptation_images"] == 84
    assert not (_hashes(s.train) & _hashes(s.test))


def test_digits_preprocessing_applies_to_both_domains(tmp_path):
    cfg, s = _prepare(tmp_path, preprocess="digits")
    assert s.train.shape == s.test.shape == s.target.shape == (3, 32, 32)
    assert cfg.data.scale == "-1_1" and cfg.data.resize == [32, 32]


# -- selection criteria against their definitions -----------------------------------------------
def test_entropy_matches_its_definition():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [10.0, -10.0, 0.0]])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = np.mean([-sum(q * np.log(q)) for q in p])
    assert prediction_entropy(logits) == pytest.approx(expected)
    assert prediction_entropy(np.zeros((5, 4))) == pytest.approx(np.log(4))


def test_snd_matches_its_definition():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(7, 4)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    n = p / np.linalg.norm(p, axis=1, keepdims=True)
    ents = []
    for i in range(7):  # Saito et al.: similarities / 0.05, self set to -1/0.05, softmax, entropy
        s = np.array([(n[i] @ n[j]) / 0.05 if j != i else -1 / 0.05 for j in range(7)])
        q = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        ents.append(-(q * np.log(q)).sum())
    assert soft_neighbourhood_density(logits) == pytest.approx(np.mean(ents))
    tight = np.repeat(np.eye(3) * 9, 4, axis=0)  # three tight clusters of 4: each point has 3 close neighbours
    assert soft_neighbourhood_density(tight) == pytest.approx(np.log(3), abs=1e-3)


def test_dev_matches_its_definition_and_the_density_ratio_points_to_the_target():
    w = np.array([0.5, 1.0, 2.0, 1.5])
    loss = np.array([1.0, 0.5, 2.0, 0.1])
    L = w * loss
    eta = -np.cov(L, w, ddof=1)[0, 1] / np.var(w, ddof=1)
    assert dev_from_weights(w, loss) == pytest.approx(L.mean() + eta * w.mean() - eta)
    assert dev_from_weights(np.ones(4), loss) == pytest.approx(loss.mean())
    rng = np.random.default_rng(0)
    s, t = rng.normal(0, 1, (300, 3)), rng.normal(1.5, 1, (300, 3))
    q = np.array([[-2.0] * 3, [0.75] * 3, [3.0] * 3])
    r = density_ratio(s, t, q)
    assert r[0] < 0.2 and 0.3 < r[1] < 3 and r[2] > 5
    # validation losses high where the target lives: DEV sees a higher risk than the plain mean
    v = rng.normal(0, 1, (200, 3))
    losses = (v.mean(1) > 0.5).astype(float)
    assert deep_embedded_validation(s, t, v, losses) > losses.mean()


# -- a run: label-free best checkpoint vs oracle checkpoint --------------------------------------
def test_best_follows_the_label_free_criterion_and_oracle_follows_target_accuracy(tmp_path):
    cfg = _cfg(tmp_path, selection="entropy")
    cfg["train"]["epochs"] = 6
    result = reprlab.train(cfg)
    run = result.run_dir
    rows = _rows(run / "metrics.csv")
    ent = [r["select/target_entropy"] for r in rows]
    acc = [r["oracle/target_acc"] for r in rows]
    assert len(set(ent)) > 1 and len(set(acc)) > 1
    m = json.loads((run / "metrics.json").read_text())
    assert m["best/monitor"] == "select/target_entropy"
    assert m["best/epoch"] == m["select/epoch"] == int(np.argmin(ent)) + 1
    assert m["oracle/epoch"] == int(np.argmax(acc)) + 1
    assert m["oracle/acc"] == pytest.approx(max(acc))
    assert m["best/epoch"] != m["oracle/epoch"]  # in this seeded toy run the two selections disagree
    # the default test metric is the target accuracy of the label-free epoch, not the oracle's
    assert m["test/acc"] == pytest.approx(acc[m["best/epoch"] - 1])
    assert m["last/acc"] == pytest.approx(acc[-1])
    # each checkpoint reproduces its own recorded value
    from reprlab.experiments.train import as_config

    splits = get_task("adapt").prepare_data(as_config(run / "config.yaml"))
    from reprlab.evaluation.classification import predict_logits

    best = load_run_model(run, "best")
    assert prediction_entropy(predict_logits(best, splits.adaptation)) == pytest.approx(min(ent), rel=1e-5)
    assert _acc(load_run_model(run, "oracle"), splits.test) == pytest.approx(max(acc))
    assert m["adapt/protocol"] == "holdout" and m["adapt/adaptation_images"] == 84 and m["adapt/evaluation_images"] == 36
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["adapt"]["protocol"] == "holdout"
    table = list(csv.DictReader(open(run / "adaptation" / "selection.csv")))
    assert [r["selection"] for r in table] == ["label-free (default)", "oracle (uses target labels)", "last epoch"]
    assert {r["protocol"] for r in table} == {"holdout"}
    assert float(table[1]["target_acc"]) == pytest.approx(max(acc), abs=1e-6)
    assert any(ToyAdaptModel.seen_targets)  # dann paired the target batches


def test_source_val_selection_is_the_default_and_dev_is_recorded(tmp_path):
    cfg = _cfg(tmp_path, selection="dev")
    cfg["train"]["epochs"] = 2
    run = reprlab.train(cfg).run_dir
    rows = _rows(run / "metrics.csv")
    assert all(np.isfinite(r["select/dev"]) for r in rows)
    m = json.loads((run / "metrics.json").read_text())
    assert m["best/monitor"] == "select/dev" and m["best/epoch"] == int(np.argmin([r["select/dev"] for r in rows])) + 1
    from reprlab.experiments.train import as_config

    assert get_task("adapt").monitor_for(as_config(_cfg(tmp_path))) == ("val/acc", "max")


def test_last_selection_makes_the_final_epoch_the_default_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, selection="last")
    cfg["train"]["epochs"] = 4
    cfg["train"]["early_stopping"] = {"patience": 1}  # must not fire: every epoch "improves"
    run = reprlab.train(cfg).run_dir
    acc = [r["oracle/target_acc"] for r in _rows(run / "metrics.csv")]
    assert len(acc) == 4
    m = json.loads((run / "metrics.json").read_text())
    assert m["best/monitor"] == "epoch" and m["best/epoch"] == m["select/epoch"] == 4
    assert m["test/acc"] == pytest.approx(acc[-1]) and m["test/acc"] == pytest.approx(m["last/acc"])
    assert m["oracle/epoch"] == int(np.argmax(acc)) + 1


def test_oracle_checkpoint_keeps_the_epoch_of_the_best_target_accuracy(tmp_path):
    from types import SimpleNamespace

    from reprlab.capabilities.adaptation.selection import SelectionCallback

    evaluation = ImageData(torch.rand(6, 1, 4, 4), torch.tensor([0, 0, 0, 1, 1, 2]))
    adaptation = ImageData(torch.rand(5, 1, 4, 4))
    model = ToyAdaptModel(ToyAdaptConfig(input_shape=(1, 4, 4)))
    cb = SelectionCallback(adaptation=adaptation, evaluation=evaluation, source_train=None, source_val=None,
                           checkpoints=tmp_path / "ckpt")
    trainer = SimpleNamespace(model=model, eval_model=model)
    rows = []
    for epoch, favoured in enumerate([1, 0, 2]):  # target accuracy 2/6, then 3/6 (the oracle), then 1/6
        with torch.no_grad():
            model.head.weight.zero_()
            model.head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(favoured), 3).float())
        row = {}
        cb.on_epoch_end(trainer, epoch, row)
        rows.append(row)
    assert [r["oracle/target_acc"] for r in rows] == pytest.approx([2 / 6, 3 / 6, 1 / 6])
    assert cb.oracle_epoch == 1 and cb.state_dict() == {"best_oracle": 0.5, "oracle_epoch": 1}
    from reprlab.models import load_model

    oracle = load_model(tmp_path / "ckpt" / "oracle" / "model")
    assert _acc(oracle, evaluation) == pytest.approx(0.5)
    assert rows[0]["select/target_entropy"] == pytest.approx(prediction_entropy(np.tile([0.0, 1.0, 0.0], (5, 1))))


# -- bad input: one clear error before any run directory exists ----------------------------------
def _refused(tmp_path: Path, cfg: dict, error: type, *words: str) -> None:
    with pytest.raises(error) as info:
        reprlab.train(cfg)
    text = str(info.value)
    for w in words:
        assert w in text, text
    assert "Fix:" in text
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_refuses_different_numbers_of_classes(tmp_path):
    cfg = _cfg(tmp_path)
    z = np.load(cfg["adapt"]["target_path"])
    y = z["y"].copy()
    y[:10] = 3
    np.savez_compressed(cfg["adapt"]["target_path"], x=z["x"], y=y)
    _refused(tmp_path, cfg, ConfigError, "3 classes", "4")


def test_refuses_evaluation_images_that_overlap_the_adaptation_images(tmp_path):
    cfg = _cfg(tmp_path, target_test_path=None)
    cfg["adapt"]["target_test_path"] = cfg["adapt"]["target_path"]
    _refused(tmp_path, cfg, ConfigError, "target_test_path", "same file")
    copy = tmp_path / "copy.npz"
    copy.write_bytes(Path(cfg["adapt"]["target_path"]).read_bytes())
    cfg["adapt"]["target_test_path"] = str(copy)
    _refused(tmp_path, cfg, DataError, "identical to evaluation images")


def test_refuses_labels_for_the_unlabelled_side(tmp_path):
    cfg = _cfg(tmp_path)
    z = np.load(cfg["adapt"]["target_path"])
    np.save(tmp_path / "labels.npy", z["y"])
    np.savez_compressed(tmp_path / "eval.npz", x=255 - z["x"][:5] // 2, y=z["y"][:5])
    cfg["adapt"].update(target_labels_path=str(tmp_path / "labels.npy"), target_test_path=str(tmp_path / "eval.npz"))
    _refused(tmp_path, cfg, ConfigError, "adapt.target_labels_path", "unlabelled side", "target_only")


def test_refuses_a_domain_classifier_that_does_not_fit_the_features(tmp_path):
    cfg = _cfg(tmp_path)
    cfg["model"]["domain_in"] = 5
    _refused(tmp_path, cfg, ModelError, "domain classifier takes 5 features")


@pytest.mark.parametrize("adapt, words", [
    ({"method": "coral"}, ("adapt.method", "coral")),
    ({"selection": "oracle"}, ("adapt.selection", "oracle")),
    ({"method": "pixelda"}, ("model.name=pixelda",)),
    ({"target": None}, ("adapt.target",)),
])
def test_refuses_unknown_or_mismatched_settings(tmp_path, adapt, words):
    _refused(tmp_path, _cfg(tmp_path, **adapt), ConfigError, *words)


def test_refuses_a_compare_with_that_is_not_a_run(tmp_path):
    from reprlab.base.errors import RunDirError

    _refused(tmp_path, _cfg(tmp_path, compare_with=str(tmp_path / "no_run")), RunDirError, "no_run")


def test_refuses_a_missing_target_dataset(tmp_path):
    cfg = _cfg(tmp_path, target_path=str(tmp_path / "nothing.npz"))
    _refused(tmp_path, cfg, DataError, "nothing.npz")
    cfg = _cfg(tmp_path, target="usps", target_path=None)
    cfg["data"].update(data_dir=str(tmp_path / "empty"), download=False)
    (tmp_path / "empty").mkdir()
    _refused(tmp_path, cfg, DataError, "usps")


# -- the CLI end to end, and the report items ------------------------------------------------------
def test_cli_adapt_end_to_end_with_report_items_and_before_after_embeddings(tmp_path, capsys):
    cfg = _cfg(tmp_path, tsne_points=20)
    for key in ("name", "output_dir", "task"):
        cfg.pop(key)
    cfg["train"]["epochs"] = 5
    (tmp_path / "adapt.yaml").write_text(yaml.safe_dump(cfg))
    base = ["--config", str(tmp_path / "adapt.yaml"), "--output-dir", str(tmp_path / "runs")]
    assert cli_main(["adapt", "--source", "arrays", "--target", "arrays", "--method", "source_only", "--epochs", "2",
                     "--name", "before", *base]) == 0
    before = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert before.name == "before" and (before / "metrics.json").exists()
    assert cli_main(["adapt", "--source", "arrays", "--target", "arrays", "--epochs", "2", "--selection", "snd",
                     "--name", "after", *base, f"adapt.compare_with={before}", "eval.figures=true",
                     "eval.report=true"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    after = Path(out[-1])
    assert any("oracle/acc=" in line for line in out)
    m = json.loads((after / "metrics.json").read_text())
    assert m["best/monitor"] == "select/snd" and m["adapt/method"] == "dann"
    index = json.loads((after / "adaptation" / "index.json").read_text())
    keys = [item["key"] for item in index["items"]]
    assert keys[:2] == ["adaptation/selection", "adaptation/tables"]
    assert {"adaptation/confusion", "adaptation/tsne"} <= set(keys)
    for item in index["items"]:
        for f in item["files"]:
            assert (after / "adaptation" / f).stat().st_size > 0
    assert "oracle" in index["items"][0]["title"] and "label-free" in index["items"][0]["title"]
    assert "protocol holdout" in index["items"][0]["caption"]
    assert json.loads((before / "metrics.json").read_text())["adapt/method"] == "source_only"
    assert json.loads((before / "metrics.json").read_text())["epochs"] == 2  # --epochs beats the config
    html = (after / "report.html").read_text()
    assert "label-free selection" in html and "tsne" in html.lower()
    from reprlab.capabilities.adaptation.report import compare_run_embeddings  # what bench/adaptation.py --tsne uses

    fig = compare_run_embeddings([before, after], tmp_path / "side_by_side.png", n=20)
    assert fig.stat().st_size > 0


def test_pixelda_with_the_warp_draws_its_translations_and_logs_the_warp(tmp_path):
    """A PixelDA run with the generator's warp writes the translations figure, logs ``warp_scale``, and
    ``plot_image_rows`` (what ``bench/translations.py`` draws with) puts several runs' translations in rows."""
    from reprlab.base.errors import ReprlabError
    from reprlab.capabilities.adaptation.plots import plot_image_rows

    cfg = _cfg(tmp_path, tsne_points=20)
    cfg["model"] = {"name": "pixelda", "gen_channels": 8, "gen_blocks": 1, "disc_channels": 8, "disc_blocks": 2,
                    "gen_warp": "affine", "content_weight": 1.0}
    cfg["data"].update(scale="-1_1", resize=[16, 16])
    cfg["adapt"]["method"] = "pixelda"
    cfg["train"].update(epochs=1, lr=2e-4)
    cfg["eval"]["figures"] = True
    run = Path(reprlab.train(cfg).run_dir)
    assert (run / "adaptation" / "translations.png").stat().st_size > 0
    rows = _rows(run / "metrics.csv")
    assert 0.5 <= rows[-1]["train/warp_scale"] <= 1.5
    model = load_run_model(run, "last").eval()
    x = torch.rand(4, *model.config.input_shape) * 2 - 1
    z = model.noise(4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        translated = model.translate(x, z)
    out = plot_image_rows([("source", (x + 1) / 2), ("warp", (translated + 1) / 2)], tmp_path / "rows.png")
    assert out.stat().st_size > 0
    with pytest.raises(ReprlabError, match="different shapes"):
        plot_image_rows([("a", torch.rand(4, 1, 8, 8)), ("b", torch.rand(3, 1, 8, 8))], tmp_path / "bad.png")


def test_cli_refuses_bad_input_with_exit_2_and_no_run_dir(tmp_path, capsys):
    cfg = _cfg(tmp_path)
    (tmp_path / "adapt.yaml").write_text(yaml.safe_dump(cfg))
    code = cli_main(["adapt", "--source", "arrays", "--target", "arrays", "--selection", "oracle",
                     "--config", str(tmp_path / "adapt.yaml"), "--output-dir", str(tmp_path / "runs")])
    assert code == 2
    assert "error: adapt.selection must be one of" in capsys.readouterr().err
    code = cli_main(["train", str(tmp_path / "adapt.yaml"), "adapt.method=pixelda"])  # the model stays toy_adapt
    assert code == 2
    assert "error: adapt.method=pixelda needs model.name=pixelda but model.name=toy_adapt" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("source, target, content", [("mnist", "usps", 1.0), ("usps", "mnist", 1.0),
                                                     ("mnist", "mnist-m", None), ("usps", "mnist-m", None)])
def test_pixelda_keeps_and_resizes_the_strokes_between_grey_digit_domains_by_default(source, target, content):
    """`reprlab adapt --method pixelda` turns the content-similarity loss on between MNIST and USPS, where without it
    the generator redraws digits as other digits (BENCHMARKS.md), and leaves it off where the target has colour."""
    import argparse

    from reprlab.capabilities.adaptation.config import adapt_config
    from reprlab.cli.adapt import build_config

    assert adapt_config(source, target, "pixelda")["model"].get("content_weight") == content
    args = argparse.Namespace(source=source, target=target, method="pixelda", selection=None, protocol=None, config=None,
                              seed=None, epochs=None, max_train=None, max_target=None, device="auto", data_dir=None,
                              name=None, output_dir=None, overrides=[])
    cfg, _ = build_config(args)  # configs/adapt_S_T_pixelda.yaml where it exists, else PixelDA's defaults
    assert cfg["model"]["name"] == "pixelda" and cfg["model"].get("content_weight") == content
    # and the generator's warp, which resizes the digits between MNIST and USPS
    warp = "affine" if content else None
    assert adapt_config(source, target, "pixelda")["model"].get("gen_warp") == cfg["model"].get("gen_warp") == warp
