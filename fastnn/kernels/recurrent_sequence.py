"""Whole-sequence LSTM and vanilla-RNN kernels, forward and backward, three implementations each
(the cells they run are :mod:`fastnn.kernels.recurrent`).

- ``"naive"``: step by step, the looped cells (plain Python loops over the elements);
- ``"vectorized"``: step by step as in the CS231n assignment: per step ``x_t @ Wx + prev_h @ Wh
  + b``, the NumPy cell, and in backward the weight gradients accumulated one step at a time.
  This is the baseline the compiled version is measured against (``fastnn bench lstm``);
- ``"compiled"``: the input projection ``x @ Wx`` of all T steps in ONE product into a time-major
  (T, N, 4H) buffer (every step's slice contiguous); per step one ``prev_h @ Wh`` and the fused
  compiled cell, which adds that product and the bias to the projection and activates the gates in
  place. Backward keeps ``da`` of every step, so ``dx``, ``dWx`` and ``dWh`` are ONE product each
  over all steps (``hs`` holds h0 in its first slot: the previous hidden states of all steps are
  one contiguous block) and ``db`` one sum; per step only ``da_t @ Wh.T`` and the fused cell
  backward remain. float32 products whose width is a multiple of 32 run on the compiled AVX-512
  kernel (csrc/sgemm.h; OpenBLAS may use only its AVX2 kernels on CPUs newer than its build, half
  the rate), the others on BLAS; on that kernel the whole LSTM step loop is one compiled call
  (``_ext.lstm_steps_forward/backward``), and the forward's call also projects the input: each
  step runs ``x_t @ Wx`` then ``+= h_{t-1} @ Wh`` with both operands read in place (the weights
  packed once into 32-column panels; no projection pass over all steps) and then the cell in one
  pass per hidden unit. The LSTM backward's compiled call also writes ``dx`` (D a multiple of
  32) and sums ``db`` step by step while ``da_t`` is in cache; each thread packs its rows of
  ``[x_t, h_{t-1}]`` step by step into the weight product's A, and after the last step the same
  threads compute ``dWx``, ``dWh`` as ONE product ``[x_t, h_{t-1}].T @ da`` split by 32-column
  blocks, every output tile summing all T*N terms in registers; its ``Wh.T`` and ``Wx.T`` are
  written by the same call (AVX-512 16 x 16 transposes). ``da``, ``Wh.T`` and ``Wx.T`` have
  their rows padded by 16 floats: rows a multiple of 1 KB apart share cache sets. With several
  threads the batch rows are split between threads that each run the whole step loop on their rows
  (compiled products on one thread, or BLAS pinned to one thread with threadpoolctl), and the big
  products split their output rows the same way. The big temporaries live in per-thread buffers
  reused across calls (``_recurrent_products._scratch``).

Signatures (all arrays of one float dtype; the check promotes them and makes them C-contiguous):

- ``lstm_sequence_forward(x (N, T, D), h0 (N, H), c0 (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,))
  -> h (N, T, H), hs (T+1, N, H), cs (T+1, N, H), gates (T, N, 4H), tanh_c (T, N, H)``: the
  time-major ``hs[0] = h0``, ``cs[0] = c0``, and ``hs[t+1]``, ``cs[t+1]`` are the states after
  step t; ``gates`` the activated gates (order i, f, o, g), ``tanh_c = tanh(cs[1:])``;
- ``lstm_sequence_backward(dh (N, T, H), x, Wx, Wh, hs, cs, gates, tanh_c)
  -> dx, dh0, dc0, dWx, dWh, db``;
- ``rnn_sequence_forward(x, h0, Wx (D, H), Wh (H, H), b (H,)) -> h (N, T, H), hs (T+1, N, H)``;
- ``rnn_sequence_backward(dh, x, Wx, Wh, hs) -> dx, dh0, dWx, dWh, db``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fastnn.kernels import _gemm
from fastnn.kernels._operation import Operation
from fastnn.kernels._recurrent_products import (
    _fast_product,
    _input_projection,
    _product,
    _recycled,
    _run_on_chunks,
    _scratch,
    _step_plan,
    _step_threads,
    _time_major,
    _weight_gradients,
)
from fastnn.kernels.recurrent import (
    _common,
    _expect,
    _ext,
    _lstm_cell_backward_naive,
    _lstm_cell_backward_vectorized,
    _lstm_cell_forward_naive,
    _lstm_cell_forward_vectorized,
    _ndim,
    _rnn_cell_backward_naive,
    _rnn_cell_backward_vectorized,
    _rnn_cell_forward_naive,
    _rnn_cell_forward_vectorized,
)

# floats of padding after each row of the compiled LSTM backward's gate gradients and
# transposed weights (see there)
_PAD = 16

__all__ = [
    "lstm_sequence_backward",
    "lstm_sequence_forward",
    "rnn_sequence_backward",
    "rnn_sequence_forward",
]


# ------------------------------------------------------------------------------- validation
def _check_weights(x, Wx, Wh, b, gates: int) -> tuple[int, int, int, int]:
    """x (N, T, D), Wx (D, gates*H), Wh (H, gates*H), b (gates*H,) -> N, T, D, H."""
    n, t, d = _ndim("x", x, 3, "(N, T, D)")
    _ndim("Wh", Wh, 2, f"(H, {gates}H)" if gates > 1 else "(H, H)")
    h = Wh.shape[0]
    _expect("Wh", Wh, (h, gates * h), f"H = {h} rows and {gates * h} columns")
    _expect("Wx", Wx, (d, gates * h), f"D = {d} from x, {gates * h} columns from Wh")
    if b is not None:
        _expect("b", b, (gates * h,), f"{gates * h} columns from Wh")
    return n, t, d, h


def _check_lstm_sequence_forward(impl, x, h0, c0, Wx, Wh, b):
    x, h0, c0, Wx, Wh, b = _common({"x": x, "h0": h0, "c0": c0, "Wx": Wx, "Wh": Wh, "b": b})
    n, _, _, h = _check_weights(x, Wx, Wh, b, 4)
    _expect("h0", h0, (n, h), "N from x, H from Wh")
    _expect("c0", c0, (n, h), "N from x, H from Wh")
    return x, h0, c0, Wx, Wh, b


def _check_states(n, t, h, hs, width: int, **arrays) -> None:
    _expect("hs", hs, (t + 1, n, h), "time-major (T+1, N, H) with hs[0] = h0")
    for name, arr in arrays.items():
        cols = width * h if name == "gates" else h
        lead = t + 1 if name == "cs" else t
        _expect(name, arr, (lead, n, cols), "time-major, as the forward returns it")


def _time_major_view(dh) -> bool:
    """``dh`` (N, T, H) is a view of time-major (T, N, H) data (as a model whose loss reads the
    time-major states passes it): the compiled backward then reads it in place."""
    return (type(dh) is np.ndarray and dh.ndim == 3 and dh.size > 0
            and dh.transpose(1, 0, 2).flags.c_contiguous)


def _check_upstream_and_rest(dh, arrays: dict) -> list[np.ndarray]:
    """``_common`` of ``dh`` and ``arrays``, keeping a time-major ``dh`` view as it is when its
    dtype already is the common one."""
    rest = _common(arrays)
    if _time_major_view(dh) and dh.dtype == rest[0].dtype:
        return [dh, *rest]
    return _common({"dh": dh, **arrays})


def _check_lstm_sequence_backward(impl, dh, x, Wx, Wh, hs, cs, gates, tanh_c):
    arrays = _check_upstream_and_rest(dh, {"x": x, "Wx": Wx, "Wh": Wh, "hs": hs, "cs": cs,
                                           "gates": gates, "tanh_c": tanh_c})
    dh, x, Wx, Wh, hs, cs, gates, tanh_c = arrays
    n, t, _, h = _check_weights(x, Wx, Wh, None, 4)
    _expect("dh", dh, (n, t, h), "N, T from x, H from Wh")
    _check_states(n, t, h, hs, 4, cs=cs, gates=gates, tanh_c=tanh_c)
    return tuple(arrays)


def _check_rnn_sequence_forward(impl, x, h0, Wx, Wh, b):
    x, h0, Wx, Wh, b = _common({"x": x, "h0": h0, "Wx": Wx, "Wh": Wh, "b": b})
    n, _, _, h = _check_weights(x, Wx, Wh, b, 1)
    _expect("h0", h0, (n, h), "N from x, H from Wh")
    return x, h0, Wx, Wh, b


def _check_rnn_sequence_backward(impl, dh, x, Wx, Wh, hs):
    dh, x, Wx, Wh, hs = _check_upstream_and_rest(dh, {"x": x, "Wx": Wx, "Wh": Wh, "hs": hs})
    n, t, _, h = _check_weights(x, Wx, Wh, None, 1)
    _expect("dh", dh, (n, t, h), "N, T from x, H from Wh")
    _check_states(n, t, h, hs, 1)
    return dh, x, Wx, Wh, hs


LSTM_SEQUENCE_FORWARD = Operation("lstm_sequence_forward", _check_lstm_sequence_forward)
LSTM_SEQUENCE_BACKWARD = Operation("lstm_sequence_backward", _check_lstm_sequence_backward)
RNN_SEQUENCE_FORWARD = Operation("rnn_sequence_forward", _check_rnn_sequence_forward)
RNN_SEQUENCE_BACKWARD = Operation("rnn_sequence_backward", _check_rnn_sequence_backward)


# ----------------------------------------------------------------- step by step (the twins)
def _lstm_forward_steps(cell, x, h0, c0, Wx, Wh, b):
    n, t_len, _ = x.shape
    h = h0.shape[1]
    hs = np.empty((t_len + 1, n, h), dtype=x.dtype)
    cs = np.empty_like(hs)
    gates = np.empty((t_len, n, 4 * h), dtype=x.dtype)
    tanh_c = np.empty((t_len, n, h), dtype=x.dtype)
    hs[0], cs[0] = h0, c0
    for t in range(t_len):
        a = x[:, t] @ Wx + hs[t] @ Wh + b
        hs[t + 1], cs[t + 1], gates[t], tanh_c[t] = cell(a, cs[t])
    return np.ascontiguousarray(hs[1:].transpose(1, 0, 2)), hs, cs, gates, tanh_c


def _lstm_backward_steps(cell, dh, x, Wx, Wh, hs, cs, gates, tanh_c):
    n, t_len, _ = x.shape
    h = Wh.shape[0]
    dx = np.empty_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * h, dtype=x.dtype)
    dprev_h, dprev_c = np.zeros((n, h), dtype=x.dtype), np.zeros((n, h), dtype=x.dtype)
    for t in reversed(range(t_len)):
        da, dprev_c = cell(dh[:, t] + dprev_h, dprev_c, gates[t], tanh_c[t], cs[t])
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += hs[t].T @ da
        db += da.sum(axis=0)
        dprev_h = da @ Wh.T
    return dx, dprev_h, dprev_c, dWx, dWh, db


def _rnn_forward_steps(cell, x, h0, Wx, Wh, b):
    n, t_len, _ = x.shape
    hs = np.empty((t_len + 1, n, h0.shape[1]), dtype=x.dtype)
    hs[0] = h0
    for t in range(t_len):
        hs[t + 1] = cell(x[:, t] @ Wx + hs[t] @ Wh + b)
    return np.ascontiguousarray(hs[1:].transpose(1, 0, 2)), hs


def _rnn_backward_steps(cell, dh, x, Wx, Wh, hs):
    n, t_len, _ = x.shape
    h = Wh.shape[0]
    dx = np.empty_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(h, dtype=x.dtype)
    dprev_h = np.zeros((n, h), dtype=x.dtype)
    for t in reversed(range(t_len)):
        da = cell(dh[:, t] + dprev_h, hs[t + 1])
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += hs[t].T @ da
        db += da.sum(axis=0)
        dprev_h = da @ Wh.T
    return dx, dprev_h, dWx, dWh, db


@LSTM_SEQUENCE_FORWARD.register("naive")
def _lstm_sequence_forward_naive(x, h0, c0, Wx, Wh, b):
    return _lstm_forward_steps(_lstm_cell_forward_naive, x, h0, c0, Wx, Wh, b)


@LSTM_SEQUENCE_FORWARD.register("vectorized")
def _lstm_sequence_forward_vectorized(x, h0, c0, Wx, Wh, b):
    return _lstm_forward_steps(_lstm_cell_forward_vectorized, x, h0, c0, Wx, Wh, b)


@LSTM_SEQUENCE_BACKWARD.register("naive")
def _lstm_sequence_backward_naive(dh, x, Wx, Wh, hs, cs, gates, tanh_c):
    return _lstm_backward_steps(_lstm_cell_backward_naive, dh, x, Wx, Wh, hs, cs, gates, tanh_c)


@LSTM_SEQUENCE_BACKWARD.register("vectorized")
def _lstm_sequence_backward_vectorized(dh, x, Wx, Wh, hs, cs, gates, tanh_c):
    return _lstm_backward_steps(_lstm_cell_backward_vectorized, dh, x, Wx, Wh, hs, cs, gates,
                                tanh_c)


@RNN_SEQUENCE_FORWARD.register("naive")
def _rnn_sequence_forward_naive(x, h0, Wx, Wh, b):
    return _rnn_forward_steps(_rnn_cell_forward_naive, x, h0, Wx, Wh, b)


@RNN_SEQUENCE_FORWARD.register("vectorized")
def _rnn_sequence_forward_vectorized(x, h0, Wx, Wh, b):
    return _rnn_forward_steps(_rnn_cell_forward_vectorized, x, h0, Wx, Wh, b)


@RNN_SEQUENCE_BACKWARD.register("naive")
def _rnn_sequence_backward_naive(dh, x, Wx, Wh, hs):
    return _rnn_backward_steps(_rnn_cell_backward_naive, dh, x, Wx, Wh, hs)


@RNN_SEQUENCE_BACKWARD.register("vectorized")
def _rnn_sequence_backward_vectorized(dh, x, Wx, Wh, hs):
    return _rnn_backward_steps(_rnn_cell_backward_vectorized, dh, x, Wx, Wh, hs)


@LSTM_SEQUENCE_FORWARD.register("compiled", available=_ext is not None)
def _lstm_sequence_forward_compiled(x, h0, c0, Wx, Wh, b):
    n, t_len, _ = x.shape
    h = h0.shape[1]
    hs = _recycled("hs", (t_len + 1, n, h), x.dtype)
    cs = _recycled("cs", (t_len + 1, n, h), x.dtype)
    tanh_c = _recycled("tanh_c", (t_len, n, h), x.dtype)
    hs[0], cs[0] = h0, c0
    if _fast_product(hs[0], Wh):
        # one compiled call: each thread runs all the steps of its rows, the input projection
        # inside each step's product
        gates = _recycled("gates", (t_len, n, 4 * h), x.dtype)
        out = _recycled("h", (n, t_len, h), x.dtype)
        _ext.lstm_steps_forward(gates, Wh, b, hs, cs, tanh_c, _step_threads(n, h, t_len, 4),
                                x, Wx, out)
        return out, hs, cs, gates, tanh_c
    _, gates = _input_projection(x, Wx)   # pre-activations, activated in place step by step
    chunks, threads = _step_plan(n, h, t_len, 4, False)

    def steps(r):
        recurrent = np.empty((r.stop - r.start, 4 * h), dtype=x.dtype)
        for t in range(t_len):
            np.matmul(hs[t, r], Wh, out=recurrent)
            _ext.lstm_cell_forward(gates[t, r], recurrent, b, cs[t, r], gates[t, r],
                                   cs[t + 1, r], tanh_c[t, r], hs[t + 1, r], threads)

    _run_on_chunks(steps, chunks, n)
    return _time_major(hs[1:]), hs, cs, gates, tanh_c


@LSTM_SEQUENCE_BACKWARD.register("compiled", available=_ext is not None)
def _lstm_sequence_backward_compiled(dh, x, Wx, Wh, hs, cs, gates, tanh_c):
    n, t_len, d = x.shape
    h = Wh.shape[0]
    # da[t] @ Wh.T on the compiled product (float32, H whole 32-column blocks), and with D whole
    # blocks too dx and the weight gradients inside the same call
    compiled = h % _gemm.COLUMNS == 0 and _fast_product(gates[0], Wh)
    weights_in_call = compiled and d % _gemm.COLUMNS == 0
    # there da's rows are 4H + 16 floats apart: 4H floats is a multiple of 1 KB for H >= 64,
    # and rows that far apart share cache sets, so the step products' 12-row reads of da and
    # the weight gradients' 32-column panels of it would evict themselves (elsewhere da stays
    # contiguous: the NumPy weight gradients below reshape it)
    pad = _PAD if weights_in_call else 0
    da = _scratch("da", (t_len, n, 4 * h + pad), x.dtype)[:, :, :4 * h]
    dprev_h = np.zeros((n, h), dtype=x.dtype)
    dprev_c = np.zeros((n, h), dtype=x.dtype)   # updated in place by the cell
    if compiled:
        # Wh.T (and Wx.T), the step products' B, written by the call itself into reused
        # buffers whose rows are padded as da's (below): rows 1 KB or 512 B apart would put
        # every row of a 32-column panel in the same few cache sets
        Wh_t = _scratch("Wh_t", (4 * h, h + _PAD), x.dtype)[:, :h]
        # the whole step loop in one compiled call, reading dh in place (its rows are
        # contiguous in either layout) and, where D fits the kernel, writing dx and summing db
        # per step while each da[t] is in cache
        threads = _step_threads(n, h, t_len, 4)
        dh_tm = dh.transpose(1, 0, 2) if dh.strides[2] == dh.itemsize else \
            _upstream_time_major(dh)
        db_parts = np.zeros((threads, 4 * h), np.float64)
        if weights_in_call:
            Wx_t = _scratch("Wx_t", (4 * h, d + _PAD), x.dtype)[:, :d]
            dx = _recycled("dx", x.shape, x.dtype)
            # the weight gradients too: ONE product [x_t, h_{t-1}].T @ da in the same call
            dW = _recycled("dW", (d + h, 4 * h), x.dtype)   # fresh pages: ~400 faults a call
            _ext.lstm_steps_backward(dh_tm, Wh_t, gates, tanh_c, cs, da, dprev_h, dprev_c,
                                     threads, Wx_t, dx, db_parts, x, hs, dW, Wh, Wx)
            return (dx, dprev_h, dprev_c, dW[:d], dW[d:],
                    db_parts.sum(axis=0).astype(x.dtype))
        _ext.lstm_steps_backward(dh_tm, Wh_t, gates, tanh_c, cs, da, dprev_h, dprev_c, threads,
                                 Wh=Wh)
    else:
        dh_tm = _upstream_time_major(dh)
        chunks, threads = _step_plan(n, h, t_len, 4, False)

        def steps(r):
            for t in reversed(range(t_len)):
                _ext.lstm_cell_backward(dh_tm[t, r], dprev_h[r], dprev_c[r], gates[t, r],
                                        tanh_c[t, r], cs[t, r], da[t, r], dprev_c[r], threads)
                np.matmul(da[t, r], Wh.T, out=dprev_h[r])

        _run_on_chunks(steps, chunks, n)
    dx, dWx, dWh, db = _weight_gradients(x, Wx, Wh, hs, da)
    return dx, dprev_h, dprev_c, dWx, dWh, db


@RNN_SEQUENCE_FORWARD.register("compiled", available=_ext is not None)
def _rnn_sequence_forward_compiled(x, h0, Wx, Wh, b):
    n, t_len, _ = x.shape
    h = h0.shape[1]
    _, proj = _input_projection(x, Wx)
    hs = np.empty((t_len + 1, n, h), dtype=x.dtype)
    hs[0] = h0
    fast = _fast_product(hs[0], Wh)
    chunks, threads = _step_plan(n, h, t_len, 1, fast)

    def steps(r):
        recurrent = np.empty((r.stop - r.start, h), dtype=x.dtype)
        for t in range(t_len):
            _product(hs[t, r], Wh, recurrent, fast)
            _ext.rnn_cell_forward(proj[t, r], recurrent, b, hs[t + 1, r], threads)

    _run_on_chunks(steps, chunks, n, pin=not fast)
    return _time_major(hs[1:]), hs


@RNN_SEQUENCE_BACKWARD.register("compiled", available=_ext is not None)
def _rnn_sequence_backward_compiled(dh, x, Wx, Wh, hs):
    n, t_len, _ = x.shape
    h = Wh.shape[0]
    dh_tm = _upstream_time_major(dh)
    da = _scratch("da", dh_tm.shape, dh_tm.dtype)
    dprev_h = np.zeros((n, h), dtype=x.dtype)
    Wh_t = _gemm.transposed(Wh)
    fast = _fast_product(da[0], Wh_t)
    chunks, threads = _step_plan(n, h, t_len, 1, fast)

    def steps(r):
        for t in reversed(range(t_len)):
            _ext.rnn_cell_backward(dh_tm[t, r], dprev_h[r], hs[t + 1, r], da[t, r], threads)
            _product(da[t, r], Wh_t, dprev_h[r], fast)

    _run_on_chunks(steps, chunks, n, pin=not fast)
    dx, dWx, dWh, db = _weight_gradients(x, Wx, Wh, hs, da)
    return dx, dprev_h, dWx, dWh, db


def _upstream_time_major(dh: np.ndarray) -> np.ndarray:
    """(T, N, H) C-contiguous: ``dh``'s own data when it is a time-major view, else a copy
    into the thread's scratch."""
    if _time_major_view(dh):
        return dh.transpose(1, 0, 2)
    return _time_major(dh, "dh")


# ------------------------------------------------------------------------ public entries
def lstm_sequence_forward(x: ArrayLike, h0: ArrayLike, c0: ArrayLike, Wx: ArrayLike,
                          Wh: ArrayLike, b: ArrayLike, impl: str | None = None
                          ) -> tuple[np.ndarray, ...]:
    """LSTM over a whole sequence: ``h, hs, cs, gates, tanh_c`` (shapes in the module doc).

    Parameters
    ----------
    x : array_like, shape (N, T, D)
    h0, c0 : array_like, shape (N, H)
        Initial hidden and cell state.
    Wx : array_like, shape (D, 4H)
    Wh : array_like, shape (H, 4H)
    b : array_like, shape (4H,)
    impl : {"naive", "vectorized", "compiled"}, optional
        Implementation (None: the best available).

    Returns
    -------
    h : ndarray, shape (N, T, H)
    hs, cs : ndarray, shape (T+1, N, H)
        Time-major hidden and cell states, ``hs[0] = h0``, ``cs[0] = c0``.
    gates : ndarray, shape (T, N, 4H)
    tanh_c : ndarray, shape (T, N, H)
    """
    return LSTM_SEQUENCE_FORWARD(x, h0, c0, Wx, Wh, b, impl=impl)


def lstm_sequence_backward(dh: ArrayLike, x: ArrayLike, Wx: ArrayLike, Wh: ArrayLike,
                           hs: ArrayLike, cs: ArrayLike, gates: ArrayLike, tanh_c: ArrayLike,
                           impl: str | None = None) -> tuple[np.ndarray, ...]:
    """LSTM sequence backward: ``dx, dh0, dc0, dWx, dWh, db``.

    Parameters
    ----------
    dh : array_like, shape (N, T, H)
        Upstream gradient of every hidden state.
    x, Wx, Wh : array_like
        The forward's inputs.
    hs, cs, gates, tanh_c : array_like
        What :func:`lstm_sequence_forward` returned.
    impl : str, optional
        Implementation (None: the best available).

    Returns
    -------
    dx : ndarray, shape (N, T, D)
    dh0, dc0 : ndarray, shape (N, H)
    dWx, dWh, db : ndarray, shapes of Wx, Wh and (4H,)
    """
    return LSTM_SEQUENCE_BACKWARD(dh, x, Wx, Wh, hs, cs, gates, tanh_c, impl=impl)


def rnn_sequence_forward(x: ArrayLike, h0: ArrayLike, Wx: ArrayLike, Wh: ArrayLike,
                         b: ArrayLike, impl: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vanilla RNN over a whole sequence: ``h`` (N, T, H) and time-major ``hs`` (T+1, N, H)."""
    return RNN_SEQUENCE_FORWARD(x, h0, Wx, Wh, b, impl=impl)


def rnn_sequence_backward(dh: ArrayLike, x: ArrayLike, Wx: ArrayLike, Wh: ArrayLike,
                          hs: ArrayLike, impl: str | None = None) -> tuple[np.ndarray, ...]:
    """Vanilla-RNN sequence backward: ``dx, dh0, dWx, dWh, db``."""
    return RNN_SEQUENCE_BACKWARD(dh, x, Wx, Wh, hs, impl=impl)
