"""Element-wise activations: ReLU, leaky ReLU, sigmoid, tanh, ELU.

Every forward returns ``(out, cache)`` with ``out`` of the input's shape and dtype; every
backward returns ``dx``. ReLU and leaky ReLU cache the input ``x`` (as CS231n). Sigmoid, tanh
and ELU cache their output, because the derivative follows from it without another ``exp``; the
cached array is a private copy, never the ``out`` handed to the caller, so editing ``out`` in
place (``out -= 5``) cannot corrupt the backward pass.

Branches are written as arithmetic on 0/1 masks (``dout * (out > 0)``) rather than
``np.where``: a multiply streams, NumPy's masked selection branches on every element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_array, check_float
from fastnn.kernels import activations as _kernels
from fastnn.layers._cache import cached_array, cached_number, unpack_cache

__all__ = [
    "elu_backward",
    "elu_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "relu_backward",
    "relu_forward",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_forward",
    "tanh_backward",
    "tanh_forward",
]


def _check_x(x: Any) -> np.ndarray:
    return check_array(x, "x", finite=False)


def _check_dout(dout: Any, like: np.ndarray) -> np.ndarray:
    dout = check_array(dout, "dout", finite=False)
    if dout.shape != like.shape:
        raise ValueError(f"dout must have the forward output's shape {like.shape}; got {dout.shape}")
    return dout


# ---------------------------------------------------------------------------------------- ReLU
def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``out = max(x, 0)``.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, shape of ``x``
    cache : ndarray
        ``x``, as in CS231n (not ``out``: the caller may edit ``out`` in place).
    """
    x = _check_x(x)
    # one compiled pass on OpenMP threads (fastnn.kernels.activations), NumPy's numbers
    return _kernels.relu_forward(x), x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """``dx = dout`` where the input was positive, else 0.

    Parameters
    ----------
    dout : ndarray, shape of ``x``
        Upstream gradient.
    cache : ndarray
        ``x``, from :func:`relu_forward`.

    Returns
    -------
    dx : ndarray, shape of ``x``
    """
    x = cached_array(cache, "x", "relu_forward")
    dout = _check_dout(dout, x)
    return _kernels.relu_backward(dout, x)


# ------------------------------------------------------------------------------- leaky ReLU
def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, tuple]:
    """``out = x`` for ``x > 0``, else ``alpha * x``.

    Parameters
    ----------
    x : ndarray, any shape
    alpha : float
        Slope for negative inputs.

    Returns
    -------
    out : ndarray, shape of ``x``
    cache : tuple
        ``(x, alpha)``.
    """
    x = _check_x(x)
    alpha = check_float(alpha, "alpha")
    # for alpha <= 1 the larger of x and alpha * x is the right branch, for alpha > 1 the smaller
    out = np.maximum(x, alpha * x) if alpha <= 1 else np.minimum(x, alpha * x)
    return out, (x, alpha)


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """``dx = dout`` for ``x > 0``, else ``alpha * dout``.

    Parameters
    ----------
    dout : ndarray, shape of ``x``
        Upstream gradient.
    cache : tuple
        ``(x, alpha)`` from :func:`leaky_relu_forward`.

    Returns
    -------
    dx : ndarray, shape of ``x``
    """
    x, alpha = unpack_cache(cache, "leaky_relu_forward", ("x", "alpha"))
    x = cached_array(x, "x", "leaky_relu_forward")
    alpha = cached_number(alpha, "alpha", "leaky_relu_forward")
    dout = _check_dout(dout, x)
    positive = (x > 0).astype(dout.dtype)
    slope = positive * (1 - alpha)
    slope += alpha  # 1 where x > 0, alpha elsewhere
    return dout * slope


# ---------------------------------------------------------------------------------- sigmoid
def sigmoid(x: Any) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, stable for large ``|x|``.

    Computed as ``exp(min(x, 0)) / (1 + exp(-|x|))``: for ``x >= 0`` that is
    ``1 / (1 + exp(-x))``, for ``x < 0`` the equivalent ``exp(x) / (1 + exp(x))``, so ``exp``
    never overflows and tiny results keep full relative precision.
    Float32 input gives float32 output; integers are computed in float64.

    Parameters
    ----------
    x : array_like
        Any shape (empty allowed).

    Returns
    -------
    ndarray, shape of ``x``
    """
    x = check_array(x, "x", allow_empty=True, finite=False)
    out = np.exp(np.minimum(x, 0))
    out /= 1 + np.exp(-np.abs(x))
    return out


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``out = sigmoid(x)``; the cache is a copy of ``out`` (``d out / dx = out * (1 - out)``).

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, shape of ``x``
    cache : ndarray
        A private copy of ``out``.
    """
    out = sigmoid(_check_x(x))
    return out, out.copy()  # a copy: the caller may edit out in place


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """``dx = dout * out * (1 - out)``.

    Parameters
    ----------
    dout : ndarray, shape of ``x``
        Upstream gradient.
    cache : ndarray
        The copy of ``out`` from :func:`sigmoid_forward`.

    Returns
    -------
    dx : ndarray, shape of ``x``
    """
    out = cached_array(cache, "out", "sigmoid_forward")
    dout = _check_dout(dout, out)
    return dout * out * (1 - out)


# ------------------------------------------------------------------------------------- tanh
def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``out = tanh(x)``; the cache is a copy of ``out`` (``d out / dx = 1 - out**2``).

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, shape of ``x``
    cache : ndarray
        A private copy of ``out``.
    """
    out = np.tanh(_check_x(x))
    return out, out.copy()  # a copy: the caller may edit out in place


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """``dx = dout * (1 - out**2)``.

    Parameters
    ----------
    dout : ndarray, shape of ``x``
        Upstream gradient.
    cache : ndarray
        The copy of ``out`` from :func:`tanh_forward`.

    Returns
    -------
    dx : ndarray, shape of ``x``
    """
    out = cached_array(cache, "out", "tanh_forward")
    dout = _check_dout(dout, out)
    return dout * (1 - out * out)


# -------------------------------------------------------------------------------------- ELU
def elu_forward(x: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, tuple]:
    """Exponential linear unit: ``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``.

    Parameters
    ----------
    x : ndarray
    alpha : float, >= 0
        Saturation value for large negative inputs is ``-alpha``.

    Returns
    -------
    out : ndarray, shape of ``x``
    cache : tuple
        ``(copy of out, alpha)``: for ``alpha >= 0``, ``out > 0`` exactly where ``x > 0`` and, elsewhere,
        the derivative ``alpha * exp(x)`` equals ``out + alpha``.
    """
    x = _check_x(x)
    alpha = check_float(alpha, "alpha", minimum=0.0)
    # max(x, 0) + alpha * expm1(min(x, 0)) is x or alpha * (exp(x) - 1), whichever applies
    # (expm1(0) = 0 exactly); expm1 keeps precision near 0 and never sees a positive argument
    out = np.expm1(np.minimum(x, 0))
    out *= alpha
    out += np.maximum(x, 0)
    return out, (out.copy(), alpha)  # a copy: the caller may edit out in place


def elu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """``dx = dout`` for ``x > 0``, else ``dout * alpha * exp(x) = dout * (out + alpha)``.

    Parameters
    ----------
    dout : ndarray, shape of ``x``
        Upstream gradient.
    cache : tuple
        ``(copy of out, alpha)`` from :func:`elu_forward`.

    Returns
    -------
    dx : ndarray, shape of ``x``
    """
    out, alpha = unpack_cache(cache, "elu_forward", ("out", "alpha"))
    out = cached_array(out, "out", "elu_forward")
    if out.dtype.kind != "f":
        # elu_forward always returns floats; integers would also break the in-place sums below
        raise TypeError(f"cache must come from elu_forward: its out must be a floating-point "
                        f"array; got a {out.ndim}-D {out.dtype} array of shape {out.shape}")
    alpha = cached_number(alpha, "alpha", "elu_forward")
    dout = _check_dout(dout, out)
    # min(out, 0) + alpha is out + alpha where x <= 0 and alpha where x > 0, so adding
    # (1 - alpha) on the positive side gives the derivative everywhere
    slope = np.minimum(out, 0)
    slope += alpha
    slope += (out > 0).astype(out.dtype) * (1 - alpha)
    return dout * slope
