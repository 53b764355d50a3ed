"""Pooling layers (CS231n ``layers.py``/``fast_layers.py``): max pooling, average pooling and
global average pooling over (N, C, H, W) inputs.

``pool_param`` holds ``pool_height``, ``pool_width`` and ``stride``; the output is
(N, C, Ho, Wo) with ``Ho = (H - pool_height) / stride + 1`` (likewise Wo), which must be a whole
number (otherwise a ValueError names the hyperparameters and the side that do not fit).

The ``*_naive`` layers run the looped kernels of :mod:`fastnn.kernels.pool` (the readable
specification), the ``*_fast`` layers the best available implementation (compiled, else NumPy).
Both give the same numbers. Max pooling routes each gradient to the first maximum of its window
(row-major order), as torch and ``np.argmax`` do; a NaN in a window is its maximum (the last
NaN when there are several, as in torch).
Caches hold what the backward passes need, not the input: ``(argmax, x_shape, pool_param)`` for
max pooling, ``(x_shape, pool_param)`` for average pooling and ``(x_shape,)`` for global
average pooling.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_int
from fastnn.kernels import pool as kernels
from fastnn.layers._cache import cached_array, unpack_cache
from fastnn.layers._params import check_param_dict

__all__ = [
    "avg_pool_backward_fast",
    "avg_pool_backward_naive",
    "avg_pool_forward_fast",
    "avg_pool_forward_naive",
    "global_avg_pool_backward",
    "global_avg_pool_forward",
    "max_pool_backward_fast",
    "max_pool_backward_naive",
    "max_pool_forward_fast",
    "max_pool_forward_naive",
]

_KEYS = ("pool_height", "pool_width", "stride")
_MAX_FIELDS = ("argmax", "x_shape", "pool_param")
_AVG_FIELDS = ("x_shape", "pool_param")


def _pool_param(pool_param: Any) -> dict[str, int]:
    """The three required keys of ``pool_param``, as ints >= 1."""
    check_param_dict(pool_param, "pool_param")
    missing = [key for key in _KEYS if key not in pool_param]
    if missing:
        raise ValueError(f"pool_param must contain the keys {', '.join(map(repr, _KEYS))}; "
                         f"missing {', '.join(map(repr, missing))}")
    return {key: check_int(pool_param[key], f"pool_param[{key!r}]", minimum=1) for key in _KEYS}


def _cached_shape(value: Any, forward: str) -> tuple[int, int, int, int]:
    """The cached forward input shape: four ints >= 1."""
    if (not isinstance(value, tuple) or len(value) != 4
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                       for v in value)):
        raise TypeError(f"cache must come from {forward}: its x_shape must be a tuple of 4 ints "
                        f">= 1; got {value!r}")
    return tuple(int(v) for v in value)


def _cached_pool_param(value: Any, forward: str) -> dict[str, int]:
    try:
        return _pool_param(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"cache must come from {forward}: its {exc}") from None


def _checked_dout(dout: Any, shape: tuple[int, ...]) -> Any:
    """dout must have the forward output's shape (other checks belong to the kernel)."""
    try:
        got = np.shape(dout)
    except (ValueError, TypeError) as exc:  # a ragged nested list has no shape
        raise ValueError(f"dout must be an array of the forward output's shape {shape}; got a "
                         f"ragged {type(dout).__name__}: {exc}") from None
    if got != shape:
        raise ValueError(f"dout must have the forward output's shape {shape}; got {got}")
    return dout


def _kernel_call(forward: str, func, *args, **kwargs):
    """Run a backward kernel; its complaints about cached items are about the cache."""
    try:
        return func(*args, **kwargs)
    except ValueError as exc:
        if str(exc).startswith(("argmax", "x_shape")):
            raise ValueError(f"cache must come from {forward}: {exc}") from None
        raise


# ------------------------------------------------------------------------------ max pooling
def _max_forward(x: Any, pool_param: Any, impl: str | None) -> tuple[np.ndarray, tuple]:
    p = _pool_param(pool_param)
    out, argmax = kernels.max_pool_forward(x, p["pool_height"], p["pool_width"], p["stride"],
                                           impl=impl)
    x_shape = (*out.shape[:2], *np.shape(x)[2:])
    return out, (argmax, tuple(int(v) for v in x_shape), p)


def _max_backward(dout: Any, cache: Any, forward: str, impl: str | None) -> np.ndarray:
    argmax, x_shape, pool_param = unpack_cache(cache, forward, _MAX_FIELDS)
    argmax = cached_array(argmax, "argmax", forward, ndim=4)
    x_shape = _cached_shape(x_shape, forward)
    _cached_pool_param(pool_param, forward)
    if argmax.shape[:2] != x_shape[:2]:
        raise ValueError(f"cache must come from {forward}: its argmax {argmax.shape} and x_shape "
                         f"{x_shape} disagree on N and C")
    _checked_dout(dout, argmax.shape)
    return _kernel_call(forward, kernels.max_pool_backward, dout, argmax, x_shape, impl=impl)


def max_pool_forward_naive(x: Any, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling with the looped kernel (the readable specification).

    Parameters
    ----------
    x : array_like
        Input (N, C, H, W).
    pool_param : dict
        ``pool_height``, ``pool_width``, ``stride`` (ints >= 1).

    Returns
    -------
    out : ndarray
        (N, C, Ho, Wo), x's dtype.
    cache : tuple
        ``(argmax, x_shape, pool_param)`` for :func:`max_pool_backward_naive`.
    """
    return _max_forward(x, pool_param, "naive")


def max_pool_backward_naive(dout: Any, cache: tuple) -> np.ndarray:
    """Gradient of :func:`max_pool_forward_naive` (looped): each ``dout`` goes to its window's
    first maximum; overlapping windows add up. Returns ``dx`` (N, C, H, W)."""
    return _max_backward(dout, cache, "max_pool_forward_naive", "naive")


def max_pool_forward_fast(x: Any, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling with the best available kernel (compiled, else NumPy); the contract of
    :func:`max_pool_forward_naive`."""
    return _max_forward(x, pool_param, None)


def max_pool_backward_fast(dout: Any, cache: tuple) -> np.ndarray:
    """Gradient of :func:`max_pool_forward_fast`. Returns ``dx`` (N, C, H, W)."""
    return _max_backward(dout, cache, "max_pool_forward_fast", None)


# -------------------------------------------------------------------------- average pooling
def _avg_forward(x: Any, pool_param: Any, impl: str | None) -> tuple[np.ndarray, tuple]:
    p = _pool_param(pool_param)
    out = kernels.avg_pool_forward(x, p["pool_height"], p["pool_width"], p["stride"], impl=impl)
    x_shape = tuple(int(v) for v in (*out.shape[:2], *np.shape(x)[2:]))
    return out, (x_shape, p)


def _avg_backward(dout: Any, cache: Any, forward: str, impl: str | None) -> np.ndarray:
    x_shape, pool_param = unpack_cache(cache, forward, _AVG_FIELDS)
    x_shape = _cached_shape(x_shape, forward)
    p = _cached_pool_param(pool_param, forward)
    return _kernel_call(forward, kernels.avg_pool_backward, dout, x_shape, p["pool_height"],
                        p["pool_width"], p["stride"], impl=impl)


def avg_pool_forward_naive(x: Any, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Average pooling with the looped kernel.

    Parameters
    ----------
    x : array_like
        Input (N, C, H, W).
    pool_param : dict
        ``pool_height``, ``pool_width``, ``stride`` (ints >= 1).

    Returns
    -------
    out : ndarray
        (N, C, Ho, Wo): the mean of every window, x's dtype.
    cache : tuple
        ``(x_shape, pool_param)``.
    """
    return _avg_forward(x, pool_param, "naive")


def avg_pool_backward_naive(dout: Any, cache: tuple) -> np.ndarray:
    """Gradient of :func:`avg_pool_forward_naive`: every window spreads
    ``dout / (pool_height * pool_width)``. Returns ``dx`` (N, C, H, W)."""
    return _avg_backward(dout, cache, "avg_pool_forward_naive", "naive")


def avg_pool_forward_fast(x: Any, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Average pooling with the best available kernel; the contract of
    :func:`avg_pool_forward_naive`."""
    return _avg_forward(x, pool_param, None)


def avg_pool_backward_fast(dout: Any, cache: tuple) -> np.ndarray:
    """Gradient of :func:`avg_pool_forward_fast`. Returns ``dx`` (N, C, H, W)."""
    return _avg_backward(dout, cache, "avg_pool_forward_fast", None)


# ------------------------------------------------------------------- global average pooling
def global_avg_pool_forward(x: Any) -> tuple[np.ndarray, tuple]:
    """Global average pooling: the mean of each (H, W) plane.

    Parameters
    ----------
    x : array_like
        Input (N, C, H, W).

    Returns
    -------
    out : ndarray
        (N, C), x's dtype.
    cache : tuple
        ``(x_shape,)``.
    """
    out = kernels.global_avg_pool_forward(x)
    return out, (tuple(int(v) for v in (*out.shape, *np.shape(x)[2:])),)


def global_avg_pool_backward(dout: Any, cache: tuple) -> np.ndarray:
    """Gradient of :func:`global_avg_pool_forward`: ``dout[n, c] / (H * W)`` everywhere in
    plane (n, c). Returns ``dx`` (N, C, H, W)."""
    (x_shape,) = unpack_cache(cache, "global_avg_pool_forward", ("x_shape",))
    x_shape = _cached_shape(x_shape, "global_avg_pool_forward")
    return _kernel_call("global_avg_pool_forward", kernels.global_avg_pool_backward, dout,
                        x_shape)
