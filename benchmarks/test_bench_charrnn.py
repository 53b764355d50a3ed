"""pytest-benchmark: one training step of the character language model, fastnn vs PyTorch.

The step of ``fastnn train charrnn`` (embedding 64, LSTM 256, 64 windows of 100 characters,
float32, gradient clipping, Adam), as ``fastnn bench charrnn --compare`` times it. Run:
``python -m pytest benchmarks/test_bench_charrnn.py --benchmark-group-by=group``
(2 threads each). Timing only: nothing here asserts speed.
"""

from __future__ import annotations

import math

import pytest

import fastnn
from fastnn.bench import limit_peer_threads
from fastnn.bench.charrnn import SHAPE, fastnn_step, torch_step


@pytest.fixture(scope="module", autouse=True)
def _threads():
    fastnn.set_num_threads(2)
    limit_peer_threads(2)


@pytest.mark.benchmark(group="charrnn-step")
def test_charrnn_step_fastnn(benchmark):
    loss = benchmark.pedantic(fastnn_step(SHAPE), rounds=5, iterations=1, warmup_rounds=1)
    assert math.isfinite(loss)


@pytest.mark.benchmark(group="charrnn-step")
def test_charrnn_step_torch(benchmark):
    pytest.importorskip("torch")
    loss = benchmark.pedantic(torch_step(SHAPE), rounds=5, iterations=1, warmup_rounds=1)
    assert math.isfinite(loss)
