"""Fully-connected (affine) layer: ``out = x.reshape(N, D) @ w + b``.

Its three products go through :func:`fastnn.kernels._gemm.product`: in float32 fastnn's AVX-512
kernel on OpenMP threads where the product's width is a multiple of 32 (the hidden layers of a
ConvNet or MLP), BLAS otherwise. Besides the faster kernel, a ConvNet's step then stays on one
thread pool: OpenBLAS workers spinning after a product held the cores the next convolution's
OpenMP threads needed (see benchmarks/README.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_array
from fastnn.kernels import _gemm
from fastnn.layers._cache import cached_array

__all__ = ["affine_backward", "affine_backward_params", "affine_forward"]


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Forward pass of an affine layer.

    Parameters
    ----------
    x : ndarray, shape (N, d_1, ..., d_k)
        Input minibatch; each example is flattened to ``D = d_1 * ... * d_k`` values.
    w : ndarray, shape (D, M)
        Weights.
    b : ndarray, shape (M,)
        Biases.

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple
        ``(x, w, b)`` as in CS231n (``x, w, b = cache`` works in course code).
    """
    x = check_array(x, "x", finite=False)
    w = check_array(w, "w", ndim=2, finite=False)
    b = check_array(b, "b", ndim=1, finite=False)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (N, d_1, ..., d_k), got {x.ndim}-D shape {x.shape}")
    n = x.shape[0]
    d = x.size // n
    if d != w.shape[0]:
        raise ValueError(
            f"w must have shape (D, M) with D = {d} (the size of one example of x {x.shape}); "
            f"got w {w.shape}"
        )
    if b.shape[0] != w.shape[1]:
        raise ValueError(f"b must have shape ({w.shape[1]},) to match w {w.shape}; got {b.shape}")
    out = np.empty((n, w.shape[1]), dtype=np.result_type(x, w))
    _gemm.product(x.reshape(n, d), w, out)
    out += b  # in place: saves one (N, M) temporary
    return out, (x, w, b)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of an affine layer.

    Parameters
    ----------
    dout : ndarray, shape (N, M)
        Upstream gradient.
    cache : tuple
        ``(x, w, b)`` from :func:`affine_forward` (``b`` is not needed; ``(x, w)`` works too).

    Returns
    -------
    dx : ndarray, shape (N, d_1, ..., d_k)
    dw : ndarray, shape (D, M)
    db : ndarray, shape (M,)
    """
    x, w = _unpack(cache)
    dout = _check_dout(dout, x, w)
    dx = np.empty((x.shape[0], w.shape[0]), dtype=np.result_type(dout, w))
    # the compiled product needs its right operand C-contiguous: copy w.T (the size of w) only
    # when the product then runs on it (the compiled transpose: 0.18 vs 0.44 ms for NumPy's
    # strided copy of a (3136, 128) float32 w)
    w_t = w.T
    if _gemm.fits(dout, np.empty((1, w.shape[0]), w.dtype), dx):
        w_t = _gemm.transposed(w)
    _gemm.product(dout, w_t, dx)
    dw, db = _param_grads(dout, x)
    return dx.reshape(x.shape), dw, db


def affine_backward_params(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of the weights and biases only (``dw, db``), skipping ``dx``.

    The first layer of a network never needs the gradient of the data, and ``dx`` is the largest
    matrix product of that layer's backward pass, so models call this instead.

    Parameters
    ----------
    dout : ndarray, shape (N, M)
        Upstream gradient.
    cache : tuple
        ``(x, w, b)`` (or ``(x, w)``) from :func:`affine_forward`.

    Returns
    -------
    dw : ndarray, shape (D, M)
    db : ndarray, shape (M,)
    """
    x, w = _unpack(cache)
    dout = _check_dout(dout, x, w)
    return _param_grads(dout, x)


def _unpack(cache: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(x, w)`` from an affine cache ``(x, w, b)`` or ``(x, w)``, checked against each other."""
    if not isinstance(cache, (tuple, list)):
        raise TypeError("cache must be the (x, w, b) tuple returned by affine_forward; got "
                        f"a {type(cache).__name__}")
    if len(cache) not in (2, 3):
        raise ValueError("cache must be the (x, w, b) tuple returned by affine_forward (or "
                         f"(x, w)); got a {type(cache).__name__} of {len(cache)} items")
    x = cached_array(cache[0], "x", "affine_forward")
    w = cached_array(cache[1], "w", "affine_forward", ndim=2)
    if x.ndim < 2 or x.size != x.shape[0] * w.shape[0]:
        raise ValueError(f"cache must come from affine_forward: its x {x.shape} does not hold "
                         f"N examples of D = {w.shape[0]} values (the rows of w {w.shape})")
    return x, w


def _check_dout(dout, x, w) -> np.ndarray:
    dout = check_array(dout, "dout", ndim=2, finite=False)
    if dout.shape != (x.shape[0], w.shape[1]):
        raise ValueError(
            f"dout must have shape {(x.shape[0], w.shape[1])} (the forward output); got {dout.shape}"
        )
    return dout


def _param_grads(dout: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    x2 = x.reshape(n, -1)
    dw = np.empty((x2.shape[1], dout.shape[1]), dtype=np.result_type(x, dout))
    _gemm.product(x2.T, dout, dw)
    db = dout.sum(axis=0)
    return dw, db
