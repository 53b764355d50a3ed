"""pytest-benchmark twin of ``fastnn bench conv``: convolution forward+backward (including dx),
float32, for x (64, 3, 32, 32) w (32, 3, 7, 7) pad 3 and x (64, 64, 16, 16) w (64, 64, 3, 3)
pad 1: the compiled kernels, the NumPy twin, PyTorch autograd through ``F.conv2d`` and the
three NumPy float32 matrix products of the same FLOPs (the BLAS ceiling).

Run: ``python -m pytest benchmarks/test_bench_conv.py --benchmark-only
--benchmark-group-by=group`` and compare the rows of one group (timing is never asserted).
"""

from __future__ import annotations

import pytest

from fastnn.bench.conv import SHAPES, conv_problem, fastnn_step, gemm_step, torch_step

IDS = ["7x7-C3", "3x3-C64"]


@pytest.mark.parametrize(("x_shape", "w_shape", "pad"), SHAPES, ids=IDS)
@pytest.mark.parametrize("impl", ["compiled", "vectorized"])
def test_conv_fastnn(benchmark, x_shape, w_shape, pad, impl):
    x, w, b, dout = conv_problem(x_shape, w_shape, pad)
    benchmark.group = f"conv fwd+bwd x{x_shape} w{w_shape}"
    dx, dw, db = benchmark(fastnn_step(impl, x, w, b, dout, pad))
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape


@pytest.mark.parametrize(("x_shape", "w_shape", "pad"), SHAPES, ids=IDS)
def test_conv_torch(benchmark, peer, x_shape, w_shape, pad):
    peer("torch")
    x, w, b, dout = conv_problem(x_shape, w_shape, pad)
    benchmark.group = f"conv fwd+bwd x{x_shape} w{w_shape}"
    dx, dw, db = benchmark(torch_step(x, w, b, dout, pad))
    assert tuple(dx.shape) == x.shape and tuple(dw.shape) == w.shape and tuple(db.shape) == b.shape


@pytest.mark.parametrize(("x_shape", "w_shape", "pad"), SHAPES, ids=IDS)
def test_numpy_gemm_same_flops(benchmark, x_shape, w_shape, pad):
    x, w, _, dout = conv_problem(x_shape, w_shape, pad)
    benchmark.group = f"conv fwd+bwd x{x_shape} w{w_shape}"
    benchmark(gemm_step(x, w, dout))
