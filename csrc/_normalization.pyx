# cython: language_level=3
"""Fused normalisation kernels: batch norm and layer norm, forward and backward.

NumPy spends six to ten passes over an (N, D) array on a normalisation forward or backward
(one per element-wise operation, each with its own temporary). These kernels make two or three
streaming passes, every one row-contiguous:

- batch norm reduces over the batch axis: threads take chunks of rows and add them into their
  own row of per-column accumulators (``partial[threadid()]``), which are then combined; the
  element-wise pass is row-parallel;
- layer norm reduces over the feature axis, so each thread simply takes whole rows.

Sums are accumulated in double for both dtypes (float32 inputs lose nothing to a long sum).
Inner loops are ``cdef ... noexcept nogil`` functions over raw row pointers with at most one or
two stores each, so the compiler can vectorise them after its run-time overlap checks.
The wrapper (``fastnn.kernels.normalization``) validates everything and allocates every output;
these entry points still refuse mismatched shapes, N or D of 0 and thread counts below 1 before
releasing the GIL.
"""

import numpy as np

from cython.parallel cimport parallel, prange, threadid
from libc.math cimport sqrt

ctypedef fused floating:
    float
    double


cdef int _check_shapes(Py_ssize_t n, Py_ssize_t d, int num_threads, matrices, vectors) except -1:
    """(N, D) arrays, vectors of their stated lengths, N, D >= 1 and at least one thread."""
    if n < 1 or d < 1:
        raise ValueError(f"arrays must have N >= 1 rows and D >= 1 columns, got ({n}, {d})")
    for name, shape in matrices.items():
        if shape[0] != n or shape[1] != d:
            raise ValueError(f"{name} must have shape ({n}, {d}), got ({shape[0]}, {shape[1]})")
    for name, (length, want) in vectors.items():
        if length != want:
            raise ValueError(f"{name} must have {want} elements, got {length}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return 0


# ------------------------------------------------------------------------- row primitives
cdef inline void _add_row(const floating* x, double* acc, Py_ssize_t d) noexcept nogil:
    """acc[j] += x[j]"""
    cdef Py_ssize_t j
    for j in range(d):
        acc[j] += x[j]


cdef inline void _add_squared_deviation_row(
    const floating* x, const double* mean, double* acc, Py_ssize_t d
) noexcept nogil:
    """acc[j] += (x[j] - mean[j])**2"""
    cdef Py_ssize_t j
    cdef double t
    for j in range(d):
        t = x[j] - mean[j]
        acc[j] += t * t


cdef inline void _add_grad_sums_row(
    const floating* g, const floating* x_hat, double* sum_g, double* sum_gx, Py_ssize_t d
) noexcept nogil:
    """sum_g[j] += g[j]; sum_gx[j] += g[j] * x_hat[j]   (dbeta and dgamma)"""
    cdef Py_ssize_t j
    for j in range(d):
        sum_g[j] += g[j]
    for j in range(d):
        sum_gx[j] += g[j] * x_hat[j]


cdef inline void _scale_shift_row(
    const floating* x_hat, const floating* gamma, const floating* beta, floating* out,
    Py_ssize_t d,
) noexcept nogil:
    """out[j] = x_hat[j] * gamma[j] + beta[j]"""
    cdef Py_ssize_t j
    for j in range(d):
        out[j] = x_hat[j] * gamma[j] + beta[j]


cdef inline double _row_sum(const floating* x, Py_ssize_t d) noexcept nogil:
    """sum(x), with four independent accumulators (one long dependency chain is latency-bound)."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef Py_ssize_t j = 0
    while j + 4 <= d:
        s0 += x[j]
        s1 += x[j + 1]
        s2 += x[j + 2]
        s3 += x[j + 3]
        j += 4
    while j < d:
        s0 += x[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


cdef inline double _row_squared_deviation(const floating* x, double m, Py_ssize_t d) noexcept nogil:
    """sum((x - m)**2), four accumulators."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, t0, t1, t2, t3
    cdef Py_ssize_t j = 0
    while j + 4 <= d:
        t0 = x[j] - m
        t1 = x[j + 1] - m
        t2 = x[j + 2] - m
        t3 = x[j + 3] - m
        s0 += t0 * t0
        s1 += t1 * t1
        s2 += t2 * t2
        s3 += t3 * t3
        j += 4
    while j < d:
        t0 = x[j] - m
        s0 += t0 * t0
        j += 1
    return (s0 + s1) + (s2 + s3)


cdef void _combine(double[:, ::1] partial, double* total) noexcept nogil:
    """total[k] = sum over threads of partial[t, k]."""
    cdef Py_ssize_t t, k
    for k in range(partial.shape[1]):
        total[k] = partial[0, k]
    for t in range(1, partial.shape[0]):
        for k in range(partial.shape[1]):
            total[k] += partial[t, k]


cdef void _zero(double[:, ::1] partial) noexcept nogil:
    cdef Py_ssize_t t, k
    for t in range(partial.shape[0]):
        for k in range(partial.shape[1]):
            partial[t, k] = 0.0


# ------------------------------------------------------------------------------ batch norm
def batchnorm_forward_train(
    const floating[:, ::1] x,      # IN  (N, D)
    const floating[::1] gamma,     # IN  (D,)
    const floating[::1] beta,      # IN  (D,)
    double eps,
    floating[:, ::1] x_hat,        # OUT (N, D)
    floating[:, ::1] out,          # OUT (N, D)
    floating[::1] mean,            # OUT (D,)
    floating[::1] var,             # OUT (D,) biased batch variance
    floating[::1] inv_std,         # OUT (D,) 1 / sqrt(var + eps)
    int num_threads,
):
    """Batch statistics over axis 0, x_hat = (x - mean) * inv_std, out = gamma * x_hat + beta.

    Pass 1 sums the columns, pass 2 sums squared deviations from the mean (two passes: no
    cancellation, unlike sum(x**2) - n * mean**2), pass 3 writes x_hat and out.
    """
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1], i, j, k
    _check_shapes(n, d, num_threads, {"x_hat": x_hat.shape, "out": out.shape},
                  {"gamma": (gamma.shape[0], d), "beta": (beta.shape[0], d),
                   "mean": (mean.shape[0], d), "var": (var.shape[0], d),
                   "inv_std": (inv_std.shape[0], d)})
    # per-thread column accumulators, allocated once here (before the GIL is released)
    cdef double[:, ::1] partial = np.zeros((num_threads, d))
    cdef double[::1] total = np.empty(d)
    cdef double* acc
    cdef floating* xh_row
    with nogil:
        with parallel(num_threads=num_threads):
            acc = &partial[threadid(), 0]
            for i in prange(n, schedule="static"):
                _add_row(&x[i, 0], acc, d)
        _combine(partial, &total[0])
        for j in range(d):
            total[j] = total[j] / n
            mean[j] = <floating>total[j]
        _zero(partial)
        with parallel(num_threads=num_threads):
            acc = &partial[threadid(), 0]
            for i in prange(n, schedule="static"):
                _add_squared_deviation_row(&x[i, 0], &total[0], acc, d)
        _combine(partial, &total[0])
        for j in range(d):
            var[j] = <floating>(total[j] / n)
            inv_std[j] = <floating>(1.0 / sqrt(total[j] / n + eps))
        with parallel(num_threads=num_threads):
            for i in prange(n, schedule="static"):
                xh_row = &x_hat[i, 0]
                for k in range(d):
                    xh_row[k] = (x[i, k] - mean[k]) * inv_std[k]
                _scale_shift_row(xh_row, &gamma[0], &beta[0], &out[i, 0], d)


def batchnorm_backward(
    const floating[:, ::1] dout,   # IN  (N, D)
    const floating[:, ::1] x_hat,  # IN  (N, D)
    const floating[::1] gamma,     # IN  (D,)
    const floating[::1] inv_std,   # IN  (D,)
    floating[:, ::1] dx,           # OUT (N, D)
    floating[::1] dgamma,          # OUT (D,)
    floating[::1] dbeta,           # OUT (D,)
    int num_threads,
):
    """Closed-form batch-norm backward (train mode), two passes:
    dbeta = sum(dout), dgamma = sum(dout * x_hat) (over the batch), then
    dx = gamma * inv_std * (dout - dbeta / N - x_hat * dgamma / N)."""
    cdef Py_ssize_t n = dout.shape[0], d = dout.shape[1], i, j
    _check_shapes(n, d, num_threads, {"x_hat": x_hat.shape, "dx": dx.shape},
                  {"gamma": (gamma.shape[0], d), "inv_std": (inv_std.shape[0], d),
                   "dgamma": (dgamma.shape[0], d), "dbeta": (dbeta.shape[0], d)})
    cdef double[:, ::1] partial = np.zeros((num_threads, 2 * d))
    cdef double[::1] total = np.empty(2 * d)
    # per-column factors as (3, D) of the data's dtype: scale, dbeta / N, dgamma / N
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] coef = np.empty((3, d), dtype=dtype)
    cdef double* acc
    cdef floating* dx_row
    cdef const floating* g_row
    cdef const floating* xh_row
    with nogil:
        with parallel(num_threads=num_threads):
            acc = &partial[threadid(), 0]
            for i in prange(n, schedule="static"):
                _add_grad_sums_row(&dout[i, 0], &x_hat[i, 0], acc, acc + d, d)
        _combine(partial, &total[0])
        for j in range(d):
            dbeta[j] = <floating>total[j]
            dgamma[j] = <floating>total[d + j]
            coef[0, j] = gamma[j] * inv_std[j]
            coef[1, j] = <floating>(total[j] / n)
            coef[2, j] = <floating>(total[d + j] / n)
        with parallel(num_threads=num_threads):
            for i in prange(n, schedule="static"):
                dx_row = &dx[i, 0]
                g_row = &dout[i, 0]
                xh_row = &x_hat[i, 0]
                for j in range(d):
                    dx_row[j] = coef[0, j] * (g_row[j] - coef[1, j] - xh_row[j] * coef[2, j])


# ------------------------------------------------------------------------------ layer norm
def layernorm_forward(
    const floating[:, ::1] x,      # IN  (N, D)
    const floating[::1] gamma,     # IN  (D,)
    const floating[::1] beta,      # IN  (D,)
    double eps,
    floating[:, ::1] x_hat,        # OUT (N, D)
    floating[:, ::1] out,          # OUT (N, D)
    floating[::1] inv_std,         # OUT (N,) 1 / sqrt(var + eps) per example
    int num_threads,
):
    """Per-example statistics over axis 1, x_hat = (x - mean) * inv_std, out = gamma*x_hat+beta."""
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1], i, j
    _check_shapes(n, d, num_threads, {"x_hat": x_hat.shape, "out": out.shape},
                  {"gamma": (gamma.shape[0], d), "beta": (beta.shape[0], d),
                   "inv_std": (inv_std.shape[0], n)})
    cdef double s
    cdef floating m, r
    cdef const floating* x_row
    cdef floating* xh_row
    with nogil, parallel(num_threads=num_threads):
        for i in prange(n, schedule="static"):
            x_row = &x[i, 0]
            xh_row = &x_hat[i, 0]
            s = _row_sum(x_row, d) / d
            m = <floating>s
            r = <floating>(1.0 / sqrt(_row_squared_deviation(x_row, s, d) / d + eps))
            inv_std[i] = r
            for j in range(d):
                xh_row[j] = (x_row[j] - m) * r
            _scale_shift_row(xh_row, &gamma[0], &beta[0], &out[i, 0], d)


def layernorm_backward(
    const floating[:, ::1] dout,   # IN  (N, D)
    const floating[:, ::1] x_hat,  # IN  (N, D)
    const floating[::1] gamma,     # IN  (D,)
    const floating[::1] inv_std,   # IN  (N,)
    floating[:, ::1] dx,           # OUT (N, D)
    floating[::1] dgamma,          # OUT (D,)
    floating[::1] dbeta,           # OUT (D,)
    int num_threads,
):
    """dx row by row (with g = dout * gamma: dx = inv_std * (g - mean(g) - x_hat * mean(g*x_hat)));
    each thread also adds its rows into its own dbeta/dgamma accumulators, combined at the end
    (one pass over the data instead of two)."""
    cdef Py_ssize_t n = dout.shape[0], d = dout.shape[1], i, j
    _check_shapes(n, d, num_threads, {"x_hat": x_hat.shape, "dx": dx.shape},
                  {"gamma": (gamma.shape[0], d), "inv_std": (inv_std.shape[0], n),
                   "dgamma": (dgamma.shape[0], d), "dbeta": (dbeta.shape[0], d)})
    cdef double[:, ::1] partial = np.zeros((num_threads, 2 * d))
    cdef double[::1] total = np.empty(2 * d)
    cdef double sg, sgx, gj
    cdef double* acc
    cdef floating mg, mgx, r
    cdef const floating* g_row
    cdef const floating* xh_row
    cdef floating* dx_row
    with nogil:
        with parallel(num_threads=num_threads):
            acc = &partial[threadid(), 0]
            for i in prange(n, schedule="static"):
                g_row = &dout[i, 0]
                xh_row = &x_hat[i, 0]
                dx_row = &dx[i, 0]
                _add_grad_sums_row(g_row, xh_row, acc, acc + d, d)
                sg = 0.0
                sgx = 0.0
                for j in range(d):
                    gj = g_row[j] * gamma[j]
                    sg = sg + gj
                    sgx = sgx + gj * xh_row[j]
                mg = <floating>(sg / d)
                mgx = <floating>(sgx / d)
                r = inv_std[i]
                for j in range(d):
                    dx_row[j] = r * (g_row[j] * gamma[j] - mg - xh_row[j] * mgx)
        _combine(partial, &total[0])
        for j in range(d):
            dbeta[j] = <floating>total[j]
            dgamma[j] = <floating>total[d + j]
