"""The LSTM step loops' fused pieces against plain references: the forward cell in one pass per
hidden unit (in place or not, every addend/bias combination), the forward's two in-place
products per step (x_t @ Wx, then += h_{t-1} @ Wh), the weight gradients computed inside the
backward call (one product over [x_t, h_{t-1}], packed step by step, after the last step;
32-column blocks of dW split between the threads), padded rows of da, Wh.T and Wx.T, and the
transposes of Wh and Wx the backward call writes for its own products."""

import numpy as np
import pytest

from fastnn.kernels import _gemm, get_impl
from fastnn.kernels.recurrent import _ext

needs_sgemm = pytest.mark.skipif(not (_gemm.AVAILABLE and getattr(_ext, "SGEMM_AVAILABLE", False)),
                                 reason="compiled product needs the extension and AVX-512F")
needs_ext = pytest.mark.skipif(_ext is None, reason="fastnn._ext._recurrent not built")


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _cell_reference(a, prev_c):
    """The LSTM cell in float64 NumPy (gate order i, f, o, g)."""
    a, prev_c = a.astype(np.float64), prev_c.astype(np.float64)
    h = prev_c.shape[1]
    sig = 1.0 / (1.0 + np.exp(-a[:, :3 * h]))
    g = np.tanh(a[:, 3 * h:])
    c = sig[:, h:2 * h] * prev_c + sig[:, :h] * g
    return np.concatenate([sig, g], 1), c, np.tanh(c), sig[:, 2 * h:] * np.tanh(c)


@needs_ext
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, h", [(1, 1), (7, 37), (3, 64)])
@pytest.mark.parametrize("extras", ["none", "addend", "bias", "both"])
def test_forward_cell_one_pass_matches_float64_in_place_or_not(rng, dtype, n, h, extras):
    """Every addend/bias combination; the gates written over the pre-activations (as the step
    loop does) give the same bits as separate outputs; saturated inputs stay finite."""
    a = (rng.standard_normal((n, 4 * h)) * 4).astype(dtype)
    a[0, 0], a[-1, -1] = 120.0, -120.0
    add = rng.standard_normal((n, 4 * h)).astype(dtype) if extras in ("addend", "both") else None
    bias = rng.standard_normal(4 * h).astype(dtype) if extras in ("bias", "both") else None
    prev_c = rng.standard_normal((n, h)).astype(dtype)
    outs = [np.empty((n, 4 * h), dtype)] + [np.empty((n, h), dtype) for _ in range(3)]
    _ext.lstm_cell_forward(a, add, bias, prev_c, *outs, 1)
    pre = a + (add if add is not None else 0) + (bias if bias is not None else 0)
    want = _cell_reference(pre, prev_c)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for got, w in zip(outs, want, strict=True):
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, w, rtol=tol * 4, atol=tol * 4)
    inplace = a.copy()
    rest = [np.empty((n, h), dtype) for _ in range(3)]
    _ext.lstm_cell_forward(inplace, add, bias, prev_c, inplace, *rest, 2)
    for got, w in zip([inplace] + rest, outs, strict=True):
        np.testing.assert_array_equal(got, w)


def _forward_inputs(rng, n, t, d, h):
    x = _f32(rng, n, t, d)
    Wx, Wh = _f32(rng, d, 4 * h, scale=d ** -0.5), _f32(rng, h, 4 * h, scale=h ** -0.5)
    b = _f32(rng, 4 * h, scale=0.1)
    h0, c0 = _f32(rng, n, h, scale=0.5), _f32(rng, n, h, scale=0.5)
    return x, Wx, Wh, b, h0, c0


def _steps_forward(x, Wx, Wh, b, h0, c0, threads):
    n, t, _ = x.shape
    h = Wh.shape[0]
    f = np.float32
    gates = np.full((t, n, 4 * h), np.nan, f)
    hs, cs = np.zeros((t + 1, n, h), f), np.zeros((t + 1, n, h), f)
    hs[0], cs[0] = h0, c0
    tanh_c, out = np.zeros((t, n, h), f), np.zeros((n, t, h), f)
    _ext.lstm_steps_forward(gates, Wh, b, hs, cs, tanh_c, threads, x, Wx, out)
    return out, hs, cs, gates, tanh_c


@needs_sgemm
@pytest.mark.parametrize("n, t, d, h", [(1, 1, 1, 32), (5, 3, 7, 32), (13, 2, 33, 64)])
def test_forward_products_in_place_match_float64_and_any_thread_count(rng, n, t, d, h):
    """x_t @ Wx then += h_{t-1} @ Wh per step, both operands read in place (x's rows T*D apart):
    float64 agreement, and the same bits with 1, 2 or 3 threads (each row's sums run in the same
    order whichever thread owns it); N = 1 with more threads than rows."""
    inputs = _forward_inputs(rng, n, t, d, h)
    runs = [_steps_forward(*inputs, threads) for threads in (1, 2, 3)]
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    x, Wx, Wh, b, h0, c0 = (a.astype(np.float64) for a in inputs)
    want = get_impl("lstm_sequence_forward", "vectorized")(x, h0, c0, Wx, Wh, b)
    got = runs[0]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(g, w, rtol=0, atol=2e-5 * max(1.0, np.abs(w).max()),
                                   err_msg=f"output {i}")


def _backward_state(rng, n, t, d, h):
    x, Wx, Wh, b, h0, c0 = _forward_inputs(rng, n, t, d, h)
    _, hs, cs, gates, tanh_c = _steps_forward(x, Wx, Wh, b, h0, c0, 1)
    return x, Wx, Wh, hs, cs, gates, tanh_c, _f32(rng, n, t, h)


def _padded(a, pad):
    """``a`` copied into the leading columns of a wider array: rows ``pad`` floats longer."""
    wide = np.full(a.shape[:-1] + (a.shape[-1] + pad,), np.nan, a.dtype)
    wide[..., :a.shape[-1]] = a
    return wide[..., :a.shape[-1]]


def _steps_backward(state, threads, weights, pad=0):
    x, Wx, Wh, hs, cs, gates, tanh_c, dh = state
    n, t, d = x.shape
    h = Wh.shape[0]
    f = np.float32
    da = _padded(np.full(gates.shape, np.nan, f), pad)
    dprev_h, dprev_c = np.zeros((n, h), f), np.zeros((n, h), f)
    dx = np.full((n, t, d), np.nan, f)
    db_parts = np.zeros((threads, 4 * h))
    dW = np.full((d + h, 4 * h), np.nan, f) if weights else None
    operands = (x, hs) if weights else (None, None)
    _ext.lstm_steps_backward(dh.transpose(1, 0, 2), _padded(_gemm.transposed(Wh), pad), gates,
                             tanh_c, cs, da, dprev_h, dprev_c, threads,
                             _padded(_gemm.transposed(Wx), pad), dx, db_parts, *operands, dW)
    return (da, dprev_h, dprev_c, dx, db_parts), dW


def _weight_gradients_float64(x, hs, da):
    """sum over t of [x_t, h_{t-1}].T @ da[t], in float64"""
    t, n, _ = da.shape
    xh = np.concatenate([x.transpose(1, 0, 2), hs[:-1]], 2).reshape(t * n, -1)
    return xh.astype(np.float64).T @ da.reshape(t * n, -1).astype(np.float64)


@needs_sgemm
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n, t, d, h", [(1, 1, 32, 32), (5, 3, 64, 32), (13, 2, 32, 96),
                                        (7, 40, 32, 64)])
def test_backward_call_weight_gradients_match_float64(rng, threads, n, t, d, h):
    """dW = [x_t, h_{t-1}].T @ da over all steps (its A packed step by step, 12-row tiles
    across the x/h boundary; T*N = 280 terms summed per tile), computed after the last step by
    the same threads over 32-column blocks of dW (with N = 1 only one thread runs the steps
    and dW), agrees with float64; everything else is bit-identical to the call without dW."""
    state = _backward_state(rng, n, t, d, h)
    plain, _ = _steps_backward(state, threads, False)
    fused, dW = _steps_backward(state, threads, True)
    for name, a, b in zip(("da", "dprev_h", "dprev_c", "dx", "db_parts"), plain, fused,
                          strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
    want = _weight_gradients_float64(state[0], state[3], plain[0])
    np.testing.assert_allclose(dW, want, rtol=0,
                               atol=1e-5 * np.sqrt(t * n) * max(1.0, np.abs(want).max()))


@needs_sgemm
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n, t, d, h", [(5, 3, 64, 32), (13, 2, 32, 96)])
def test_backward_call_reads_padded_rows_bit_for_bit(rng, threads, n, t, d, h):
    """da, Wh.T and Wx.T as views of arrays with 16 more floats per row (as the sequence
    backward passes them, so rows 1 KB apart do not share cache sets) give the same bits as
    contiguous ones, dW included."""
    state = _backward_state(rng, n, t, d, h)
    plain, dW = _steps_backward(state, threads, True)
    padded, dW_padded = _steps_backward(state, threads, True, pad=16)
    assert padded[0].strides[1] == (4 * h + 16) * 4
    for name, a, b in zip(("da", "dprev_h", "dprev_c", "dx", "db_parts", "dW"),
                          plain + (dW,), padded + (dW_padded,), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


@needs_sgemm
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n, t, d, h", [(1, 1, 7, 32), (5, 3, 33, 64)])
def test_weight_gradients_when_d_plus_h_is_not_whole_columns(rng, threads, n, t, d, h):
    """D + H not a multiple of 32 nor of the 12-row tiles (a direct call without dx): dW agrees
    with float64 (the last, partial tile included) and leaves the rest of the call
    bit-identical."""
    x, _, Wh, hs, cs, gates, tanh_c, dh = _backward_state(rng, n, t, d, h)
    f = np.float32
    outs = []
    for weights in (False, True):
        da = np.full(gates.shape, np.nan, f)
        dprev_h, dprev_c = np.zeros((n, h), f), np.zeros((n, h), f)
        dW = np.full((d + h, 4 * h), np.nan, f) if weights else None
        operands = (x, hs) if weights else (None, None)
        _ext.lstm_steps_backward(dh.transpose(1, 0, 2), _gemm.transposed(Wh), gates, tanh_c,
                                 cs, da, dprev_h, dprev_c, threads, None, None, None, *operands,
                                 dW)
        outs.append((da, dprev_h, dprev_c, dW))
    for name, a, b in zip(("da", "dprev_h", "dprev_c"), outs[0][:3], outs[1][:3], strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
    want = _weight_gradients_float64(x, hs, outs[1][0])
    np.testing.assert_allclose(outs[1][3], want, rtol=0,
                               atol=1e-5 * np.sqrt(t * n) * max(1.0, np.abs(want).max()))


@needs_sgemm
def test_backward_call_refuses_bad_weight_gradient_arguments(rng):
    x, Wx, Wh, hs, cs, gates, tanh_c, dh = _backward_state(rng, 4, 3, 32, 32)
    n, t, d = x.shape
    h = Wh.shape[0]
    f = np.float32
    da = np.zeros_like(gates)
    dW = np.full((d + h, 4 * h), 7.0, f)

    def call(*extra):
        _ext.lstm_steps_backward(dh.transpose(1, 0, 2), _gemm.transposed(Wh), gates, tanh_c, cs,
                                 da, np.zeros((n, h), f), np.zeros((n, h), f), 2,
                                 _gemm.transposed(Wx), np.zeros((n, t, d), f), None, *extra)

    with pytest.raises(ValueError, match="x, hs and dW must be given together"):
        call(None, None, dW)
    with pytest.raises(ValueError, match="x, hs and dW must be given together"):
        call(x, hs, None)
    with pytest.raises(ValueError, match="dW must have shape"):
        call(x, hs, dW[1:].copy())
    with pytest.raises(ValueError, match="dW must have shape"):
        call(x, hs, np.zeros((d + h, 4 * h - 32), f))
    with pytest.raises(ValueError, match="x must have shape"):
        call(x[:, 1:].copy(), hs, dW)
    assert (dW == 7.0).all() and not da.any()   # nothing ran
    call(x, hs, dW)                              # the well-formed call runs
    assert np.isfinite(dW).all()


@needs_sgemm
def test_sequence_backward_recycles_dW_only_when_unreferenced(rng):
    """dWx and dWh are views of one recycled (D+H, 4H) array: held from one call, the next call
    writes a fresh one and leaves them as they were."""
    x, Wx, Wh, hs, cs, gates, tanh_c, dh = _backward_state(rng, 4, 2, 32, 32)
    backward = get_impl("lstm_sequence_backward", "compiled")
    first = backward(dh, x, Wx, Wh, hs, cs, gates, tanh_c)
    kept = [a.copy() for a in first[3:5]]
    second = backward(2 * dh, x, Wx, Wh, hs, cs, gates, tanh_c)
    for old, new, copy in zip(first[3:5], second[3:5], kept, strict=True):
        assert not np.shares_memory(old, new)
        np.testing.assert_array_equal(old, copy)
        np.testing.assert_allclose(new, 2 * copy, rtol=1e-5, atol=1e-5 * np.abs(copy).max())
    del first, old
    third = backward(dh, x, Wx, Wh, hs, cs, gates, tanh_c)
    np.testing.assert_allclose(third[4], kept[1], rtol=1e-6, atol=1e-6)


@needs_sgemm
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n, t, d, h", [(1, 1, 32, 32), (13, 2, 64, 96)])
@pytest.mark.parametrize("pad", [0, 16])
def test_backward_call_transposes_the_weights_itself(rng, threads, n, t, d, h, pad):
    """With Wh and Wx the call writes Wh.T and Wx.T into Wh_t and Wx_t (exactly; into padded
    rows as well, leaving the padding alone) before the steps, and every output is
    bit-identical to a call given the transposes; Wh alone (the loop without dx) as well."""
    state = _backward_state(rng, n, t, d, h)
    x, Wx, Wh, hs, cs, gates, tanh_c, dh = state
    plain, dW_plain = _steps_backward(state, threads, True)
    f = np.float32
    Wh_t = _padded(np.full((4 * h, h), np.nan, f), pad)
    Wx_t = _padded(np.full((4 * h, d), np.nan, f), pad)
    da = np.full(gates.shape, np.nan, f)
    dprev_h, dprev_c = np.zeros((n, h), f), np.zeros((n, h), f)
    dx = np.full((n, t, d), np.nan, f)
    db_parts, dW = np.zeros((threads, 4 * h)), np.full((d + h, 4 * h), np.nan, f)
    _ext.lstm_steps_backward(dh.transpose(1, 0, 2), Wh_t, gates, tanh_c, cs, da, dprev_h,
                             dprev_c, threads, Wx_t, dx, db_parts, x, hs, dW, Wh, Wx)
    np.testing.assert_array_equal(Wh_t, Wh.T)
    np.testing.assert_array_equal(Wx_t, Wx.T)
    if pad:   # the padding after each row untouched
        assert np.isnan(Wh_t.base[:, h:]).all() and np.isnan(Wx_t.base[:, d:]).all()
    for name, a, b in zip(("da", "dprev_h", "dprev_c", "dx", "db_parts", "dW"),
                          plain + (dW_plain,), (da, dprev_h, dprev_c, dx, db_parts, dW),
                          strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
    alone = np.full((4 * h, h), np.nan, f)
    da2, dprev_h2, dprev_c2 = np.empty_like(da), np.zeros((n, h), f), np.zeros((n, h), f)
    _ext.lstm_steps_backward(dh.transpose(1, 0, 2), alone, gates, tanh_c, cs, da2, dprev_h2,
                             dprev_c2, threads, Wh=Wh)
    np.testing.assert_array_equal(alone, Wh.T)
    for a, b in zip((da, dprev_h, dprev_c), (da2, dprev_h2, dprev_c2), strict=True):
        np.testing.assert_array_equal(a, b)


@needs_sgemm
def test_backward_call_refuses_bad_weights_to_transpose(rng):
    x, Wx, Wh, _, cs, gates, tanh_c, dh = _backward_state(rng, 4, 3, 32, 32)
    n, t, d = x.shape
    h = Wh.shape[0]
    f = np.float32
    da = np.zeros_like(gates)
    Wh_t, Wx_t = np.zeros((4 * h, h), f), np.zeros((4 * h, d), f)

    def call(*extra, wh_t=Wh_t, **named):
        _ext.lstm_steps_backward(dh.transpose(1, 0, 2), wh_t, gates, tanh_c, cs, da,
                                 np.zeros((n, h), f), np.zeros((n, h), f), 2, *extra, **named)

    dx = np.zeros((n, t, d), f)
    with pytest.raises(ValueError, match="Wh must have shape"):
        call(Wh=Wh[:, :-32].copy())
    with pytest.raises(ValueError, match="Wx needs Wh"):
        call(Wx_t, dx, Wx=Wx)
    with pytest.raises(ValueError, match="Wx needs Wh"):
        call(Wh=Wh, Wx=Wx)                          # no Wx_t and dx to fill
    with pytest.raises(ValueError, match="Wx must have shape"):
        call(Wx_t, dx, Wh=Wh, Wx=Wx[1:].copy())
    read_only = np.zeros((4 * h, h), f)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        call(wh_t=read_only, Wh=Wh)
    assert not Wh_t.any() and not Wx_t.any() and not da.any()   # nothing ran
    call(Wx_t, dx, Wh=Wh, Wx=Wx)                     # the well-formed call runs
    np.testing.assert_array_equal(Wx_t, Wx.T)
