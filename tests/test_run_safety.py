"""Safe run folders: the run lock (held by a live trainer, never by a dead one), files that follow the
umask, a NaN stop that says truthfully what was kept, and Fixes that lead somewhere."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import reprlab.api as api
from conftest import write_tiny_npz
from reprlab.base.errors import ConfigError, DataError, ModelError, RunDirError, TrainingError
from reprlab.base.io import write_text
from reprlab.data.dataset import ImageData
from reprlab.features.embeddings import Reducer
from reprlab.models import create_model
from reprlab.models.io import load_weights
from reprlab.reporting.report import write_report
from reprlab.runs import RunDir, lock_holder
from reprlab.runs.lock import RunLock
from reprlab.training.callbacks import Callback, Checkpointer
from reprlab.training.checkpoint import load_state, save_checkpoint
from reprlab.training.engine import Trainer

pytestmark = pytest.mark.usefixtures("single_thread")


def _cfg(root: Path, **train) -> dict:
    return {"seed": 0, "output_dir": str(root / "runs"), "name": "run",
            "data": {"name": "arrays", "path": str(write_tiny_npz(root / "tiny.npz")), "val_fraction": 0.25},
            "model": {"name": "fc_ae", "latent_dim": 3, "hidden_sizes": [16]},
            "train": {"epochs": 2, "batch_size": 32, "progress": "off", "num_threads": 1, **train},
            "eval": {"figures": False, "report": False}}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("safety")
    return api.train(_cfg(root)).run_dir


@pytest.fixture
def interrupted_run(finished_run, tmp_path) -> Path:
    """A copy of the finished run that looks interrupted (status running, as after a kill)."""
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    RunDir(run).set_status("running", pid=1)
    return run


# -- the lock -------------------------------------------------------------------------------
HOLDER = """
import sys, time
from reprlab.runs.lock import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(interrupted_run):
    """A subprocess that holds the run's lock until killed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(api.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(interrupted_run)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_resume_of_a_locked_run_names_the_pid_and_a_killed_holder_never_blocks(interrupted_run, holder, capsys):
    assert lock_holder(interrupted_run) == holder.pid
    with pytest.raises(RunDirError, match=f"being trained by process {holder.pid}"):
        api.resume(interrupted_run)
    # through the CLI: one line, exit 2
    from reprlab.cli.main import main

    assert main(["train", "--resume", str(interrupted_run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"process {holder.pid}" in err and f"kill {holder.pid}" in err
    # the holder dies by SIGKILL: its PID stays in .lock, but the OS dropped the lock
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (interrupted_run / ".lock").read_text().strip() == str(holder.pid)
    assert lock_holder(interrupted_run) is None
    result = api.resume(interrupted_run)
    assert RunDir(result.run_dir).status()["state"] == "finished"
    assert lock_holder(interrupted_run) is None  # released when the resume ended


def test_a_second_train_into_a_locked_name_names_the_pid(interrupted_run, holder):
    cfg = _cfg(interrupted_run.parent.parent)
    cfg["output_dir"], cfg["name"] = str(interrupted_run.parent), interrupted_run.name
    with pytest.raises(RunDirError, match=f"being trained by process {holder.pid}"):
        api.train(cfg)


def test_the_lock_is_held_while_training_and_released_after(tmp_path):
    seen = []

    class Probe(Callback):
        def on_epoch_end(self, trainer, epoch, row):
            seen.append(lock_holder(tmp_path / "runs" / "run"))

    result = api.train(_cfg(tmp_path, epochs=1), callbacks=[Probe()])
    assert seen == [os.getpid()]
    assert lock_holder(result.run_dir) is None


def test_a_second_lock_in_the_same_process_is_refused(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunDirError, match=f"process {os.getpid()}"):
            RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()


# -- permissions ----------------------------------------------------------------------------
@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_run_files_and_checkpoints_follow_the_umask(tmp_path, umask_027):
    path = write_text(tmp_path / "a.txt", "hi")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    folder = save_checkpoint(tmp_path / "ck", "last", create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2),
                             state={"epoch": 1})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert stat.S_IMODE((folder / "model.safetensors").stat().st_mode) == 0o640
    os.umask(0o002)
    assert stat.S_IMODE(write_text(tmp_path / "b.txt", "hi").stat().st_mode) == 0o664


# -- a NaN stop says what was kept ------------------------------------------------------------
class Poison(Callback):
    """Sabotage: set every weight to NaN at the start of epoch ``at`` (0-based)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_epoch_start(self, trainer, epoch):
        if epoch == self.at:
            with torch.no_grad():
                for p in trainer.model.parameters():
                    p.fill_(float("nan"))


def _fit_poisoned(tmp_path: Path, at: int) -> str:
    model = create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2, hidden_sizes=(8,))
    trainer = Trainer(epochs=3, batch_size=16, callbacks=[Checkpointer(tmp_path, every=None), Poison(at)])
    with pytest.raises(TrainingError) as info:
        trainer.fit(model, ImageData(torch.rand(32, 1, 8, 8)))
    return str(info.value)


def test_nan_in_the_first_epoch_says_no_checkpoint_was_kept(tmp_path):
    message = _fit_poisoned(tmp_path, 0)
    assert "no checkpoint was kept" in message and "was kept" not in message.replace("no checkpoint was kept", "")


def test_nan_later_says_which_checkpoints_were_kept(tmp_path):
    message = _fit_poisoned(tmp_path, 2)
    assert "the best checkpoint (epoch" in message and "the last one (epoch 2) were kept" in message


def test_a_failed_run_without_checkpoint_says_so_in_status_and_report(tmp_path):
    with pytest.raises(TrainingError):
        api.train(_cfg(tmp_path), callbacks=[Poison(0)])
    run = tmp_path / "runs" / "run"
    status = RunDir(run).status()
    assert status["state"] == "failed" and status["best_checkpoint_kept"] is False
    assert "no checkpoint was kept" in status["error"]
    html = write_report(run).read_text()
    assert "This run FAILED: the loss became nan" in html and "No checkpoint was kept." in html


# -- Fixes that lead somewhere ----------------------------------------------------------------
def test_a_corrupt_last_checkpoint_is_not_told_to_use_checkpoints_last(interrupted_run):
    (interrupted_run / "checkpoints" / "last" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelError) as info:
        load_weights(create_model("fc_ae", input_shape=(1, 12, 12), latent_dim=3, hidden_sizes=(16,)),
                     interrupted_run / "checkpoints" / "last" / "model")
    assert "corrupt" in info.value.problem and "--checkpoint best" in info.value.fix and "last" not in info.value.fix
    with pytest.raises(TrainingError) as info:
        api.resume(interrupted_run)
    fix = info.value.fix
    assert "checkpoints/last" not in fix and "--checkpoint last" not in fix
    assert f"reprlab train {interrupted_run / 'config.yaml'} --name NEW_NAME" in fix
    assert f"reprlab evaluate {interrupted_run}" in fix


def test_pytorch_invitation_to_unpickle_never_reaches_the_user(tmp_path):
    save_checkpoint(tmp_path, "last", create_model("fc_ae", input_shape=(1, 8, 8), latent_dim=2), state={"epoch": 1})

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    torch.save({"epoch": Evil()}, tmp_path / "last" / "state.pt")
    with pytest.raises(TrainingError) as info:
        load_state(tmp_path, "last")
    assert "weights_only" not in str(info.value) and "never unpickles" in str(info.value)


def test_a_missing_file_is_named_not_its_present_sibling(finished_run, tmp_path):
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    (run / "checkpoints" / "best" / "model.safetensors").unlink()
    with pytest.raises(RunDirError) as info:
        RunDir(run).model_path("best")
    assert "best/model.safetensors is missing" in info.value.problem and "model.json" not in info.value.problem
    assert "--checkpoint" in info.value.fix  # the run's other checkpoints
    with pytest.raises(ModelError, match=r"model\.safetensors does not exist"):
        load_weights(create_model("fc_ae", input_shape=(1, 12, 12), latent_dim=3, hidden_sizes=(16,)),
                     run / "checkpoints" / "best" / "model")
    (run / "checkpoints" / "last" / "state.pt").unlink()
    with pytest.raises(TrainingError, match=r"last/state\.pt is missing"):
        load_state(run / "checkpoints", "last")


def test_data_shape_advice_is_for_the_cli_user():
    with pytest.raises(DataError) as info:
        ImageData(torch.rand(4, 8, 8))
    assert "data.name=arrays data.path=" in info.value.fix and "reprlab.data.load_arrays" not in info.value.fix


def test_the_few_points_advice_is_not_garbled():
    with pytest.raises(ConfigError) as info:
        Reducer("tsne").fit(np.random.default_rng(0).normal(size=(3, 5)))
    assert "reduce more points" not in info.value.fix and "at least 4 points" in info.value.fix
