"""Pooling kernels behind ``fastnn.layers``: max, average and global average pooling, forward
and backward, three implementations each.

- ``"naive"``: plain Python loops over windows, the readable specification;
- ``"vectorized"``: NumPy; the reshape trick when the windows tile the input (stride equal to
  the window), strided window views (``sliding_window_view``) otherwise;
- ``"compiled"``: ``fastnn._ext._pool`` (Cython + OpenMP), threads over the N*C planes, unrolled
  loops for non-overlapping 2x2 stride-2 windows, direct writes (no zero-fill) in the backward
  passes when windows tile.

Signatures (``x`` (N, C, H, W) float32/float64; pooled maps (N, C, Ho, Wo) with
``Ho = (H - pool_height) / stride + 1`` and ``Wo = (W - pool_width) / stride + 1``, which must be
whole numbers, CS231n's rule):

- ``max_pool_forward(x, pool_height, pool_width, stride) -> out, argmax``; ``argmax`` (int64)
  is the index of each maximum in the flattened H*W plane: the first maximum in row-major window
  order on ties (as torch and ``np.argmax``); a NaN is the maximum of its window, and of
  several NaNs the last one wins (torch's CPU rule, ``val > maxval || isnan(val)``);
- ``max_pool_backward(dout, argmax, x_shape) -> dx`` (a scatter-add: overlapping windows add up);
- ``avg_pool_forward(x, pool_height, pool_width, stride) -> out``;
- ``avg_pool_backward(dout, x_shape, pool_height, pool_width, stride) -> dx``;
- ``global_avg_pool_forward(x) -> out`` (N, C); ``global_avg_pool_backward(dout, x_shape) -> dx``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

from fastnn.kernels._operation import Operation, load_extension, threads_for
from fastnn.kernels._pool_checks import (
    check_avg_backward,
    check_global_backward,
    check_global_forward,
    check_max_backward,
    check_window_forward,
)

__all__ = [
    "avg_pool_backward",
    "avg_pool_forward",
    "global_avg_pool_backward",
    "global_avg_pool_forward",
    "max_pool_backward",
    "max_pool_forward",
]

_ext = load_extension("_pool")

MAX_POOL_FORWARD = Operation("max_pool_forward", check_window_forward)
MAX_POOL_BACKWARD = Operation("max_pool_backward", check_max_backward)
AVG_POOL_FORWARD = Operation("avg_pool_forward", check_window_forward)
AVG_POOL_BACKWARD = Operation("avg_pool_backward", check_avg_backward)
GLOBAL_AVG_POOL_FORWARD = Operation("global_avg_pool_forward", check_global_forward)
GLOBAL_AVG_POOL_BACKWARD = Operation("global_avg_pool_backward", check_global_backward)


def _threads(size: int) -> int:
    # a few operations per element; pooling is memory-bound, so threads pay off only on big maps
    return threads_for(4.0 * size)


def _out_size(h: int, w: int, ph: int, pw: int, stride: int) -> tuple[int, int]:
    return (h - ph) // stride + 1, (w - pw) // stride + 1


def _planes(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) as (N*C, H, W), a view of a C-ordered array."""
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2], a.shape[3])


def _windows(x: np.ndarray, ph: int, pw: int, stride: int) -> np.ndarray:
    """Every pooling window as (N, C, Ho, Wo, ph, pw): a reshape when the windows tile the
    input, a strided view otherwise."""
    n, c, h, w = x.shape
    ho, wo = _out_size(h, w, ph, pw, stride)
    if stride == ph and stride == pw:
        return x.reshape(n, c, ho, ph, wo, pw).transpose(0, 1, 2, 4, 3, 5)
    return sliding_window_view(x, (ph, pw), axis=(2, 3))[:, :, ::stride, ::stride]


def _better(v: float, m: float) -> bool:
    """v replaces the running maximum m: strictly larger, or a NaN (the last NaN wins, as in
    torch)."""
    return v > m or math.isnan(v)


# ----------------------------------------------------------------------- max pool, forward
@MAX_POOL_FORWARD.register("naive")
def _max_forward_naive(x, ph, pw, stride):
    n, c, h, w = x.shape
    ho, wo = _out_size(h, w, ph, pw, stride)
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    argmax = np.empty((n, c, ho, wo), dtype=np.int64)
    for i in range(n):
        for k in range(c):
            for r in range(ho):
                for s in range(wo):
                    best, where = None, None
                    for a in range(r * stride, r * stride + ph):
                        for b in range(s * stride, s * stride + pw):
                            v = float(x[i, k, a, b])
                            if best is None or _better(v, best):
                                best, where = v, a * w + b
                    out[i, k, r, s] = best
                    argmax[i, k, r, s] = where
    return out, argmax


@MAX_POOL_FORWARD.register("vectorized")
def _max_forward_vectorized(x, ph, pw, stride):
    n, c, h, w = x.shape
    ho, wo = _out_size(h, w, ph, pw, stride)
    windows = _windows(x, ph, pw, stride).reshape(n, c, ho, wo, ph * pw)
    local = windows.argmax(axis=-1)  # the first maximum; np.argmax also stops at a first NaN
    out = np.take_along_axis(windows, local[..., None], axis=-1)[..., 0]
    nan_windows = np.isnan(out)
    if nan_windows.any():  # torch's rule: the last NaN of the window
        last = ph * pw - 1 - np.isnan(windows[nan_windows])[:, ::-1].argmax(axis=-1)
        local[nan_windows] = last
    rows = (np.arange(ho) * stride)[:, None] + local // pw
    cols = (np.arange(wo) * stride)[None, :] + local % pw
    return out, (rows * w + cols).astype(np.int64)


@MAX_POOL_FORWARD.register("compiled", available=_ext is not None)
def _max_forward_compiled(x, ph, pw, stride):
    n, c, h, w = x.shape
    ho, wo = _out_size(h, w, ph, pw, stride)
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    argmax = np.empty((n, c, ho, wo), dtype=np.int64)
    _ext.max_pool_forward(_planes(x), ph, pw, stride, _planes(out), _planes(argmax),
                          _threads(x.size))
    return out, argmax


# ---------------------------------------------------------------------- max pool, backward
@MAX_POOL_BACKWARD.register("naive")
def _max_backward_naive(dout, argmax, x_shape):
    n, c, _, w = x_shape
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for i in range(n):
        for k in range(c):
            for r in range(dout.shape[2]):
                for s in range(dout.shape[3]):
                    a, b = divmod(int(argmax[i, k, r, s]), w)
                    dx[i, k, a, b] += dout[i, k, r, s]
    return dx


@MAX_POOL_BACKWARD.register("vectorized")
def _max_backward_vectorized(dout, argmax, x_shape):
    n, c, h, w = x_shape
    flat = argmax.reshape(n * c, -1) + (np.arange(n * c) * (h * w))[:, None]
    # bincount adds duplicate indices (overlapping windows), unlike fancy-index assignment
    dx = np.bincount(flat.ravel(), weights=dout.ravel(), minlength=n * c * h * w)
    return dx.astype(dout.dtype, copy=False).reshape(x_shape)


@MAX_POOL_BACKWARD.register("compiled", available=_ext is not None)
def _max_backward_compiled(dout, argmax, x_shape):
    dx = np.empty(x_shape, dtype=dout.dtype)
    _ext.max_pool_backward(_planes(dout), _planes(argmax), _planes(dx), _threads(dx.size))
    return dx


# ----------------------------------------------------------------------- avg pool, forward
@AVG_POOL_FORWARD.register("naive")
def _avg_forward_naive(x, ph, pw, stride):
    n, c, h, w = x.shape
    ho, wo = _out_size(h, w, ph, pw, stride)
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    for i in range(n):
        for k in range(c):
            for r in range(ho):
                for s in range(wo):
                    total = 0.0
                    for a in range(r * stride, r * stride + ph):
                        for b in range(s * stride, s * stride + pw):
                            total += float(x[i, k, a, b])
                    out[i, k, r, s] = total / (ph * pw)
    return out


@AVG_POOL_FORWARD.register("vectorized")
def _avg_forward_vectorized(x, ph, pw, stride):
    return _windows(x, ph, pw, stride).mean(axis=(-2, -1), dtype=np.float64).astype(x.dtype)


@AVG_POOL_FORWARD.register("compiled", available=_ext is not None)
def _avg_forward_compiled(x, ph, pw, stride):
    n, c, h, w = x.shape
    ho, wo = _out_size(h, w, ph, pw, stride)
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    _ext.avg_pool_forward(_planes(x), ph, pw, stride, _planes(out), _threads(x.size))
    return out


# ---------------------------------------------------------------------- avg pool, backward
@AVG_POOL_BACKWARD.register("naive")
def _avg_backward_naive(dout, x_shape, ph, pw, stride):
    n, c, _, _ = x_shape
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for i in range(n):
        for k in range(c):
            for r in range(dout.shape[2]):
                for s in range(dout.shape[3]):
                    share = float(dout[i, k, r, s]) / (ph * pw)
                    for a in range(r * stride, r * stride + ph):
                        for b in range(s * stride, s * stride + pw):
                            dx[i, k, a, b] += share
    return dx


@AVG_POOL_BACKWARD.register("vectorized")
def _avg_backward_vectorized(dout, x_shape, ph, pw, stride):
    n, c = x_shape[:2]
    share = (dout / (ph * pw)).astype(dout.dtype, copy=False)
    if stride == ph and stride == pw:  # tiling windows: every element gets its window's share
        ho, wo = dout.shape[2:]
        dx = np.broadcast_to(share[:, :, :, None, :, None], (n, c, ho, ph, wo, pw))
        return np.ascontiguousarray(dx).reshape(x_shape)
    dx = np.zeros(x_shape, dtype=dout.dtype)
    ho, wo = dout.shape[2:]
    for a in range(ph):  # one strided add per window offset: ph*pw NumPy calls
        for b in range(pw):
            dx[:, :, a:a + stride * (ho - 1) + 1:stride,
               b:b + stride * (wo - 1) + 1:stride] += share
    return dx


@AVG_POOL_BACKWARD.register("compiled", available=_ext is not None)
def _avg_backward_compiled(dout, x_shape, ph, pw, stride):
    dx = np.empty(x_shape, dtype=dout.dtype)
    _ext.avg_pool_backward(_planes(dout), ph, pw, stride, _planes(dx), _threads(dx.size))
    return dx


# ------------------------------------------------------------------ global average pooling
@GLOBAL_AVG_POOL_FORWARD.register("naive")
def _global_forward_naive(x):
    n, c, h, w = x.shape
    out = np.empty((n, c), dtype=x.dtype)
    for i in range(n):
        for k in range(c):
            out[i, k] = sum(float(v) for v in x[i, k].ravel()) / (h * w)
    return out


@GLOBAL_AVG_POOL_FORWARD.register("vectorized")
def _global_forward_vectorized(x):
    return x.mean(axis=(2, 3), dtype=np.float64).astype(x.dtype)


@GLOBAL_AVG_POOL_FORWARD.register("compiled", available=_ext is not None)
def _global_forward_compiled(x):
    n, c, h, w = x.shape
    out = np.empty((n, c), dtype=x.dtype)
    _ext.global_avg_pool_forward(x.reshape(n * c, h * w), out.reshape(-1), _threads(x.size))
    return out


@GLOBAL_AVG_POOL_BACKWARD.register("naive")
def _global_backward_naive(dout, x_shape):
    n, c, h, w = x_shape
    dx = np.empty(x_shape, dtype=dout.dtype)
    for i in range(n):
        for k in range(c):
            dx[i, k] = float(dout[i, k]) / (h * w)
    return dx


@GLOBAL_AVG_POOL_BACKWARD.register("vectorized")
def _global_backward_vectorized(dout, x_shape):
    h, w = x_shape[2:]
    share = (dout / (h * w)).astype(dout.dtype, copy=False)
    return np.ascontiguousarray(np.broadcast_to(share[:, :, None, None], x_shape))


@GLOBAL_AVG_POOL_BACKWARD.register("compiled", available=_ext is not None)
def _global_backward_compiled(dout, x_shape):
    n, c, h, w = x_shape
    dx = np.empty(x_shape, dtype=dout.dtype)
    _ext.global_avg_pool_backward(dout.reshape(-1), dx.reshape(n * c, h * w), _threads(dx.size))
    return dx


# ------------------------------------------------------------------------ public entries
def max_pool_forward(x: ArrayLike, pool_height: int, pool_width: int, stride: int,
                     impl: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling of ``x`` (N, C, H, W).

    Parameters
    ----------
    x : array_like
        Input (N, C, H, W), float32 or float64 (other numbers become float64).
    pool_height, pool_width : int
        Window size, at most H and W.
    stride : int
        Step between windows (>= 1); ``(H - pool_height) / stride + 1`` and
        ``(W - pool_width) / stride + 1`` must be whole numbers.
    impl : str, optional
        ``"naive"``, ``"vectorized"`` or ``"compiled"`` (None: the best available).

    Returns
    -------
    out : ndarray
        (N, C, Ho, Wo), ``x``'s dtype.
    argmax : ndarray
        (N, C, Ho, Wo) int64: index of each maximum in the flattened H*W plane (the first
        maximum on ties; the last NaN of a window that holds NaNs, as in torch).
    """
    return MAX_POOL_FORWARD(x, pool_height, pool_width, stride, impl=impl)


def max_pool_backward(dout: ArrayLike, argmax: ArrayLike, x_shape: Sequence[int],
                      impl: str | None = None) -> np.ndarray:
    """Gradient of max pooling: ``dx[n, c].flat[argmax[n, c]] += dout[n, c]``.

    Parameters
    ----------
    dout : array_like
        Upstream gradient (N, C, Ho, Wo).
    argmax : array_like
        Integer indices into the H*W plane, dout's shape (from :func:`max_pool_forward`).
    x_shape : sequence of int
        (N, C, H, W) of the forward input.
    impl : str, optional
        Implementation name (None: the best available).

    Returns
    -------
    ndarray
        ``dx`` of shape ``x_shape``, dout's dtype.
    """
    return MAX_POOL_BACKWARD(dout, argmax, x_shape, impl=impl)


def avg_pool_forward(x: ArrayLike, pool_height: int, pool_width: int, stride: int,
                     impl: str | None = None) -> np.ndarray:
    """Average pooling of ``x`` (N, C, H, W): the mean of every window.

    Parameters
    ----------
    x : array_like
        Input (N, C, H, W), float32 or float64 (other numbers become float64).
    pool_height, pool_width : int
        Window size, at most H and W.
    stride : int
        Step between windows (>= 1); the output size rule is that of :func:`max_pool_forward`.
    impl : str, optional
        ``"naive"``, ``"vectorized"`` or ``"compiled"`` (None: the best available).

    Returns
    -------
    ndarray
        (N, C, Ho, Wo), ``x``'s dtype (window sums accumulated in float64).
    """
    return AVG_POOL_FORWARD(x, pool_height, pool_width, stride, impl=impl)


def avg_pool_backward(dout: ArrayLike, x_shape: Sequence[int], pool_height: int,
                      pool_width: int, stride: int, impl: str | None = None) -> np.ndarray:
    """Gradient of average pooling: every window spreads ``dout / (pool_height * pool_width)``.

    Parameters
    ----------
    dout : array_like
        Upstream gradient (N, C, Ho, Wo), the forward output's shape.
    x_shape : sequence of int
        (N, C, H, W) of the forward input.
    pool_height, pool_width, stride : int
        The forward window and stride.
    impl : str, optional
        Implementation name (None: the best available).

    Returns
    -------
    ndarray
        ``dx`` of shape ``x_shape``, dout's dtype.
    """
    return AVG_POOL_BACKWARD(dout, x_shape, pool_height, pool_width, stride, impl=impl)


def global_avg_pool_forward(x: ArrayLike, impl: str | None = None) -> np.ndarray:
    """Global average pooling: the mean over each (H, W) plane of ``x``.

    Parameters
    ----------
    x : array_like
        Input (N, C, H, W), float32 or float64.
    impl : str, optional
        Implementation name (None: the best available).

    Returns
    -------
    ndarray
        (N, C), ``x``'s dtype (sums accumulated in float64).
    """
    return GLOBAL_AVG_POOL_FORWARD(x, impl=impl)


def global_avg_pool_backward(dout: ArrayLike, x_shape: Sequence[int],
                             impl: str | None = None) -> np.ndarray:
    """Gradient of global average pooling: ``dout[n, c] / (H * W)`` everywhere in plane (n, c).

    Parameters
    ----------
    dout : array_like
        Upstream gradient (N, C).
    x_shape : sequence of int
        (N, C, H, W) of the forward input.
    impl : str, optional
        Implementation name (None: the best available).

    Returns
    -------
    ndarray
        ``dx`` of shape ``x_shape``, dout's dtype.
    """
    return GLOBAL_AVG_POOL_BACKWARD(dout, x_shape, impl=impl)
