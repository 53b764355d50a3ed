"""Recurrent layers (CS231n ``rnn_layers.py``): vanilla RNN and LSTM, one step and whole sequences.

The element-wise cell work and the whole-sequence loops run in :mod:`fastnn.kernels.recurrent`
and :mod:`fastnn.kernels.recurrent_sequence` (fused compiled cells; the input projection and the
weight gradients as one matrix product over all time steps).

LSTM gate order is CS231n's ``i, f, o, g``: ``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H,), columns
``[0, H)`` input gate, ``[H, 2H)`` forget gate, ``[2H, 3H)`` output gate, ``[3H, 4H)`` candidate.

Mapping to ``torch.nn.LSTM`` (one layer, ``batch_first=True``; torch's gate order is i, f, g, o
and its weights are stored transposed)::

    perm = np.r_[0:2H, 3H:4H, 2H:3H]          # our column j is torch row perm[j]
    Wx = lstm.weight_ih_l0.T[:, perm]         # (D, 4H)
    Wh = lstm.weight_hh_l0.T[:, perm]         # (H, 4H)
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0)[perm]

``torch.nn.RNN`` (tanh, one layer, ``batch_first=True``): ``Wx = weight_ih_l0.T``,
``Wh = weight_hh_l0.T``, ``b = bias_ih_l0 + bias_hh_l0``.

Extensions beyond CS231n (keyword arguments with defaults, so course code is unaffected):
``lstm_forward(..., c0=None)`` starts from a given cell state, and :func:`lstm_last_state` /
:func:`rnn_last_state` return the final state from a cache, so truncated backpropagation through
time can carry the state from one window to the next (the next window starts from the returned
arrays, and no gradient flows back across the window boundary).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_array
from fastnn.kernels.recurrent import (
    lstm_cell_backward,
    lstm_cell_forward,
    rnn_cell_backward,
    rnn_cell_forward,
)
from fastnn.kernels.recurrent_sequence import (
    lstm_sequence_backward,
    lstm_sequence_forward,
    rnn_sequence_backward,
    rnn_sequence_forward,
)
from fastnn.layers._cache import cached_array, cached_shape, unpack_cache

__all__ = [
    "lstm_backward",
    "lstm_forward",
    "lstm_last_state",
    "lstm_step_backward",
    "lstm_step_forward",
    "rnn_backward",
    "rnn_forward",
    "rnn_last_state",
    "rnn_step_backward",
    "rnn_step_forward",
]

_RNN_STEP = ("x", "prev_h", "Wx", "Wh", "next_h")
_LSTM_STEP = ("x", "prev_h", "prev_c", "Wx", "Wh", "gates", "tanh_c")
_RNN_SEQUENCE = ("x", "Wx", "Wh", "hs")
_LSTM_SEQUENCE = ("x", "Wx", "Wh", "hs", "cs", "gates", "tanh_c")


# ------------------------------------------------------------------------------- checks
def _check_step(arrays: dict[str, Any], gates: int) -> list[np.ndarray]:
    """x (N, D), states (N, H), Wx (D, gates*H), Wh (H, gates*H), b (gates*H,); one float dtype."""
    checked = {name: check_array(a, name, finite=False) for name, a in arrays.items()}
    x, prev_h = checked["x"], checked["prev_h"]
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D array (N, D), got {x.ndim}-D shape {x.shape}")
    if prev_h.ndim != 2 or prev_h.shape[0] != x.shape[0]:
        raise ValueError(f"prev_h must have shape (N, H) with N = {x.shape[0]} from x, got "
                         f"{prev_h.shape}")
    n, h = prev_h.shape
    want = {"Wx": (x.shape[1], gates * h), "Wh": (h, gates * h), "b": (gates * h,),
            "prev_c": (n, h)}
    for name, arr in checked.items():
        if name in want and arr.shape != want[name]:
            raise ValueError(f"{name} must have shape {want[name]} (D = {x.shape[1]} from x, "
                             f"H = {h} from prev_h), got {arr.shape}")
    dtype = np.result_type(*checked.values())
    return [np.asarray(a, dtype=dtype) for a in checked.values()]


def _check_upstream(dout: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dout = check_array(dout, name, finite=False)
    if dout.shape != shape:
        raise ValueError(f"{name} must have the forward output's shape {shape}; got {dout.shape}")
    return dout


def _cached(cache: Any, forward: str, fields: tuple[str, ...], ndims: tuple[int, ...]
            ) -> list[np.ndarray]:
    items = unpack_cache(cache, forward, fields)
    return [cached_array(v, f, forward, ndim=d) for v, f, d in zip(items, fields, ndims,
                                                                     strict=True)]


def _as_cache_error(forward: str, exc: ValueError) -> ValueError:
    # the upstream gradient was checked already: what the kernel refuses is the cache
    return ValueError(f"cache must come from {forward}: {exc}")


# ------------------------------------------------------------------------------ RNN step
def rnn_step_forward(x: Any, prev_h: Any, Wx: Any, Wh: Any, b: Any) -> tuple[np.ndarray, tuple]:
    """One vanilla-RNN step: ``next_h = tanh(x @ Wx + prev_h @ Wh + b)``.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    prev_h : ndarray, shape (N, H)
    Wx : ndarray, shape (D, H)
    Wh : ndarray, shape (H, H)
    b : ndarray, shape (H,)

    Returns
    -------
    next_h : ndarray, shape (N, H)
    cache : tuple
        ``(x, prev_h, Wx, Wh, next_h)``.
    """
    x, prev_h, Wx, Wh, b = _check_step(
        {"x": x, "prev_h": prev_h, "Wx": Wx, "Wh": Wh, "b": b}, 1)
    next_h = rnn_cell_forward(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h.copy())


def rnn_step_backward(dnext_h: Any, cache: tuple) -> tuple[np.ndarray, ...]:
    """Backward of :func:`rnn_step_forward`.

    Parameters
    ----------
    dnext_h : ndarray, shape (N, H)
    cache : tuple
        From :func:`rnn_step_forward`.

    Returns
    -------
    dx, dprev_h, dWx, dWh, db : ndarrays of the shapes of x, prev_h, Wx, Wh, b
    """
    x, prev_h, Wx, Wh, next_h = _cached(cache, "rnn_step_forward", _RNN_STEP, (2, 2, 2, 2, 2))
    n, h = next_h.shape
    for field, arr, shape in (("x", x, (n, Wx.shape[0])), ("prev_h", prev_h, (n, h)),
                              ("Wx", Wx, (x.shape[1], h)), ("Wh", Wh, (h, h))):
        cached_shape(arr, field, "rnn_step_forward", shape)
    dnext_h = _check_upstream(dnext_h, "dnext_h", next_h.shape)
    da = rnn_cell_backward(dnext_h, next_h)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


# ----------------------------------------------------------------------------- LSTM step
def lstm_step_forward(x: Any, prev_h: Any, prev_c: Any, Wx: Any, Wh: Any, b: Any
                      ) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One LSTM step (gate order i, f, o, g).

    Parameters
    ----------
    x : ndarray, shape (N, D)
    prev_h, prev_c : ndarray, shape (N, H)
    Wx : ndarray, shape (D, 4H)
    Wh : ndarray, shape (H, 4H)
    b : ndarray, shape (4H,)

    Returns
    -------
    next_h, next_c : ndarray, shape (N, H)
    cache : tuple
        ``(x, prev_h, prev_c, Wx, Wh, gates, tanh_c)`` with the activated gates (N, 4H) and
        ``tanh(next_c)``.
    """
    x, prev_h, Wx, Wh, b, prev_c = _check_step(
        {"x": x, "prev_h": prev_h, "Wx": Wx, "Wh": Wh, "b": b, "prev_c": prev_c}, 4)
    next_h, next_c, gates, tanh_c = lstm_cell_forward(x @ Wx + prev_h @ Wh + b, prev_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, gates, tanh_c)


def lstm_step_backward(dnext_h: Any, dnext_c: Any, cache: tuple) -> tuple[np.ndarray, ...]:
    """Backward of :func:`lstm_step_forward`.

    Parameters
    ----------
    dnext_h, dnext_c : ndarray, shape (N, H)
    cache : tuple
        From :func:`lstm_step_forward`.

    Returns
    -------
    dx, dprev_h, dprev_c, dWx, dWh, db : ndarrays of the shapes of x, prev_h, prev_c, Wx, Wh, b
    """
    x, prev_h, prev_c, Wx, Wh, gates, tanh_c = _cached(cache, "lstm_step_forward", _LSTM_STEP,
                                                       (2,) * 7)
    n, h = tanh_c.shape
    for field, arr, shape in (("x", x, (n, Wx.shape[0])), ("prev_h", prev_h, (n, h)),
                              ("Wh", Wh, (h, 4 * h)), ("Wx", Wx, (x.shape[1], 4 * h))):
        cached_shape(arr, field, "lstm_step_forward", shape)
    dnext_h = _check_upstream(dnext_h, "dnext_h", (n, h))
    dnext_c = _check_upstream(dnext_c, "dnext_c", (n, h))
    try:
        da, dprev_c = lstm_cell_backward(dnext_h, dnext_c, gates, tanh_c, prev_c)
    except ValueError as exc:
        raise _as_cache_error("lstm_step_forward", exc) from None
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


# ------------------------------------------------------------------------------ sequences
def rnn_forward(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> tuple[np.ndarray, tuple]:
    """Vanilla RNN over a whole sequence.

    Parameters
    ----------
    x : ndarray, shape (N, T, D)
    h0 : ndarray, shape (N, H)
    Wx : ndarray, shape (D, H)
    Wh : ndarray, shape (H, H)
    b : ndarray, shape (H,)

    Returns
    -------
    h : ndarray, shape (N, T, H)
        Hidden state of every step.
    cache : tuple
        ``(x, Wx, Wh, hs)`` with the time-major states ``hs`` (T+1, N, H), ``hs[0] = h0``.
    """
    h, hs = rnn_sequence_forward(x, h0, Wx, Wh, b)
    x = check_array(x, "x", finite=False).astype(h.dtype, copy=False)
    return h, (x, np.asarray(Wx, dtype=h.dtype), np.asarray(Wh, dtype=h.dtype), hs)


def rnn_backward(dh: Any, cache: tuple) -> tuple[np.ndarray, ...]:
    """Backward of :func:`rnn_forward`.

    Parameters
    ----------
    dh : ndarray, shape (N, T, H)
        Upstream gradient of every hidden state.
    cache : tuple
        From :func:`rnn_forward`.

    Returns
    -------
    dx : ndarray, shape (N, T, D)
    dh0 : ndarray, shape (N, H)
    dWx, dWh, db : ndarrays of the shapes of Wx, Wh, b
    """
    x, Wx, Wh, hs = _cached(cache, "rnn_forward", _RNN_SEQUENCE, (3, 2, 2, 3))
    dh = _check_upstream(dh, "dh", (x.shape[0], x.shape[1], Wh.shape[0]))
    try:
        return rnn_sequence_backward(dh, x, Wx, Wh, hs)
    except ValueError as exc:
        raise _as_cache_error("rnn_forward", exc) from None


def lstm_forward(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any, c0: Any = None
                 ) -> tuple[np.ndarray, tuple]:
    """LSTM over a whole sequence (gate order i, f, o, g).

    Parameters
    ----------
    x : ndarray, shape (N, T, D)
    h0 : ndarray, shape (N, H)
    Wx : ndarray, shape (D, 4H)
    Wh : ndarray, shape (H, 4H)
    b : ndarray, shape (4H,)
    c0 : ndarray, shape (N, H), optional
        Initial cell state (default zeros, as CS231n); pass the ``c_T`` of
        :func:`lstm_last_state` to continue a sequence (truncated backpropagation through time).

    Returns
    -------
    h : ndarray, shape (N, T, H)
        Hidden state of every step.
    cache : tuple
        ``(x, Wx, Wh, hs, cs, gates, tanh_c)``: time-major states ``hs``, ``cs`` (T+1, N, H) with
        the initial ones first, activated gates (T, N, 4H) and ``tanh(cs[1:])``.
    """
    if c0 is None:
        h0 = check_array(h0, "h0", finite=False)
        c0 = np.zeros_like(h0)
    h, hs, cs, gates, tanh_c = lstm_sequence_forward(x, h0, c0, Wx, Wh, b)
    x = check_array(x, "x", finite=False).astype(h.dtype, copy=False)
    return h, (x, np.asarray(Wx, dtype=h.dtype), np.asarray(Wh, dtype=h.dtype), hs, cs, gates,
               tanh_c)


def lstm_backward(dh: Any, cache: tuple) -> tuple[np.ndarray, ...]:
    """Backward of :func:`lstm_forward`.

    Parameters
    ----------
    dh : ndarray, shape (N, T, H)
        Upstream gradient of every hidden state.
    cache : tuple
        From :func:`lstm_forward`.

    Returns
    -------
    dx : ndarray, shape (N, T, D)
    dh0 : ndarray, shape (N, H)
    dWx, dWh, db : ndarrays of the shapes of Wx, Wh, b
        (The gradient of ``c0`` is not returned, as in CS231n.)
    """
    x, Wx, Wh, hs, cs, gates, tanh_c = _cached(cache, "lstm_forward", _LSTM_SEQUENCE,
                                               (3, 2, 2, 3, 3, 3, 3))
    dh = _check_upstream(dh, "dh", (x.shape[0], x.shape[1], Wh.shape[0]))
    try:
        dx, dh0, _, dWx, dWh, db = lstm_sequence_backward(dh, x, Wx, Wh, hs, cs, gates, tanh_c)
    except ValueError as exc:
        raise _as_cache_error("lstm_forward", exc) from None
    return dx, dh0, dWx, dWh, db


def lstm_last_state(cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Final ``(h_T, c_T)`` of an :func:`lstm_forward` call, as fresh (N, H) arrays.

    Feed them as ``h0`` and ``c0`` of the next window to carry the state across windows.
    """
    _, _, _, hs, cs, _, _ = _cached(cache, "lstm_forward", _LSTM_SEQUENCE, (3, 2, 2, 3, 3, 3, 3))
    return hs[-1].copy(), cs[-1].copy()


def rnn_last_state(cache: tuple) -> np.ndarray:
    """Final hidden state ``h_T`` (N, H) of an :func:`rnn_forward` call, as a fresh array."""
    _, _, _, hs = _cached(cache, "rnn_forward", _RNN_SEQUENCE, (3, 2, 2, 3))
    return hs[-1].copy()
