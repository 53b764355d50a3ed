"""Element-wise activations: ReLU, leaky ReLU, sigmoid, tanh, ELU.

Every forward returns ``(out, cache)`` with ``out`` of the input's shape and dtype; every
backward returns ``dx``. Where the output determines the derivative (ReLU, sigmoid, tanh, ELU)
the cache holds the output rather than the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_array, check_float

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

    Returns
    -------
    out : ndarray, shape of ``x``
    cache : ndarray
        ``out`` itself: ``out > 0`` exactly where ``x > 0``, which is all backward needs.
    """
    x = _check_x(x)
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """``dx = dout`` where the input was positive, else 0."""
    out = cache
    dout = _check_dout(dout, out)
    return np.where(out > 0, dout, 0).astype(dout.dtype, copy=False)


# ------------------------------------------------------------------------------- leaky ReLU
def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, tuple]:
    """``out = x`` for ``x > 0``, else ``alpha * x``.

    Returns
    -------
    out : ndarray, shape of ``x``
    cache : tuple
        ``(x, alpha)``.
    """
    x = _check_x(x)
    alpha = check_float(alpha, "alpha")
    out = np.where(x > 0, x, alpha * x)
    return out, (x, alpha)


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """``dx = dout`` for ``x > 0``, else ``alpha * dout``."""
    x, alpha = cache
    dout = _check_dout(dout, x)
    return np.where(x > 0, dout, alpha * dout)


# ---------------------------------------------------------------------------------- sigmoid
def sigmoid(x: Any) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, stable for large ``|x|``.

    ``exp`` only ever sees ``-|x|`` (so it cannot overflow); for negative ``x`` the equivalent
    form ``exp(x) / (1 + exp(x))`` keeps full relative precision of tiny results.
    Float32 input gives float32 output; integers are computed in float64.
    """
    x = check_array(x, "x", allow_empty=True, finite=False)
    z = np.exp(-np.abs(x))
    d = 1 / (1 + z)
    return np.where(x >= 0, d, z * d)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``out = sigmoid(x)``; the cache is ``out`` (``d out / dx = out * (1 - out)``)."""
    out = sigmoid(_check_x(x))
    return out, out


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """``dx = dout * out * (1 - out)``."""
    out = cache
    dout = _check_dout(dout, out)
    return dout * out * (1 - out)


# ------------------------------------------------------------------------------------- tanh
def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``out = tanh(x)``; the cache is ``out`` (``d out / dx = 1 - out**2``)."""
    out = np.tanh(_check_x(x))
    return out, out


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """``dx = dout * (1 - out**2)``."""
    out = cache
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
        ``(out, alpha)``: for ``alpha >= 0``, ``out > 0`` exactly where ``x > 0`` and, elsewhere,
        the derivative ``alpha * exp(x)`` equals ``out + alpha``.
    """
    x = _check_x(x)
    alpha = check_float(alpha, "alpha", minimum=0.0)
    # expm1 keeps precision near 0; the minimum keeps exp from overflowing on the unused branch
    out = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
    return out, (out, alpha)


def elu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """``dx = dout`` for ``x > 0``, else ``dout * alpha * exp(x) = dout * (out + alpha)``."""
    out, alpha = cache
    dout = _check_dout(dout, out)
    return np.where(out > 0, dout, dout * (out + alpha))
