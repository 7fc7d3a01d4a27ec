"""Two worker processes sharing one study on a REAL PostgreSQL server that this test starts itself
(a throwaway cluster in a temporary folder on a free localhost port): no trial lost or run twice.

Needs Debian's ``postgresql`` package (``initdb`` / ``pg_ctl`` under /usr/lib/postgresql/*/bin), which
``bash scripts/bootstrap.sh test`` installs; without it the test fails and says how to install it.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from conftest import run_cli

pytestmark = pytest.mark.usefixtures("single_thread")


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are missing: install them with "
                "`apt-get update && apt-get install -y postgresql` (as root; `bash scripts/bootstrap.sh test` does it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(cmd: list[str], user: str | None) -> list[str]:
    """initdb refuses to run as root: run the server as the ``postgres`` user then."""
    if user is None:
        return cmd
    runuser = shutil.which("runuser")
    return [runuser, "-u", user, "--", *cmd] if runuser else ["su", user, "-s", "/bin/sh", "-c", shlex.join(cmd)]


@pytest.fixture
def postgres_url():
    bindir = _pg_bin()
    user = None
    # a folder of its own under /tmp (pytest's tmp folders are private to the test user)
    root = Path(tempfile.mkdtemp(prefix="reprlab-pg-"))
    if os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.fail("running as root needs the `postgres` system user to start a cluster: "
                        "`apt-get install -y postgresql` creates it")
        user = "postgres"
        os.chmod(root, 0o755)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, port = root / "data", _free_port()
    init = subprocess.run(_as_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                                   user), capture_output=True, text=True)
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb of the PostgreSQL test cluster failed: {init.stderr[-2000:]}")
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
             "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]
    started = subprocess.run(_as_user(start, user), capture_output=True, text=True)
    if started.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"the PostgreSQL test server did not start: {started.stderr}{log[-2000:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], user),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_one_postgres_study_without_losing_or_repeating_a_trial(tmp_path, postgres_url):
    import optuna

    cfg = {"seed": 0, "output_dir": str(tmp_path / "runs"), "name": "pg",
           "data": {"name": "fashion-mnist-sample", "max_train": 100, "max_test": 40},
           "model": {"name": "conv_ae", "latent_dim": 4, "channels": [4, 8]},
           "train": {"epochs": 1, "batch_size": 50, "progress": "off", "num_threads": 1},
           "eval": {"figures": False, "report": False},
           "search": {"trials": 4, "space": {"train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}}}
    config = tmp_path / "pg.yaml"
    config.write_text(yaml.safe_dump(cfg))
    done = run_cli("tune", str(config), "--storage", postgres_url, "--workers", "2")
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="pg", storage=postgres_url)
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4  # none lost, none extra
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both workers ran trials
    run_dirs = sorted(Path(t.user_attrs["run_dir"]) for t in trials)
    assert run_dirs == sorted((tmp_path / "runs" / "pg" / "trials").iterdir())  # one run directory per trial, no more
    for t in trials:
        run = Path(t.user_attrs["run_dir"])
        assert json.loads((run / "status.json").read_text())["state"] == "finished"
        assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"] == pytest.approx(t.params["train.lr"])
        assert t.value == pytest.approx(json.loads((run / "metrics.json").read_text())["best/value"])
    assert "postgresql://postgres@127.0.0.1" in json.loads((tmp_path / "runs" / "pg" / "study.json").read_text())["storage"]
