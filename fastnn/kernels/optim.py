"""In-place update-rule kernels: Adam, SGD+momentum and RMSProp, three implementations each.

``fastnn.optim``'s rules call these when asked to update in place (``out=w``, as the Solver does).
NumPy's Adam makes about ten temporary arrays per parameter per step; the compiled kernel makes
one pass over ``w``, ``dw``, ``m`` and ``v``. All implementations update their IN/OUT arguments
in place and return None.

- ``"naive"``: a plain Python loop over elements, the readable specification;
- ``"vectorized"``: NumPy, in place where NumPy allows;
- ``"compiled"``: ``fastnn._ext._optim`` (Cython + OpenMP), one fused pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fastnn._config import get_num_threads
from fastnn.kernels._registry import get_impl, register

__all__ = ["adam_update", "compiled_or_none", "rmsprop_update", "sgd_momentum_update"]

# Below this many elements the fused kernels run on one thread. Measured with `fastnn bench mlp`
# (784x256 float32 Adam step, 2 cores): in isolation 2 OpenMP threads take 114 us vs 231 us for
# one, but inside training they cost far more than they save: after a parallel region libgomp's
# idle worker keeps spinning (GOMP_SPINCOUNT) on the second core while OpenBLAS starts the next
# matrix product on both, and the whole Fashion-MNIST epoch became 4.5x slower (4.6 s vs 0.9 s).
# Under load from other jobs a 2-thread step also took 18 ms vs 0.29 ms. So only huge parameters
# (16 MB of float32 and up) are updated in parallel.
_PARALLEL_MIN = 1 << 22

try:
    from fastnn._ext import _optim as _ext
except ImportError:  # extension not built: the NumPy path serves
    _ext = None


def _threads(n: int) -> int:
    return get_num_threads() if n >= _PARALLEL_MIN else 1


def _check(op: str, w: np.ndarray, dw: np.ndarray, states: dict[str, np.ndarray]) -> None:
    """Validate before compiled code sees the arrays: same shape, one float dtype, contiguous,
    writeable where written."""
    if not isinstance(w, np.ndarray) or w.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: w must be a float32 or float64 ndarray, got "
                        f"{type(w).__name__} {getattr(w, 'dtype', '')}".rstrip())
    for name, arr in {"dw": dw, **states}.items():
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{op}: {name} must be an ndarray, got {type(arr).__name__}")
        if arr.shape != w.shape:
            raise ValueError(f"{op}: {name} must have the shape of w {w.shape}, got {arr.shape}")
        if arr.dtype != w.dtype:
            raise TypeError(f"{op}: {name} must have the dtype of w ({w.dtype}), got {arr.dtype}")
    for name, arr in {"w": w, **states}.items():
        if not arr.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be C-contiguous (it is updated in place)")
        if not arr.flags.writeable:
            raise ValueError(f"{op}: {name} must be writeable (it is updated in place)")


# --------------------------------------------------------------------------- Adam


@register("adam_update", "naive")
def _adam_naive(w, dw, m, v, learning_rate, beta1, beta2, epsilon, t):
    bc1, bc2 = 1 - beta1**t, 1 - beta2**t
    wf, gf, mf, vf = w.reshape(-1), dw.reshape(-1), m.reshape(-1), v.reshape(-1)
    for i in range(wf.shape[0]):
        g = gf[i]
        mf[i] = beta1 * mf[i] + (1 - beta1) * g
        vf[i] = beta2 * vf[i] + (1 - beta2) * (g * g)
        wf[i] = wf[i] - learning_rate * (mf[i] / bc1) / (math.sqrt(vf[i] / bc2) + epsilon)


@register("adam_update", "vectorized")
def _adam_vectorized(w, dw, m, v, learning_rate, beta1, beta2, epsilon, t):
    m *= beta1
    m += (1 - beta1) * dw
    v *= beta2
    v += (1 - beta2) * (dw * dw)
    denom = np.sqrt(v / (1 - beta2**t))
    denom += epsilon
    w -= learning_rate * (m / (1 - beta1**t)) / denom


def _adam_compiled(w, dw, m, v, learning_rate, beta1, beta2, epsilon, t):
    _ext.adam_update(w.reshape(-1), dw.reshape(-1), m.reshape(-1), v.reshape(-1),
                     learning_rate, beta1, beta2, epsilon, t, _threads(w.size))


def adam_update(w: np.ndarray, dw: np.ndarray, m: np.ndarray, v: np.ndarray,
                learning_rate: float, beta1: float, beta2: float, epsilon: float, t: int,
                impl: str = "compiled") -> None:
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
    impl : {"naive", "vectorized", "compiled"}
    """
    _check("adam_update", w, dw, {"m": m, "v": v})
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
        raise ValueError(f"adam_update: t must be an integer >= 1, got {t!r}")
    get_impl("adam_update", impl)(w, dw, m, v, float(learning_rate), float(beta1), float(beta2),
                                  float(epsilon), int(t))


# --------------------------------------------------------------------------- SGD + momentum


@register("sgd_momentum_update", "naive")
def _momentum_naive(w, dw, velocity, learning_rate, momentum):
    wf, gf, vf = w.reshape(-1), dw.reshape(-1), velocity.reshape(-1)
    for i in range(wf.shape[0]):
        vf[i] = momentum * vf[i] - learning_rate * gf[i]
        wf[i] = wf[i] + vf[i]


@register("sgd_momentum_update", "vectorized")
def _momentum_vectorized(w, dw, velocity, learning_rate, momentum):
    velocity *= momentum
    velocity -= learning_rate * dw
    w += velocity


def _momentum_compiled(w, dw, velocity, learning_rate, momentum):
    _ext.sgd_momentum_update(w.reshape(-1), dw.reshape(-1), velocity.reshape(-1),
                             learning_rate, momentum, _threads(w.size))


def sgd_momentum_update(w: np.ndarray, dw: np.ndarray, velocity: np.ndarray,
                        learning_rate: float, momentum: float, impl: str = "compiled") -> None:
    """One SGD+momentum step in place: ``v <- momentum*v - lr*dw; w <- w + v``.

    ``w`` and ``velocity`` are IN/OUT; all arrays share shape and float dtype.
    """
    _check("sgd_momentum_update", w, dw, {"velocity": velocity})
    get_impl("sgd_momentum_update", impl)(w, dw, velocity, float(learning_rate), float(momentum))


# --------------------------------------------------------------------------- RMSProp


@register("rmsprop_update", "naive")
def _rmsprop_naive(w, dw, cache, learning_rate, decay_rate, epsilon):
    wf, gf, cf = w.reshape(-1), dw.reshape(-1), cache.reshape(-1)
    for i in range(wf.shape[0]):
        g = gf[i]
        cf[i] = decay_rate * cf[i] + (1 - decay_rate) * (g * g)
        wf[i] = wf[i] - learning_rate * g / (math.sqrt(cf[i]) + epsilon)


@register("rmsprop_update", "vectorized")
def _rmsprop_vectorized(w, dw, cache, learning_rate, decay_rate, epsilon):
    cache *= decay_rate
    cache += (1 - decay_rate) * (dw * dw)
    denom = np.sqrt(cache)
    denom += epsilon
    w -= learning_rate * dw / denom


def _rmsprop_compiled(w, dw, cache, learning_rate, decay_rate, epsilon):
    _ext.rmsprop_update(w.reshape(-1), dw.reshape(-1), cache.reshape(-1),
                        learning_rate, decay_rate, epsilon, _threads(w.size))


def rmsprop_update(w: np.ndarray, dw: np.ndarray, cache: np.ndarray, learning_rate: float,
                   decay_rate: float, epsilon: float, impl: str = "compiled") -> None:
    """One RMSProp step in place (``w`` and ``cache`` are IN/OUT)."""
    _check("rmsprop_update", w, dw, {"cache": cache})
    get_impl("rmsprop_update", impl)(w, dw, cache, float(learning_rate), float(decay_rate),
                                     float(epsilon))


_COMPILED: dict[str, Callable] = {}
if _ext is not None:
    _COMPILED = {
        "adam_update": register("adam_update", "compiled")(_adam_compiled),
        "sgd_momentum_update": register("sgd_momentum_update", "compiled")(_momentum_compiled),
        "rmsprop_update": register("rmsprop_update", "compiled")(_rmsprop_compiled),
    }


def compiled_or_none(op_name: str) -> Callable | None:
    """The compiled implementation of ``op_name`` without validation (for callers that have
    checked the arrays already), or None when the extension is not built."""
    return _COMPILED.get(op_name)
