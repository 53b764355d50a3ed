"""Recurrent kernels: the looped, NumPy and compiled LSTM/RNN cells and sequences agree (random
shapes including N=1, T=1, H=1, D=1, non-contiguous input, float32 and float64), stay finite on
extreme pre-activations, propagate NaN, and the compiled entry points refuse bad shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.kernels import available_impls, get_impl
from fastnn.kernels.recurrent import _ext

CELL_OPS = ("lstm_cell_forward", "lstm_cell_backward", "rnn_cell_forward", "rnn_cell_backward")
SEQUENCE_OPS = ("lstm_sequence_forward", "lstm_sequence_backward", "rnn_sequence_forward",
                "rnn_sequence_backward")
# (N, T, D, H): odd sizes and every size 1
SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (1, 4, 3, 1), (3, 1, 1, 2), (5, 7, 2, 3), (4, 2, 6, 1)]
# float64: every implementation does the same arithmetic in another order (and the compiled
# exp/tanh are within a few ulp); float32: a few ulp of float32 through T steps
TOL = {np.float64: 1e-11, np.float32: 2e-5}

compiled = pytest.mark.skipif(_ext is None, reason="fastnn._ext._recurrent not built")


def _lstm_problem(rng, n, t, d, h, dtype=np.float64):
    def draw(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    forward = {"x": draw(n, t, d), "h0": draw(n, h), "c0": draw(n, h),
               "Wx": draw(d, 4 * h, scale=0.7), "Wh": draw(h, 4 * h, scale=0.7),
               "b": draw(4 * h)}
    return forward, draw(n, t, h)


def _rnn_problem(rng, n, t, d, h, dtype=np.float64):
    forward, dh = _lstm_problem(rng, n, t, d, h, dtype)
    forward.pop("c0")
    forward["Wx"], forward["Wh"], forward["b"] = (forward[k][..., :h] for k in ("Wx", "Wh", "b"))
    return {k: np.ascontiguousarray(v) for k, v in forward.items()}, dh


def _assert_all_close(got, want, tol, label):
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape and g.dtype == w.dtype, (label, i, g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"{label} output {i}")


def _lstm_all(impl, forward, dh):
    out = get_impl("lstm_sequence_forward", impl)(**forward)
    _, hs, cs, gates, tanh_c = out
    grads = get_impl("lstm_sequence_backward", impl)(dh, forward["x"], forward["Wx"],
                                                      forward["Wh"], hs, cs, gates, tanh_c)
    return (*out, *grads)


def _rnn_all(impl, forward, dh):
    out = get_impl("rnn_sequence_forward", impl)(**forward)
    grads = get_impl("rnn_sequence_backward", impl)(dh, forward["x"], forward["Wx"],
                                                     forward["Wh"], out[1])
    return (*out, *grads)


def test_every_operation_has_three_implementations():
    for op in CELL_OPS + SEQUENCE_OPS:
        assert {"naive", "vectorized"} <= set(available_impls(op))
        if _ext is not None:
            assert "compiled" in available_impls(op)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_lstm_sequence_implementations_agree(rng, shape, dtype):
    forward, dh = _lstm_problem(rng, *shape, dtype=dtype)
    reference = _lstm_all("naive", forward, dh)
    for impl in available_impls("lstm_sequence_forward"):
        _assert_all_close(_lstm_all(impl, forward, dh), reference, TOL[dtype], impl)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_rnn_sequence_implementations_agree(rng, shape, dtype):
    forward, dh = _rnn_problem(rng, *shape, dtype=dtype)
    reference = _rnn_all("naive", forward, dh)
    for impl in available_impls("rnn_sequence_forward"):
        _assert_all_close(_rnn_all(impl, forward, dh), reference, TOL[dtype], impl)


def test_sequence_states_are_time_major_with_the_initial_state_first(rng):
    forward, _ = _lstm_problem(rng, 2, 3, 4, 5)
    h, hs, cs, gates, tanh_c = get_impl("lstm_sequence_forward")(**forward)
    assert hs.shape == cs.shape == (4, 2, 5) and gates.shape == (3, 2, 20)
    np.testing.assert_array_equal(hs[0], forward["h0"])
    np.testing.assert_array_equal(cs[0], forward["c0"])
    np.testing.assert_array_equal(h, hs[1:].transpose(1, 0, 2))
    np.testing.assert_allclose(tanh_c, np.tanh(cs[1:]), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("impl", ["vectorized", "compiled"])
def test_float32_tracks_float64(rng, impl):
    if impl not in available_impls("lstm_sequence_forward"):
        pytest.skip("compiled kernels not built")
    forward, dh = _lstm_problem(rng, 4, 6, 5, 7)
    exact = _lstm_all("naive", forward, dh)
    single = _lstm_all(impl, {k: v.astype(np.float32) for k, v in forward.items()},
                       dh.astype(np.float32))
    for s, e in zip(single, exact, strict=True):
        assert s.dtype == np.float32
        np.testing.assert_allclose(s, e, rtol=1e-4, atol=1e-5)


def test_non_contiguous_inputs_give_the_contiguous_result(rng):
    forward, dh = _lstm_problem(rng, 3, 4, 5, 2)
    wide = {k: np.repeat(v, 2, axis=-1)[..., ::2] for k, v in forward.items()}
    assert not wide["x"].flags.c_contiguous
    for impl in available_impls("lstm_sequence_forward"):
        _assert_all_close(_lstm_all(impl, wide, np.asfortranarray(dh)),
                          _lstm_all(impl, forward, dh), 0.0, impl)


@pytest.mark.parametrize("op", CELL_OPS)
def test_cells_agree_and_keep_dtype(rng, op):
    n, h = 5, 3
    calls = {
        "lstm_cell_forward": (rng.standard_normal((n, 4 * h)) * 3, rng.standard_normal((n, h))),
        "lstm_cell_backward": (rng.standard_normal((n, h)), rng.standard_normal((n, h)),
                               rng.random((n, 4 * h)), rng.uniform(-1, 1, (n, h)),
                               rng.standard_normal((n, h))),
        "rnn_cell_forward": (rng.standard_normal((n, h)) * 3,),
        "rnn_cell_backward": (rng.standard_normal((n, h)), rng.uniform(-1, 1, (n, h))),
    }
    for dtype in (np.float64, np.float32):
        args = tuple(a.astype(dtype) for a in calls[op])
        want = get_impl(op, "naive")(*args)
        want = want if isinstance(want, tuple) else (want,)
        for impl in available_impls(op):
            got = get_impl(op, impl)(*args)
            _assert_all_close(got if isinstance(got, tuple) else (got,), want, TOL[dtype], impl)


@pytest.mark.parametrize("impl", ["naive", "vectorized", "compiled"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extreme_pre_activations_saturate_without_overflow(impl, dtype):
    if impl not in available_impls("lstm_cell_forward"):
        pytest.skip("compiled kernels not built")
    big = np.array([[-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4, -0.0]], dtype=dtype)
    a = np.concatenate([big, big, big, big], axis=1)
    with np.errstate(over="raise", invalid="raise"):  # underflow to 0 is the right answer
        next_h, next_c, gates, _ = get_impl("lstm_cell_forward", impl)(
            a, np.zeros((1, 8), dtype=dtype))
    sig = gates[0, :8]
    np.testing.assert_allclose(sig[[0, 1, 5, 6]], [0.0, 0.0, 1.0, 1.0], atol=1e-30)
    assert sig[3] == 0.5 and 0 < sig[2] < 1e-12 and 0 <= sig[1] < 1e-37
    np.testing.assert_array_equal(gates[0, 24:][[0, 1, 5, 6]], [-1.0, -1.0, 1.0, 1.0])
    assert np.isfinite(next_h).all() and np.isfinite(next_c).all()
    # tanh keeps relative precision near 0 (no 1 - exp cancellation)
    tiny = np.array([[1e-6, -3e-7, 1e-3]], dtype=dtype)
    np.testing.assert_allclose(get_impl("rnn_cell_forward", impl)(tiny), np.tanh(tiny),
                               rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("impl", ["naive", "vectorized", "compiled"])
def test_nan_propagates(impl):
    if impl not in available_impls("lstm_cell_forward"):
        pytest.skip("compiled kernels not built")
    a = np.zeros((1, 4))
    a[0, 1] = np.nan  # the forget gate of the only unit
    next_h, next_c, _, _ = get_impl("lstm_cell_forward", impl)(a, np.ones((1, 1)))
    assert np.isnan(next_h).all() and np.isnan(next_c).all()
    assert np.isnan(get_impl("rnn_cell_forward", impl)(np.array([[np.nan, 0.0]])))[0, 0]


# --------------------------------------------------------- compiled entry points (defence)
@compiled
def test_compiled_lstm_cell_refuses_mismatched_shapes_before_running():
    n, h = 3, 2
    a, prev_c = np.zeros((n, 4 * h)), np.zeros((n, h))
    outs = [np.empty((n, 4 * h)), np.empty((n, h)), np.empty((n, h)), np.empty((n, h))]
    _ext.lstm_cell_forward(a, None, None, prev_c, *outs, 1)
    with pytest.raises(ValueError, match="a must have shape"):
        _ext.lstm_cell_forward(a[:, :-1].copy(), None, None, prev_c, *outs, 1)
    with pytest.raises(ValueError, match="addend must have shape"):
        _ext.lstm_cell_forward(a, np.zeros((n - 1, 4 * h)), None, prev_c, *outs, 1)
    with pytest.raises(ValueError, match="bias must have shape"):
        _ext.lstm_cell_forward(a, None, np.zeros(3), prev_c, *outs, 1)
    with pytest.raises(ValueError, match="next_h must have shape"):
        _ext.lstm_cell_forward(a, None, None, prev_c, *outs[:3], np.empty((n, h + 1)), 1)
    with pytest.raises(ValueError, match="num_threads"):
        _ext.lstm_cell_forward(a, None, None, prev_c, *outs, 0)
    with pytest.raises(ValueError, match="N >= 1"):
        _ext.lstm_cell_forward(a[:0], None, None, prev_c[:0], *(o[:0] for o in outs), 1)


@compiled
def test_compiled_backward_and_rnn_cells_refuse_mismatched_shapes():
    n, h = 2, 3
    z = np.zeros((n, h))
    with pytest.raises(ValueError, match="gates must have shape"):
        _ext.lstm_cell_backward(z, None, z, np.zeros((n, 3 * h)), z, z, np.empty((n, 4 * h)),
                                np.empty((n, h)), 1)
    with pytest.raises(ValueError, match="addend must have shape"):
        _ext.rnn_cell_backward(z, np.zeros((n, h + 1)), z, np.empty((n, h)), 1)
    with pytest.raises(ValueError, match="next_h must have shape"):
        _ext.rnn_cell_forward(z, None, None, np.empty((n + 1, h)), 1)
    with pytest.raises(ValueError, match="num_threads"):
        _ext.rnn_cell_backward(z, None, z, np.empty((n, h)), -1)


# ------------------------------------------------------------------------- hypothesis fuzz
_DIMS = st.integers(1, 4)


@compiled
@settings(max_examples=25, deadline=None)
@given(n=_DIMS, h=_DIMS, seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 30.0]),
       single=st.booleans())
def test_fuzz_compiled_lstm_cell_matches_the_looped_twin(n, h, seed, scale, single):
    rng = np.random.default_rng(seed)
    dtype = np.float32 if single else np.float64
    a = (rng.standard_normal((n, 4 * h)) * scale).astype(dtype)
    prev_c = (rng.standard_normal((n, h)) * scale).astype(dtype)
    fwd = get_impl("lstm_cell_forward", "compiled")(a, prev_c)
    _assert_all_close(fwd, get_impl("lstm_cell_forward", "naive")(a, prev_c), TOL[dtype], "fwd")
    dnext_h, dnext_c = (rng.standard_normal((n, h)).astype(dtype) for _ in range(2))
    args = (dnext_h, dnext_c, fwd[2], fwd[3], prev_c)
    _assert_all_close(get_impl("lstm_cell_backward", "compiled")(*args),
                      get_impl("lstm_cell_backward", "naive")(*args), TOL[dtype] * scale, "bwd")


@compiled
@settings(max_examples=25, deadline=None)
@given(n=_DIMS, h=_DIMS, seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 30.0]))
def test_fuzz_compiled_rnn_cell_matches_the_looped_twin(n, h, seed, scale):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, h)) * scale
    next_h = get_impl("rnn_cell_forward", "compiled")(a)
    np.testing.assert_allclose(next_h, get_impl("rnn_cell_forward", "naive")(a), rtol=1e-14,
                               atol=1e-15)
    dh = rng.standard_normal((n, h))
    np.testing.assert_allclose(get_impl("rnn_cell_backward", "compiled")(dh, next_h),
                               get_impl("rnn_cell_backward", "naive")(dh, next_h), rtol=1e-14,
                               atol=1e-15)


@compiled
@settings(max_examples=15, deadline=None)
@given(n=_DIMS, t=_DIMS, d=_DIMS, h=_DIMS, seed=st.integers(0, 2**31 - 1))
def test_fuzz_compiled_lstm_sequence_matches_the_looped_twin(n, t, d, h, seed):
    forward, dh = _lstm_problem(np.random.default_rng(seed), n, t, d, h)
    _assert_all_close(_lstm_all("compiled", forward, dh), _lstm_all("naive", forward, dh),
                      1e-11, "compiled")


@compiled
@pytest.mark.parametrize("op", ["lstm", "rnn"])
def test_compiled_sequence_split_into_row_chunks_matches_the_twin(rng, op):
    """Big enough for the threaded path (rows split between threads, BLAS on one thread)."""
    import fastnn
    from fastnn.kernels import recurrent_sequence

    pytest.importorskip("threadpoolctl")
    if fastnn.max_num_threads() < 2:
        pytest.skip("needs two threads")
    previous = fastnn.get_num_threads()
    fastnn.set_num_threads(2)
    try:
        n, t, d, h = 17, 7, 5, 256
        hidden, gates = (h, 4) if op == "lstm" else (4 * h, 1)
        assert len(recurrent_sequence._step_plan(n, hidden, t, gates, False)[0]) == 2
        if op == "lstm":
            forward, dh = _lstm_problem(rng, n, t, d, h)
            got, want = _lstm_all("compiled", forward, dh), _lstm_all("vectorized", forward, dh)
        else:
            forward, dh = _rnn_problem(rng, n, t, d, 4 * h)
            got, want = _rnn_all("compiled", forward, dh), _rnn_all("vectorized", forward, dh)
    finally:
        fastnn.set_num_threads(previous)
    # H = 1024 sums in another order: agreement to a few ulp of the largest terms
    _assert_all_close(got, want, 1e-8, "compiled, two chunks")
