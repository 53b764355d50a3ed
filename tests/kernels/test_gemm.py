"""The compiled AVX-512 float32 product (``fastnn._ext._gemm``, csrc/sgemm.h) and its dispatch
(:mod:`fastnn.kernels._gemm`): agreement with a float64 product over odd sizes, strided and
transposed left operands, accumulation and thread counts; refusals before running; the BLAS
fallback; and the LSTM/RNN sequences on that path (float32, widths that are multiples of 32)
against their twins. (The convolution on that path: tests/kernels/test_conv.py.)"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.kernels import _gemm
from fastnn.kernels.recurrent import _ext

_gext = _gemm._ext
needs_sgemm = pytest.mark.skipif(not (_gemm.AVAILABLE and getattr(_ext, "SGEMM_AVAILABLE", False)),
                                 reason="compiled product needs the extension and AVX-512F")
# float32 sums of k products of unit normals: relative to sqrt(k) (their typical size)
TOL32 = 3e-6


def _check_product(a, b, c_before, accumulate, threads):
    c = c_before.copy()
    _gext.sgemm(a, b, c, accumulate, threads)
    want = a.astype(np.float64) @ b.astype(np.float64)
    if accumulate:
        want += c_before
    scale = np.sqrt(a.shape[1]) + (np.abs(c_before).max() if accumulate else 0.0)
    np.testing.assert_allclose(c, want, rtol=0, atol=TOL32 * scale * 4)


@needs_sgemm
@pytest.mark.parametrize("m", [1, 7, 8, 9, 65, 300])
@pytest.mark.parametrize("k", [1, 3, 257, 600])
@pytest.mark.parametrize("n", [32, 96])
def test_sgemm_matches_float64_product(rng, m, k, n):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    _check_product(a, b, np.full((m, n), np.nan, np.float32), False, 1)


@needs_sgemm
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("layout", ["transposed", "every_other_column", "negative_rows"])
def test_sgemm_strided_left_operand_accumulate_and_threads(rng, layout, threads):
    m, k, n = 37, 290, 64
    if layout == "transposed":
        a = rng.standard_normal((k, m)).astype(np.float32).T
    elif layout == "every_other_column":
        a = rng.standard_normal((m, 2 * k)).astype(np.float32)[:, ::2]
    else:
        a = rng.standard_normal((m, k)).astype(np.float32)[::-1]
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    _check_product(a, b, c, True, threads)
    _check_product(a, b, c, False, threads)


@needs_sgemm
@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(1, 300), panels=st.integers(1, 3),
       threads=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_fuzz_sgemm(m, k, panels, threads, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, 32 * panels)).astype(np.float32)
    _check_product(a, b, np.zeros((m, 32 * panels), np.float32), False, threads)


@needs_sgemm
def test_sgemm_refuses_bad_shapes_before_running():
    a, b = np.ones((4, 5), np.float32), np.ones((5, 32), np.float32)
    c = np.empty((4, 32), np.float32)
    with pytest.raises(ValueError, match="multiple of 32"):
        _gext.sgemm(a, np.ones((5, 30), np.float32), np.empty((4, 30), np.float32), False, 1)
    with pytest.raises(ValueError, match="do not chain"):
        _gext.sgemm(a, np.ones((6, 32), np.float32), c, False, 1)
    with pytest.raises(ValueError, match="do not chain"):
        _gext.sgemm(a, b, np.empty((3, 32), np.float32), False, 1)
    with pytest.raises(ValueError, match="M, K, N >= 1"):
        _gext.sgemm(np.ones((0, 5), np.float32), b, np.empty((0, 32), np.float32), False, 1)
    with pytest.raises(ValueError, match="num_threads"):
        _gext.sgemm(a, b, c, False, 0)
    with pytest.raises(ValueError):   # C must be C-contiguous (the memoryview refuses)
        _gext.sgemm(a, b, np.empty((32, 4), np.float32).T, False, 1)


def _sequence_pair(rng, kind, n, t, d, h):
    from fastnn.kernels import get_impl

    def draw(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    g = 4 if kind == "lstm" else 1
    fwd = {"x": draw(n, t, d), "h0": draw(n, h), "Wx": draw(d, g * h, scale=d ** -0.5),
           "Wh": draw(h, g * h, scale=h ** -0.5), "b": draw(g * h)}
    if kind == "lstm":
        fwd["c0"] = draw(n, h)
    dh = draw(n, t, h)
    results = []
    for impl in ("compiled", "vectorized"):
        out = get_impl(f"{kind}_sequence_forward", impl)(**fwd)
        states = out[1:] if kind == "lstm" else out[1:2]
        grads = get_impl(f"{kind}_sequence_backward", impl)(dh, fwd["x"], fwd["Wx"], fwd["Wh"],
                                                            *states)
        results.append((*out, *grads))
    return results


@needs_sgemm
@pytest.mark.parametrize("kind", ["lstm", "rnn"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(1, 1, 1, 32), (9, 3, 5, 32), (20, 4, 32, 64)])
def test_sequences_on_the_compiled_product_match_the_numpy_twin(rng, kind, threads, shape):
    """float32 with H a multiple of 32 (the step products on the compiled kernel; D = 5 sends
    dx to BLAS, D = 32 keeps it compiled); with two threads the rows split between threads."""
    import fastnn
    from fastnn.kernels import recurrent_sequence

    n, t, d, h = shape
    if kind == "rnn":
        h *= 2
    previous = fastnn.get_num_threads()
    fastnn.set_num_threads(min(threads, fastnn.max_num_threads()))
    try:
        chunks, _ = recurrent_sequence._step_plan(20, 256, 100, 4, True)
        # splitting does not need threadpoolctl when the step products are compiled
        assert len(chunks) == min(threads, fastnn.max_num_threads())
        got, want = _sequence_pair(rng, kind, n, t, d, h)
    finally:
        fastnn.set_num_threads(previous)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.dtype == np.float32 and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(w).max()),
                                   err_msg=f"{kind} output {i}")


@needs_sgemm
def test_lstm_forward_on_the_compiled_product_backward_on_blas(rng):
    """H = 8: 4H = 32 puts the forward's step products on the compiled kernel while the
    backward's (width H) stay on BLAS; both must still agree with the twin."""
    got, want = _sequence_pair(rng, "lstm", 5, 4, 3, 8)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(w).max()),
                                   err_msg=f"output {i}")


@needs_sgemm
def test_compiled_step_loops_refuse_bad_shapes_before_running():
    t, n, h = 3, 4, 8
    f = np.float32
    gates, Wh, b = np.zeros((t, n, 4 * h), f), np.zeros((h, 4 * h), f), np.zeros(4 * h, f)
    hs, cs, tanh_c = np.zeros((t + 1, n, h), f), np.zeros((t + 1, n, h), f), np.zeros((t, n, h), f)
    with pytest.raises(ValueError, match="hs must have shape"):
        _ext.lstm_steps_forward(gates, Wh, b, hs[:t], cs, tanh_c, 1)
    with pytest.raises(ValueError, match="bias must have shape"):
        _ext.lstm_steps_forward(gates, Wh, b[:-1], hs, cs, tanh_c, 1)
    with pytest.raises(ValueError, match="num_threads"):
        _ext.lstm_steps_forward(gates, Wh, b, hs, cs, tanh_c, 0)
    with pytest.raises(TypeError):
        _ext.lstm_steps_forward(gates, Wh, None, hs, cs, tanh_c, 1)
    x, Wx = np.zeros((n, t, 5), f), np.zeros((5, 4 * h), f)
    with pytest.raises(ValueError, match="Wx must be given"):
        _ext.lstm_steps_forward(gates, Wh, b, hs, cs, tanh_c, 1, x)
    with pytest.raises(ValueError, match="x must have shape"):
        _ext.lstm_steps_forward(gates, Wh, b, hs, cs, tanh_c, 1, x[:, :2].copy(), Wx)
    with pytest.raises(ValueError, match="Wx must have shape"):
        _ext.lstm_steps_forward(gates, Wh, b, hs, cs, tanh_c, 1, x, Wx[:4])
    _ext.lstm_steps_forward(gates, Wh, b, hs, cs, tanh_c, 2, x, Wx)   # well-formed: runs
    np.testing.assert_array_equal(gates[:, :, 3 * h:], 0.0)   # tanh(0): zero input, zero state
    odd = np.zeros((t, n, 4 * 5), f)
    with pytest.raises(ValueError, match="multiple of 32"):
        _ext.lstm_steps_forward(odd, np.zeros((5, 20), f), np.zeros(20, f),
                                np.zeros((t + 1, n, 5), f), np.zeros((t + 1, n, 5), f),
                                np.zeros((t, n, 5), f), 1)
    # backward: H = 8 is not a multiple of 32 (its product has width H)
    dprev = np.zeros((n, h), f)
    with pytest.raises(ValueError, match="multiple of 32"):
        _ext.lstm_steps_backward(tanh_c, np.zeros((4 * h, h), f), gates, tanh_c, cs,
                                 np.zeros_like(gates), dprev, dprev.copy(), 1)
    h = 32
    args = [np.zeros((t, n, h), f), np.zeros((4 * h, h), f), np.zeros((t, n, 4 * h), f),
            np.zeros((t, n, h), f), np.zeros((t + 1, n, h), f), np.zeros((t, n, 4 * h), f),
            np.zeros((n, h), f), np.zeros((n, h), f)]
    _ext.lstm_steps_backward(*args, 2)   # the well-formed call runs
    args[4] = args[4][:t]
    with pytest.raises(ValueError, match="cs must have shape"):
        _ext.lstm_steps_backward(*args, 1)


@pytest.mark.skipif(_ext is None, reason="fastnn._ext._recurrent not built")
@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_sequences_without_the_compiled_product_use_blas_and_agree(rng, kind, monkeypatch):
    """What a CPU without AVX-512 runs: every product on BLAS, the step loop in Python."""
    monkeypatch.setattr(_gemm, "AVAILABLE", False)
    got, want = _sequence_pair(rng, kind, 17, 3, 32, 32)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(w).max()),
                                   err_msg=f"{kind} output {i}")


@needs_sgemm
@pytest.mark.parametrize("threads", [1, 2, 5])
def test_sgemm_jobs_computes_every_product(rng, threads):
    shapes = [((300, 37), (300, 64)), ((20, 45), None), ((7, 3), None)]   # first: a transposed
    jobs, wants = [], []
    for (r, cols), _ in shapes:
        a = rng.standard_normal((r, cols)).astype(np.float32)
        a = a.T if r == 300 else a
        b = rng.standard_normal((a.shape[1], 32 * (1 + len(jobs)))).astype(np.float32)
        jobs.append((a, b, np.full((a.shape[0], b.shape[1]), np.nan, np.float32)))
        wants.append(a.astype(np.float64) @ b.astype(np.float64))
    _gext.sgemm_jobs(jobs, threads)
    for (a, _, c), want in zip(jobs, wants, strict=True):
        np.testing.assert_allclose(c, want, rtol=0, atol=TOL32 * np.sqrt(a.shape[1]) * 4)
    _gext.sgemm_jobs([], threads)   # nothing to do


@needs_sgemm
def test_sgemm_jobs_refuses_any_bad_job_before_running():
    good = (np.ones((4, 5), np.float32), np.ones((5, 32), np.float32),
            np.zeros((4, 32), np.float32))
    bad = (np.ones((4, 5), np.float32), np.ones((6, 32), np.float32),
           np.zeros((4, 32), np.float32))
    with pytest.raises(ValueError, match="do not chain"):
        _gext.sgemm_jobs([good, bad], 2)
    assert not good[2].any()   # refused before any product ran
    with pytest.raises(ValueError, match="num_threads"):
        _gext.sgemm_jobs([good], 0)


# ------------------------------------------------------------------ the Python dispatch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [32, 30])
@pytest.mark.parametrize("accumulate", [False, True])
def test_product_dispatch_agrees_with_matmul_on_either_path(rng, dtype, n, accumulate):
    """float32 with N % 32 == 0 runs compiled where available; float64 and N = 30 on BLAS."""
    a = rng.standard_normal((40, 70)).astype(dtype)[:, ::-1]   # any strides for a
    b = rng.standard_normal((70, n)).astype(dtype)
    out = rng.standard_normal((40, n)).astype(dtype)
    want = out.astype(np.float64) * accumulate + a.astype(np.float64) @ b
    assert _gemm.fits(a, b, out) == (_gemm.AVAILABLE and dtype == np.float32 and n == 32)
    got = _gemm.product(a, b, out, accumulate=accumulate)
    assert got is out
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-4 * np.sqrt(70))


def test_fits_refuses_what_the_kernel_cannot_take():
    a, b = np.ones((4, 5), np.float32), np.ones((5, 64), np.float32)
    assert not _gemm.fits(a, np.asfortranarray(b))          # b rows not contiguous
    assert not _gemm.fits(a, b, np.ones((64, 4), np.float32).T)   # out not contiguous
    assert not _gemm.fits(a.astype(np.float64), b)
    assert not _gemm.fits(a, b[:, :48])                     # 48 is no multiple of 32
    assert not _gemm.fits(np.ones((0, 5), np.float32), b)   # empty


@pytest.mark.parametrize("available", [True, False])
def test_products_run_every_job_on_either_path(rng, monkeypatch, available):
    if not available:
        monkeypatch.setattr(_gemm, "AVAILABLE", False)
    jobs = [(rng.standard_normal((m, k)).astype(np.float32),
             rng.standard_normal((k, 64)).astype(np.float32), np.empty((m, 64), np.float32))
            for m, k in ((3, 17), (50, 9), (12, 300))]
    _gemm.products(jobs)
    for a, b, out in jobs:
        np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=0, atol=1e-4 * 20)
    _gemm.products([])   # nothing to do
