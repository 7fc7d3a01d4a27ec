"""``REPRLAB_REQUIRE_REAL_DATA=1`` (set by .ci/run) turns a missing real-data folder from a skip into a failure."""

from __future__ import annotations

import pytest

import conftest
from conftest import REQUIRE_REAL_DATA_ENV, require_real_data


def _outcome() -> tuple[str, str]:
    """What :func:`require_real_data` did: ``("skipped" | "failed" | "returned", message)``; caught here so
    that a wrong outcome fails this test instead of skipping it."""
    try:
        path = require_real_data()
    except pytest.fail.Exception as exc:
        return "failed", str(exc)
    except pytest.skip.Exception as exc:
        return "skipped", str(exc)
    return "returned", str(path)


@pytest.fixture
def no_real_data(tmp_path, monkeypatch):
    """Neither $REPRLAB_DATA (a nonexistent path) nor ../shared/data beside the (pretend) checkout."""
    monkeypatch.setenv("REPRLAB_DATA", str(tmp_path / "does-not-exist"))
    monkeypatch.setattr(conftest, "REPO", tmp_path / "checkout")
    return monkeypatch


@pytest.mark.parametrize("value", [None, "", "0", "false"])
def test_missing_real_data_skips_when_the_switch_is_off(no_real_data, value):
    if value is None:
        no_real_data.delenv(REQUIRE_REAL_DATA_ENV, raising=False)
    else:
        no_real_data.setenv(REQUIRE_REAL_DATA_ENV, value)
    outcome, message = _outcome()
    assert outcome == "skipped" and "real data not present" in message


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_missing_real_data_fails_when_the_switch_is_on(no_real_data, value):
    no_real_data.setenv(REQUIRE_REAL_DATA_ENV, value)
    outcome, message = _outcome()
    assert outcome == "failed" and "real data not present" in message and f"{REQUIRE_REAL_DATA_ENV} is set" in message


def test_present_real_data_is_returned_with_the_switch_on(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("REPRLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv(REQUIRE_REAL_DATA_ENV, "1")
    assert _outcome() == ("returned", str(tmp_path / "data"))


def test_ci_switches_it_on_before_pytest():
    lines = (conftest.REPO / ".ci" / "run").read_text().splitlines()
    export = lines.index(f"export {REQUIRE_REAL_DATA_ENV}=1")
    pytest_line = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    assert export < pytest_line
