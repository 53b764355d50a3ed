"""Convolutional layers (CS231n ``layers.py``/``fast_layers.py``): forward and backward passes.

``x`` (N, C, H, W), ``w`` (F, C, HH, WW), ``b`` (F,); ``conv_param`` keys ``stride`` and ``pad``
(required) and ``dilation`` (optional, default 1). The output (N, F, H', W') has
``H' = (H + 2*pad - dilation*(HH - 1) - 1) / stride + 1``, which must be a whole number: a
ValueError naming ``conv_param`` spells out the sizes that do not fit.

The ``_naive`` pair runs the looped implementation of :mod:`fastnn.kernels.conv` (CS231n's
readable loops), the ``_fast`` pair the best available one (compiled chunked im2col + BLAS).
The cache is ``(x, w, conv_param)``: what the backward pass needs (the bias does not enter
any gradient but its own, which is a sum of ``dout``). ``*_backward(dout, cache, need_dx=True)``
returns ``(dx, dw, db)``; ``need_dx=False`` skips the input gradient (``dx`` is None), which a
network's first layer never needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_int
from fastnn.kernels import conv as kernels
from fastnn.kernels._conv_geometry import output_size
from fastnn.layers._cache import cached_array, unpack_cache
from fastnn.layers._params import check_param_dict

__all__ = [
    "conv_backward_fast",
    "conv_backward_naive",
    "conv_forward_fast",
    "conv_forward_naive",
]

_FIELDS = ("x", "w", "conv_param")


def _read_conv_param(conv_param: Any, x: Any, w: Any) -> dict[str, int]:
    """``conv_param`` checked (keys, integer values) and, when x and w are 4-D arrays, their
    output size checked with an error naming ``conv_param``; returned as a new dict of ints."""
    check_param_dict(conv_param, "conv_param")
    for key in ("stride", "pad"):
        if key not in conv_param:
            raise ValueError(f"conv_param must contain the key {key!r}; got keys "
                             f"{sorted(map(str, conv_param))}")
    param = {
        "stride": check_int(conv_param["stride"], "conv_param['stride']", minimum=1),
        "pad": check_int(conv_param["pad"], "conv_param['pad']", minimum=0),
        "dilation": check_int(conv_param.get("dilation", 1), "conv_param['dilation']",
                              minimum=1),
    }
    shape_x, shape_w = getattr(x, "shape", None), getattr(w, "shape", None)
    if (isinstance(shape_x, tuple) and isinstance(shape_w, tuple) and len(shape_x) == 4
            and len(shape_w) == 4):
        for axis, (size_name, field_name) in ((2, ("H", "HH")), (3, ("W", "WW"))):
            output_size(shape_x[axis], shape_w[axis], param["pad"], param["stride"],
                        param["dilation"], prefix="conv_param: ",
                        symbols=(size_name, field_name, "pad", "stride", "dilation"))
    return param


def _forward(x: Any, w: Any, b: Any, conv_param: Any, impl: str | None,
             ) -> tuple[np.ndarray, tuple]:
    param = _read_conv_param(conv_param, x, w)
    out = kernels.conv_forward(x, w, b, param["stride"], param["pad"], param["dilation"],
                               impl=impl)
    x = np.asarray(x, dtype=out.dtype)
    w = np.asarray(w, dtype=out.dtype)
    return out, (x, w, param)


def _backward(dout: Any, cache: Any, need_dx: bool, forward: str, impl: str | None,
              ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    x, w, param = unpack_cache(cache, forward, _FIELDS)
    x = cached_array(x, "x", forward, ndim=4)
    w = cached_array(w, "w", forward, ndim=4)
    if not isinstance(param, dict):
        raise TypeError(f"cache must come from {forward}: its conv_param must be a dict; got "
                        f"{type(param).__name__}")
    param = _read_conv_param(param, x, w)
    return kernels.conv_backward(dout, x, w, param["stride"], param["pad"], param["dilation"],
                                 need_dx, impl=impl)


def conv_forward_naive(x: Any, w: Any, b: Any, conv_param: dict) -> tuple[np.ndarray, tuple]:
    """Convolution forward pass with plain loops (the readable reference).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        Input.
    w : array_like, shape (F, C, HH, WW)
        Filters.
    b : array_like, shape (F,)
        Biases.
    conv_param : dict
        ``stride`` and ``pad`` (required), ``dilation`` (default 1).

    Returns
    -------
    out : ndarray, shape (N, F, H', W')
    cache : tuple
        ``(x, w, conv_param)`` for :func:`conv_backward_naive`.
    """
    return _forward(x, w, b, conv_param, "naive")


def conv_backward_naive(dout: Any, cache: tuple, need_dx: bool = True,
                        ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Convolution backward pass with plain loops.

    Parameters
    ----------
    dout : array_like, shape (N, F, H', W')
        Upstream gradient.
    cache : tuple
        From :func:`conv_forward_naive`.
    need_dx : bool
        False skips the input gradient (returned as None).

    Returns
    -------
    dx : ndarray of shape (N, C, H, W), or None
    dw : ndarray of shape (F, C, HH, WW)
    db : ndarray of shape (F,)
    """
    return _backward(dout, cache, need_dx, "conv_forward_naive", "naive")


def conv_forward_fast(x: Any, w: Any, b: Any, conv_param: dict) -> tuple[np.ndarray, tuple]:
    """Convolution forward pass, best available implementation (same contract as
    :func:`conv_forward_naive`; the cache goes to :func:`conv_backward_fast`)."""
    return _forward(x, w, b, conv_param, None)


def conv_backward_fast(dout: Any, cache: tuple, need_dx: bool = True,
                       ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Convolution backward pass, best available implementation (same contract as
    :func:`conv_backward_naive`)."""
    return _backward(dout, cache, need_dx, "conv_forward_fast", None)
