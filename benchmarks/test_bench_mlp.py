"""pytest-benchmark: one Fashion-MNIST training epoch, fastnn vs PyTorch, and the Adam step.

Run: ``FASTNN_DATA=../shared/data python -m pytest benchmarks/test_bench_mlp.py
--benchmark-group-by=group`` (2 threads each; random data of the same shape without FASTNN_DATA).
Timing only: nothing here asserts speed.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn.bench import limit_peer_threads
from fastnn.bench.mlp import fastnn_epoch, make_data, torch_epoch
from fastnn.kernels import available_impls
from fastnn.kernels import optim as kernels


@pytest.fixture(scope="module")
def epoch_data():
    fastnn.set_num_threads(2)
    limit_peer_threads(2)
    X, y, _ = make_data(quick=False)
    return X, y


@pytest.mark.benchmark(group="mlp-epoch")
def test_epoch_fastnn(benchmark, epoch_data):
    X, y = epoch_data
    seconds = benchmark.pedantic(fastnn_epoch, args=(X, y), rounds=3, iterations=1,
                                 warmup_rounds=0)
    assert seconds > 0


@pytest.mark.benchmark(group="mlp-epoch")
def test_epoch_torch(benchmark, epoch_data):
    pytest.importorskip("torch")
    X, y = epoch_data
    seconds = benchmark.pedantic(torch_epoch, args=(X, y), rounds=3, iterations=1,
                                 warmup_rounds=0)
    assert seconds > 0


@pytest.mark.benchmark(group="adam-step-784x256")
@pytest.mark.parametrize("impl", [i for i in available_impls("adam_update") if i != "naive"])
def test_adam_step(benchmark, impl):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((784, 256)).astype(np.float32)
    dw = rng.standard_normal((784, 256)).astype(np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    benchmark(kernels.adam_update, w, dw, m, v, 1e-3, 0.9, 0.999, 1e-8, 3, impl=impl)
    assert np.isfinite(w).all()
