"""pytest-benchmark: naive vs vectorized linear losses (loss + gradient) on CS231n's dev shape.

Run: ``python -m pytest benchmarks/test_bench_linear.py --benchmark-only``. The issue asks the
vectorized loss to be at least 20x faster than the naive one on 500 x 3073; compare the two
rows' means (timing is never asserted: the shared machines are too noisy for that).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.kernels import available_impls, get_impl

N, D, C = 500, 3073, 10
OPS = ("linear_svm_loss", "linear_softmax_loss")
CASES = [(op, impl) for op in OPS for impl in available_impls(op)]


@pytest.fixture(scope="module")
def dev_problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D))
    W = rng.standard_normal((D, C)) * 1e-4
    y = rng.integers(0, C, N)
    return W, X, y


@pytest.mark.parametrize(("op", "impl"), CASES, ids=[f"{op}-{impl}" for op, impl in CASES])
def test_linear_loss(benchmark, dev_problem, op, impl):
    W, X, y = dev_problem
    f = get_impl(op, impl)
    benchmark.group = f"{op} {N}x{D} float64"
    loss, grad = benchmark(f, W, X, y, 0.5)
    assert np.isfinite(loss) and grad.shape == (D, C)


@pytest.mark.parametrize("op", OPS)
def test_linear_loss_vectorized_float32(benchmark, dev_problem, op):
    W, X, y = dev_problem
    f = get_impl(op, "vectorized")
    benchmark.group = f"{op} {N}x{D} float32"
    _loss, grad = benchmark(f, W.astype(np.float32), X.astype(np.float32), y, 0.5)
    assert grad.dtype == np.float32
