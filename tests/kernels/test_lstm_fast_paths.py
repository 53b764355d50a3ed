"""The LSTM sequence's fused fast paths against plain references: the backward step loop that
also writes dx (batch-major, one pass over the gate gradient for dprev_h and dx), sums db per
thread in float64 and fills [x_t, h_{t-1}], reading dh in place in either layout; the forward
step loop writing the batch-major output (its products on packed weight panels); the backward
cell vectorised when dprev_c aliases dnext_c. The weight gradients inside the backward call are
in test_lstm_fused_steps.py."""

import numpy as np
import pytest

from fastnn.kernels import _gemm, get_impl
from fastnn.kernels.recurrent import _ext

needs_sgemm = pytest.mark.skipif(not (_gemm.AVAILABLE and getattr(_ext, "SGEMM_AVAILABLE", False)),
                                 reason="compiled product needs the extension and AVX-512F")


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _forward_state(rng, n, t, d, h):
    """A forward pass's cache (float32) from the compiled forward."""
    x, h0, c0 = _f32(rng, n, t, d), _f32(rng, n, h, scale=0.5), _f32(rng, n, h, scale=0.5)
    Wx, Wh = _f32(rng, d, 4 * h, scale=d ** -0.5), _f32(rng, h, 4 * h, scale=h ** -0.5)
    b = _f32(rng, 4 * h, scale=0.1)
    _, hs, cs, gates, tanh_c = get_impl("lstm_sequence_forward", "compiled")(x, h0, c0, Wx, Wh, b)
    return x, Wx, Wh, hs.copy(), cs.copy(), gates.copy(), tanh_c.copy()


def _backward_loop(dh_tm, Wh, gates, tanh_c, cs, threads, Wx=None, parts=None):
    t, n, h = dh_tm.shape
    da = np.full(gates.shape, np.nan, np.float32)
    dprev_h, dprev_c = np.zeros((n, h), np.float32), np.zeros((n, h), np.float32)
    extra = ()
    if Wx is not None:
        dx = np.full((n, t, Wx.shape[0]), np.nan, np.float32)
        db_parts = np.zeros((parts, 4 * h))
        extra = (_gemm.transposed(Wx), dx, db_parts)
    _ext.lstm_steps_backward(dh_tm, _gemm.transposed(Wh), gates, tanh_c, cs, da, dprev_h,
                             dprev_c, threads, *extra)
    return (da, dprev_h, dprev_c) + ((extra[1], extra[2]) if extra else ())


@needs_sgemm
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n, t, d, h",
                         [(1, 1, 32, 32), (5, 3, 64, 32), (16, 4, 32, 64), (13, 2, 32, 96)])
def test_backward_loop_dx_and_db_match_separate_products(rng, threads, n, t, d, h):
    """dx and db written by the step loop equal da @ Wx.T and da.sum over (T, N) in float64;
    da, dprev_h, dprev_c are bit-identical to the loop without them; dh read through a
    transposed view of batch-major data gives the same bits as a time-major copy. H = 96: the
    in-place gate gradient crosses the kernel's k blocks (4H = 384)."""
    _, Wx, Wh, _, cs, gates, tanh_c = _forward_state(rng, n, t, d, h)
    dh = _f32(rng, n, t, h)
    plain = _backward_loop(np.ascontiguousarray(dh.transpose(1, 0, 2)), Wh, gates, tanh_c, cs,
                           threads)
    fused = _backward_loop(dh.transpose(1, 0, 2), Wh, gates, tanh_c, cs, threads, Wx,
                           parts=threads)
    for name, a, b in zip(("da", "dprev_h", "dprev_c"), plain, fused[:3], strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
    da = plain[0].astype(np.float64)
    want_dx = (da @ Wx.T.astype(np.float64)).transpose(1, 0, 2)
    np.testing.assert_allclose(fused[3], want_dx, rtol=0,
                               atol=1e-5 * np.sqrt(4 * h) * max(1.0, np.abs(want_dx).max()))
    db = fused[4].sum(axis=0)
    np.testing.assert_allclose(db, da.sum(axis=(0, 1)), rtol=1e-12, atol=1e-12)
    # with fewer threads than rows, every part a thread owns was written; with N = 1 only one
    used = min(threads, n)
    assert np.count_nonzero(fused[4][used:]) == 0


@needs_sgemm
def test_backward_loop_refuses_bad_extras_before_running(rng):
    n, t, d, h = 4, 3, 32, 32
    _, Wx, Wh, _, cs, gates, tanh_c = _forward_state(rng, n, t, d, h)
    f = np.float32
    dh_tm, Wh_t, Wx_t = np.zeros((t, n, h), f), _gemm.transposed(Wh), _gemm.transposed(Wx)
    da = np.zeros_like(gates)

    def call(*extra, dh=dh_tm, threads=2, da=da, wh_t=Wh_t):
        _ext.lstm_steps_backward(dh, wh_t, gates, tanh_c, cs, da, np.zeros((n, h), f),
                                 np.zeros((n, h), f), threads, *extra)

    dx = np.full((n, t, d), 7.0, f)
    with pytest.raises(ValueError, match="dx must be given"):
        call(Wx_t)
    with pytest.raises(ValueError, match="Wx_t must be given"):
        call(None, dx)
    with pytest.raises(ValueError, match="multiple of 32"):
        call(np.zeros((4 * h, 40), f), np.zeros((n, t, 40), f))
    with pytest.raises(ValueError, match="dx must have shape"):
        call(Wx_t, np.zeros((n, t + 1, d), f))
    with pytest.raises(ValueError, match="Wx_t must have shape"):
        call(Wx_t[:-1].copy(), dx)
    with pytest.raises(ValueError, match="db_parts must have shape"):
        call(Wx_t, dx, np.zeros((1, 4 * h)))         # two threads, one row
    with pytest.raises(ValueError, match="db_parts must have shape"):
        call(None, None, np.zeros((2, 4 * h - 1)))
    x, hs = np.zeros((n, t, d), f), np.zeros((t + 1, n, h), f)
    dW = np.full((d + h, 4 * h), 7.0, f)
    with pytest.raises(ValueError, match="x, hs and dW must be given together"):
        call(Wx_t, dx, None, x, hs)
    with pytest.raises(ValueError, match="x, hs and dW must be given together"):
        call(None, None, None, None, None, dW)
    with pytest.raises(ValueError, match="dW must have shape"):
        call(Wx_t, dx, None, x, hs, np.zeros((d + h + 1, 4 * h), f))
    with pytest.raises(ValueError, match="hs must have shape"):
        call(Wx_t, dx, None, x, hs[:-1].copy(), dW)
    with pytest.raises(ValueError, match="rows must be contiguous"):
        call(dh=np.zeros((t, n, 2 * h), f)[:, :, ::2])
    with pytest.raises(ValueError, match="da's rows must be contiguous"):
        call(da=np.zeros((t, n, 8 * h), f)[:, :, ::2])
    with pytest.raises(ValueError, match="evenly spaced over the steps"):
        call(Wx_t, dx, None, x, hs, dW, da=np.zeros((t, n + 1, 4 * h), f)[:, :n])
    with pytest.raises(ValueError, match="D >= 1"):
        call(Wx_t, dx, None, np.zeros((n, t, 0), f), hs, np.zeros((h, 4 * h), f))
    with pytest.raises(ValueError, match="Wh_t's rows must be contiguous"):
        call(wh_t=np.zeros((4 * h, 2 * h), f)[:, ::2])
    # negative strides (reversed rows) are refused, not read out of bounds
    with pytest.raises(ValueError, match="Wh_t's rows must be contiguous"):
        call(wh_t=Wh_t[::-1])
    with pytest.raises(ValueError, match="da's rows must be contiguous"):
        call(da=np.zeros_like(gates)[:, ::-1])
    with pytest.raises(ValueError, match="Wx_t's rows must be contiguous"):
        call(np.zeros((4 * h, 2 * d), f)[:, ::2], dx)
    assert (dx == 7.0).all() and (dW == 7.0).all() and not da.any()   # nothing ran
    # without dW the steps may be any distance apart (only the weight product reads across)
    spaced = np.zeros((t, n + 1, 4 * h), f)[:, :n]
    call(Wx_t, dx, np.zeros((2, 4 * h)), da=spaced, dh=np.ones((t, n, h), f))
    assert spaced.any() and np.isfinite(dx).all()
    call(Wx_t, dx, np.zeros((2, 4 * h)))                 # the well-formed call runs
    assert np.isfinite(dx).all()


@needs_sgemm
@pytest.mark.parametrize("threads", [1, 2])
def test_forward_loop_writes_the_batch_major_output(rng, threads):
    n, t, d, h = 5, 4, 32, 32
    x, Wx, Wh = _f32(rng, n, t, d), _f32(rng, d, 4 * h, scale=0.2), _f32(rng, h, 4 * h, scale=0.2)
    b = _f32(rng, 4 * h)
    f = np.float32
    gates, tanh_c = np.zeros((t, n, 4 * h), f), np.zeros((t, n, h), f)
    hs, cs = np.zeros((t + 1, n, h), f), np.zeros((t + 1, n, h), f)
    hs[0], cs[0] = _f32(rng, n, h), _f32(rng, n, h)
    out = np.full((n, t, h), np.nan, f)
    with pytest.raises(ValueError, match="out must have shape"):
        _ext.lstm_steps_forward(gates, Wh, b, hs, cs, tanh_c, threads, x, Wx, out[:, 1:].copy())
    _ext.lstm_steps_forward(gates, Wh, b, hs, cs, tanh_c, threads, x, Wx, out)
    np.testing.assert_array_equal(out, hs[1:].transpose(1, 0, 2))


@pytest.mark.skipif(_ext is None, reason="fastnn._ext._recurrent not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_cell_with_dprev_c_aliasing_dnext_c(rng, dtype):
    """The sequence code updates the carried dc in place: same bits as separate arrays."""
    n, h = 7, 37
    args = [rng.standard_normal((n, h)).astype(dtype) for _ in range(2)]
    gates = rng.uniform(0.05, 0.95, (n, 4 * h)).astype(dtype)
    tanh_c, prev_c = (rng.uniform(-0.9, 0.9, (n, h)).astype(dtype) for _ in range(2))
    dnext_c = rng.standard_normal((n, h)).astype(dtype)
    da1, dc1 = np.empty((n, 4 * h), dtype), np.empty((n, h), dtype)
    _ext.lstm_cell_backward(args[0], args[1], dnext_c, gates, tanh_c, prev_c, da1, dc1, 1)
    carried, da2 = dnext_c.copy(), np.empty((n, 4 * h), dtype)
    _ext.lstm_cell_backward(args[0], args[1], carried, gates, tanh_c, prev_c, da2, carried, 1)
    np.testing.assert_array_equal(da1, da2)
    np.testing.assert_array_equal(dc1, carried)


@needs_sgemm
@pytest.mark.parametrize("layout", ["batch-major", "time-major view"])
@pytest.mark.parametrize("n, t, d, h", [(1, 1, 32, 32), (6, 3, 64, 32), (6, 3, 40, 32)])
def test_compiled_sequence_backward_matches_float64_twin(rng, layout, n, t, d, h):
    """The whole compiled backward (in-loop dx and db for D = 32, 64; the separate products
    for D = 40) against the NumPy twin in float64."""
    x, Wx, Wh, hs, cs, gates, tanh_c = _forward_state(rng, n, t, d, h)
    dh = _f32(rng, n, t, h)
    if layout == "time-major view":
        dh = np.ascontiguousarray(dh.transpose(1, 0, 2)).transpose(1, 0, 2)
    got = get_impl("lstm_sequence_backward", "compiled")(dh, x, Wx, Wh, hs, cs, gates, tanh_c)
    f64 = [a.astype(np.float64) for a in (dh, x, Wx, Wh, hs, cs, gates, tanh_c)]
    want = get_impl("lstm_sequence_backward", "vectorized")(*f64)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.dtype == np.float32 and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(w).max()),
                                   err_msg=f"output {i}")


@needs_sgemm
@pytest.mark.parametrize("n, t, d, h", [(3, 2, 300, 288), (1, 3, 7, 32), (9, 2, 32, 64)])
def test_compiled_forward_on_packed_weight_panels_matches_float64_twin(rng, n, t, d, h):
    """The forward's products read Wh and Wx as packed 32-column panels; D, H > 256 cross the
    kernel's k blocks (the panel offsets of the second block), D = 7 is not a panel multiple."""
    x, h0, c0 = _f32(rng, n, t, d), _f32(rng, n, h, scale=0.5), _f32(rng, n, h, scale=0.5)
    Wx, Wh = _f32(rng, d, 4 * h, scale=d ** -0.5), _f32(rng, h, 4 * h, scale=h ** -0.5)
    b = _f32(rng, 4 * h, scale=0.1)
    got = get_impl("lstm_sequence_forward", "compiled")(x, h0, c0, Wx, Wh, b)
    want = get_impl("lstm_sequence_forward", "vectorized")(
        *(a.astype(np.float64) for a in (x, h0, c0, Wx, Wh, b)))
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(g, w, rtol=0, atol=2e-5 * max(1.0, np.abs(w).max()),
                                   err_msg=f"output {i}")
