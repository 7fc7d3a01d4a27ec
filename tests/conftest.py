"""Shared fixtures: tiny seeded data, the real-data folder when present, a CLI runner."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import math

import numpy as np
import pytest
import torch
from torch import nn

from reprlab.models.base import ModelConfig, ModelOutput, ReprModel

REPO = Path(__file__).resolve().parents[1]


#: Threading libraries told to use one thread in each pytest-xdist worker (and the CLI subprocesses it starts).
ONE_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def pytest_configure(config) -> None:
    """In a pytest-xdist worker (pyproject's ``-n auto``), run torch, BLAS and every subprocess a test
    starts on one thread: the workers already fill the cores, and extra threads only spin against
    each other (BENCHMARKS.md, "Test suite")."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    from threadpoolctl import threadpool_limits

    for name in ONE_THREAD_ENV:
        os.environ.setdefault(name, "1")
    torch.set_num_threads(1)
    threadpool_limits(1)


def shared_data_dir() -> Path | None:
    """``$REPRLAB_DATA`` or ``../shared/data`` beside the checkout, when present."""
    env = os.environ.get("REPRLAB_DATA")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if candidate.is_dir():
            return candidate
    return None


#: Set to 1 (CI does, in .ci/run) to make a missing real-data folder FAIL the tests that need it
#: instead of skipping them; local runs without the data skip.
REQUIRE_REAL_DATA_ENV = "REPRLAB_REQUIRE_REAL_DATA"


def real_data_required() -> bool:
    """Whether ``$REPRLAB_REQUIRE_REAL_DATA`` is switched on (anything but empty, 0, false, no, off)."""
    return os.environ.get(REQUIRE_REAL_DATA_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def require_real_data() -> Path:
    """:func:`shared_data_dir`, or skip the test (with the reason) when neither is present (fail
    instead when ``$REPRLAB_REQUIRE_REAL_DATA`` is on); usable from fixtures of any scope."""
    path = shared_data_dir()
    if path is None:
        reason = "real data not present: set REPRLAB_DATA or place ../shared/data beside the checkout"
        if real_data_required():
            pytest.fail(f"{reason} ({REQUIRE_REAL_DATA_ENV} is set, so this is a failure, not a skip)", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture
def real_data_dir() -> Path:
    return require_real_data()


def write_tiny_npz(path: Path) -> Path:
    """Write 120 uint8 1x12x12 images with labels (3 classes: blobs at class-dependent heights)."""
    rng = np.random.default_rng(0)
    n, size = 120, 12
    labels = rng.integers(0, 3, n)
    yy, xx = np.mgrid[:size, :size]
    images = np.zeros((n, size, size), dtype=np.float32)
    for i, c in enumerate(labels):
        cy, cx = 3 + 3 * c + rng.normal(0, 0.5), 6 + rng.normal(0, 1.0)
        images[i] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0)
    np.savez_compressed(path, x=(images[:, :, :, None] * 255).astype(np.uint8), y=labels)
    return path


def gaussian_blobs(k: int = 3, n_per: int = 80, d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` well-separated Gaussian blobs (centres N(0, 3²), spread 0.4) of ``n_per`` points in ``d`` dimensions,
    and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(k, d))
    X = np.concatenate([rng.normal(c, 0.4, size=(n_per, d)) for c in centres])
    return X, np.repeat(np.arange(k), n_per)


def tiny_cluster_config(root: Path, cluster: dict, *, epochs: int = 2) -> dict:
    """A run config that trains a tiny conv_ae on :func:`write_tiny_npz` images under ``root``
    and ends with the ``cluster`` section given."""
    return {"seed": 0, "output_dir": str(root / "runs"), "name": "tiny",
            "data": {"name": "arrays", "path": str(write_tiny_npz(root / "tiny.npz")), "val_fraction": 0.25,
                     "test_fraction": 0.25},
            "model": {"name": "conv_ae", "latent_dim": 4, "channels": [4, 8]},
            "train": {"epochs": epochs, "batch_size": 32, "progress": "off", "num_threads": 1},
            "eval": {"figures": False, "report": False},
            "cluster": {"enabled": True, **cluster}}


@pytest.fixture
def tiny_arrays(tmp_path) -> Path:
    """A 120-image 1x12x12 uint8 .npz with labels (see :func:`write_tiny_npz`)."""
    return write_tiny_npz(tmp_path / "tiny.npz")


class LinearAE(ReprModel):
    """A linear autoencoder with a squashing output matching ``output_range``, for tests
    that must not depend on the model zoo."""

    registry_name = "test_linear_ae"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        n = math.prod(config.input_shape)
        self.enc = nn.Linear(n, config.latent_dim)
        self.dec = nn.Linear(config.latent_dim, n)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x.flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        y = self.dec(z).view(-1, *self.config.input_shape)
        return torch.sigmoid(y) if self.config.output_range == "0_1" else torch.tanh(y)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        z = self.encode(x)
        xhat = self.decode(z)
        mse = (xhat - x).pow(2).mean()
        return ModelOutput(loss=mse, terms={"loss": mse, "mse": mse}, reconstruction=xhat, latent=z)


def sgd_step_context(model, lr: float):
    """A stand-in for the engine's step context: ``forward`` is ``model``, ``step(name, loss)`` runs one SGD
    step of the model's parameter group ``name`` (one optimiser per group, as the engine builds them)."""
    opts = {k: torch.optim.SGD(v, lr=lr) for k, v in model.optimizer_groups().items()}

    class Ctx:
        forward = staticmethod(model)

        @staticmethod
        def step(name, loss):
            opts[name].zero_grad(set_to_none=True), loss.backward(), opts[name].step()

    return Ctx


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m reprlab ARGS`` and capture its output."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "reprlab", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def single_thread():
    """Run a module on one torch/BLAS/OpenMP thread: tiny models gain nothing from threads, and
    threads spin badly when other processes share the 2 cores. Use it with
    ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@contextlib.contextmanager
def logging_restored():
    """Put the logging set-up back after calling ``reprlab.cli.main`` in-process (it configures the
    root logger with a handler on the then-current, pytest-captured, stderr)."""
    import logging

    root, ours = logging.getLogger(), logging.getLogger("reprlab")
    handlers, levels = list(root.handlers), (root.level, ours.level)
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(levels[0])
        ours.setLevel(levels[1])


@pytest.fixture
def restore_logging():
    """:func:`logging_restored` around a test."""
    with logging_restored():
        yield


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def isolated_sources(tmp_path, monkeypatch):
    """Dataset lookup cut off from this machine: no REPRLAB_DATA, a private cache, no system
    folder, and no network (a download fails the test unless the test patches ``sources._fetch``)."""
    from reprlab.data import sources

    monkeypatch.delenv("REPRLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "SYSTEM_DIR", tmp_path / "system")

    def no_network(url: str, dest: Path) -> None:
        raise AssertionError(f"unexpected download of {url}")

    monkeypatch.setattr(sources, "_fetch", no_network)
