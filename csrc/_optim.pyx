# cython: language_level=3
"""Fused in-place update rules: one pass over memory per parameter instead of NumPy's ~10.

Each kernel reads the gradient once and updates the weights and the optimiser state where they
lie, element by element, with the operations of the NumPy formulas in ``fastnn.optim`` (Adam
folds its bias corrections into two scalars), so results agree with NumPy to rounding.
The wrapper (``fastnn.kernels.optim``) validates everything; these entry points still refuse
unequal lengths and thread counts below 1 before releasing the GIL.
"""

from cython.parallel cimport parallel, prange
from libc.math cimport sqrt, sqrtf

ctypedef fused floating:
    float
    double


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef int _check_sizes(Py_ssize_t n, int num_threads, lengths) except -1:
    """Every array as long as ``w`` and at least one thread, before the GIL is released."""
    for name, length in lengths.items():
        if length != n:
            raise ValueError(f"{name} must have {n} elements like w, got {length}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return 0


def adam_update(
    floating[::1] w,          # IN/OUT weights
    const floating[::1] dw,   # IN gradient
    floating[::1] m,          # IN/OUT first moment
    floating[::1] v,          # IN/OUT second moment
    double learning_rate,
    double beta1,
    double beta2,
    double epsilon,
    long t,                   # step number, already incremented (t >= 1)
    int num_threads,
):
    """Adam with bias correction, in place: m, v, w <- their updated values.

    The two bias corrections are folded into scalars computed once, which is the same number up
    to rounding and saves two divisions per element::

        lr * (m / bc1) / (sqrt(v / bc2) + eps) == (lr / bc1) * m / (sqrt(v) * r + eps),
        r = 1 / sqrt(bc2)
    """
    cdef Py_ssize_t i, n = w.shape[0]
    _check_sizes(n, num_threads, {"dw": dw.shape[0], "m": m.shape[0], "v": v.shape[0]})
    # scalars rounded to the array's dtype once, as NumPy does for Python floats (NEP 50)
    cdef floating b1 = <floating>beta1
    cdef floating b2 = <floating>beta2
    cdef floating c1 = <floating>(1.0 - beta1)
    cdef floating c2 = <floating>(1.0 - beta2)
    cdef floating step = <floating>(learning_rate / (1.0 - beta1 ** t))
    cdef floating r = <floating>(1.0 / (1.0 - beta2 ** t) ** 0.5)
    cdef floating eps = <floating>epsilon
    cdef floating g, mi, vi
    with nogil, parallel(num_threads=num_threads):
        for i in prange(n, schedule="static"):
            g = dw[i]
            mi = b1 * m[i] + c1 * g
            vi = b2 * v[i] + c2 * (g * g)
            m[i] = mi
            v[i] = vi
            w[i] = w[i] - step * mi / (_sqrt(vi) * r + eps)


def sgd_momentum_update(
    floating[::1] w,          # IN/OUT weights
    const floating[::1] dw,   # IN gradient
    floating[::1] velocity,   # IN/OUT velocity
    double learning_rate,
    double momentum,
    int num_threads,
):
    """SGD with momentum, in place: v <- momentum * v - lr * dw; w <- w + v."""
    cdef Py_ssize_t i, n = w.shape[0]
    _check_sizes(n, num_threads, {"dw": dw.shape[0], "velocity": velocity.shape[0]})
    cdef floating mu = <floating>momentum
    cdef floating lr = <floating>learning_rate
    cdef floating vi
    with nogil, parallel(num_threads=num_threads):
        for i in prange(n, schedule="static"):
            vi = mu * velocity[i] - lr * dw[i]
            velocity[i] = vi
            w[i] = w[i] + vi


def rmsprop_update(
    floating[::1] w,          # IN/OUT weights
    const floating[::1] dw,   # IN gradient
    floating[::1] cache,      # IN/OUT moving average of squared gradients
    double learning_rate,
    double decay_rate,
    double epsilon,
    int num_threads,
):
    """RMSProp, in place: cache <- rho * cache + (1 - rho) * dw**2; w -= lr * dw / (sqrt + eps)."""
    cdef Py_ssize_t i, n = w.shape[0]
    _check_sizes(n, num_threads, {"dw": dw.shape[0], "cache": cache.shape[0]})
    cdef floating rho = <floating>decay_rate
    cdef floating c = <floating>(1.0 - decay_rate)
    cdef floating lr = <floating>learning_rate
    cdef floating eps = <floating>epsilon
    cdef floating g, ci
    with nogil, parallel(num_threads=num_threads):
        for i in prange(n, schedule="static"):
            g = dw[i]
            ci = rho * cache[i] + c * (g * g)
            cache[i] = ci
            w[i] = w[i] - (lr * g) / (_sqrt(ci) + eps)
