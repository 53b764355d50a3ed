"""The fused in-place update kernels (adam, SGD+momentum, RMSProp): every implementation against
the NumPy twin, validation before compiled code, and a hypothesis fuzz of the compiled Adam."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.kernels import available_impls
from fastnn.kernels import optim as kopt

KERNEL_CASES = {
    "adam_update": (("m", "v"), {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999,
                                     "epsilon": 1e-8, "t": 4}),
    "sgd_momentum_update": (("velocity",), {"learning_rate": 1e-2, "momentum": 0.9}),
    "rmsprop_update": (("cache",), {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8}),
}


def _run_kernel(op, impl, w, dw, states, hyper):
    w, states = w.copy(), [s.copy() for s in states]
    getattr(kopt, op)(w, dw, *states, **hyper, impl=impl)
    return w, states


@pytest.mark.parametrize("op", list(KERNEL_CASES))
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (64, 33), (40000,)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_all_impls_agree(op, shape, dtype, rng):
    names, hyper = KERNEL_CASES[op]
    impls = available_impls(op)
    assert {"naive", "vectorized"} <= set(impls)
    w = rng.standard_normal(shape).astype(dtype)
    dw = rng.standard_normal(shape).astype(dtype)
    states = [np.abs(rng.standard_normal(shape)).astype(dtype) for _ in names]
    results = {}
    for impl in impls:
        if impl == "naive" and w.size > 5000:
            continue
        results[impl] = _run_kernel(op, impl, w, dw, states, hyper)
    ref_w, ref_states = results["vectorized"]
    tol = 2e-6 if dtype == np.float32 else 1e-14
    for impl, (w_i, states_i) in results.items():
        np.testing.assert_allclose(w_i, ref_w, rtol=tol, atol=tol, err_msg=impl)
        for a, b in zip(states_i, ref_states):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=impl)


def test_kernels_validate_before_compiled_code(rng):
    w = rng.standard_normal((4, 6))
    dw = rng.standard_normal((4, 6))
    m, v = np.zeros_like(w), np.zeros_like(w)
    hyper = KERNEL_CASES["adam_update"][1]
    with pytest.raises(ValueError, match="C-contiguous"):
        kopt.adam_update(w[:, ::2], dw[:, ::2], m[:, ::2], v[:, ::2], **hyper)
    with pytest.raises(TypeError, match="dtype of w"):
        kopt.adam_update(w, dw.astype(np.float32), m, v, **hyper)
    with pytest.raises(ValueError, match="shape of w"):
        kopt.adam_update(w, dw, m[:3], v, **hyper)
    ro = w.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        kopt.adam_update(ro, dw, m, v, **hyper)
    with pytest.raises(ValueError, match="t must be"):
        kopt.adam_update(w, dw, m, v, **{**hyper, "t": 0})
    with pytest.raises(ValueError, match="impl must be one of"):
        kopt.adam_update(w, dw, m, v, **hyper, impl="gpu")


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    t=st.integers(1, 1000),
    lr=st.floats(1e-6, 1.0),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_adam_kernel_fuzz(n, t, lr, dtype, seed):
    if "compiled" not in available_impls("adam_update"):
        pytest.skip("compiled extension not built")
    g = np.random.default_rng(seed)
    w = g.standard_normal(n).astype(dtype)
    dw = (g.standard_normal(n) * 10.0 ** g.integers(-4, 3)).astype(dtype)
    m = g.standard_normal(n).astype(dtype)
    v = np.abs(g.standard_normal(n)).astype(dtype)
    hyper = {"learning_rate": lr, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": t}
    a = _run_kernel("adam_update", "compiled", w, dw, [m, v], hyper)
    b = _run_kernel("adam_update", "vectorized", w, dw, [m, v], hyper)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(a[0], b[0], rtol=tol, atol=tol)
    assert np.isfinite(a[0]).all()


