"""Shared fixtures. Real-data tests use FASTNN_DATA (CI sets it to ../shared/data) and are
skipped when it is unset; the tiny real samples under tests/samples/ always run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder from FASTNN_DATA; skips the test when it is not set or missing."""
    raw = os.environ.get("FASTNN_DATA")
    if not raw:
        pytest.skip("FASTNN_DATA is not set")
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        pytest.skip(f"FASTNN_DATA={raw} is not a directory")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(231)
