"""pytest-benchmark: a full LSTM sequence forward+backward, N=64, T=32, D=128, H=256 float32:
the compiled path (one input-projection GEMM, fused cells, one product each for dx, dWx, dWh),
its NumPy step-by-step twin (the CS231n-style baseline) and ``torch.nn.LSTM(batch_first=True)``
forward + autograd with the same thread count.

Run: ``python -m pytest benchmarks/test_bench_lstm.py --benchmark-only``. The issue asks the
compiled sequence to take at most 1.0x torch's time and to be at least 4x faster than the NumPy
twin: compare the means within the group (timing is never asserted: shared machines are too
noisy). ``fastnn bench lstm --compare`` prints the same comparison as a table.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.bench.lstm import SHAPE, lstm_step_functions, make_problem, torch_lstm_functions
from fastnn.kernels import available_impls

GROUP = "lstm fwd+bwd N={N} T={T} D={D} H={H} float32".format(**SHAPE)
IMPLS = [impl for impl in ("vectorized", "compiled")
         if impl in available_impls("lstm_sequence_forward")]


@pytest.fixture(scope="module")
def problem():
    return make_problem(SHAPE["N"], SHAPE["T"], SHAPE["D"], SHAPE["H"])


@pytest.mark.parametrize("impl", IMPLS)
def test_lstm_sequence(benchmark, problem, impl):
    _, forward_backward = lstm_step_functions(problem, impl)
    benchmark.group = GROUP
    dx, dh0, dc0, dWx, dWh, db = benchmark(forward_backward)
    assert dx.shape == problem["x"].shape and dx.dtype == np.float32
    assert dh0.shape == dc0.shape == problem["h0"].shape
    assert dWx.shape == problem["Wx"].shape and dWh.shape == problem["Wh"].shape
    assert db.shape == problem["b"].shape


def test_torch_lstm(benchmark, problem, peer):
    peer("torch")
    _, forward_backward = torch_lstm_functions(problem)
    benchmark.group = GROUP
    grads = benchmark(forward_backward)
    assert tuple(grads[0].shape) == problem["x"].shape
