"""What had no test before: the best checkpoint, the demo, evaluate on other data, load_run_model,
config switches with visible effects, failures after training, metrics.json / env.json contents,
and run kinds refused by the commands that do not read them."""

from __future__ import annotations

import json
import math
import subprocess
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch import nn

import reprlab
from reprlab.base.errors import DataError
from reprlab.cli.main import main as cli_main
from reprlab.data import load_arrays
from reprlab.data.dataset import ImageData
from reprlab.evaluation import evaluate_reconstruction
from reprlab.models import registry as model_registry
from reprlab.models.base import ModelConfig, ModelOutput, ReprModel
from reprlab.runs import load_run_model
from reprlab.tasks import get_task
from reprlab.training.callbacks import Callback, Checkpointer
from reprlab.training.engine import Trainer

from conftest import LinearAE, logging_restored, write_tiny_npz

pytestmark = pytest.mark.usefixtures("single_thread", "restore_logging")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- which epoch the Checkpointer keeps ------------------------------------------------------
class ScriptedVal(ReprModel):
    """A linear autoencoder whose validation loss follows a script, one value per epoch."""

    def __init__(self, script):
        super().__init__(ModelConfig(input_shape=(1, 4, 4), latent_dim=2))
        self.enc, self.dec = nn.Linear(16, 2), nn.Linear(2, 16)
        self.script, self.epoch = list(script), 0

    def encode(self, x):
        return self.enc(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 1, 4, 4)

    def forward(self, x):
        z = self.encode(x)
        r = self.decode(z)
        loss = (r - x).pow(2).mean()
        return ModelOutput(loss, {"loss": loss}, r, z)

    def on_epoch_start(self, epoch):
        self.epoch = epoch

    def validation_step(self, batch):
        return {"loss": torch.tensor(self.script[self.epoch])}


class Snapshots(Callback):
    """The model's weights at the end of every epoch."""

    def __init__(self):
        self.states = []

    def on_epoch_end(self, trainer, epoch, row):
        self.states.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})


#                    epoch:  1      2    3    4      5    6
SCRIPT = [math.nan, 0.5, 0.3, math.nan, 0.9, 0.3]


@pytest.mark.parametrize("mode, best_epoch", [("min", 3), ("max", 5)])
def test_checkpointer_keeps_the_best_epoch_of_its_mode_and_never_a_nan(tmp_path, mode, best_epoch):
    ckpt = Checkpointer(tmp_path / "ckpt", every=None, monitor="val/loss", mode=mode)
    snaps = Snapshots()
    data = ImageData(torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(0)))
    Trainer(epochs=6, batch_size=8, lr=1e-2, callbacks=[ckpt, snaps]).fit(ScriptedVal(SCRIPT), data, data)
    # min: 0.3 at epoch 3 (the tie at epoch 6 does not replace it); max: 0.9 at epoch 5; NaN (epochs 1, 4) never
    assert ckpt.best_epoch + 1 == best_epoch
    assert ckpt.best == pytest.approx(SCRIPT[best_epoch - 1], rel=1e-6)
    saved = _weights(tmp_path / "ckpt" / "best" / "model.safetensors")
    assert _same(saved, snaps.states[best_epoch - 1])
    assert not _same(saved, snaps.states[-1])


def test_checkpointer_with_only_nan_keeps_no_best(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", every=None, monitor="val/loss", mode="min")
    data = ImageData(torch.rand(16, 1, 4, 4))
    Trainer(epochs=2, batch_size=8, callbacks=[ckpt]).fit(ScriptedVal([math.nan, math.nan]), data, data)
    assert ckpt.best_epoch == -1 and not (tmp_path / "ckpt" / "best").exists()
    assert (tmp_path / "ckpt" / "last").is_dir()


# -- one trained run shared by several tests ---------------------------------------------------
class KeepTrainer(Callback):
    def on_fit_start(self, trainer):
        self.trainer = trainer


def _conv_config(root: Path, **extra) -> dict:
    cfg = {"seed": 0, "output_dir": str(root / "runs"), "name": "tiny",
           "data": {"name": "arrays", "path": str(write_tiny_npz(root / "tiny.npz")), "val_fraction": 0.25,
                    "test_fraction": 0.25},
           "model": {"name": "conv_ae", "latent_dim": 4, "channels": [4, 8]},
           "train": {"epochs": 3, "batch_size": 32, "progress": "off", "num_threads": 1, "lr": 3e-3},
           "eval": {"figures": False, "report": False}}
    for key, value in extra.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory, single_thread):
    """A 3-epoch conv_ae run with the checkpoint curve switched on in its config."""
    root = tmp_path_factory.mktemp("trained")
    keep = KeepTrainer()
    cfg = _conv_config(root, cluster={"checkpoint_curve": True, "reducer": "pca", "n_components": 2,
                                      "clusterer": "kmeans", "n_clusters": 3},
                       train={"checkpoint_every": 1})
    result = reprlab.train(cfg, callbacks=[keep])
    return {"root": root, "result": result, "run": result.run_dir, "trainer": keep.trainer}


def test_metrics_json_best_entries_equal_the_checkpointers(trained):
    ckpt = [cb for cb in trained["trainer"].callbacks if isinstance(cb, Checkpointer)]
    assert len(ckpt) == 1
    ckpt = ckpt[0]
    metrics = json.loads((trained["run"] / "metrics.json").read_text())
    assert metrics["best/monitor"] == ckpt.monitor == "val/loss"
    assert metrics["best/value"] == ckpt.best
    assert metrics["best/epoch"] == ckpt.best_epoch + 1
    rows = trained["result"].history
    assert metrics["best/value"] == min(r["val/loss"] for r in rows)


def test_env_json_records_the_commit_and_the_result_dependencies(trained):
    env = json.loads((trained["run"] / "env.json").read_text())
    for dist in ("scikit-learn", "openTSNE", "umap-learn", "kymatio", "torchmetrics", "numpy"):
        assert env["versions"][dist] == version(dist), dist
    src = Path(reprlab.__file__).resolve().parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True)
    if head.returncode == 0:
        assert env["git_commit"].split("+")[0] == head.stdout.strip()
    else:  # not a git checkout (an installed wheel): recorded as unknown, not invented
        assert env["git_commit"] is None


def test_load_run_model_gives_the_weights_of_the_checkpoint(trained):
    run = trained["run"]
    files = {tag: _weights(run / "checkpoints" / tag / "model.safetensors")
             for tag in ("best", "last", "epoch_0001", "epoch_0002", "epoch_0003")}
    best_epoch = json.loads((run / "metrics.json").read_text())["best/epoch"]
    assert _same(files["best"], files[f"epoch_{best_epoch:04d}"])
    assert not _same(files["best"], files["last"])  # this seeded run peaks early, so the default tag matters
    state = lambda m: {k: v.contiguous() for k, v in m.state_dict().items()}  # noqa: E731
    assert _same(state(load_run_model(run)), files["best"])  # the default is the best checkpoint
    for tag, weights in files.items():
        assert _same(state(load_run_model(run, tag)), weights), tag


def test_checkpoint_curve_from_the_config_writes_its_files_and_index_item(trained):
    out = trained["run"] / "clustering"
    rows = (out / "checkpoint_curve.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,checkpoint,train_mse,val_acc")
    assert [r.split(",")[:2] for r in rows[1:]] == [["1", "epoch_0001"], ["2", "epoch_0002"], ["3", "epoch_0003"]]
    assert (out / "checkpoint_curve.png").stat().st_size > 1000
    items = json.loads((out / "index.json").read_text())["items"]
    item = [i for i in items if i["key"] == "clustering:checkpoint_curve"]
    assert len(item) == 1 and item[0]["files"] == ["checkpoint_curve.png", "checkpoint_curve.csv"]


def test_evaluate_on_another_dataset_through_the_cli(trained, tmp_path, capsys):
    run = trained["run"]
    # another dataset of the same shape: 50 inverted, shifted blobs
    x = np.load(trained["root"] / "tiny.npz")["x"][:50]
    other = tmp_path / "other.npz"
    np.savez(other, x=255 - np.roll(x, 2, axis=2))
    assert cli_main(["evaluate", str(run), "--data", "arrays", "--path", str(other), "--device", "cpu"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["test/num_images"] == 50
    expected = evaluate_reconstruction(load_run_model(run), load_arrays(other), device="cpu").prefixed("test")
    assert got["test/mse"] == pytest.approx(expected["test/mse"], rel=1e-5)
    assert got["test/psnr"] == pytest.approx(expected["test/psnr"], rel=1e-5)
    # and it is not the run's own test split
    own = json.loads((run / "metrics.json").read_text())
    assert got["test/mse"] != pytest.approx(own["test/mse"], rel=1e-3)
    # data of another shape is refused with one line
    np.savez(tmp_path / "big.npz", x=np.zeros((4, 16, 16), dtype=np.uint8))
    assert cli_main(["evaluate", str(run), "--data", "arrays", "--path", str(tmp_path / "big.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shape" in err[0] and "Fix:" in err[0]


# -- augmentation set from the config changes the batches ------------------------------------
class RecordingAE(LinearAE):
    """Records every training batch's images."""

    batches: list[torch.Tensor] = []

    def training_step(self, batch, ctx):
        RecordingAE.batches.append(batch.images.detach().clone())
        return super().training_step(batch, ctx)


@pytest.fixture
def recording_model():
    model_registry.register_model("recording_ae", config=ModelConfig)(RecordingAE)
    yield "recording_ae"
    model_registry._MODELS.pop("recording_ae", None)


def test_data_augment_from_the_config_flips_training_images(tmp_path, recording_model):
    seen = {}
    for name, overrides in (("plain", []), ("flip", ["data.augment.flip=true"])):
        RecordingAE.batches.clear()
        (tmp_path / name).mkdir()
        cfg = _conv_config(tmp_path / name)
        cfg["model"] = {"name": recording_model, "latent_dim": 3}
        reprlab.train(cfg, overrides=["train.epochs=1", *overrides])
        seen[name] = torch.cat(RecordingAE.batches)
    plain, flip = seen["plain"], seen["flip"]
    assert plain.shape == flip.shape
    mirrored = plain.flip(3)
    same = (flip == plain).flatten(1).all(1)
    flipped = (flip == mirrored).flatten(1).all(1)
    assert bool((same | flipped).all())  # each image is itself or its mirror image
    assert int((flipped & ~same).sum()) >= 5 and int((same & ~flipped).sum()) >= 5  # and both happen


# -- a failure after training ------------------------------------------------------------------
def test_failure_in_the_final_evaluation_marks_the_run_failed_and_propagates(tmp_path, monkeypatch):
    def boom(ctx, history):
        raise RuntimeError("evaluation exploded")

    monkeypatch.setattr(get_task("reconstruct"), "evaluate", boom)
    cfg = _conv_config(tmp_path, name="fails")
    with pytest.raises(RuntimeError, match="evaluation exploded"):
        reprlab.train(cfg, overrides=["train.epochs=1"])
    status = json.loads((tmp_path / "runs" / "fails" / "status.json").read_text())
    assert status["state"] == "failed"
    assert status["error"] == "RuntimeError: evaluation exploded"
    assert status["epochs"] == 1 and status["best_checkpoint_kept"] is True
    assert not (tmp_path / "runs" / "fails" / "metrics.json").exists()


def test_reprlab_error_after_training_fails_the_run_and_exits_2(tmp_path, monkeypatch, capsys):
    def bad(ctx, history):
        raise DataError("the test images vanished", fix="put them back")

    monkeypatch.setattr(get_task("reconstruct"), "evaluate", bad)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(_conv_config(tmp_path, name="fails2")))
    assert cli_main(["train", str(tmp_path / "cfg.yaml"), "train.epochs=1"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: the test images vanished. Fix: put them back"
    status = json.loads((tmp_path / "runs" / "fails2" / "status.json").read_text())
    assert status["state"] == "failed" and status["error"] == "the test images vanished. Fix: put them back"


# -- the demo through the CLI ------------------------------------------------------------------
def test_demo_through_the_cli_finishes_with_a_report(tmp_path, monkeypatch, capsys):
    tiny = {"name": None,
            "data": {"name": "fashion-mnist-sample", "val_fraction": 0.1, "max_train": 200, "max_test": 40},
            "model": {"name": "conv_ae", "latent_dim": 4, "channels": [4, 8]},
            "train": {"epochs": 8, "batch_size": 64, "lr": 2e-3, "num_threads": 1, "progress": "off"}}
    monkeypatch.setattr("reprlab.cli.demo.DEMO_CONFIG", tiny)
    assert cli_main(["demo", "--epochs", "1", "--output-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 1
    run = runs[0]
    assert lines[-1] == f"report: {run / 'report.html'} (open it in a browser)"
    assert lines[-2] == str(run)
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1
    html = (run / "report.html").read_text()
    assert "status finished" in html and "status running" not in html


# -- run kinds ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def detect_run(tmp_path_factory, single_thread):
    root = tmp_path_factory.mktemp("detect")
    x = np.load(write_tiny_npz(root / "tiny.npz"))["x"]
    np.savez(root / "normal.npz", x=x[:80])
    np.savez(root / "test.npz", x=x[80:])
    with logging_restored():
        assert cli_main(["detect", "--normal", str(root / "normal.npz"), "--test", str(root / "test.npz"),
                         "--preset", "fast", "--output-dir", str(root / "runs"), "--name", "det"]) == 0
    return root / "runs" / "det"


@pytest.mark.parametrize("command", [["evaluate"], ["analyze"], ["cluster"], ["train", "--resume"]])
def test_a_detect_run_is_refused_by_the_commands_that_read_train_runs(detect_run, command, capsys):
    capsys.readouterr()
    argv = [*command, str(detect_run)] if command[0] != "train" else ["train", "--resume", str(detect_run)]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith(f"error: {detect_run} is a `detect` run directory, which `reprlab {' '.join(command)}`")
    assert f"`reprlab report {detect_run}`" in line and f"`reprlab compare {detect_run}`" in line
    assert "evaluate" not in line.split("Fix:")[1] and "analyze" not in line.split("Fix:")[1]
