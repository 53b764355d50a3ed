"""Shared fixtures and markers.

Real-data tests take the ``data_dir`` fixture (the folder named by FASTNN_DATA; CI sets it to
../shared/data) and are skipped when it is unset; the tiny real samples under tests/samples/
always run.  Every "real data not found" skip goes through :func:`skip_missing_data`, so that
``FASTNN_REQUIRE_DATA=1`` (set by CI) turns each of them into a failure: a CI run can then never
pass while silently skipping the tests on the real data.

Markers are registered here rather than in pyproject.toml so that the tests keep them when they
run outside the source tree (``.ci/wheel`` runs a copy of ``tests/`` against the installed wheel).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).parent / "samples"

MARKERS = (
    "data: needs the real data sets under FASTNN_DATA (skipped when it is unset; "
    + "fails instead under FASTNN_REQUIRE_DATA=1)",
    "slow: takes more than a few seconds",
    "heavy: needs lots of memory or minutes of CPU; a quick local run deselects it with "
    + "-m 'not heavy', CI runs it",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)


def pytest_report_header(config: pytest.Config) -> str:
    import fastnn

    return f"fastnn {fastnn.__version__} from {Path(fastnn.__file__).parent}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under FASTNN_TEST_INSTALLED=1 (set by .ci/wheel) the tests must exercise the installed
    package, never a source tree that happens to be importable."""
    if os.environ.get("FASTNN_TEST_INSTALLED") != "1":
        return
    import sysconfig

    import fastnn

    where = Path(fastnn.__file__).resolve()
    site = Path(sysconfig.get_path("platlib")).resolve()
    if not where.is_relative_to(site):
        raise pytest.UsageError(f"FASTNN_TEST_INSTALLED=1: fastnn is imported from {where}")


def data_required() -> bool:
    """True when FASTNN_REQUIRE_DATA=1: missing real data is a failure, not a skip."""
    return os.environ.get("FASTNN_REQUIRE_DATA", "").strip().lower() in {"1", "true", "yes"}


def skip_missing_data(reason: str) -> None:
    """Skip the current test because real data is missing, or fail under FASTNN_REQUIRE_DATA=1.

    Tests reach it through the ``data_dir`` fixture (which calls it) or the ``require_data``
    fixture (which returns it); under ``--import-mode=importlib`` test modules cannot import
    conftest.
    """
    if data_required():
        pytest.fail(
            f"real data required (FASTNN_REQUIRE_DATA=1) but not found: {reason}", pytrace=False
        )
    pytest.skip(reason)


@pytest.fixture(scope="session")
def require_data():
    """The :func:`skip_missing_data` helper as a fixture, for tests that look for files below
    ``data_dir`` themselves: ``if not path.is_file(): require_data(f"{path} not found")``."""
    return skip_missing_data


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder from FASTNN_DATA; skips the test when it is not set or missing
    (fails instead under FASTNN_REQUIRE_DATA=1)."""
    raw = os.environ.get("FASTNN_DATA")
    if not raw:
        skip_missing_data("FASTNN_DATA is not set")
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        skip_missing_data(f"FASTNN_DATA={raw} is not a directory")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(231)
