"""Argument checks of the pooling operations (:mod:`fastnn.kernels.pool`).

Each ``check_*(impl, ...)`` validates the public arguments (errors name the argument, what was
expected and what was received) and returns them normalised for every implementation: float
maps in C order, ``argmax`` as C-ordered int64, ``x_shape`` as a tuple of four ints.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_array, check_fits_in_memory, check_int

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _maps(a: Any, name: str, ndim: int = 4) -> np.ndarray:
    """A non-empty float array of ``ndim`` dimensions in C order (float32/64 kept)."""
    if not (type(a) is np.ndarray and a.dtype in _FLOAT_DTYPES and a.ndim == ndim and a.size
            and a.flags.c_contiguous):
        a = np.ascontiguousarray(check_array(a, name, ndim=ndim, finite=False))
    return a


def _window(pool_height: Any, pool_width: Any, stride: Any) -> tuple[int, int, int]:
    return (check_int(pool_height, "pool_height", minimum=1),
            check_int(pool_width, "pool_width", minimum=1),
            check_int(stride, "stride", minimum=1))


def check_fit(h: int, w: int, ph: int, pw: int, stride: int, source: str) -> tuple[int, int]:
    """The pooled size (Ho, Wo) of an H x W input; ValueError naming the hyperparameters and
    the input side when a window is larger than the input or the size is not whole.

    ``source`` names where H and W come from (``"x"``, ``"x_shape"``).
    """
    sizes = []
    for side, size, window in (("height H", h, ph), ("width W", w, pw)):
        window_name = "pool_height" if side.startswith("height") else "pool_width"
        letter = side[-1]
        if window > size:
            raise ValueError(f"{window_name}={window} is larger than the input {side}={size} "
                             f"of {source}")
        if (size - window) % stride:
            raise ValueError(
                f"{window_name}={window} and stride={stride} do not fit the input {side}={size} "
                f"of {source}: ({letter} - {window_name}) / stride + 1 = "
                f"{(size - window) / stride + 1:g} is not a whole number")
        sizes.append((size - window) // stride + 1)
    return sizes[0], sizes[1]


def check_x_shape(x_shape: Any) -> tuple[int, int, int, int]:
    """(N, C, H, W) of the forward input: four ints >= 1 whose dx fits in memory."""
    if isinstance(x_shape, np.ndarray):
        x_shape = x_shape.tolist() if x_shape.ndim == 1 else x_shape
    if not isinstance(x_shape, (tuple, list)):
        raise TypeError(f"x_shape must be the (N, C, H, W) shape of the forward input, a tuple "
                        f"of 4 ints; got {type(x_shape).__name__} {x_shape!r}")
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be the (N, C, H, W) shape of the forward input (4 ints); "
                         f"got {len(x_shape)} entries: {tuple(x_shape)!r}")
    shape = tuple(check_int(v, f"x_shape[{i}]", minimum=1) for i, v in enumerate(x_shape))
    check_fits_in_memory(8.0 * np.prod(shape, dtype=float), "x_shape", f"dx of shape {shape}")
    return shape


def check_window_forward(impl: str, x: Any, pool_height: Any, pool_width: Any,
                         stride: Any) -> tuple:
    """x (N, C, H, W); the window fits and the output size is whole."""
    x = _maps(x, "x")
    ph, pw, stride = _window(pool_height, pool_width, stride)
    check_fit(x.shape[2], x.shape[3], ph, pw, stride, "x")
    return x, ph, pw, stride


def check_max_backward(impl: str, dout: Any, argmax: Any, x_shape: Any) -> tuple:
    """dout (N, C, Ho, Wo), argmax of its shape holding indices in [0, H*W), x_shape (N, C, H, W).

    The compiled kernel tests the index range itself while it reads the indices (and raises
    before anything is returned), so that pass is skipped for it.
    """
    x_shape = check_x_shape(x_shape)
    dout = _maps(dout, "dout")
    argmax = check_array(argmax, "argmax", ndim=4, dtype="int")
    argmax = np.ascontiguousarray(argmax, dtype=np.int64)
    if argmax.shape != dout.shape:
        raise ValueError(f"argmax and dout must have the same shape; got argmax {argmax.shape} "
                         f"and dout {dout.shape}")
    if dout.shape[:2] != x_shape[:2]:
        raise ValueError(f"dout must have x_shape's N and C {x_shape[:2]} in its first two "
                         f"axes; got dout of shape {dout.shape}")
    hw = x_shape[2] * x_shape[3]
    if impl != "compiled" and (argmax.min() < 0 or argmax.max() >= hw):
        raise ValueError(f"argmax must hold indices in [0, {hw}) (the flattened {x_shape[2]}x"
                         f"{x_shape[3]} plane of x_shape); got values in [{argmax.min()}, "
                         f"{argmax.max()}]")
    return dout, argmax, x_shape


def check_avg_backward(impl: str, dout: Any, x_shape: Any, pool_height: Any, pool_width: Any,
                       stride: Any) -> tuple:
    """dout (N, C, Ho, Wo) of the pooled size of x_shape (N, C, H, W)."""
    x_shape = check_x_shape(x_shape)
    dout = _maps(dout, "dout")
    ph, pw, stride = _window(pool_height, pool_width, stride)
    ho, wo = check_fit(x_shape[2], x_shape[3], ph, pw, stride, "x_shape")
    want = (*x_shape[:2], ho, wo)
    if dout.shape != want:
        raise ValueError(f"dout must have the pooled shape {want} of x_shape {x_shape} with "
                         f"pool_height={ph}, pool_width={pw}, stride={stride}; got {dout.shape}")
    return dout, x_shape, ph, pw, stride


def check_global_forward(impl: str, x: Any) -> tuple:
    """x (N, C, H, W)."""
    return (_maps(x, "x"),)


def check_global_backward(impl: str, dout: Any, x_shape: Any) -> tuple:
    """dout (N, C) matching x_shape (N, C, H, W)."""
    x_shape = check_x_shape(x_shape)
    dout = _maps(dout, "dout", ndim=2)
    if dout.shape != x_shape[:2]:
        raise ValueError(f"dout must have shape {x_shape[:2]} (N, C of x_shape); got "
                         f"{dout.shape}")
    return dout, x_shape
