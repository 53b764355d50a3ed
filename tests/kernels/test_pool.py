"""The pooling kernels: naive, vectorized and compiled agree (max pooling exactly, averages to
1e-12 in float64) on random shapes (odd sizes, overlapping 3x3 stride 2, 2x2 stride 2,
non-square windows, strides larger than the window, batch 1, C=1, non-contiguous input), in
both float dtypes and with several threads; ties and NaN follow torch; torch is the oracle;
bad input is a clear error; the compiled kernels never write out of bounds."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn.kernels import available_impls
from fastnn.kernels import pool as K

WINDOW_OPS = ("max_pool_forward", "max_pool_backward", "avg_pool_forward", "avg_pool_backward")
ALL_OPS = (*WINDOW_OPS, "global_avg_pool_forward", "global_avg_pool_backward")
TOL = {np.float64: {"rtol": 1e-12, "atol": 1e-12}, np.float32: {"rtol": 1e-5, "atol": 1e-6}}
# (x shape, pool_height, pool_width, stride): tiling 2x2, overlapping 3x3 s2, non-square
# windows, stride 1, stride > window (gaps), odd sizes, N=1, C=1, window == input
CASES = [
    ((2, 3, 8, 6), 2, 2, 2),
    ((1, 1, 7, 9), 3, 3, 2),
    ((3, 2, 9, 5), 3, 3, 2),
    ((2, 1, 5, 7), 2, 3, 1),
    ((1, 3, 7, 10), 3, 2, 2),
    ((2, 2, 8, 8), 2, 2, 3),
    ((1, 2, 9, 9), 3, 3, 3),
    ((2, 3, 4, 5), 4, 5, 1),
    ((1, 1, 1, 1), 1, 1, 1),
]


def _ids(case):
    shape, ph, pw, s = case
    return f"{'x'.join(map(str, shape))}-{ph}x{pw}s{s}"


def _x(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def _run(x, ph, pw, s, dout_seed=1):
    """{impl: (out, argmax, dx_max, avg, dx_avg)} for every implementation."""
    rng = np.random.default_rng(dout_seed)
    out_ref, argmax_ref = K.max_pool_forward(x, ph, pw, s, impl="naive")
    dout = rng.standard_normal(out_ref.shape).astype(x.dtype)
    results = {}
    for impl in available_impls("max_pool_forward"):
        out, argmax = K.max_pool_forward(x, ph, pw, s, impl=impl)
        results[impl] = (out, argmax, K.max_pool_backward(dout, argmax_ref, x.shape, impl=impl),
                         K.avg_pool_forward(x, ph, pw, s, impl=impl),
                         K.avg_pool_backward(dout, x.shape, ph, pw, s, impl=impl))
    return results, dout


def _assert_agree(results, dtype):
    ref = results["naive"]
    for impl, (out, argmax, dx_max, avg, dx_avg) in results.items():
        assert out.dtype == dx_max.dtype == avg.dtype == dx_avg.dtype == dtype, impl
        assert argmax.dtype == np.int64, impl
        np.testing.assert_array_equal(out, ref[0], err_msg=impl)
        np.testing.assert_array_equal(argmax, ref[1], err_msg=impl)
        for got, want in ((dx_max, ref[2]), (avg, ref[3]), (dx_avg, ref[4])):
            np.testing.assert_allclose(got, want, err_msg=impl, **TOL[dtype])


def test_every_op_has_its_implementations():
    for op in ALL_OPS:
        assert {"naive", "vectorized"} <= set(available_impls(op))
    if K._ext is not None:
        assert all("compiled" in available_impls(op) for op in ALL_OPS)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_implementations_agree(case, dtype):
    shape, ph, pw, s = case
    x = _x(np.random.default_rng(0), shape, dtype)
    results, _ = _run(x, ph, pw, s)
    _assert_agree(results, dtype)


def test_non_contiguous_input_is_read_correctly():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((3, 4, 14, 11))
    views = [(base[:, ::2, ::2, 1:], (3, 2, 2)),               # (3, 2, 7, 10), strided
             (base.transpose(0, 1, 3, 2)[:, 1:], (3, 2, 2)),   # (3, 3, 11, 14), transposed
             (np.asfortranarray(base), (2, 3, 2))]             # (3, 4, 14, 11), Fortran order
    for x, window in views:
        assert not x.flags.c_contiguous
        results, _ = _run(x, *window)
        _assert_agree(results, np.float64)
        contiguous, _ = _run(np.ascontiguousarray(x), *window)
        for impl, res in results.items():
            for got, want in zip(res, contiguous[impl]):
                np.testing.assert_array_equal(got, want, err_msg=impl)


def test_float32_matches_float64():
    x = _x(np.random.default_rng(3), (2, 3, 9, 9))
    for op_args in ((3, 3, 2), (2, 2, 1)):
        out64, arg64 = K.max_pool_forward(x, *op_args)
        out32, arg32 = K.max_pool_forward(x.astype(np.float32), *op_args)
        np.testing.assert_array_equal(out32, out64.astype(np.float32))
        np.testing.assert_array_equal(arg32, arg64)
        np.testing.assert_allclose(K.avg_pool_forward(x.astype(np.float32), *op_args),
                                   K.avg_pool_forward(x, *op_args), rtol=1e-6, atol=1e-6)


def test_several_threads_agree_with_one():
    # large enough for threads_for to give the compiled kernels every allowed thread
    x = _x(np.random.default_rng(4), (16, 32, 34, 34), np.float32)
    old = fastnn.get_num_threads()
    try:
        runs = []
        for threads in (1, fastnn.max_num_threads()):
            fastnn.set_num_threads(threads)
            out, argmax = K.max_pool_forward(x, 2, 2, 2)
            out3, argmax3 = K.max_pool_forward(x, 3, 3, 1)
            runs.append((out, argmax, out3, argmax3, K.max_pool_backward(out3, argmax3, x.shape),
                         K.avg_pool_forward(x, 3, 3, 1), K.global_avg_pool_forward(x)))
    finally:
        fastnn.set_num_threads(old)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------ semantics
@pytest.mark.parametrize("impl", available_impls("max_pool_forward"))
def test_ties_go_to_the_first_maximum_in_row_major_order(impl):
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = x[0, 0, 1, 0] = 5.0  # bottom row of the first 2x2 window: (1, 0) first
    out, argmax = K.max_pool_forward(x, 2, 2, 2, impl=impl)
    assert out[0, 0, 0, 0] == 5.0 and argmax[0, 0, 0, 0] == 4
    assert argmax[0, 0, 0, 1] == 2 and argmax[0, 0, 1, 0] == 8  # all-zero windows: first cell
    x = -np.inf * np.ones((1, 1, 3, 3))
    out, argmax = K.max_pool_forward(x, 3, 3, 1, impl=impl)
    assert out[0, 0, 0, 0] == -np.inf and argmax[0, 0, 0, 0] == 0


@pytest.mark.parametrize("impl", available_impls("max_pool_forward"))
@pytest.mark.parametrize(("shape", "window"), [((2, 2, 6, 8), (2, 2, 2)),
                                               ((2, 2, 7, 9), (3, 3, 2)),
                                               ((2, 2, 7, 9), (3, 3, 1)),
                                               ((2, 2, 7, 9), (2, 3, 1))])
def test_nan_is_the_maximum_of_its_window(impl, shape, window):
    x = np.random.default_rng(5).standard_normal(shape)
    x[0, 0, 1, 1] = np.nan
    x[1, 1, 0, 2] = x[1, 1, 1, 2] = np.nan  # two NaNs in one window: the last wins (torch)
    out, argmax = K.max_pool_forward(x, *window, impl=impl)
    ref_out, ref_arg = K.max_pool_forward(x, *window, impl="naive")
    np.testing.assert_array_equal(out, ref_out)  # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(argmax, ref_arg)
    assert np.isnan(out[0, 0]).any() and np.isnan(out[1, 1]).any()
    assert not np.isnan(out[0, 1]).any() and not np.isnan(out[1, 0]).any()
    nan_windows = argmax[1, 1][np.isnan(out[1, 1])]
    assert set(nan_windows.ravel()) <= {2, shape[3] + 2}
    assert nan_windows[0] == shape[3] + 2  # the first output row's windows hold both NaNs
    dx = K.max_pool_backward(np.ones_like(out), argmax, x.shape, impl=impl)
    assert dx[0, 0, 1, 1] >= 1


@pytest.mark.parametrize(("shape", "window"), [((2, 2, 7, 9), (3, 3, 2)),
                                               ((2, 2, 6, 8), (2, 2, 2)),
                                               ((2, 2, 7, 9), (2, 3, 1))])
def test_nan_matches_torch(shape, window):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal(shape)
    x[0, 1, 3, 4] = x[1, 0, 0, 0] = np.nan
    x[1, 1, 2, 2] = x[1, 1, 2, 3] = x[1, 1, 4, 1] = np.nan  # several NaNs per window
    ph, pw, s = window
    xt = torch.from_numpy(x).requires_grad_(True)
    out_t, idx_t = torch.nn.functional.max_pool2d(xt, (ph, pw), s, return_indices=True)
    dout = np.random.default_rng(6).standard_normal(tuple(out_t.shape))
    out_t.backward(torch.from_numpy(dout))
    for impl in available_impls("max_pool_forward"):
        out, argmax = K.max_pool_forward(x, ph, pw, s, impl=impl)
        np.testing.assert_array_equal(out, out_t.detach().numpy())
        np.testing.assert_array_equal(argmax, idx_t.numpy())
        np.testing.assert_allclose(K.max_pool_backward(dout, argmax, shape, impl=impl),
                                   xt.grad.numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- torch as the oracle
TORCH_CASES = [c for c in CASES if c[0][2] >= c[1] and c[0][3] >= c[2]]


@pytest.mark.parametrize("case", TORCH_CASES, ids=[_ids(c) for c in TORCH_CASES])
def test_torch_max_pool_forward_and_backward(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape, ph, pw, s = case
    rng = np.random.default_rng(6)
    x = _x(rng, shape)
    x[..., ::3] = np.round(x[..., ::3])  # some ties
    xt = torch.from_numpy(x).requires_grad_(True)
    out_t, idx_t = F.max_pool2d(xt, (ph, pw), s, return_indices=True)
    dout = rng.standard_normal(tuple(out_t.shape))
    out_t.backward(torch.from_numpy(dout))
    for impl in available_impls("max_pool_forward"):
        out, argmax = K.max_pool_forward(x, ph, pw, s, impl=impl)
        np.testing.assert_array_equal(out, out_t.detach().numpy())
        np.testing.assert_array_equal(argmax, idx_t.numpy())
        dx = K.max_pool_backward(dout, argmax, x.shape, impl=impl)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", TORCH_CASES, ids=[_ids(c) for c in TORCH_CASES])
def test_torch_avg_and_global_pool(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape, ph, pw, s = case
    rng = np.random.default_rng(7)
    x = _x(rng, shape)
    xt = torch.from_numpy(x).requires_grad_(True)
    out_t = F.avg_pool2d(xt, (ph, pw), s)
    dout = rng.standard_normal(tuple(out_t.shape))
    out_t.backward(torch.from_numpy(dout))
    xg = torch.from_numpy(x).requires_grad_(True)
    gout_t = F.adaptive_avg_pool2d(xg, 1)[:, :, 0, 0]
    gdout = rng.standard_normal(shape[:2])
    gout_t.backward(torch.from_numpy(gdout))
    for impl in available_impls("avg_pool_forward"):
        np.testing.assert_allclose(K.avg_pool_forward(x, ph, pw, s, impl=impl),
                                   out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(K.avg_pool_backward(dout, shape, ph, pw, s, impl=impl),
                                   xt.grad.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(K.global_avg_pool_forward(x, impl=impl),
                                   gout_t.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(K.global_avg_pool_backward(gdout, shape, impl=impl),
                                   xg.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_torch_float32_2x2():
    torch = pytest.importorskip("torch")
    x = _x(np.random.default_rng(8), (4, 3, 16, 12), np.float32)
    out_t, idx_t = torch.nn.functional.max_pool2d(torch.from_numpy(x), 2, 2, return_indices=True)
    out, argmax = K.max_pool_forward(x, 2, 2, 2)
    np.testing.assert_array_equal(out, out_t.numpy())
    np.testing.assert_array_equal(argmax, idx_t.numpy())


# --------------------------------------------------------------------- global average pool
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (3, 1, 9, 2)])
def test_global_avg_pool_implementations_agree(shape, dtype):
    rng = np.random.default_rng(9)
    x = _x(rng, shape, dtype)
    dout = _x(rng, shape[:2], dtype)
    ref = K.global_avg_pool_forward(x, impl="naive")
    ref_dx = K.global_avg_pool_backward(dout, shape, impl="naive")
    np.testing.assert_allclose(ref, x.astype(np.float64).mean(axis=(2, 3)), **TOL[dtype])
    for impl in available_impls("global_avg_pool_forward"):
        out = K.global_avg_pool_forward(x, impl=impl)
        dx = K.global_avg_pool_backward(dout, shape, impl=impl)
        assert out.dtype == dx.dtype == dtype and out.shape == shape[:2] and dx.shape == shape
        np.testing.assert_allclose(out, ref, **TOL[dtype])
        np.testing.assert_allclose(dx, ref_dx, **TOL[dtype])


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("impl", available_impls("max_pool_forward"))
def test_sizes_that_do_not_fit_name_the_hyperparameters(impl):
    x = np.ones((1, 1, 5, 6))
    with pytest.raises(ValueError, match=r"pool_height=2 and stride=2 .* height H=5"):
        K.max_pool_forward(x, 2, 2, 2, impl=impl)
    with pytest.raises(ValueError, match=r"pool_width=3 and stride=2 .* width W=6"):
        K.avg_pool_forward(x, 1, 3, 2, impl=impl)
    with pytest.raises(ValueError, match=r"pool_height=6 is larger than the input height H=5"):
        K.max_pool_forward(x, 6, 1, 1, impl=impl)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        K.max_pool_forward(x, 1, 1, 0, impl=impl)
    with pytest.raises(ValueError, match="x must be a 4-D array"):
        K.max_pool_forward(np.ones((5, 6)), 1, 1, 1, impl=impl)
    with pytest.raises(TypeError, match="pool_width must be an integer"):
        K.avg_pool_forward(x, 1, 1.5, 1, impl=impl)
    with pytest.raises(ValueError, match="x must be a 4-D array"):
        K.global_avg_pool_forward(np.ones((2, 3, 4)), impl=impl)


@pytest.mark.parametrize("impl", available_impls("max_pool_backward"))
def test_backward_shape_mismatches_name_the_argument(impl):
    dout = np.ones((2, 3, 2, 2))
    argmax = np.zeros((2, 3, 2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="argmax and dout must have the same shape"):
        K.max_pool_backward(dout, argmax[:, :, :1], (2, 3, 4, 4), impl=impl)
    with pytest.raises(ValueError, match="dout must have x_shape's N and C"):
        K.max_pool_backward(dout, argmax, (2, 4, 4, 4), impl=impl)
    with pytest.raises(ValueError, match="x_shape must be the"):
        K.max_pool_backward(dout, argmax, (2, 3, 4), impl=impl)
    with pytest.raises(ValueError, match=r"x_shape\[2\] must be >= 1"):
        K.max_pool_backward(dout, argmax, (2, 3, 0, 4), impl=impl)
    with pytest.raises(ValueError, match="argmax must hold integers"):
        K.max_pool_backward(dout, argmax + 0.5, (2, 3, 4, 4), impl=impl)
    with pytest.raises(ValueError, match="dout must have the pooled shape"):
        K.avg_pool_backward(dout, (2, 3, 4, 4), 2, 2, 1, impl=impl)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\)"):
        K.global_avg_pool_backward(np.ones((3, 2)), (2, 3, 4, 4), impl=impl)


@pytest.mark.parametrize("impl", available_impls("max_pool_backward"))
@pytest.mark.parametrize("bad", [-1, 16, 2**40, -(2**62)])
def test_out_of_range_argmax_is_an_error_never_a_write(impl, bad):
    dout = np.ones((2, 3, 2, 2))
    argmax = np.zeros((2, 3, 2, 2), dtype=np.int64)
    argmax[1, 2, 1, 0] = bad
    with pytest.raises(ValueError, match=r"argmax must hold indices in \[0, 16\)"):
        K.max_pool_backward(dout, argmax, (2, 3, 4, 4), impl=impl)


def test_indices_outside_their_window_still_scatter():
    """The backward takes argmax at its word: any in-range index receives its gradient."""
    dout = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    argmax = np.array([[[[15, 0], [0, 5]]]])
    for impl in available_impls("max_pool_backward"):
        dx = K.max_pool_backward(dout, argmax, (1, 1, 4, 4), impl=impl)
        want = np.zeros(16)
        np.add.at(want, [15, 0, 0, 5], [1.0, 2.0, 3.0, 4.0])
        np.testing.assert_array_equal(dx.reshape(-1), want)


ext = K._ext


@pytest.mark.skipif(K._ext is None, reason="compiled extension not built")
def test_compiled_entry_points_recheck_sizes():
    x = np.ones((2, 4, 4))
    out = np.empty((2, 2, 2))
    argmax = np.empty((2, 2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="out must be 3x3"):
        ext.max_pool_forward(x, 2, 2, 1, out, argmax, 1)
    with pytest.raises(ValueError, match="num_threads"):
        ext.max_pool_forward(x, 2, 2, 2, out, argmax, 0)
    with pytest.raises(ValueError, match="does not tile"):
        ext.avg_pool_forward(x, 5, 1, 1, out, 1)
    with pytest.raises(ValueError, match="argmax must have 2 planes"):
        ext.max_pool_forward(x, 2, 2, 2, out, argmax[:1], 1)
    with pytest.raises(ValueError, match="dx must have 2 planes"):
        ext.max_pool_backward(out, np.zeros((2, 2, 2), np.int64), np.empty((3, 4, 4)), 1)
    with pytest.raises(ValueError, match="argmax must hold indices"):
        ext.max_pool_backward(out, np.full((2, 2, 2), 16, np.int64), np.empty((2, 4, 4)), 1)
    with pytest.raises(ValueError, match="dx must have 2 planes"):
        ext.global_avg_pool_backward(np.ones(2), np.empty((3, 4)), 1)


# ---------------------------------------------------------------------------- fuzzing
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 2), ho=st.integers(1, 4), wo=st.integers(1, 4),
       ph=st.integers(1, 4), pw=st.integers(1, 4), stride=st.integers(1, 3),
       misfit=st.sampled_from([None, None, None, "height", "width", "window"]),
       seed=st.integers(0, 2**16), f32=st.booleans(), ties=st.booleans(),
       nans=st.integers(0, 3))
def test_fuzz_agrees_with_the_looped_twin(n, c, ho, wo, ph, pw, stride, misfit, seed, f32, ties,
                                          nans):
    h, w = (ho - 1) * stride + ph, (wo - 1) * stride + pw
    if misfit == "height" and stride > 1:
        h += 1  # (H - pool_height) / stride + 1 is no longer whole
    elif misfit == "width" and stride > 1:
        w += 1
    elif misfit == "window":
        ph = h + 1  # window larger than the input
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    if ties:
        x = np.round(x)
    x.reshape(-1)[rng.integers(0, x.size, nans)] = np.nan
    x = x.astype(np.float32 if f32 else np.float64)
    if misfit == "window" or (misfit in ("height", "width") and stride > 1):
        for impl in available_impls("max_pool_forward"):
            with pytest.raises(ValueError, match="pool_height|pool_width"):
                K.max_pool_forward(x, ph, pw, stride, impl=impl)
            with pytest.raises(ValueError, match="pool_height|pool_width"):
                K.avg_pool_forward(x, ph, pw, stride, impl=impl)
        return
    results, _ = _run(x, ph, pw, stride, dout_seed=seed)
    _assert_agree(results, x.dtype.type)
