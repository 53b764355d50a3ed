"""The spatial normalisation kernels: naive, vectorized and compiled agree (relative error
below 1e-9 in float64) on random (N, C, H, W) shapes (batch 1 with H*W > 1, C = 1, G = 1,
G = C, odd sizes, non-contiguous input), float32 follows float64 within a stated tolerance,
several threads give the serial result, the hypothesis fuzz agrees with the looped twin, and
bad input is a clear error naming the argument."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn.gradient_check import rel_error
from fastnn.kernels import available_impls, get_impl
from fastnn.kernels import spatial_normalization as K

OPS = ("spatial_batchnorm_forward_train", "spatial_batchnorm_backward",
       "spatial_groupnorm_forward", "spatial_groupnorm_backward")
# ((N, C, H, W), G): batch 1 with H*W > 1, C = 1, G = 1, G = C, odd sizes, 1x1 images
CASES = [((1, 3, 4, 5), 3), ((2, 1, 3, 3), 1), ((3, 6, 5, 7), 1), ((3, 6, 5, 7), 6),
         ((4, 6, 3, 1), 2), ((5, 4, 1, 1), 2), ((2, 9, 7, 3), 3)]
# float32 against float64 (sums are accumulated in double in every implementation)
F32_TOL = {"rtol": 1e-4, "atol": 1e-4}


def _problem(rng, shape, dtype=np.float64):
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    gamma = rng.standard_normal(c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dout


def _run(impl, x, gamma, beta, dout, groups):
    """Every output of the four operations with one implementation (the backward passes get
    the statistics their own forward computed)."""
    out, mean, var, inv_std = K.spatial_batchnorm_forward_train(x, gamma, beta, 1e-5, impl=impl)
    bn_grads = K.spatial_batchnorm_backward(dout, x, gamma, mean, inv_std, impl=impl)
    gout, gmean, gvar, ginv = K.spatial_groupnorm_forward(x, gamma, beta, groups, 1e-5,
                                                          impl=impl)
    gn_grads = K.spatial_groupnorm_backward(dout, x, gamma, gmean, ginv, impl=impl)
    return (out, mean, var, inv_std, *bn_grads, gout, gmean, gvar, ginv, *gn_grads)


def _max_rel_error(a, b):
    return max(rel_error(p, q) for p, q in zip(a, b))


def test_every_op_has_all_three_implementations():
    for op in OPS:
        assert set(available_impls(op)) == {"naive", "vectorized", "compiled"}


@pytest.mark.parametrize(("shape", "groups"), CASES)
def test_implementations_agree_float64(rng, shape, groups):
    problem = _problem(rng, shape)
    reference = _run("naive", *problem, groups)
    for impl in ("vectorized", "compiled"):
        result = _run(impl, *problem, groups)
        for a, b in zip(result, reference):
            assert a.dtype == np.float64 and a.shape == b.shape, impl
        assert _max_rel_error(result, reference) < 1e-9, impl


@pytest.mark.parametrize(("shape", "groups"), CASES[:4])
@pytest.mark.parametrize("impl", ["vectorized", "compiled"])
def test_float32_follows_float64(rng, shape, groups, impl):
    problem = _problem(rng, shape)
    reference = _run("naive", *problem, groups)
    single = _run(impl, *(a.astype(np.float32) for a in problem), groups)
    for a, b in zip(single, reference):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, err_msg=impl, **F32_TOL)


def test_non_contiguous_and_mixed_dtype_inputs(rng):
    x, gamma, beta, dout = _problem(rng, (3, 8, 6, 10))
    sub = (slice(None), slice(None, None, 2), slice(None), slice(None, None, 2))
    xs, gs, bs, ds = x[sub], gamma[::2], beta[::2], dout[sub]
    assert not xs.flags.c_contiguous
    reference = _run("naive", *(np.ascontiguousarray(a) for a in (xs, gs, bs, ds)), 2)
    for impl in ("vectorized", "compiled"):
        assert _max_rel_error(_run(impl, xs, gs, bs, ds, 2), reference) < 1e-9
        fortran = _run(impl, np.asfortranarray(xs), gs, bs, np.asfortranarray(ds), 2)
        assert _max_rel_error(fortran, reference) < 1e-9
    # float32 data with float64 parameters computes in float64, as NumPy would
    mixed = K.spatial_batchnorm_forward_train(x.astype(np.float32), gamma, beta)
    assert all(a.dtype == np.float64 for a in mixed)


@pytest.mark.parametrize("op", ["batchnorm", "groupnorm"])
def test_parallel_matches_serial(rng, op):
    # large enough for threads_for to give the compiled kernels every allowed thread
    x, gamma, beta, dout = _problem(rng, (16, 8, 33, 31), np.float32)
    results = []
    old = fastnn.get_num_threads()
    try:
        for threads in (1, fastnn.max_num_threads()):
            fastnn.set_num_threads(threads)
            results.append(_run("compiled", x, gamma, beta, dout, 4))
    finally:
        fastnn.set_num_threads(old)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_large_mean_keeps_float32_variance_accurate(rng):
    # two-pass statistics in double: an offset of 1e4 costs float32 no variance digits
    x = (rng.standard_normal((4, 2, 8, 8)) + 1e4).astype(np.float32)
    ones = np.ones(2, np.float32)
    exact = x.astype(np.float64).var(axis=(0, 2, 3))
    for impl in ("vectorized", "compiled"):
        _, _, var, _ = K.spatial_batchnorm_forward_train(x, ones, ones, impl=impl)
        np.testing.assert_allclose(var, exact, rtol=1e-5)
        _, _, gvar, _ = K.spatial_groupnorm_forward(x, ones, ones, 1, impl=impl)
        np.testing.assert_allclose(gvar, x.astype(np.float64).reshape(4, -1).var(axis=1, keepdims=True),
                                   rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), cg=st.integers(1, 3), groups=st.integers(1, 3),
       h=st.integers(1, 4), w=st.integers(1, 4), double=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_fuzz_agrees_with_looped_twin(n, cg, groups, h, w, double, seed):
    rng = np.random.default_rng(seed)
    dtype = np.float64 if double else np.float32
    problem = _problem(rng, (n, cg * groups, h, w), dtype)
    reference = _run("naive", *problem, groups)
    for impl in ("vectorized", "compiled"):
        result = _run(impl, *problem, groups)
        for a, b in zip(result, reference):
            assert a.dtype == dtype and a.shape == b.shape
            if double:
                assert rel_error(a, b) < 1e-7 or np.allclose(a, b, rtol=1e-9, atol=1e-9)
            else:
                # a constant plane has inv_std = 1/sqrt(eps): float32 rounding grows by 300x
                np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3)


def test_bad_input_is_a_clear_error():
    x, g = np.ones((2, 4, 3, 3)), np.ones(4)
    with pytest.raises(ValueError, match=r"x must be a 4-D array \(N, C, H, W\)"):
        K.spatial_batchnorm_forward_train(np.ones((2, 4, 3)), g, g)
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\)"):
        K.spatial_batchnorm_forward_train(x, np.ones(3), g)
    with pytest.raises(ValueError, match=r"beta must have shape \(4,\)"):
        K.spatial_groupnorm_forward(x, g, np.ones((1, 4, 1, 1)), 2)
    with pytest.raises(ValueError, match="G must divide the number of channels C=4, got G=3"):
        K.spatial_groupnorm_forward(x, g, g, 3)
    with pytest.raises(ValueError, match="G must be >= 1"):
        K.spatial_groupnorm_forward(x, g, g, 0)
    with pytest.raises(TypeError, match="G must be an int"):
        K.spatial_groupnorm_forward(x, g, g, 2.5)
    with pytest.raises(ValueError, match="eps must be > 0"):
        K.spatial_batchnorm_forward_train(x, g, g, eps=0.0)
    with pytest.raises(ValueError, match="x must not be empty"):
        K.spatial_batchnorm_forward_train(np.ones((0, 4, 3, 3)), g, g)
    with pytest.raises(ValueError, match=r"x must have shape \(2, 4, 3, 3\) to match dout"):
        K.spatial_batchnorm_backward(x, np.ones((2, 4, 3, 2)), g, g, g)
    with pytest.raises(ValueError, match=r"inv_std must have shape \(4,\)"):
        K.spatial_batchnorm_backward(x, x, g, g, np.ones(3))
    with pytest.raises(ValueError, match=r"mean must have shape \(N, G\)"):
        K.spatial_groupnorm_backward(x, x, g, np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="mean and inv_std must have the same shape"):
        K.spatial_groupnorm_backward(x, x, g, np.ones((2, 2)), np.ones((2, 1)))
    with pytest.raises(ValueError, match="impl must be one of"):
        K.spatial_groupnorm_forward(x, g, g, 2, impl="fortran")


@pytest.mark.skipif("compiled" not in available_impls("spatial_batchnorm_backward"),
                    reason="extension not built")
def test_extension_refuses_mismatched_buffers():
    """Defence in depth: the compiled entry points check sizes before releasing the GIL."""
    from fastnn.kernels.spatial_normalization import _ext

    x = np.ones((2, 4, 3, 3))
    v = np.ones(4)
    with pytest.raises(ValueError, match="out must have shape"):
        _ext.spatial_batchnorm_forward_train(x, v, v, 1e-5, np.empty((2, 4, 3, 2)), v.copy(),
                                             v.copy(), v.copy(), 1)
    with pytest.raises(ValueError, match="gamma must have 4 elements"):
        _ext.spatial_batchnorm_backward(x, x, np.ones(3), v, v, np.empty_like(x), v.copy(),
                                        v.copy(), 1)
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        _ext.spatial_batchnorm_backward(x, x, v, v, v, np.empty_like(x), v.copy(), v.copy(), 0)
    stats = np.ones((2, 2))
    with pytest.raises(ValueError, match="G must be >= 1 and divide C=4"):
        _ext.spatial_groupnorm_forward(x, v, v, 1e-5, np.empty_like(x), np.ones((2, 3)),
                                       np.ones((2, 3)), np.ones((2, 3)), 1)
    with pytest.raises(ValueError, match=r"inv_std must have shape \(2, 2\)"):
        _ext.spatial_groupnorm_backward(x, x, v, stats, np.ones((1, 2)), np.empty_like(x),
                                        v.copy(), v.copy(), 1)
    with pytest.raises(ValueError, match="x must have shape"):
        _ext.spatial_groupnorm_forward(np.ones((2, 4, 0, 3)), v, v, 1e-5,
                                       np.empty((2, 4, 0, 3)), stats, stats.copy(),
                                       stats.copy(), 1)


@pytest.mark.parametrize("impl", ["naive", "vectorized", "compiled"])
def test_nan_input_propagates_instead_of_crashing(impl):
    x = np.ones((2, 2, 2, 2))
    x[1, 1, 0, 0] = np.nan
    out, *_ = K.spatial_batchnorm_forward_train(x, np.ones(2), np.zeros(2), impl=impl)
    assert np.isnan(out[:, 1]).all() and np.isfinite(out[:, 0]).all()
    gout, *_ = K.spatial_groupnorm_forward(x, np.ones(2), np.zeros(2), 2, impl=impl)
    assert np.isnan(gout[1, 1]).all() and np.isfinite(gout[0]).all()


def test_get_impl_validates_like_the_public_entry():
    forward = get_impl("spatial_groupnorm_forward", "compiled")
    with pytest.raises(ValueError, match="G must divide"):
        forward(np.ones((1, 4, 2, 2)), np.ones(4), np.ones(4), 3)
