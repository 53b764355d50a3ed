"""pytest-benchmark: spatial batch norm and group norm (G=8), forward+backward on
(64, 32, 32, 32) float32: the layer functions, the compiled and NumPy kernels, and PyTorch
autograd (``F.batch_norm`` training=True / ``F.group_norm``) with the same thread count.

Run: ``python -m pytest benchmarks/test_bench_spatial_norm.py --benchmark-only``. The issue asks
spatial batch norm forward+backward to take at most 1.0x PyTorch's time: compare the means
within the group (timing is never asserted: shared machines are too noisy).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.bench.spatial_norm import (
    GROUPS,
    SHAPE,
    batchnorm_step,
    groupnorm_step,
    kernel_step,
    problem,
    torch_step,
)
from fastnn.kernels import available_impls

OPS = ("batchnorm", "groupnorm")
KERNEL_CASES = [(op, impl) for op in OPS for impl in ("vectorized", "compiled")
                if impl in available_impls(f"spatial_{op}_backward")]


@pytest.fixture(scope="module")
def data():
    return problem(SHAPE)


def _group(op: str) -> str:
    return f"spatial {op} fwd+bwd {'x'.join(map(str, SHAPE))} float32" + (
        f" G={GROUPS}" if op == "groupnorm" else "")


@pytest.mark.parametrize("op", OPS)
def test_layer(benchmark, data, op):
    benchmark.group = _group(op)
    step = batchnorm_step if op == "batchnorm" else groupnorm_step
    dx, dgamma, dbeta = benchmark(step, *data)
    assert dx.shape == SHAPE and dx.dtype == np.float32
    assert dgamma.size == dbeta.size == SHAPE[1]


@pytest.mark.parametrize(("op", "impl"), KERNEL_CASES, ids=[f"{o}-{i}" for o, i in KERNEL_CASES])
def test_kernels(benchmark, data, op, impl):
    benchmark.group = _group(op)
    dx, _, _ = benchmark(kernel_step, op, impl, *data)
    assert dx.shape == SHAPE and dx.dtype == np.float32


@pytest.mark.parametrize("op", OPS)
def test_torch(benchmark, data, peer, op):
    peer("torch")
    benchmark.group = _group(op)
    step = torch_step(op, *data)
    dx, _, _ = benchmark(step)
    assert tuple(dx.shape) == SHAPE
