/* Fused recurrent cell row kernels for fastnn._ext._recurrent (see csrc/_recurrent.pyx for the
 * maths): one example's LSTM / vanilla-RNN step, forward and backward, in float and double,
 * with branch-free exp/sigmoid/tanh so the loops vectorise.
 *
 * Public (called from Cython), SFX f (float) or d (double):
 *   fnn_lstm_forward_row_SFX(a, add, bias, prev_c, gates, next_c, tanh_c, next_h, h)
 *   fnn_lstm_backward_row_SFX(dnext_h, add, dnext_c, gates, tanh_c, prev_c, da, dprev_c, h)
 *   fnn_rnn_forward_row_SFX(a, add, bias, next_h, h)
 *   fnn_rnn_backward_row_SFX(dnext_h, add, next_h, da, h)
 *   fnn_add_rows_fd(x, rows, ld, acc, len)   acc (double) += every row of x (float, rows ld
 *                                            apart), element-wise
 */
#ifndef FASTNN_RECURRENT_CELLS_H
#define FASTNN_RECURRENT_CELLS_H

#include <Python.h>

/* GCC will not if-convert the float clamps below (so will not vectorise the gate loops)
   while it must preserve floating-point trap semantics; nothing here reads FP flags. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("no-trapping-math")
#endif
/* forced, so the AVX2 clones of the row kernels below inline them too */
#if defined(__GNUC__)
#define FNN_INLINE inline __attribute__((always_inline))
#else
#define FNN_INLINE inline
#endif
#include <stdint.h>
#include <string.h>
#include <math.h>

/* Branch-free exp/expm1 (Cody-Waite range reduction, Taylor polynomial, 2**n from the exponent
   bits) so that the gate loops vectorise: glibc's scalar expf/tanhf cost ~20 ns per call and made
   the fused cell slower than NumPy's SIMD tanh. Accuracy: float ~2 ulp, double ~1e-16 relative;
   inputs are clamped to the range where 2**n is a normal number (exp(-87) ~ 1.6e-38 stands in
   for anything smaller); NaN propagates (the comparisons let it through). */

FNN_INLINE static float fnn_pow2f(float n) {          /* 2**n for integral n in [-126, 0] */
    int32_t bits = ((int32_t)n + 127) << 23;
    float s; memcpy(&s, &bits, sizeof s); return s;
}
FNN_INLINE static double fnn_pow2(double n) {         /* 2**n for integral n in [-1022, 0] */
    int64_t bits = ((int64_t)(int32_t)n + 1023) << 52;
    double s; memcpy(&s, &bits, sizeof s); return s;
}
/* y = n ln2 + r, |r| <= ln2 / 2; *q = expm1(r); returns 2**n. Callers pass y <= 0. */
FNN_INLINE static float fnn_reducef(float y, float *q) {
    y = y < -87.0f ? -87.0f : y;
    float n = (y * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = (y - n * 0.693359375f) - n * -2.12194440e-4f;
    *q = r * (1.0f + r * (0.5f + r * (1.66666667e-1f + r * (4.16666667e-2f + r * (
         8.33333333e-3f + r * (1.38888889e-3f + r * 1.98412698e-4f))))));
    return fnn_pow2f(n);
}
FNN_INLINE static double fnn_reduce(double y, double *q) {
    y = y < -708.0 ? -708.0 : y;
    double n = (y * 1.4426950408889634074 + 6755399441055744.0) - 6755399441055744.0;
    double r = (y - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;                 /* Taylor to r**13 / 13! */
    p = 1.0 / 479001600.0 + r * p;
    p = 1.0 / 39916800.0 + r * p;
    p = 1.0 / 3628800.0 + r * p;
    p = 1.0 / 362880.0 + r * p;
    p = 1.0 / 40320.0 + r * p;
    p = 1.0 / 5040.0 + r * p;
    p = 1.0 / 720.0 + r * p;
    p = 1.0 / 120.0 + r * p;
    p = 1.0 / 24.0 + r * p;
    p = 1.0 / 6.0 + r * p;
    p = 0.5 + r * p;
    p = 1.0 + r * p;
    *q = r * p;
    return fnn_pow2(n);
}
/* 1 / (1 + exp(-x)) from e = exp(-|x|): never overflows, full relative precision */
FNN_INLINE static float fnn_sigmoidf(float x) {
    float q, s = fnn_reducef(-fabsf(x), &q);
    float e = s + s * q;
    return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}
FNN_INLINE static double fnn_sigmoid(double x) {
    double q, s = fnn_reduce(-fabs(x), &q);
    double e = s + s * q;
    return (x >= 0.0 ? 1.0 : e) / (1.0 + e);
}
/* tanh(x) = sign(x) * -m / (2 + m), m = expm1(-2|x|): no cancellation near 0 */
FNN_INLINE static float fnn_tanhf(float x) {
    float q, s = fnn_reducef(-2.0f * fabsf(x), &q);
    float m = s * q + (s - 1.0f);
    return copysignf(-m / (2.0f + m), x);
}
FNN_INLINE static double fnn_tanh(double x) {
    double q, s = fnn_reduce(-2.0 * fabs(x), &q);
    double m = s * q + (s - 1.0);
    return copysign(-m / (2.0 + m), x);
}

/* The row kernels, one per dtype, compiled for AVX-512F, AVX2 and the baseline and picked
   by CPU feature at load time where GCC supports target_clones (ifunc: ELF platforms);
   ~6x (AVX-512) and ~2x (AVX2) faster than the SSE2 baseline. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__)
#define FNN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FNN_CLONES
#endif

/* hidden unit k of the backward, dh its upstream hidden gradient */
#define FNN_LSTM_BACKWARD_UNIT(T, DH) {                                                    \
        T dh = (DH);                                                                       \
        T gi = gates[k], gf = gates[h + k], go = gates[2 * h + k], gg = gates[3 * h + k];  \
        T tc = tanh_c[k];                                                                  \
        T dc = dnext_c[k] + dh * go * (1 - tc * tc);                                       \
        da[k] = dc * gg * gi * (1 - gi);                                                   \
        da[h + k] = dc * prev_c[k] * gf * (1 - gf);                                        \
        da[2 * h + k] = dh * tc * go * (1 - go);                                           \
        da[3 * h + k] = dc * gi * (1 - gg * gg);                                           \
        dprev_c[k] = dc * gf;                                                              \
    }

/* hidden unit k of the forward: gate j's pre-activation is a[j] EXTRA (EXTRA adds the addend
   and/or bias at the same j) */
#define FNN_LSTM_FORWARD_UNIT(T, SIG, TANH, EXTRA) {                                       \
        Py_ssize_t j = k;                                                                  \
        T ai = a[j] EXTRA;                                                                 \
        j = h + k;                                                                         \
        T af = a[j] EXTRA;                                                                 \
        j = 2 * h + k;                                                                     \
        T ao = a[j] EXTRA;                                                                 \
        j = 3 * h + k;                                                                     \
        T ag = a[j] EXTRA;                                                                 \
        T gi = SIG(ai), gf = SIG(af), go = SIG(ao), gg = TANH(ag);                         \
        T c = gf * prev_c[k] + gi * gg;                                                    \
        T tc = TANH(c);                                                                    \
        gates[k] = gi;                                                                     \
        gates[h + k] = gf;                                                                 \
        gates[2 * h + k] = go;                                                             \
        gates[3 * h + k] = gg;                                                             \
        next_c[k] = c;                                                                     \
        tanh_c[k] = tc;                                                                    \
        next_h[k] = go * tc;                                                               \
    }

#define FNN_LSTM_ROWS(T, SFX, SIG, TANH)                                                   \
FNN_CLONES static void fnn_lstm_forward_row_##SFX(                                         \
    const T *a, const T *add, const T *bias, const T *prev_c, T *gates, T *next_c,         \
    T *tanh_c, T *next_h, Py_ssize_t h)                                                    \
{                                                                                          \
    Py_ssize_t k;                                                                          \
    /* one pass, hidden unit k at a time (its four gates, c, tanh c, h): the pre-activations \
       just written by the step's product are read once, not once per separate loop;      \
       ivdep: every output element k is written after every read of element k (gates may  \
       alias a) */                                                                         \
    if (add && bias) {                                                                     \
        _Pragma("GCC ivdep")                                                               \
        for (k = 0; k < h; k++) FNN_LSTM_FORWARD_UNIT(T, SIG, TANH,                        \
                                                      + add[j] + bias[j])                  \
    } else if (add) {                                                                      \
        _Pragma("GCC ivdep")                                                               \
        for (k = 0; k < h; k++) FNN_LSTM_FORWARD_UNIT(T, SIG, TANH, + add[j])              \
    } else if (bias) {                                                                     \
        _Pragma("GCC ivdep")                                                               \
        for (k = 0; k < h; k++) FNN_LSTM_FORWARD_UNIT(T, SIG, TANH, + bias[j])             \
    } else {                                                                               \
        _Pragma("GCC ivdep")                                                               \
        for (k = 0; k < h; k++) FNN_LSTM_FORWARD_UNIT(T, SIG, TANH, )                      \
    }                                                                                      \
}                                                                                          \
FNN_CLONES static void fnn_lstm_backward_row_##SFX(                                        \
    const T *dnext_h, const T *add, const T *dnext_c, const T *gates, const T *tanh_c,     \
    const T *prev_c, T *da, T *dprev_c, Py_ssize_t h)                                      \
{                                                                                          \
    Py_ssize_t k;                                                                          \
    /* ivdep: element k of every output is written after every read of element k (dprev_c \
       may alias dnext_c), so no iteration depends on another; without it the run-time     \
       alias checks fail for that aliasing and the loop ran scalar (~5x slower) */          \
    if (add) {                                                                             \
        _Pragma("GCC ivdep")                                                               \
        for (k = 0; k < h; k++) FNN_LSTM_BACKWARD_UNIT(T, dnext_h[k] + add[k])             \
    } else {                                                                               \
        _Pragma("GCC ivdep")                                                               \
        for (k = 0; k < h; k++) FNN_LSTM_BACKWARD_UNIT(T, dnext_h[k])                      \
    }                                                                                      \
}                                                                                          \
FNN_CLONES static void fnn_rnn_forward_row_##SFX(                                          \
    const T *a, const T *add, const T *bias, T *next_h, Py_ssize_t h)                      \
{                                                                                          \
    Py_ssize_t k;                                                                          \
    if (add && bias) for (k = 0; k < h; k++) next_h[k] = a[k] + add[k] + bias[k];          \
    else if (add) for (k = 0; k < h; k++) next_h[k] = a[k] + add[k];                       \
    else if (bias) for (k = 0; k < h; k++) next_h[k] = a[k] + bias[k];                     \
    else if (next_h != a) for (k = 0; k < h; k++) next_h[k] = a[k];                        \
    for (k = 0; k < h; k++) next_h[k] = TANH(next_h[k]);                                   \
}                                                                                          \
FNN_CLONES static void fnn_rnn_backward_row_##SFX(                                         \
    const T *dnext_h, const T *add, const T *next_h, T *da, Py_ssize_t h)                  \
{                                                                                          \
    Py_ssize_t k;                                                                          \
    if (add) for (k = 0; k < h; k++) da[k] = (dnext_h[k] + add[k]) * (1 - next_h[k] * next_h[k]); \
    else for (k = 0; k < h; k++) da[k] = dnext_h[k] * (1 - next_h[k] * next_h[k]);         \
}

/* acc[k] += x[i * ld + k] for every row i < rows in turn, in float64 (the bias gradient summed
   over rows and steps without float32 rounding growing with their number), 32 columns at a
   time in registers: acc is read and written once per call, not once per row */
FNN_CLONES static void fnn_add_rows_fd(const float *x, Py_ssize_t rows, Py_ssize_t ld,
                                       double *acc, Py_ssize_t len)
{
    Py_ssize_t j0, j, i;
    for (j0 = 0; j0 < len; j0 += 32) {
        const Py_ssize_t width = len - j0 < 32 ? len - j0 : 32;
        double s[32];
        for (j = 0; j < width; j++)
            s[j] = acc[j0 + j];
        for (i = 0; i < rows; i++)
            for (j = 0; j < width; j++)
                s[j] += (double)x[i * ld + j0 + j];
        for (j = 0; j < width; j++)
            acc[j0 + j] = s[j];
    }
}

FNN_LSTM_ROWS(float, f, fnn_sigmoidf, fnn_tanhf)
FNN_LSTM_ROWS(double, d, fnn_sigmoid, fnn_tanh)

#endif
