"""Shared pytest-benchmark fixtures.

* Every benchmark runs with ``BENCH_THREADS`` (2) threads, for fastnn and for the peers
  (PyTorch intra-op threads, BLAS pools via threadpoolctl), so ratios are like for like.
* ``peer("torch")`` imports an optional peer library or skips the benchmark when it is missing.
* ``real_data("fashion-mnist")`` loads a data set from ``FASTNN_DATA`` (skips when unset).

Run: ``python -m pytest benchmarks/ --benchmark-group-by=group`` (timing only: nothing here
asserts speed; compare the rows of one group).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

import fastnn

BENCH_THREADS = min(2, fastnn.max_num_threads())  # 2 where the machine has them


@pytest.fixture(scope="session", autouse=True)
def bench_threads():
    """Pin fastnn, PyTorch and the BLAS pools to BENCH_THREADS for the whole session."""
    previous = fastnn.get_num_threads()
    fastnn.set_num_threads(BENCH_THREADS)
    limiter = None
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(BENCH_THREADS)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(BENCH_THREADS)
    except ImportError:
        pass
    yield BENCH_THREADS
    fastnn.set_num_threads(previous)
    if limiter is not None:
        limiter.restore_original_limits()


@pytest.fixture(scope="session")
def peer():
    """``peer(module_name)``: the imported module, or skip the benchmark if not installed."""

    def importer(name: str):
        try:
            return importlib.import_module(name)
        except ImportError:
            pytest.skip(f"optional peer {name!r} is not installed")

    return importer


@pytest.fixture(scope="session")
def fastnn_data() -> Path:
    """The real-data folder from FASTNN_DATA; skips when unset or missing."""
    raw = os.environ.get("FASTNN_DATA")
    if not raw:
        pytest.skip("FASTNN_DATA is not set")
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        pytest.skip(f"FASTNN_DATA={raw} is not a directory")
    return path


@pytest.fixture(scope="session")
def real_data(fastnn_data):
    """``real_data(name)``: ``fastnn.data.load_dataset(name, FASTNN_DATA)``, cached per session."""
    from fastnn.data import load_dataset

    cache: dict[str, dict] = {}

    def load(name: str) -> dict:
        if name not in cache:
            cache[name] = load_dataset(name, fastnn_data)
        return cache[name]

    return load
