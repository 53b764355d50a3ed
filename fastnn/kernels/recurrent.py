"""Recurrent cell kernels behind ``fastnn.layers.recurrent``: the LSTM and vanilla-RNN cells,
forward and backward, three implementations each.

- ``"naive"``: plain Python loops over the elements of the cell (the readable specification);
- ``"vectorized"``: NumPy, one array operation per line of the cell (CS231n style);
- ``"compiled"``: the fused cells of ``fastnn._ext._recurrent``: one pass over the (N, 4H)
  block forward and one backward, vectorised (AVX-512/AVX2 variants picked at load time).

Gate order: ``a[:, :H]`` input (i), ``a[:, H:2H]`` forget (f), ``a[:, 2H:3H]`` output (o),
``a[:, 3H:]`` candidate (g); ``i, f, o = sigmoid(.)``, ``g = tanh(.)``,
``next_c = f * prev_c + i * g``, ``next_h = o * tanh(next_c)``.

Signatures (all arrays of one float dtype; the check promotes them and makes them C-contiguous):

- ``lstm_cell_forward(a (N, 4H), prev_c (N, H)) -> next_h, next_c, gates (N, 4H), tanh_c``;
- ``lstm_cell_backward(dnext_h, dnext_c, gates, tanh_c, prev_c) -> da (N, 4H), dprev_c``;
- ``rnn_cell_forward(a (N, H)) -> next_h = tanh(a)``; ``rnn_cell_backward(dnext_h, next_h) -> da``;

The whole-sequence operations built on these cells live in
:mod:`fastnn.kernels.recurrent_sequence`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from fastnn._validation import check_array
from fastnn.kernels._operation import (
    MIN_WORK_PER_THREAD,
    Operation,
    load_extension,
    threads_for,
)

__all__ = [
    "lstm_cell_backward",
    "lstm_cell_forward",
    "rnn_cell_backward",
    "rnn_cell_forward",
]

_ext = load_extension("_recurrent")
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


#: Work a thread must get before a cell running between two BLAS calls forks a team (the team's
#: spinning workers compete with BLAS's own threads for the cores, which cost whole time slices
#: per step on a busy machine), and before a sequence splits its rows between threads (below it,
#: handing work to a thread and back costs more than it saves). Measure with ``fastnn bench lstm``.
SEQUENCE_MIN_WORK_PER_THREAD = 3e7


def _cell_threads(n: int, h: int, min_work_per_thread: float = MIN_WORK_PER_THREAD) -> int:
    # about 40 floating-point operations (three exp, two tanh, the updates) per hidden unit
    return threads_for(40.0 * n * h, min_work_per_thread)


# ------------------------------------------------------------------------------- validation
def _common(arrays: dict[str, object]) -> list[np.ndarray]:
    """Check every array (non-empty, real), bring them to one float dtype (NumPy's promotion of
    the inputs) and C order, so compiled code can index them blindly."""
    values = list(arrays.values())
    dtype = getattr(values[0], "dtype", None)
    if dtype in _FLOAT_DTYPES and all(
        type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous and a.size
        for a in values
    ):  # the common case (what the layers pass): nothing to convert
        return values
    checked = [check_array(arr, name, finite=False) for name, arr in arrays.items()]
    dtype = np.result_type(*checked)
    return [np.ascontiguousarray(a, dtype=dtype) for a in checked]


def _expect(name: str, a: np.ndarray, shape: tuple[int, ...], why: str) -> None:
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape} ({why}), got {a.shape}")


def _ndim(name: str, a: np.ndarray, ndim: int, layout: str) -> tuple[int, ...]:
    if a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array {layout}, got {a.ndim}-D shape {a.shape}")
    return a.shape


def _check_lstm_cell_forward(impl, a, prev_c):
    a, prev_c = _common({"a": a, "prev_c": prev_c})
    n, h = _ndim("prev_c", prev_c, 2, "(N, H)")
    _expect("a", a, (n, 4 * h), "N, 4H from prev_c")
    return a, prev_c


def _check_lstm_cell_backward(impl, dnext_h, dnext_c, gates, tanh_c, prev_c):
    arrays = _common({"dnext_h": dnext_h, "dnext_c": dnext_c, "gates": gates, "tanh_c": tanh_c,
                      "prev_c": prev_c})
    n, h = _ndim("dnext_h", arrays[0], 2, "(N, H)")
    _expect("dnext_c", arrays[1], (n, h), "the shape of dnext_h")
    _expect("gates", arrays[2], (n, 4 * h), "N, 4H from dnext_h")
    _expect("tanh_c", arrays[3], (n, h), "the shape of dnext_h")
    _expect("prev_c", arrays[4], (n, h), "the shape of dnext_h")
    return tuple(arrays)


def _check_rnn_cell_forward(impl, a):
    (a,) = _common({"a": a})
    _ndim("a", a, 2, "(N, H)")
    return (a,)


def _check_rnn_cell_backward(impl, dnext_h, next_h):
    dnext_h, next_h = _common({"dnext_h": dnext_h, "next_h": next_h})
    _ndim("dnext_h", dnext_h, 2, "(N, H)")
    _expect("next_h", next_h, dnext_h.shape, "the shape of dnext_h")
    return dnext_h, next_h


LSTM_CELL_FORWARD = Operation("lstm_cell_forward", _check_lstm_cell_forward)
LSTM_CELL_BACKWARD = Operation("lstm_cell_backward", _check_lstm_cell_backward)
RNN_CELL_FORWARD = Operation("rnn_cell_forward", _check_rnn_cell_forward)
RNN_CELL_BACKWARD = Operation("rnn_cell_backward", _check_rnn_cell_backward)


# ------------------------------------------------------------------------------- the cells
def _sigmoid_scalar(v: float) -> float:
    """Stable logistic: exp of a non-positive number only."""
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def _tanh_scalar(v: float) -> float:
    return math.tanh(v) if not math.isnan(v) else v


def _sigmoid_array(v: np.ndarray) -> np.ndarray:
    """Stable logistic, as :func:`fastnn.layers.sigmoid` computes it (without its checks)."""
    out = np.exp(np.minimum(v, 0))
    out /= 1 + np.exp(-np.abs(v))
    return out


@LSTM_CELL_FORWARD.register("naive")
def _lstm_cell_forward_naive(a, prev_c):
    n, h = prev_c.shape
    gates = np.empty_like(a)
    next_c, tanh_c, next_h = (np.empty_like(prev_c) for _ in range(3))
    for row in range(n):
        for k in range(h):
            i = _sigmoid_scalar(float(a[row, k]))
            f = _sigmoid_scalar(float(a[row, h + k]))
            o = _sigmoid_scalar(float(a[row, 2 * h + k]))
            g = _tanh_scalar(float(a[row, 3 * h + k]))
            c = f * float(prev_c[row, k]) + i * g
            gates[row, k], gates[row, h + k], gates[row, 2 * h + k], gates[row, 3 * h + k] = (
                i, f, o, g)
            next_c[row, k] = c
            tanh_c[row, k] = _tanh_scalar(c)
            next_h[row, k] = o * tanh_c[row, k]
    return next_h, next_c, gates, tanh_c


@LSTM_CELL_FORWARD.register("vectorized")
def _lstm_cell_forward_vectorized(a, prev_c):
    h = prev_c.shape[1]
    gates = np.empty_like(a)
    gates[:, :3 * h] = _sigmoid_array(a[:, :3 * h])
    gates[:, 3 * h:] = np.tanh(a[:, 3 * h:])
    i, f, o, g = gates[:, :h], gates[:, h:2 * h], gates[:, 2 * h:3 * h], gates[:, 3 * h:]
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    return o * tanh_c, next_c, gates, tanh_c


@LSTM_CELL_FORWARD.register("compiled", available=_ext is not None)
def _lstm_cell_forward_compiled(a, prev_c):
    n, h = prev_c.shape
    gates = np.empty_like(a)
    next_c, tanh_c, next_h = (np.empty_like(prev_c) for _ in range(3))
    _ext.lstm_cell_forward(a, None, None, prev_c, gates, next_c, tanh_c, next_h,
                           _cell_threads(n, h))
    return next_h, next_c, gates, tanh_c


@LSTM_CELL_BACKWARD.register("naive")
def _lstm_cell_backward_naive(dnext_h, dnext_c, gates, tanh_c, prev_c):
    n, h = dnext_h.shape
    da = np.empty_like(gates)
    dprev_c = np.empty_like(prev_c)
    for row in range(n):
        for k in range(h):
            i, f, o, g = (float(gates[row, j * h + k]) for j in range(4))
            dh, tc = float(dnext_h[row, k]), float(tanh_c[row, k])
            dc = float(dnext_c[row, k]) + dh * o * (1 - tc * tc)
            da[row, k] = dc * g * i * (1 - i)
            da[row, h + k] = dc * float(prev_c[row, k]) * f * (1 - f)
            da[row, 2 * h + k] = dh * tc * o * (1 - o)
            da[row, 3 * h + k] = dc * i * (1 - g * g)
            dprev_c[row, k] = dc * f
    return da, dprev_c


@LSTM_CELL_BACKWARD.register("vectorized")
def _lstm_cell_backward_vectorized(dnext_h, dnext_c, gates, tanh_c, prev_c):
    h = dnext_h.shape[1]
    i, f, o, g = gates[:, :h], gates[:, h:2 * h], gates[:, 2 * h:3 * h], gates[:, 3 * h:]
    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)
    da = np.empty_like(gates)
    da[:, :h] = dc * g * i * (1 - i)
    da[:, h:2 * h] = dc * prev_c * f * (1 - f)
    da[:, 2 * h:3 * h] = dnext_h * tanh_c * o * (1 - o)
    da[:, 3 * h:] = dc * i * (1 - g * g)
    return da, dc * f


@LSTM_CELL_BACKWARD.register("compiled", available=_ext is not None)
def _lstm_cell_backward_compiled(dnext_h, dnext_c, gates, tanh_c, prev_c):
    n, h = dnext_h.shape
    da = np.empty_like(gates)
    dprev_c = np.empty_like(prev_c)
    _ext.lstm_cell_backward(dnext_h, None, dnext_c, gates, tanh_c, prev_c, da, dprev_c,
                            _cell_threads(n, h))
    return da, dprev_c


@RNN_CELL_FORWARD.register("naive")
def _rnn_cell_forward_naive(a):
    next_h = np.empty_like(a)
    for row in range(a.shape[0]):
        for k in range(a.shape[1]):
            next_h[row, k] = _tanh_scalar(float(a[row, k]))
    return next_h


@RNN_CELL_FORWARD.register("vectorized")
def _rnn_cell_forward_vectorized(a):
    return np.tanh(a)


@RNN_CELL_FORWARD.register("compiled", available=_ext is not None)
def _rnn_cell_forward_compiled(a):
    next_h = np.empty_like(a)
    _ext.rnn_cell_forward(a, None, None, next_h, threads_for(5.0 * a.size))
    return next_h


@RNN_CELL_BACKWARD.register("naive")
def _rnn_cell_backward_naive(dnext_h, next_h):
    da = np.empty_like(dnext_h)
    for row in range(da.shape[0]):
        for k in range(da.shape[1]):
            hk = float(next_h[row, k])
            da[row, k] = float(dnext_h[row, k]) * (1 - hk * hk)
    return da


@RNN_CELL_BACKWARD.register("vectorized")
def _rnn_cell_backward_vectorized(dnext_h, next_h):
    return dnext_h * (1 - next_h * next_h)


@RNN_CELL_BACKWARD.register("compiled", available=_ext is not None)
def _rnn_cell_backward_compiled(dnext_h, next_h):
    da = np.empty_like(dnext_h)
    _ext.rnn_cell_backward(dnext_h, None, next_h, da, threads_for(3.0 * dnext_h.size))
    return da


# ------------------------------------------------------------------------ public entries
def lstm_cell_forward(a: ArrayLike, prev_c: ArrayLike, impl: str | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fused LSTM cell: ``next_h, next_c, gates, tanh_c`` from pre-activations ``a`` (N, 4H).

    Parameters
    ----------
    a : array_like, shape (N, 4H)
        Pre-activations, gate order i, f, o, g.
    prev_c : array_like, shape (N, H)
        Previous cell state.
    impl : {"naive", "vectorized", "compiled"}, optional
        Implementation (None: the best available).

    Returns
    -------
    next_h, next_c : ndarray, shape (N, H)
    gates : ndarray, shape (N, 4H)
        Activated gates ``sigmoid(i), sigmoid(f), sigmoid(o), tanh(g)``.
    tanh_c : ndarray, shape (N, H)
        ``tanh(next_c)``.
    """
    return LSTM_CELL_FORWARD(a, prev_c, impl=impl)


def lstm_cell_backward(dnext_h: ArrayLike, dnext_c: ArrayLike, gates: ArrayLike,
                       tanh_c: ArrayLike, prev_c: ArrayLike, impl: str | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Fused LSTM cell backward: ``da`` (N, 4H) and ``dprev_c`` (N, H).

    Parameters
    ----------
    dnext_h, dnext_c : array_like, shape (N, H)
        Upstream gradients of the cell's two outputs.
    gates, tanh_c : array_like, shapes (N, 4H) and (N, H)
        From :func:`lstm_cell_forward`.
    prev_c : array_like, shape (N, H)
        The forward's previous cell state.
    impl : str, optional
        Implementation (None: the best available).

    Returns
    -------
    da : ndarray, shape (N, 4H)
    dprev_c : ndarray, shape (N, H)
    """
    return LSTM_CELL_BACKWARD(dnext_h, dnext_c, gates, tanh_c, prev_c, impl=impl)


def rnn_cell_forward(a: ArrayLike, impl: str | None = None) -> np.ndarray:
    """Vanilla-RNN cell: ``next_h = tanh(a)`` for pre-activations ``a`` (N, H)."""
    return RNN_CELL_FORWARD(a, impl=impl)


def rnn_cell_backward(dnext_h: ArrayLike, next_h: ArrayLike, impl: str | None = None
                      ) -> np.ndarray:
    """Vanilla-RNN cell backward: ``da = dnext_h * (1 - next_h**2)`` (both (N, H))."""
    return RNN_CELL_BACKWARD(dnext_h, next_h, impl=impl)
