# cython: language_level=3
"""Spatial batch norm and group norm over (N, C, H, W), forward (train) and backward.

Both are direct reductions over the array as it lies in memory (no transposing copies):

- batch norm reduces channel ``c`` over the N planes ``x[n, c]`` (each H*W contiguous). Threads
  take the N*C planes in memory order and reduce each plane on its own; the per-plane results
  are then combined per channel. (Threads over channels instead would walk N planes C*H*W
  apart: a power-of-two stride that thrashes the cache sets and defeats the prefetchers,
  measured 4x slower on (64, 32, 32, 32).)
- group norm reduces each (n, group) block ``x[n, g*C/G:(g+1)*C/G]``, which is one contiguous
  run of C/G*H*W elements, so threads take (n, group) blocks; dgamma/dbeta sum over n as well,
  so backward adds them into per-thread accumulators (``partial[threadid()]``) combined at the
  end.

Backward recomputes ``x_hat = (x - mean) * inv_std`` from ``x`` instead of reading a cached
``x_hat``: the same number of reads in backward, and forward writes one array instead of two.
Sums are accumulated in double for both dtypes. The wrapper
(``fastnn.kernels.spatial_normalization``) validates everything and allocates every output;
these entry points still refuse mismatched shapes, empty axes and thread counts below 1 before
releasing the GIL.
"""

import numpy as np

from cython.parallel cimport parallel, prange, threadid
from libc.math cimport sqrt

ctypedef fused floating:
    float
    double


cdef int _check_shapes(tuple shape, int num_threads, arrays, vectors) except -1:
    """(N, C, H, W) with every axis >= 1, arrays of that shape, vectors of their stated
    lengths, at least one thread."""
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"x must have shape (N, C, H, W) with every axis >= 1, got {shape}")
    for name, other in arrays.items():
        if tuple(other[:4]) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(other[:4])}")
    for name, (length, want) in vectors.items():
        if length != want:
            raise ValueError(f"{name} must have {want} elements, got {length}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return 0


cdef int _check_stats(Py_ssize_t n, Py_ssize_t groups, stats) except -1:
    """Per-(n, group) statistics of shape (N, G)."""
    for name, shape in stats.items():
        if shape[0] != n or shape[1] != groups:
            raise ValueError(f"{name} must have shape ({n}, {groups}), got ({shape[0]}, {shape[1]})")
    return 0


# ------------------------------------------------------------------------ run primitives
# The run loops are plain C. The three reductions run under ``#pragma omp simd reduction``
# (the compiler may not reorder a floating-point sum on its own; this licenses vector partial
# sums in double) over the two halves of the run at once (two independent vector chains hide
# the add latency): 2x faster than four scalar accumulators. With GCC on x86-64 glibc every
# loop also gets an AVX2 clone chosen at load time (the portable build is SSE2 only): another
# 1.5x on (64, 32, 32, 32) float32. Without OpenMP or clones the loops stay correct, only
# slower.
cdef extern from *:
    """
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) \
        && !defined(FASTNN_NO_CLONES)
    /* an AVX2 clone picked at load time (4 doubles or 8 floats per instruction instead of
       SSE2's 2 or 4); no FMA, so element-wise loops round alike in both clones (the sums
       differ only in the order of their partial sums). FASTNN_CFLAGS=-DFASTNN_NO_CLONES
       builds the portable loops alone (to test them on an AVX2 machine). */
    #define SN_CLONES __attribute__((target_clones("avx2", "default")))
    #else
    #define SN_CLONES
    #endif
    #define SN_REDUCTIONS(T, SUFFIX)                                                        \
    static SN_CLONES double sn_sum_##SUFFIX(const T *x, Py_ssize_t m) {                       \
        Py_ssize_t h = m / 2;                                                               \
        const T *y = x + h;                                                                 \
        double s0 = 0.0, s1 = (m & 1) ? (double)x[m - 1] : 0.0;                             \
        _Pragma("omp simd reduction(+:s0,s1)")                                             \
        for (Py_ssize_t j = 0; j < h; j++) { s0 += (double)x[j]; s1 += (double)y[j]; }      \
        return s0 + s1;                                                                     \
    }                                                                                       \
    static SN_CLONES double sn_sqdev_##SUFFIX(const T *x, double mu, Py_ssize_t m) {          \
        Py_ssize_t h = m / 2;                                                               \
        const T *y = x + h;                                                                 \
        double t = (m & 1) ? (double)x[m - 1] - mu : 0.0;                                   \
        double s0 = 0.0, s1 = t * t;                                                        \
        _Pragma("omp simd reduction(+:s0,s1)")                                             \
        for (Py_ssize_t j = 0; j < h; j++) {                                                \
            double u = (double)x[j] - mu, v = (double)y[j] - mu;                            \
            s0 += u * u;                                                                    \
            s1 += v * v;                                                                    \
        }                                                                                   \
        return s0 + s1;                                                                     \
    }                                                                                       \
    static SN_CLONES void sn_grad_sums_##SUFFIX(const T *g, const T *x, double mu,          \
                                                Py_ssize_t m, double *sums) {               \
        double a = 0.0, b = 0.0;                                                            \
        _Pragma("omp simd reduction(+:a,b)")                                               \
        for (Py_ssize_t j = 0; j < m; j++) {                                                \
            a += (double)g[j];                                                              \
            b += (double)g[j] * ((double)x[j] - mu);                                        \
        }                                                                                   \
        sums[0] += a;                                                                       \
        sums[1] += b;                                                                       \
    }                                                                                       \
    static SN_CLONES void sn_affine_##SUFFIX(const T *x, T scale, T shift, T *out,          \
                                             Py_ssize_t m) {                                \
        for (Py_ssize_t j = 0; j < m; j++) out[j] = x[j] * scale + shift;                   \
    }                                                                                       \
    static SN_CLONES void sn_dx_##SUFFIX(const T *g, const T *x, T a, T b, T mu, T c,       \
                                         T *dx, Py_ssize_t m) {                             \
        for (Py_ssize_t j = 0; j < m; j++) dx[j] = a * g[j] - b - c * (x[j] - mu);          \
    }
    SN_REDUCTIONS(float, f)
    SN_REDUCTIONS(double, d)
    """
    double sn_sum_f(const float* x, Py_ssize_t m) noexcept nogil
    double sn_sum_d(const double* x, Py_ssize_t m) noexcept nogil
    double sn_sqdev_f(const float* x, double mu, Py_ssize_t m) noexcept nogil
    double sn_sqdev_d(const double* x, double mu, Py_ssize_t m) noexcept nogil
    void sn_grad_sums_f(const float* g, const float* x, double mu, Py_ssize_t m,
                        double* sums) noexcept nogil
    void sn_grad_sums_d(const double* g, const double* x, double mu, Py_ssize_t m,
                        double* sums) noexcept nogil
    void sn_affine_f(const float* x, float scale, float shift, float* out,
                     Py_ssize_t m) noexcept nogil
    void sn_affine_d(const double* x, double scale, double shift, double* out,
                     Py_ssize_t m) noexcept nogil
    void sn_dx_f(const float* g, const float* x, float a, float b, float mu, float c, float* dx,
                 Py_ssize_t m) noexcept nogil
    void sn_dx_d(const double* g, const double* x, double a, double b, double mu, double c,
                 double* dx, Py_ssize_t m) noexcept nogil


cdef inline double _run_sum(const floating* x, Py_ssize_t m) noexcept nogil:
    """sum(x[:m]) in double."""
    if floating is float:
        return sn_sum_f(x, m)
    else:
        return sn_sum_d(x, m)


cdef inline double _run_squared_deviation(const floating* x, double mu,
                                          Py_ssize_t m) noexcept nogil:
    """sum((x[:m] - mu)**2) in double (the second of two passes: no cancellation)."""
    if floating is float:
        return sn_sqdev_f(x, mu, m)
    else:
        return sn_sqdev_d(x, mu, m)


cdef inline void _run_grad_sums(const floating* g, const floating* x, double mu,
                                Py_ssize_t m, double* sums) noexcept nogil:
    """sums[0] += sum(g); sums[1] += sum(g * (x - mu)), in double."""
    if floating is float:
        sn_grad_sums_f(g, x, mu, m, sums)
    else:
        sn_grad_sums_d(g, x, mu, m, sums)


cdef inline void _run_affine(const floating* x, floating scale, floating shift, floating* out,
                             Py_ssize_t m) noexcept nogil:
    """out = x * scale + shift"""
    if floating is float:
        sn_affine_f(x, scale, shift, out, m)
    else:
        sn_affine_d(x, scale, shift, out, m)


cdef inline void _run_dx(const floating* g, const floating* x, floating a, floating b,
                         floating mu, floating c, floating* dx, Py_ssize_t m) noexcept nogil:
    """dx = a * g - b - c * (x - mu)"""
    if floating is float:
        sn_dx_f(g, x, a, b, mu, c, dx, m)
    else:
        sn_dx_d(g, x, a, b, mu, c, dx, m)


# ------------------------------------------------------------------------ spatial batch norm
def spatial_batchnorm_forward_train(
    const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
    const floating[::1] gamma,        # IN  (C,)
    const floating[::1] beta,         # IN  (C,)
    double eps,
    floating[:, :, :, ::1] out,       # OUT (N, C, H, W)
    floating[::1] mean,               # OUT (C,)
    floating[::1] var,                # OUT (C,) biased variance over N*H*W
    floating[::1] inv_std,            # OUT (C,) 1 / sqrt(var + eps)
    int num_threads,
):
    """Pass 1 (threads over the N*C planes, in memory order): each plane's mean and sum of
    squared deviations from it (the plane is re-read from L1). The plane statistics combine
    per channel exactly (Chan et al.: M2 = sum(M2_p) + H*W * sum((mean_p - mean)**2)).
    Pass 2: out = x * s + t with s = gamma * inv_std and t = beta - mean * s."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    _check_shapes((n, c, h, w), num_threads, {"out": out.shape},
                  {"gamma": (gamma.shape[0], c), "beta": (beta.shape[0], c),
                   "mean": (mean.shape[0], c), "var": (var.shape[0], c),
                   "inv_std": (inv_std.shape[0], c)})
    cdef Py_ssize_t hw = h * w, ch, i, p
    cdef double[:, ::1] planes = np.empty((n * c, 2))  # mean, M2 of every (n, c) plane
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] coef = np.empty((c, 2), dtype=dtype)  # scale, shift per channel
    cdef double mu, m2, d, r
    cdef const floating* src
    with nogil:
        with parallel(num_threads=num_threads):
            for p in prange(n * c, schedule="static"):
                src = &x[p // c, p % c, 0, 0]
                mu = _run_sum(src, hw) / hw
                planes[p, 0] = mu
                planes[p, 1] = _run_squared_deviation(src, mu, hw)
        for ch in range(c):
            mu = 0.0
            for i in range(n):
                mu = mu + planes[i * c + ch, 0]
            mu = mu / n
            m2 = 0.0
            for i in range(n):
                d = planes[i * c + ch, 0] - mu
                m2 = m2 + planes[i * c + ch, 1] + hw * d * d
            m2 = m2 / (n * hw)
            r = 1.0 / sqrt(m2 + eps)
            mean[ch] = <floating>mu
            var[ch] = <floating>m2
            inv_std[ch] = <floating>r
            coef[ch, 0] = <floating>(gamma[ch] * r)
            coef[ch, 1] = <floating>(beta[ch] - mu * gamma[ch] * r)
        with parallel(num_threads=num_threads):
            for p in prange(n * c, schedule="static"):
                i = p // c
                ch = p % c
                _run_affine(&x[i, ch, 0, 0], coef[ch, 0], coef[ch, 1], &out[i, ch, 0, 0], hw)


def spatial_batchnorm_backward(
    const floating[:, :, :, ::1] dout,  # IN  (N, C, H, W)
    const floating[:, :, :, ::1] x,     # IN  (N, C, H, W)
    const floating[::1] gamma,          # IN  (C,)
    const floating[::1] mean,           # IN  (C,)
    const floating[::1] inv_std,        # IN  (C,)
    floating[:, :, :, ::1] dx,          # OUT (N, C, H, W)
    floating[::1] dgamma,               # OUT (C,)
    floating[::1] dbeta,                # OUT (C,)
    int num_threads,
):
    """Closed form per channel (M = N*H*W): dbeta = sum(dout), dgamma = sum(dout * x_hat),
    dx = gamma * inv_std * (dout - dbeta / M - x_hat * dgamma / M), x_hat recomputed from x.
    Pass 1 sums every (n, c) plane (threads over planes, in memory order), the plane sums
    combine per channel, pass 2 writes dx."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    _check_shapes((n, c, h, w), num_threads, {"dout": dout.shape, "dx": dx.shape},
                  {"gamma": (gamma.shape[0], c), "mean": (mean.shape[0], c),
                   "inv_std": (inv_std.shape[0], c), "dgamma": (dgamma.shape[0], c),
                   "dbeta": (dbeta.shape[0], c)})
    cdef Py_ssize_t hw = h * w, ch, i, p
    cdef double count = <double>(n * hw), r, k, sg, sgx
    cdef double[:, ::1] planes = np.zeros((n * c, 2))  # sum(dout), sum(dout * (x - mean))
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] coef = np.empty((c, 3), dtype=dtype)  # a, b, cx per channel
    with nogil:
        with parallel(num_threads=num_threads):
            for p in prange(n * c, schedule="static"):
                i = p // c
                ch = p % c
                _run_grad_sums(&dout[i, ch, 0, 0], &x[i, ch, 0, 0], mean[ch], hw,
                               &planes[p, 0])
        for ch in range(c):
            sg = 0.0
            sgx = 0.0
            for i in range(n):
                sg = sg + planes[i * c + ch, 0]
                sgx = sgx + planes[i * c + ch, 1]
            r = inv_std[ch]
            dbeta[ch] = <floating>sg
            dgamma[ch] = <floating>(sgx * r)
            k = gamma[ch] * r
            coef[ch, 0] = <floating>k
            coef[ch, 1] = <floating>(k * sg / count)
            coef[ch, 2] = <floating>(k * r * r * sgx / count)
        with parallel(num_threads=num_threads):
            for p in prange(n * c, schedule="static"):
                i = p // c
                ch = p % c
                _run_dx(&dout[i, ch, 0, 0], &x[i, ch, 0, 0], coef[ch, 0], coef[ch, 1], mean[ch],
                        coef[ch, 2], &dx[i, ch, 0, 0], hw)


# ------------------------------------------------------------------------ spatial group norm
def spatial_groupnorm_forward(
    const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
    const floating[::1] gamma,        # IN  (C,)
    const floating[::1] beta,         # IN  (C,)
    double eps,
    floating[:, :, :, ::1] out,       # OUT (N, C, H, W)
    floating[:, ::1] mean,            # OUT (N, G)
    floating[:, ::1] var,             # OUT (N, G) biased variance over C/G*H*W
    floating[:, ::1] inv_std,         # OUT (N, G)
    int num_threads,
):
    """Per (n, group): mean and squared deviations over the contiguous block, then
    out = x * s + t per channel (s = gamma * inv_std, t = beta - mean * s). Threads over blocks."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t groups = mean.shape[1]
    if groups < 1 or c % groups != 0:
        raise ValueError(f"G must be >= 1 and divide C={c}, got G={groups}")
    _check_shapes((n, c, h, w), num_threads, {"out": out.shape},
                  {"gamma": (gamma.shape[0], c), "beta": (beta.shape[0], c)})
    _check_stats(n, groups, {"mean": mean.shape, "var": var.shape, "inv_std": inv_std.shape})
    cdef Py_ssize_t hw = h * w, cg = c // groups, blk, i, g, ch
    cdef double count = <double>(cg * hw), mu, v, r
    cdef const floating* start
    with nogil, parallel(num_threads=num_threads):
        for blk in prange(n * groups, schedule="static"):
            i = blk // groups
            g = blk % groups
            start = &x[i, g * cg, 0, 0]
            mu = _run_sum(start, cg * hw) / count
            v = _run_squared_deviation(start, mu, cg * hw) / count
            r = 1.0 / sqrt(v + eps)
            mean[i, g] = <floating>mu
            var[i, g] = <floating>v
            inv_std[i, g] = <floating>r
            for ch in range(g * cg, (g + 1) * cg):
                _run_affine(&x[i, ch, 0, 0], <floating>(gamma[ch] * r),
                            <floating>(beta[ch] - mu * gamma[ch] * r), &out[i, ch, 0, 0], hw)


def spatial_groupnorm_backward(
    const floating[:, :, :, ::1] dout,  # IN  (N, C, H, W)
    const floating[:, :, :, ::1] x,     # IN  (N, C, H, W)
    const floating[::1] gamma,          # IN  (C,)
    const floating[:, ::1] mean,        # IN  (N, G)
    const floating[:, ::1] inv_std,     # IN  (N, G)
    floating[:, :, :, ::1] dx,          # OUT (N, C, H, W)
    floating[::1] dgamma,               # OUT (C,)
    floating[::1] dbeta,                # OUT (C,)
    int num_threads,
):
    """Per (n, group) block of M = C/G*H*W elements, with gx = dout * gamma[channel]:
    dx = inv_std * (gx - mean(gx) - x_hat * mean(gx * x_hat)); per channel
    dbeta = sum(dout), dgamma = sum(dout * x_hat) over n, h, w (per-thread accumulators)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t groups = mean.shape[1]
    if groups < 1 or c % groups != 0:
        raise ValueError(f"G must be >= 1 and divide C={c}, got G={groups}")
    _check_shapes((n, c, h, w), num_threads, {"dout": dout.shape, "dx": dx.shape},
                  {"gamma": (gamma.shape[0], c), "dgamma": (dgamma.shape[0], c),
                   "dbeta": (dbeta.shape[0], c)})
    _check_stats(n, groups, {"mean": mean.shape, "inv_std": inv_std.shape})
    cdef Py_ssize_t hw = h * w, cg = c // groups, blk, i, g, ch, t
    cdef double count = <double>(cg * hw), r, sg, sgx
    # per thread: dbeta and dgamma accumulators (2C), then the two sums of one channel
    cdef double[:, ::1] partial = np.zeros((num_threads, 2 * c + 2))
    cdef double* acc
    cdef double* sums
    cdef floating mu, a, b, cx
    with nogil:
        with parallel(num_threads=num_threads):
            acc = &partial[threadid(), 0]
            sums = acc + 2 * c
            for blk in prange(n * groups, schedule="static"):
                i = blk // groups
                g = blk % groups
                mu = mean[i, g]
                r = inv_std[i, g]
                sg = 0.0
                sgx = 0.0
                for ch in range(g * cg, (g + 1) * cg):
                    sums[0] = 0.0
                    sums[1] = 0.0
                    _run_grad_sums(&dout[i, ch, 0, 0], &x[i, ch, 0, 0], mu, hw, sums)
                    acc[ch] += sums[0]
                    acc[c + ch] += sums[1] * r
                    sg = sg + gamma[ch] * sums[0]
                    sgx = sgx + gamma[ch] * sums[1]
                # with gx = gamma * dout: mean(gx) = sg / M, mean(gx * x_hat) = r * sgx / M
                b = <floating>(r * sg / count)
                cx = <floating>(r * r * r * sgx / count)
                for ch in range(g * cg, (g + 1) * cg):
                    a = <floating>(gamma[ch] * r)
                    _run_dx(&dout[i, ch, 0, 0], &x[i, ch, 0, 0], a, b, mu, cx,
                            &dx[i, ch, 0, 0], hw)
        for ch in range(c):
            sg = 0.0
            sgx = 0.0
            for t in range(partial.shape[0]):
                sg = sg + partial[t, ch]
                sgx = sgx + partial[t, c + ch]
            dbeta[ch] = <floating>sg
            dgamma[ch] = <floating>sgx
