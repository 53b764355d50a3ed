"""The recurrent training step's fast paths against their plain twins: column pieces of a
compiled product (``sgemm_jobs`` with ``j0, j1``), the weight gradients shared out between
threads, the narrow products that read a row-major A in place, the recycled forward outputs,
a time-major upstream gradient read in place, and CharRNN's padded vocabulary head against
CS231n's temporal affine layer and softmax loss."""

import mmap

import numpy as np
import pytest

import fastnn
from fastnn.kernels import _gemm, get_impl
from fastnn.kernels import _recurrent_products as rp
from fastnn.kernels.recurrent import _ext

needs_sgemm = pytest.mark.skipif(not (_gemm.AVAILABLE and getattr(_ext, "SGEMM_AVAILABLE", False)),
                                 reason="compiled product needs the extension and AVX-512F")


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


@needs_sgemm
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_sgemm_jobs_column_pieces_fill_exactly_their_columns(rng, threads):
    a = _f32(rng, 300, 37).T                       # (37, 300), transposed view
    b = _f32(rng, 300, 160)
    c = np.full((37, 160), np.nan, np.float32)
    jobs = [(a, b, c, 0, 64), (a, b, c, 64, 96), (a, b, c, 128, 160)]
    _gemm._ext.sgemm_jobs(jobs, threads)
    want = a.astype(np.float64) @ b
    done = np.r_[0:96, 128:160]
    np.testing.assert_allclose(c[:, done], want[:, done], rtol=0, atol=1e-4 * np.sqrt(300))
    assert np.isnan(c[:, 96:128]).all()           # columns no job named are untouched


@needs_sgemm
def test_sgemm_jobs_refuses_bad_column_ranges_before_running():
    a, b = np.ones((4, 5), np.float32), np.ones((5, 64), np.float32)
    c = np.zeros((4, 64), np.float32)
    for j0, j1 in ((0, 0), (32, 16), (16, 64), (0, 48), (0, 96), (-32, 32)):
        with pytest.raises(ValueError, match="columns"):
            _gemm._ext.sgemm_jobs([(a, b, c), (a, b, c, j0, j1)], 2)
    with pytest.raises(ValueError, match=r"\(a, b, c, j0, j1\)"):
        _gemm._ext.sgemm_jobs([(a, b, c, 0)], 1)
    assert not c.any()                              # refused before any product ran


@pytest.mark.parametrize("available", [True, False])
def test_products_column_pieces_on_either_path(rng, monkeypatch, available):
    if not available:
        monkeypatch.setattr(_gemm, "AVAILABLE", False)
    a, b = _f32(rng, 20, 70), _f32(rng, 70, 96)
    out = np.zeros((20, 96), np.float32)
    _gemm.products([(a, b, out, 0, 64), (a, b, out, 64, 96)])
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=0, atol=1e-4 * 9)


@needs_sgemm
@pytest.mark.parametrize("n", [32, 64])
@pytest.mark.parametrize("accumulate", [False, True])
def test_narrow_products_read_row_major_a_in_place(rng, n, accumulate):
    """N <= 64 with a row-major A skips the packing (several row blocks and k blocks, rows
    every other one of a wider array, a partial last tile)."""
    a = _f32(rng, 2 * 301, 600)[::2]
    b = _f32(rng, 600, n)
    c0 = _f32(rng, 301, n)
    c = c0.copy()
    _gemm._ext.sgemm(a, b, c, accumulate, 2)
    want = a.astype(np.float64) @ b + (c0 if accumulate else 0.0)
    np.testing.assert_allclose(c, want, rtol=0, atol=1e-5 * np.sqrt(600) * 4 + 1e-6)


@needs_sgemm
@pytest.mark.parametrize("n, t, d, h", [(16, 5, 32, 32), (3, 2, 7, 32)])
def test_weight_gradients_shared_out_match_whole_products(rng, monkeypatch, n, t, d, h):
    """The dWh/dWx column pieces and dx row pieces (forced onto two threads) equal the
    float64 products; D = 7 sends everything to BLAS (no pieces)."""
    monkeypatch.setattr(rp, "SEQUENCE_MIN_WORK_PER_THREAD", 1.0)
    seen = []
    original = _gemm.products
    monkeypatch.setattr(_gemm, "products", lambda jobs, *a: seen.append(len(jobs))
                        or original(jobs, *a))
    previous = fastnn.get_num_threads()
    fastnn.set_num_threads(min(2, fastnn.max_num_threads()))
    try:
        x, Wx, Wh = _f32(rng, n, t, d), _f32(rng, d, 4 * h), _f32(rng, h, 4 * h)
        hs, da = _f32(rng, t + 1, n, h), _f32(rng, t, n, 4 * h)
        dx, dWx, dWh, db = rp._weight_gradients(x, Wx, Wh, hs, da)
        split = fastnn.get_num_threads() >= 2
    finally:
        fastnn.set_num_threads(previous)
    # two column pieces of dWh and of dWx, two row pieces of dx (BLAS for D = 7)
    assert seen == ([] if d % 32 else [6] if split else [3])
    rows = da.reshape(t * n, 4 * h).astype(np.float64)
    tol = {"rtol": 0, "atol": 1e-5 * np.sqrt(t * n) * 4}
    np.testing.assert_allclose(dWh, hs[:-1].reshape(t * n, h).T @ rows, **tol)
    np.testing.assert_allclose(dWx, x.transpose(1, 0, 2).reshape(t * n, d).T @ rows, **tol)
    np.testing.assert_allclose(dx, (rows @ Wx.T).reshape(t, n, d).transpose(1, 0, 2), **tol)
    np.testing.assert_allclose(db, rows.sum(axis=0), **tol)


def _lstm_problem(rng, n=6, t=4, d=5, h=32, dtype=np.float32):
    def draw(*s):
        return rng.standard_normal(s).astype(dtype)

    return (draw(n, t, d), draw(n, h), draw(n, h), draw(d, 4 * h) / np.sqrt(d),
            draw(h, 4 * h) / np.sqrt(h), draw(4 * h))


def test_recycled_outputs_are_never_overwritten_while_held(rng):
    forward = get_impl("lstm_sequence_forward", "compiled" if _ext is not None else "vectorized")
    first = _lstm_problem(rng)
    held = forward(*first)
    kept = [a.copy() for a in held]
    forward(*_lstm_problem(rng))                  # other inputs, same shapes
    for a, b in zip(held, kept, strict=True):
        np.testing.assert_array_equal(a, b)
    view = held[1][1:]                            # a view alone also keeps hs alive
    del held
    forward(*_lstm_problem(rng))
    np.testing.assert_array_equal(view, kept[1][1:])


@pytest.mark.parametrize("shape", [(3, 4), (600, 1000)])   # 2.4 MB: on huge-page memory
def test_recycled_reuses_a_buffer_nothing_else_holds(shape):
    a = rp._recycled("test", shape, np.float32)
    address = a.__array_interface__["data"][0]
    held = rp._recycled("test", shape, np.float32)   # `a` still held: a new array
    assert held.__array_interface__["data"][0] != address
    del a
    b = rp._recycled("test", shape, np.float32)      # `held` still held: not it either
    assert b is not held
    del held
    assert rp._recycled("test", shape, np.float32) is not b   # b is held here
    view = b[1:]                                     # a view alone keeps b from reuse
    del b
    again = rp._recycled("test", shape, np.float32)
    assert not np.shares_memory(again, view)
    address = again.ctypes.data
    del again, view
    free = rp._recycled("test", shape, np.float32)   # nothing holds it now: reused
    assert free.ctypes.data == address
    assert rp._recycled("test", (2, 4), np.float32).shape == (2, 4)
    if shape[0] * shape[1] * 4 >= rp._HUGE_MIN_BYTES and hasattr(mmap, "MADV_HUGEPAGE"):
        assert free.ctypes.data % (2 << 20) == 0


def test_scratch_buffers_of_a_megabyte_sit_on_aligned_huge_page_memory():
    """_scratch: a buffer of 1 MB or more starts on a 2 MB boundary where the platform has
    MADV_HUGEPAGE (plain memory otherwise, and always below 1 MB); it is writable, keeps its
    contents from call to call and serves smaller views of itself; growing it allocates anew."""
    big = rp._scratch("test_huge", (513, 512), np.float32)   # just over 1 MB
    assert big.shape == (513, 512) and big.dtype == np.float32 and big.flags.writeable
    if hasattr(mmap, "MADV_HUGEPAGE"):
        assert big.ctypes.data % (2 << 20) == 0
    big[:] = np.arange(big.size, dtype=np.float32).reshape(big.shape)
    again = rp._scratch("test_huge", (4, 8), np.float32)
    assert again.ctypes.data == big.ctypes.data
    np.testing.assert_array_equal(again.ravel(), np.arange(32, dtype=np.float32))
    grown = rp._scratch("test_huge", (1024, 1024), np.float32)
    assert grown.shape == (1024, 1024) and grown.ctypes.data != big.ctypes.data
    small = rp._empty_huge(1000, np.dtype(np.float64))   # 8 KB: plain np.empty
    assert small.flags.owndata and small.shape == (1000,)


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_time_major_upstream_view_gives_the_same_gradients(rng, kind, dtype):
    impls = ["vectorized", "compiled"] if _ext is not None else ["vectorized"]
    x, h0, c0, Wx, Wh, b = _lstm_problem(rng, dtype=dtype)
    if kind == "rnn":
        Wx, Wh, b = Wx[:, :32], Wh[:, :32], b[:32]
        fwd_args = (x, h0, Wx, Wh, b)
    else:
        fwd_args = (x, h0, c0, Wx, Wh, b)
    dh_tm = rng.standard_normal((x.shape[1], x.shape[0], 32)).astype(dtype)
    dh_view = dh_tm.transpose(1, 0, 2)
    for impl in impls:
        out = get_impl(f"{kind}_sequence_forward", impl)(*fwd_args)
        states = out[1:] if kind == "lstm" else out[1:2]
        backward = get_impl(f"{kind}_sequence_backward", impl)
        got = backward(dh_view, x, Wx, Wh, *states)
        want = backward(np.ascontiguousarray(dh_view), x, Wx, Wh, *states)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(dh_view, dh_tm.transpose(1, 0, 2))   # not written


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("vocab", [5, 64, 113])
def test_char_rnn_vocab_head_matches_cs231n_layers(rng, dtype, vocab):
    from fastnn.classifiers.char_rnn import _VocabHead
    from fastnn.layers.temporal import (
        temporal_affine_backward,
        temporal_affine_forward,
        temporal_softmax_loss,
    )

    n, t, h = 3, 7, 16
    hid = rng.standard_normal((n, t, h)).astype(dtype)
    W = (rng.standard_normal((h, vocab)) / 4).astype(dtype)
    bias = rng.standard_normal(vocab).astype(dtype)
    y = rng.integers(0, vocab, (n, t))
    scores, cache = temporal_affine_forward(hid, W, bias)
    want_loss, dscores = temporal_softmax_loss(scores, y, np.ones((n, t), bool))
    want_dh, want_dW, want_db = temporal_affine_backward(dscores / t, cache)
    rows = hid.transpose(1, 0, 2).reshape(t * n, h)      # time-major rows, as the model has
    head = _VocabHead(np.ascontiguousarray(rows), W, bias)
    loss = head.loss(y.T.reshape(-1), n * t)
    dh, dW, db = head.backward()
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(want_loss / t, rel=tol)
    assert dW.shape == W.shape and db.shape == bias.shape and dh.dtype == dtype
    np.testing.assert_allclose(dh.reshape(t, n, h).transpose(1, 0, 2), want_dh, rtol=tol,
                               atol=tol * np.abs(want_dh).max())
    np.testing.assert_allclose(dW, want_dW, rtol=tol, atol=tol * np.abs(want_dW).max())
    np.testing.assert_allclose(db, want_db, rtol=tol, atol=tol * np.abs(want_db).max())


@pytest.mark.parametrize("shape", [(256, 1024), (1024, 256), (37, 45), (17, 31), (16, 16),
                                   (1, 33), (70, 1)])
@pytest.mark.parametrize("layout", ["c", "transposed", "every_other_row", "rows_reversed",
                                    "columns_reversed", "padded_rows"])
def test_transposed_matches_numpy(rng, shape, layout):
    """Every layout, whole 16 x 16 blocks (the AVX-512 path where rows are contiguous) and
    partial ones (the buffered path), negative strides included."""
    base = rng.standard_normal(shape).astype(np.float32)
    a = {"c": base, "transposed": np.ascontiguousarray(base.T).T,
         "every_other_row": np.repeat(base, 2, axis=0)[::2],
         "rows_reversed": np.ascontiguousarray(base[::-1])[::-1],
         "columns_reversed": np.ascontiguousarray(base[:, ::-1])[:, ::-1],
         "padded_rows": np.pad(base, ((0, 0), (0, 16)))[:, :shape[1]]}[layout]
    got = _gemm.transposed(a)
    assert got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_array_equal(got, base.T)
    np.testing.assert_array_equal(_gemm.transposed(base.astype(np.float64)), base.T)


@pytest.mark.skipif(_gemm._ext is None, reason="fastnn._ext._gemm not built")
def test_compiled_transpose_refuses_a_wrong_output():
    with pytest.raises(ValueError, match="out must have shape"):
        _gemm._ext.transpose(np.ones((3, 4), np.float32), np.empty((3, 4), np.float32))
    with pytest.raises(ValueError):   # out must be C-contiguous (the memoryview refuses)
        _gemm._ext.transpose(np.ones((3, 4), np.float32), np.empty((3, 4), np.float32).T)
    _gemm._ext.transpose(np.ones((0, 4), np.float32), np.empty((4, 0), np.float32))  # empty

