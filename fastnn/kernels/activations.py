"""ReLU forward and backward behind ``fastnn.layers.relu_forward`` / ``relu_backward``.

Three implementations with one signature each:

- ``"naive"``: a Python loop over the elements, the readable specification;
- ``"vectorized"``: ``np.maximum(x, 0)`` and ``dout * (x > 0)`` (CS231n's lines);
- ``"compiled"``: ``fastnn._ext._activations`` (Cython + OpenMP), one pass over the flat arrays,
  threads over contiguous slices, no temporary mask.

All three give bit-identical results (NaN inputs pass through the forward as in ``np.maximum``;
the backward multiplies by the 0/1 mask, so an infinite ``dout`` where ``x <= 0`` is NaN as in
NumPy).

Signatures: ``relu_forward(x) -> out``; ``relu_backward(dout, x) -> dx`` (``x`` the forward
input, of ``dout``'s shape).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from fastnn._validation import check_array
from fastnn.kernels._operation import Operation, load_extension, threads_for

__all__ = ["relu_backward", "relu_forward"]

_ext = load_extension("_activations")

#: Elements a thread must get: a pass over 1e5 float32 values takes tens of microseconds, far
#: more than waking a worker.
ELEMENTS_PER_THREAD = 1e5


def _check_forward(impl: str, x: Any) -> tuple:
    """x: a non-empty float array (float32/float64 kept), C order."""
    return (check_array(x, "x", finite=False, contiguous=True),)


def _check_backward(impl: str, dout: Any, x: Any) -> tuple:
    """dout and x of one shape; x may have another float dtype (only its sign is used: it is
    then passed on as the exact 0/1 mask in dout's dtype)."""
    dout = check_array(dout, "dout", finite=False, contiguous=True)
    x = check_array(x, "x", finite=False, contiguous=True)
    if dout.shape != x.shape:
        raise ValueError(f"dout must have the shape of the forward input x {x.shape}; got "
                         f"{dout.shape}")
    if x.dtype != dout.dtype:
        x = (x > 0).astype(dout.dtype)
    return dout, x


RELU_FORWARD = Operation("relu_forward", _check_forward)
RELU_BACKWARD = Operation("relu_backward", _check_backward)


@RELU_FORWARD.register("naive")
def _relu_forward_naive(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    for i in range(flat_x.size):
        v = flat_x[i]
        flat_out[i] = 0 if v <= 0 else v
    return out


@RELU_FORWARD.register("vectorized")
def _relu_forward_vectorized(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


@RELU_FORWARD.register("compiled", available=_ext is not None)
def _relu_forward_compiled(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    _ext.relu_forward(x.reshape(-1), out.reshape(-1), threads_for(x.size, ELEMENTS_PER_THREAD))
    return out


@RELU_BACKWARD.register("naive")
def _relu_backward_naive(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    dx = np.empty_like(dout)
    flat_d, flat_x, flat_dx = dout.reshape(-1), x.reshape(-1), dx.reshape(-1)
    for i in range(flat_d.size):
        flat_dx[i] = flat_d[i] * (1 if flat_x[i] > 0 else 0)
    return dx


@RELU_BACKWARD.register("vectorized")
def _relu_backward_vectorized(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    return dout * (x > 0)


@RELU_BACKWARD.register("compiled", available=_ext is not None)
def _relu_backward_compiled(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    dx = np.empty_like(dout)
    _ext.relu_backward(dout.reshape(-1), x.reshape(-1), dx.reshape(-1),
                       threads_for(dout.size, ELEMENTS_PER_THREAD))
    return dx


def relu_forward(x: ArrayLike, impl: str | None = None) -> np.ndarray:
    """``max(x, 0)`` element by element.

    Parameters
    ----------
    x : array_like, any shape
        Non-empty; float32/float64 kept, other numbers converted to float64.
    impl : {"naive", "vectorized", "compiled"}, optional
        Implementation (None: the best available).

    Returns
    -------
    ndarray, shape and dtype of ``x``
    """
    return RELU_FORWARD(x, impl=impl)


def relu_backward(dout: ArrayLike, x: ArrayLike, impl: str | None = None) -> np.ndarray:
    """``dout * (x > 0)``: the gradient of :func:`relu_forward`.

    Parameters
    ----------
    dout : array_like
        Upstream gradient.
    x : array_like, shape of ``dout``
        The forward input.
    impl : {"naive", "vectorized", "compiled"}, optional
        Implementation (None: the best available).

    Returns
    -------
    ndarray, shape and dtype of ``dout``
    """
    return RELU_BACKWARD(dout, x, impl=impl)
