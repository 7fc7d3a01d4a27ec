"""The layering contract (pyproject.toml [tool.importlinter]) holds, and the check has teeth.

``lint-imports`` runs on this checkout's ``src/reprlab``; then on a copy with forbidden imports
added (the config importing a capability, one capability importing another), where it must
report every break.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

CONTRACTS = ("Layers only point down", "Capabilities are independent of each other",
             "The config imports no capability")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with ``root/pyproject.toml``, analysing the ``reprlab`` under ``root/src``."""
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", "--no-logo", str(root / "pyproject.toml")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_all_import_contracts_are_kept():
    proc = _lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in CONTRACTS:
        assert f"{name} KEPT" in proc.stdout, proc.stdout
    assert "3 kept, 0 broken" in proc.stdout


def test_the_contract_check_reports_forbidden_imports(tmp_path):
    shutil.copytree(REPO / "src" / "reprlab", tmp_path / "src" / "reprlab",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    core = tmp_path / "src" / "reprlab" / "config" / "core.py"
    core.write_text(core.read_text() + "\nimport reprlab.capabilities.clustering  # forbidden: config -> capability\n")
    anomaly = tmp_path / "src" / "reprlab" / "capabilities" / "anomaly" / "metrics.py"
    anomaly.write_text(anomaly.read_text() + "\nimport reprlab.capabilities.analysis  # forbidden: capability -> capability\n")

    proc = _lint_imports(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    for name in CONTRACTS:
        assert f"{name} BROKEN" in out, out
    assert "0 kept, 3 broken" in out
    assert "reprlab.config.core -> reprlab.capabilities.clustering" in out
    assert "reprlab.capabilities.anomaly.metrics -> reprlab.capabilities.analysis" in out
