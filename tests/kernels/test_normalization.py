"""The normalisation kernels behind fastnn.layers: naive, vectorized and compiled agree on random
shapes (odd sizes, batch 1, blocks of columns that do not tile, non-contiguous input), in both
float dtypes and with several threads; bad input is a clear error."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn.kernels import available_impls, get_impl
from fastnn.kernels import normalization as K
from fastnn.layers import batchnorm_backward_alt, layernorm_backward

OPS = ("batchnorm_forward_train", "batchnorm_backward_closed_form", "layernorm_forward",
       "layernorm_backward")
TOL = {np.float64: {"rtol": 1e-10, "atol": 1e-12}, np.float32: {"rtol": 2e-5, "atol": 2e-5}}
# (N, D): batch 1, one feature, odd sizes, D not a multiple of the 64-column block, D > block
SHAPES = [(1, 1), (1, 9), (6, 1), (3, 5), (7, 130), (129, 65), (40, 300)]


def _problem(rng, shape, dtype):
    d = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    gamma = rng.standard_normal(d).astype(dtype)
    beta = rng.standard_normal(d).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dout


def _run_all(op, x, gamma, beta, dout, impls=None):
    """Result tuples of every implementation of ``op`` on one problem."""
    results = {}
    for impl in impls or available_impls(op):
        if op == "batchnorm_forward_train":
            results[impl] = K.batchnorm_forward_train(x, gamma, beta, 1e-5, impl=impl)
        elif op == "layernorm_forward":
            results[impl] = K.layernorm_forward(x, gamma, beta, 1e-5, impl=impl)
        elif op == "batchnorm_backward_closed_form":
            _, x_hat, _, _, inv_std = K.batchnorm_forward_train(x, gamma, beta, 1e-5,
                                                                impl="vectorized")
            results[impl] = K.batchnorm_backward_closed_form(dout, x_hat, gamma, inv_std,
                                                             impl=impl)
        else:
            _, x_hat, inv_std = K.layernorm_forward(x, gamma, beta, 1e-5, impl="vectorized")
            results[impl] = K.layernorm_backward(dout, x_hat, gamma, inv_std, impl=impl)
    return results


def _assert_agree(results, dtype, reference="naive"):
    ref = results[reference]
    for impl, res in results.items():
        assert len(res) == len(ref)
        for a, b in zip(res, ref):
            assert a.dtype == dtype, impl
            assert a.shape == b.shape, impl
            np.testing.assert_allclose(a, b, err_msg=impl, **TOL[dtype])


def test_every_op_has_all_three_implementations():
    for op in OPS:
        assert set(available_impls(op)) == {"naive", "vectorized", "compiled"}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_implementations_agree(rng, op, shape, dtype):
    _assert_agree(_run_all(op, *_problem(rng, shape, dtype)), dtype)


@pytest.mark.parametrize("op", OPS)
def test_parallel_matches_serial(rng, op):
    # large enough for threads_for to give the compiled kernels every allowed thread
    x, gamma, beta, dout = _problem(rng, (701, 257), np.float32)
    old = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        serial = _run_all(op, x, gamma, beta, dout, impls=["compiled"])["compiled"]
        fastnn.set_num_threads(fastnn.max_num_threads())
        parallel = _run_all(op, x, gamma, beta, dout, impls=["compiled"])["compiled"]
    finally:
        fastnn.set_num_threads(old)
    for a, b in zip(parallel, serial):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("op", ["batchnorm_forward_train", "layernorm_forward"])
def test_non_contiguous_and_mixed_dtype_inputs(rng, op):
    x, gamma, beta, _ = _problem(rng, (9, 14), np.float64)
    forward = getattr(K, op)
    reference = forward(np.ascontiguousarray(x[:, ::2]), gamma[::2], beta[::2], impl="naive")
    strided = forward(x[:, ::2], gamma[::2], beta[::2], impl="compiled")
    fortran = forward(np.asfortranarray(x[:, ::2]), gamma[::2], beta[::2], impl="compiled")
    for a, b, c in zip(strided, fortran, reference):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b, c, rtol=1e-12, atol=1e-12)
    # float32 data with float64 parameters computes in float64, as NumPy would
    mixed = forward(x.astype(np.float32), gamma, beta, impl="compiled")
    assert all(a.dtype == np.float64 for a in mixed)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 40), d=st.integers(1, 150), double=st.booleans(),
       op=st.sampled_from(OPS), seed=st.integers(0, 2**32 - 1))
def test_fuzz_compiled_matches_vectorized(n, d, double, op, seed):
    dtype = np.float64 if double else np.float32
    rng = np.random.default_rng(seed)
    results = _run_all(op, *_problem(rng, (n, d), dtype), impls=["vectorized", "compiled"])
    _assert_agree(results, dtype, reference="vectorized")


def test_nan_input_propagates_instead_of_crashing():
    x = np.ones((4, 3))
    x[1, 2] = np.nan
    out, *_ = K.batchnorm_forward_train(x, np.ones(3), np.zeros(3), impl="compiled")
    assert np.isnan(out[:, 2]).all() and np.isfinite(out[:, :2]).all()


def test_bad_input_is_a_clear_error():
    x, g = np.ones((4, 3)), np.ones(3)
    with pytest.raises(ValueError, match=r"x must be a 2-D array \(N, D\)"):
        K.batchnorm_forward_train(np.ones(3), g, g)
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        K.layernorm_forward(x, np.ones(4), g)
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\)"):
        K.batchnorm_forward_train(x, g, np.ones((3, 1)))
    with pytest.raises(ValueError, match="x must not be empty"):
        K.batchnorm_forward_train(np.ones((0, 3)), g, g)
    with pytest.raises(ValueError, match="x_hat must have the shape of dout"):
        K.batchnorm_backward_closed_form(x, np.ones((4, 2)), g, g)
    with pytest.raises(ValueError, match=r"inv_std must have shape \(3,\)"):
        K.batchnorm_backward_closed_form(x, x, g, np.ones(4))
    with pytest.raises(ValueError, match=r"inv_std must have shape \(4, 1\)"):
        K.layernorm_backward(x, x, g, np.ones(4))
    with pytest.raises(ValueError, match="eps must be > 0"):
        K.layernorm_forward(x, g, g, eps=-1.0)
    with pytest.raises(ValueError, match="impl must be one of"):
        K.layernorm_forward(x, g, g, impl="fortran")
    with pytest.raises(TypeError, match="gamma must be numeric"):
        K.batchnorm_forward_train(x, np.array(["a", "b", "c"]), g)


@pytest.mark.skipif("compiled" not in available_impls("batchnorm_backward_closed_form"),
                    reason="extension not built")
@pytest.mark.parametrize(
    ("op", "bad", "message"),
    [
        ("batchnorm_backward_closed_form", "gamma", "gamma must have shape"),
        ("batchnorm_backward_closed_form", "inv_std", "inv_std must have"),
        ("layernorm_backward", "gamma", "gamma must have shape"),
        ("layernorm_backward", "inv_std", r"inv_std must have shape \(5, 1\)"),
    ],
)
def test_compiled_backward_rejects_short_cached_arrays(rng, op, bad, message):
    # fastnn.layers hands the registered kernels whatever a (hand-built) cache holds
    dout = rng.standard_normal((5, 4))
    x_hat = rng.standard_normal((5, 4))
    gamma = rng.standard_normal(4)
    inv_std = rng.random(4) + 0.5 if op.startswith("batch") else rng.random((5, 1)) + 0.5
    if bad == "gamma":
        gamma = gamma[:2].copy()
    else:
        inv_std = inv_std[:2].copy()
    with pytest.raises(ValueError, match=message):
        get_impl(op, "compiled")(dout, x_hat, gamma, inv_std)


def test_layers_backward_with_hand_built_short_cache_raises(rng):
    dout = rng.standard_normal((5, 4))
    x_hat = rng.standard_normal((5, 4))
    with pytest.raises(ValueError, match="gamma"):
        batchnorm_backward_alt(dout, (x_hat, np.ones(2), np.ones(4), True))
    with pytest.raises(ValueError, match="inv_std"):
        layernorm_backward(dout, (x_hat, np.ones(4), np.ones((2, 1))))
