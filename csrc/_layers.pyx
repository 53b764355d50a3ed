# cython: language_level=3
"""Fused normalisation kernels: batch norm and layer norm, forward and backward.

NumPy spends six to ten passes over an (N, D) array on a normalisation forward or backward
(one per element-wise operation, each with its own temporary). These kernels make two or three
passes, over a block of the array small enough to stay in cache between them:

- batch norm reduces over the batch axis, so threads take blocks of BLOCK columns and walk all
  rows of their block (sums first, then the normalised values);
- layer norm reduces over the feature axis, so threads take rows.

Sums are accumulated in double for both dtypes (float32 inputs lose nothing to a long sum).
The wrapper (``fastnn.kernels.layers``) has checked shapes, one float dtype, C-contiguity and
N, D >= 1, and allocated every output.
"""

import numpy as np

from cython.parallel cimport parallel, prange, threadid
from libc.math cimport sqrt

ctypedef fused floating:
    float
    double

# columns per batch-norm work item: two double accumulators per column stay in L1, and a block of
# a 128-row batch (128 x 64 x 4 bytes = 32 KB in float32) stays in L2 between the passes
cdef enum:
    BLOCK = 64


# ------------------------------------------------------------------------------ batch norm
cdef void _bn_forward_block(
    const floating* x,        # IN  (n, d)
    const floating* gamma,    # IN  (d,)
    const floating* beta,     # IN  (d,)
    double eps,
    floating* x_hat,          # OUT (n, d)
    floating* out,            # OUT (n, d)
    floating* mean,           # OUT (d,)
    floating* var,            # OUT (d,)
    floating* inv_std,        # OUT (d,)
    Py_ssize_t n, Py_ssize_t d, Py_ssize_t j0, Py_ssize_t j1,
    double* acc,              # scratch, 2 * BLOCK
) noexcept nogil:
    cdef Py_ssize_t i, j, w = j1 - j0
    cdef const floating* row
    cdef double t
    cdef floating xh
    for j in range(w):
        acc[j] = 0.0
        acc[BLOCK + j] = 0.0
    for i in range(n):
        row = x + i * d + j0
        for j in range(w):
            acc[j] += row[j]
    for j in range(w):
        acc[j] /= n
    # second pass on centred values: no cancellation, unlike sum(x**2) - n * mean**2
    for i in range(n):
        row = x + i * d + j0
        for j in range(w):
            t = row[j] - acc[j]
            acc[BLOCK + j] += t * t
    # per-column constants in local arrays: the compiler then knows the stores below cannot
    # change them, and vectorises the last pass
    cdef floating shift[BLOCK]
    cdef floating scale[BLOCK]
    cdef floating g[BLOCK]
    cdef floating bt[BLOCK]
    cdef floating* xh_row
    cdef floating* out_row
    for j in range(w):
        shift[j] = <floating>acc[j]
        scale[j] = <floating>(1.0 / sqrt(acc[BLOCK + j] / n + eps))
        g[j] = gamma[j0 + j]
        bt[j] = beta[j0 + j]
        mean[j0 + j] = shift[j]
        var[j0 + j] = <floating>(acc[BLOCK + j] / n)
        inv_std[j0 + j] = scale[j]
    for i in range(n):
        row = x + i * d + j0
        xh_row = x_hat + i * d + j0
        out_row = out + i * d + j0
        for j in range(w):
            xh = (row[j] - shift[j]) * scale[j]
            xh_row[j] = xh
            out_row[j] = xh * g[j] + bt[j]


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
    """Batch statistics over axis 0, x_hat = (x - mean) * inv_std, out = gamma * x_hat + beta."""
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1]
    cdef Py_ssize_t nblocks = (d + BLOCK - 1) // BLOCK, b
    # per-thread accumulators, allocated once here (before the GIL is released)
    cdef double[:, ::1] scratch = np.empty((num_threads, 2 * BLOCK))
    cdef double* acc
    with nogil, parallel(num_threads=num_threads):
        acc = &scratch[threadid(), 0]
        for b in prange(nblocks, schedule="static"):
            _bn_forward_block(&x[0, 0], &gamma[0], &beta[0], eps, &x_hat[0, 0], &out[0, 0],
                              &mean[0], &var[0], &inv_std[0], n, d, b * BLOCK,
                              min(d, (b + 1) * BLOCK), acc)


cdef void _bn_backward_block(
    const floating* dout,     # IN  (n, d)
    const floating* x_hat,    # IN  (n, d)
    const floating* gamma,    # IN  (d,)
    const floating* inv_std,  # IN  (d,)
    floating* dx,             # OUT (n, d)
    floating* dgamma,         # OUT (d,)
    floating* dbeta,          # OUT (d,)
    Py_ssize_t n, Py_ssize_t d, Py_ssize_t j0, Py_ssize_t j1,
    double* acc,              # scratch, 2 * BLOCK
) noexcept nogil:
    cdef Py_ssize_t i, j, w = j1 - j0
    cdef const floating* g
    cdef const floating* xh
    for j in range(w):
        acc[j] = 0.0
        acc[BLOCK + j] = 0.0
    for i in range(n):
        g = dout + i * d + j0
        xh = x_hat + i * d + j0
        for j in range(w):
            acc[j] += g[j]
            acc[BLOCK + j] += g[j] * xh[j]
    # dx = gamma * inv_std * (dout - dbeta / n - x_hat * dgamma / n), with the per-column
    # factors in local arrays (see _bn_forward_block)
    cdef floating scale[BLOCK]
    cdef floating mb[BLOCK]
    cdef floating mg[BLOCK]
    cdef floating* dx_row
    for j in range(w):
        dbeta[j0 + j] = <floating>acc[j]
        dgamma[j0 + j] = <floating>acc[BLOCK + j]
        scale[j] = gamma[j0 + j] * inv_std[j0 + j]
        mb[j] = <floating>(acc[j] / n)
        mg[j] = <floating>(acc[BLOCK + j] / n)
    for i in range(n):
        g = dout + i * d + j0
        xh = x_hat + i * d + j0
        dx_row = dx + i * d + j0
        for j in range(w):
            dx_row[j] = scale[j] * (g[j] - mb[j] - xh[j] * mg[j])


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
    """Closed-form batch-norm backward (train mode): two passes per block of columns."""
    cdef Py_ssize_t n = dout.shape[0], d = dout.shape[1]
    cdef Py_ssize_t nblocks = (d + BLOCK - 1) // BLOCK, b
    cdef double[:, ::1] scratch = np.empty((num_threads, 2 * BLOCK))
    cdef double* acc
    with nogil, parallel(num_threads=num_threads):
        acc = &scratch[threadid(), 0]
        for b in prange(nblocks, schedule="static"):
            _bn_backward_block(&dout[0, 0], &x_hat[0, 0], &gamma[0], &inv_std[0], &dx[0, 0],
                               &dgamma[0], &dbeta[0], n, d, b * BLOCK,
                               min(d, (b + 1) * BLOCK), acc)


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
    cdef double s, t, q
    cdef floating m, r, xh
    with nogil, parallel(num_threads=num_threads):
        for i in prange(n, schedule="static"):
            s = 0.0
            for j in range(d):
                s = s + x[i, j]
            s = s / d
            q = 0.0
            for j in range(d):
                t = x[i, j] - s
                q = q + t * t
            m = <floating>s
            r = <floating>(1.0 / sqrt(q / d + eps))
            inv_std[i] = r
            for j in range(d):
                xh = (x[i, j] - m) * r
                x_hat[i, j] = xh
                out[i, j] = xh * gamma[j] + beta[j]


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
    """dx row by row; each thread also sums its rows' dbeta/dgamma into its own slot of a
    scratch array, added up at the end (one pass over the data instead of two)."""
    cdef Py_ssize_t n = dout.shape[0], d = dout.shape[1], i, j, t
    cdef double sg, sgx, gj
    cdef double* slot
    cdef floating mg, mgx, r
    cdef double[:, ::1] partial = np.zeros((num_threads, 2 * d))
    with nogil, parallel(num_threads=num_threads):
        slot = &partial[threadid(), 0]
        for i in prange(n, schedule="static"):
            sg = 0.0
            sgx = 0.0
            for j in range(d):
                gj = dout[i, j] * gamma[j]
                sg = sg + gj
                sgx = sgx + gj * x_hat[i, j]
                slot[j] += dout[i, j]
                slot[d + j] += dout[i, j] * x_hat[i, j]
            mg = <floating>(sg / d)
            mgx = <floating>(sgx / d)
            r = inv_std[i]
            for j in range(d):
                dx[i, j] = r * (dout[i, j] * gamma[j] - mg - x_hat[i, j] * mgx)
    for j in range(d):
        sg = 0.0
        sgx = 0.0
        for t in range(num_threads):
            sg = sg + partial[t, j]
            sgx = sgx + partial[t, d + j]
        dbeta[j] = <floating>sg
        dgamma[j] = <floating>sgx
