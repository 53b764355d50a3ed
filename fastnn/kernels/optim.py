"""In-place update-rule kernels: Adam, SGD+momentum and RMSProp, three implementations each.

``fastnn.optim``'s rules call these when asked to update in place (``out=w``, as the Solver does).
NumPy's Adam makes about ten temporary arrays per parameter per step; the compiled kernel makes
one pass over ``w``, ``dw`` and the state arrays. Every implementation updates its IN/OUT
arguments in place and returns None.

- ``"naive"``: a plain Python loop over elements, the readable specification;
- ``"vectorized"``: NumPy, in place where NumPy allows;
- ``"compiled"``: ``fastnn._ext._optim`` (Cython + OpenMP), one fused pass.
"""

from __future__ import annotations

import math

import numpy as np

from fastnn._validation import check_float, check_int
from fastnn.kernels._operation import Operation, load_extension, threads_for

__all__ = ["adam_update", "rmsprop_update", "sgd_momentum_update"]

_ext = load_extension("_optim")

# Parallel regions next to the BLAS calls of a training step cost more than they save (the
# measurement is in benchmarks/README.md), so only very large parameters get a thread team.
_MIN_ELEMENTS_PER_THREAD = float(1 << 21)


def _threads(size: int) -> int:
    return threads_for(size, _MIN_ELEMENTS_PER_THREAD)


def _check_arrays(w: object, dw: object, states: dict[str, object]) -> np.ndarray:
    """Same shape, one float dtype, C-contiguous and writeable where written; returns ``dw`` in
    C order (it is only read, so a strided gradient is copied rather than refused)."""
    if not isinstance(w, np.ndarray) or w.dtype not in (np.float32, np.float64):
        raise TypeError("w must be a float32 or float64 ndarray, got "
                        f"{type(w).__name__} {getattr(w, 'dtype', '')}".rstrip())
    for name, arr in {"dw": dw, **states}.items():
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be an ndarray, got {type(arr).__name__}")
        if arr.shape != w.shape:
            raise ValueError(f"{name} must have the shape of w {w.shape}, got {arr.shape}")
        if arr.dtype != w.dtype:
            raise TypeError(f"{name} must have the dtype of w ({w.dtype}), got {arr.dtype}")
    for name, arr in {"w": w, **states}.items():
        if not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (it is updated in place)")
        if not arr.flags.writeable:
            raise ValueError(f"{name} must be writeable (it is updated in place)")
    return np.ascontiguousarray(dw)


def _rate(value: object, name: str) -> float:
    return check_float(value, name, minimum=0.0)


def _fraction(value: object, name: str) -> float:
    """A decay factor in [0, 1)."""
    return check_float(value, name, minimum=0.0, maximum=1.0, max_inclusive=False)


def _epsilon(value: object) -> float:
    return check_float(value, "epsilon", minimum=0.0, min_inclusive=False)


def _check_adam(impl, w, dw, m, v, learning_rate, beta1, beta2, epsilon, t):
    dw = _check_arrays(w, dw, {"m": m, "v": v})
    return (w, dw, m, v, _rate(learning_rate, "learning_rate"), _fraction(beta1, "beta1"),
            _fraction(beta2, "beta2"), _epsilon(epsilon), check_int(t, "t", minimum=1))


def _check_momentum(impl, w, dw, velocity, learning_rate, momentum):
    dw = _check_arrays(w, dw, {"velocity": velocity})
    return w, dw, velocity, _rate(learning_rate, "learning_rate"), _fraction(momentum, "momentum")


def _check_rmsprop(impl, w, dw, cache, learning_rate, decay_rate, epsilon):
    dw = _check_arrays(w, dw, {"cache": cache})
    decay_rate = check_float(decay_rate, "decay_rate", minimum=0.0, maximum=1.0)
    return w, dw, cache, _rate(learning_rate, "learning_rate"), decay_rate, _epsilon(epsilon)


ADAM = Operation("adam_update", _check_adam)
SGD_MOMENTUM = Operation("sgd_momentum_update", _check_momentum)
RMSPROP = Operation("rmsprop_update", _check_rmsprop)


# --------------------------------------------------------------------------- Adam


@ADAM.register("naive")
def _adam_naive(w, dw, m, v, learning_rate, beta1, beta2, epsilon, t):
    bc1, bc2 = 1 - beta1**t, 1 - beta2**t
    wf, gf, mf, vf = w.reshape(-1), dw.reshape(-1), m.reshape(-1), v.reshape(-1)
    for i in range(wf.shape[0]):
        g = gf[i]
        mf[i] = beta1 * mf[i] + (1 - beta1) * g
        vf[i] = beta2 * vf[i] + (1 - beta2) * (g * g)
        wf[i] = wf[i] - learning_rate * (mf[i] / bc1) / (math.sqrt(vf[i] / bc2) + epsilon)


@ADAM.register("vectorized")
def _adam_vectorized(w, dw, m, v, learning_rate, beta1, beta2, epsilon, t):
    m *= beta1
    m += (1 - beta1) * dw
    v *= beta2
    v += (1 - beta2) * (dw * dw)
    denom = np.sqrt(v / (1 - beta2**t))
    denom += epsilon
    w -= learning_rate * (m / (1 - beta1**t)) / denom


@ADAM.register("compiled", available=_ext is not None)
def _adam_compiled(w, dw, m, v, learning_rate, beta1, beta2, epsilon, t):
    _ext.adam_update(w.reshape(-1), dw.reshape(-1), m.reshape(-1), v.reshape(-1),
                     learning_rate, beta1, beta2, epsilon, t, _threads(w.size))


def adam_update(w: np.ndarray, dw: np.ndarray, m: np.ndarray, v: np.ndarray,
                learning_rate: float, beta1: float, beta2: float, epsilon: float, t: int,
                impl: str | None = None) -> None:
    """One Adam step in place (``t`` already incremented, t >= 1).

    Parameters
    ----------
    w : ndarray, IN/OUT
        Weights, any shape, float32 or float64, C-contiguous.
    dw : ndarray, IN
        Gradient, same shape and dtype as ``w``.
    m, v : ndarray, IN/OUT
        First and second moment estimates, same shape and dtype as ``w``.
    learning_rate, beta1, beta2, epsilon : float
        Hyperparameters.
    t : int
        The step number after incrementing (bias correction uses ``1 - beta**t``).
    impl : {"naive", "vectorized", "compiled"} or None
        None: the best available.
    """
    ADAM(w, dw, m, v, learning_rate, beta1, beta2, epsilon, t, impl=impl)


# --------------------------------------------------------------------------- SGD + momentum


@SGD_MOMENTUM.register("naive")
def _momentum_naive(w, dw, velocity, learning_rate, momentum):
    wf, gf, vf = w.reshape(-1), dw.reshape(-1), velocity.reshape(-1)
    for i in range(wf.shape[0]):
        vf[i] = momentum * vf[i] - learning_rate * gf[i]
        wf[i] = wf[i] + vf[i]


@SGD_MOMENTUM.register("vectorized")
def _momentum_vectorized(w, dw, velocity, learning_rate, momentum):
    velocity *= momentum
    velocity -= learning_rate * dw
    w += velocity


@SGD_MOMENTUM.register("compiled", available=_ext is not None)
def _momentum_compiled(w, dw, velocity, learning_rate, momentum):
    _ext.sgd_momentum_update(w.reshape(-1), dw.reshape(-1), velocity.reshape(-1),
                             learning_rate, momentum, _threads(w.size))


def sgd_momentum_update(w: np.ndarray, dw: np.ndarray, velocity: np.ndarray,
                        learning_rate: float, momentum: float, impl: str | None = None) -> None:
    """One SGD+momentum step in place: ``v <- momentum*v - lr*dw; w <- w + v``.

    ``w`` and ``velocity`` are IN/OUT; all arrays share shape and float dtype.
    """
    SGD_MOMENTUM(w, dw, velocity, learning_rate, momentum, impl=impl)


# --------------------------------------------------------------------------- RMSProp


@RMSPROP.register("naive")
def _rmsprop_naive(w, dw, cache, learning_rate, decay_rate, epsilon):
    wf, gf, cf = w.reshape(-1), dw.reshape(-1), cache.reshape(-1)
    for i in range(wf.shape[0]):
        g = gf[i]
        cf[i] = decay_rate * cf[i] + (1 - decay_rate) * (g * g)
        wf[i] = wf[i] - learning_rate * g / (math.sqrt(cf[i]) + epsilon)


@RMSPROP.register("vectorized")
def _rmsprop_vectorized(w, dw, cache, learning_rate, decay_rate, epsilon):
    cache *= decay_rate
    cache += (1 - decay_rate) * (dw * dw)
    denom = np.sqrt(cache)
    denom += epsilon
    w -= learning_rate * dw / denom


@RMSPROP.register("compiled", available=_ext is not None)
def _rmsprop_compiled(w, dw, cache, learning_rate, decay_rate, epsilon):
    _ext.rmsprop_update(w.reshape(-1), dw.reshape(-1), cache.reshape(-1),
                        learning_rate, decay_rate, epsilon, _threads(w.size))


def rmsprop_update(w: np.ndarray, dw: np.ndarray, cache: np.ndarray, learning_rate: float,
                   decay_rate: float, epsilon: float, impl: str | None = None) -> None:
    """One RMSProp step in place (``w`` and ``cache`` are IN/OUT)."""
    RMSPROP(w, dw, cache, learning_rate, decay_rate, epsilon, impl=impl)
