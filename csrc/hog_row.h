/* Per-image HOG arithmetic for csrc/_hog.pyx, written as simple loops the compiler vectorises.
 *
 * For one image it computes the forward-difference gradients, their magnitudes and a
 * provisional orientation bin per pixel from slope comparisons (no atan2). Pixels whose bin
 * needs CS231n's literal atan2 test (vertical gradients, gx + 1e-15 == 0, slopes within a
 * relative 1e-9 of a bin edge) are flagged; the Cython caller bins those one by one.
 *
 * Portability: on x86-64 Linux with GCC/clang the function is cloned for AVX2 and the baseline
 * (runtime dispatch, no -march flag needed); elsewhere it is a plain function. The AVX2 clone
 * does not enable FMA, so a*b + c is never contracted and the magnitudes stay bit-identical to
 * NumPy's sqrt(gx**2 + gy**2).
 */
#ifndef FASTNN_HOG_ROW_H
#define FASTNN_HOG_ROW_H

#include <math.h>
#include <stddef.h>

/* Never contract a * b + c into an FMA (the AVX-512 clone could): the magnitudes must round
 * exactly as NumPy's sqrt(gx**2 + gy**2). Explicit fma() calls are unaffected. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define FASTNN_HOG_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FASTNN_HOG_CLONES
#endif

#define FASTNN_HOG_VERTICAL 1e-12
#define FASTNN_HOG_MAX_ABS_GRAY 1e30 /* == fastnn.kernels.hog.MAX_ABS_PIXEL */
#define FASTNN_HOG_EDGE_MARGIN 1e-9

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
/* "fma" dispatches on the CPU feature (an "arch=" clone would dispatch on the CPU model). */
#define FASTNN_HOG_CLONES_FMA __attribute__((target_clones("fma", "default")))
#else
#define FASTNN_HOG_CLONES_FMA
#endif

/* Number of gray levels that are NaN, infinite or larger in magnitude than
 * FASTNN_HOG_MAX_ABS_GRAY: the value check of the HOG input, done on the gray levels right after
 * they are computed so the input is read once (0 for valid images). */
FASTNN_HOG_CLONES
static ptrdiff_t fastnn_hog_count_bad(const double *restrict gray, ptrdiff_t n)
{
    ptrdiff_t i, bad = 0;
    for (i = 0; i < n; i++)
        bad += !(fabs(gray[i]) <= FASTNN_HOG_MAX_ABS_GRAY);
    return bad;
}

/* Gray levels of n pixels with C channels (returning the number of bad gray levels): C == 1 is a copy; C >= 3 uses CS231n's weights
 * 0.299, 0.587, 0.144 in one of the two ways NumPy's np.dot(rgb[..., :3], weights) evaluates
 * them (the Python side probes which one this machine's NumPy uses):
 *   plain:  (r * 0.299 + g * 0.587) + b * 0.144, every operation rounded (no contraction: the
 *           clones below never enable FMA);
 *   fused:  fma(b, 0.144, fma(g, 0.587, r * 0.299)), the left-to-right FMA chain of OpenBLAS's
 *           ddot on FMA hardware (C99 fma() is exact everywhere; the fma clone makes it
 *           one instruction). */
#define FASTNN_HOG_GRAY_PLAIN(NAME, T)                                                        \
    FASTNN_HOG_CLONES                                                                         \
    static ptrdiff_t NAME(const T *restrict x, ptrdiff_t n, ptrdiff_t C,                    \
                          double *restrict gray)                                              \
    {                                                                                         \
        ptrdiff_t i;                                                                          \
        if (C == 1) {                                                                         \
            for (i = 0; i < n; i++)                                                           \
                gray[i] = (double)x[i];                                                       \
        } else if (C == 3) {                                                                  \
            for (i = 0; i < n; i++)                                                           \
                gray[i] = (double)x[3 * i] * 0.299 + (double)x[3 * i + 1] * 0.587             \
                          + (double)x[3 * i + 2] * 0.144;                                     \
        } else {                                                                              \
            for (i = 0; i < n; i++)                                                           \
                gray[i] = (double)x[C * i] * 0.299 + (double)x[C * i + 1] * 0.587             \
                          + (double)x[C * i + 2] * 0.144;                                     \
        }                                                                                     \
        return fastnn_hog_count_bad(gray, n);                                                 \
    }

#define FASTNN_HOG_GRAY_FUSED(NAME, T)                                                        \
    FASTNN_HOG_CLONES_FMA                                                                     \
    static ptrdiff_t NAME(const T *restrict x, ptrdiff_t n, ptrdiff_t C,                    \
                          double *restrict gray)                                              \
    {                                                                                         \
        ptrdiff_t i;                                                                          \
        if (C == 1) {                                                                         \
            for (i = 0; i < n; i++)                                                           \
                gray[i] = (double)x[i];                                                       \
        } else if (C == 3) {                                                                  \
            for (i = 0; i < n; i++)                                                           \
                gray[i] = fma((double)x[3 * i + 2], 0.144,                                    \
                              fma((double)x[3 * i + 1], 0.587, (double)x[3 * i] * 0.299));    \
        } else {                                                                              \
            for (i = 0; i < n; i++)                                                           \
                gray[i] = fma((double)x[C * i + 2], 0.144,                                    \
                              fma((double)x[C * i + 1], 0.587, (double)x[C * i] * 0.299));    \
        }                                                                                     \
        return fastnn_hog_count_bad(gray, n);                                                 \
    }

FASTNN_HOG_GRAY_PLAIN(fastnn_hog_gray_plain_f32, float)
FASTNN_HOG_GRAY_PLAIN(fastnn_hog_gray_plain_f64, double)
FASTNN_HOG_GRAY_FUSED(fastnn_hog_gray_fused_f32, float)
FASTNN_HOG_GRAY_FUSED(fastnn_hog_gray_fused_f64, double)

/* count[i] += number of slopes <= u[i]; near[i] += number of slopes within a relative
 * FASTNN_HOG_EDGE_MARGIN of u[i] (then the literal atan2 test decides that pixel's bin; the
 * exact margin only decides which of two agreeing tests runs). With GCC/clang vector extensions
 * eight pixels at a time keep their counters in registers across the slope loop; elsewhere a
 * plain loop (slopes outside, pixels inside) computes the same. NaN u
 * (from gx + 1e-15 == 0) compares false everywhere, as in the plain loop. */
#if defined(__GNUC__) || defined(__clang__)
typedef float fastnn_v8f __attribute__((vector_size(32)));
typedef int fastnn_v8i __attribute__((vector_size(32)));
typedef double fastnn_v8d __attribute__((vector_size(64)));
#define FASTNN_HOG_VECTOR_EXT 1
#define FASTNN_HOG_ALWAYS_INLINE __attribute__((always_inline))
#else
#define FASTNN_HOG_ALWAYS_INLINE
#endif

#ifdef FASTNN_HOG_VECTOR_EXT
/* dst[0:8] += v (unaligned). */
FASTNN_HOG_ALWAYS_INLINE
static inline void fastnn_hog_add8(double *restrict dst, fastnn_v8d v)
{
    fastnn_v8d d;
    __builtin_memcpy(&d, dst, sizeof d);
    d += v;
    __builtin_memcpy(dst, &d, sizeof d);
}
#endif

/* Relative margin of the single-precision slope test below: far above float rounding (6e-8),
 * so outside it the float comparison u >= slope has the same answer as the double one. */
#define FASTNN_HOG_EDGE_MARGIN_F32 1e-5

/* Always inlined, so it is compiled for whichever clone (AVX2 or baseline) calls it.
 * The vector path compares in single precision (eight lanes per AVX2 instruction): with
 * uf = (float)u, lo = (float)(s - m), hi = (float)(s + m), m = 1e-5 (1 + |s|), a pixel with
 * uf < lo or uf > hi has |u - s| > m / 2, so (uf >= (float)s) == (u >= s); pixels in between are
 * flagged near and binned by the literal atan2 test. */
FASTNN_HOG_ALWAYS_INLINE
static inline void fastnn_hog_count_slopes(const double *restrict gx, const double *restrict gy,
                                           ptrdiff_t len,
                                           const double *restrict slopes, int n_slopes,
                                           double *restrict count, double *restrict near)
{
    ptrdiff_t i = 0;
    int k;
#ifdef FASTNN_HOG_VECTOR_EXT
    float sf[360], lo[360], hi[360]; /* at most 359 inner edges */
    for (k = 0; k < n_slopes; k++) {
        const double margin = FASTNN_HOG_EDGE_MARGIN_F32 * (1.0 + fabs(slopes[k]));
        sf[k] = (float)slopes[k];
        lo[k] = (float)(slopes[k] - margin);
        hi[k] = (float)(slopes[k] + margin);
    }
    /* Sixteen pixels (two independent vectors) per iteration hide the add latency. Masks are
     * all-ones lanes; AND with the bits of 1.0f turns them into 1.0f or 0.0f. */
    for (; i + 16 <= len; i += 16) {
        const fastnn_v8f one = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
        const fastnn_v8d tiny = {1e-15, 1e-15, 1e-15, 1e-15, 1e-15, 1e-15, 1e-15, 1e-15};
        fastnn_v8d xd, yd;
        fastnn_v8f ua, ub, ca = {0}, cb = {0};
        fastnn_v8i fa = {0}, fb = {0};
        /* u = gy / (gx + 1e-15) in single precision (relative error < 2e-7, inside the margin;
         * |gx + 1e-15| < 1e-30, where float would underflow, is flagged by the caller). */
        __builtin_memcpy(&xd, gx + i, sizeof xd);
        __builtin_memcpy(&yd, gy + i, sizeof yd);
        ua = __builtin_convertvector(yd, fastnn_v8f) / __builtin_convertvector(xd + tiny, fastnn_v8f);
        __builtin_memcpy(&xd, gx + i + 8, sizeof xd);
        __builtin_memcpy(&yd, gy + i + 8, sizeof yd);
        ub = __builtin_convertvector(yd, fastnn_v8f) / __builtin_convertvector(xd + tiny, fastnn_v8f);
        for (k = 0; k < n_slopes; k++) {
            const fastnn_v8f sv = {sf[k], sf[k], sf[k], sf[k], sf[k], sf[k], sf[k], sf[k]};
            const fastnn_v8f lv = {lo[k], lo[k], lo[k], lo[k], lo[k], lo[k], lo[k], lo[k]};
            const fastnn_v8f hv = {hi[k], hi[k], hi[k], hi[k], hi[k], hi[k], hi[k], hi[k]};
            ca += (fastnn_v8f)((fastnn_v8i)one & (ua >= sv));
            cb += (fastnn_v8f)((fastnn_v8i)one & (ub >= sv));
            fa |= (ua >= lv) & (ua <= hv);
            fb |= (ub >= lv) & (ub <= hv);
        }
        fastnn_hog_add8(count + i, __builtin_convertvector(ca, fastnn_v8d));
        fastnn_hog_add8(count + i + 8, __builtin_convertvector(cb, fastnn_v8d));
        fastnn_hog_add8(near + i, __builtin_convertvector((fastnn_v8f)((fastnn_v8i)one & fa),
                                                          fastnn_v8d));
        fastnn_hog_add8(near + i + 8, __builtin_convertvector((fastnn_v8f)((fastnn_v8i)one & fb),
                                                              fastnn_v8d));
    }
#endif
    for (k = 0; k < n_slopes; k++) {
        const double s = slopes[k];
        const double margin = FASTNN_HOG_EDGE_MARGIN * (1.0 + fabs(s));
        ptrdiff_t j;
        for (j = i; j < len; j++) {
            const double u = gy[j] / (gx[j] + 1e-15); /* inf or NaN only where gx + 1e-15 <= 0 */
            count[j] += (u >= s) ? 1.0 : 0.0;
            near[j] += (fabs(u - s) <= margin) ? 1.0 : 0.0;
        }
    }
}

/* Pixels per block of fastnn_hog_image: its four scratch arrays (B doubles each) stay in L1. */
#define FASTNN_HOG_BLOCK 256

/* One whole image, as flat loops over blocks of its H * W pixels (long loops vectorise well, a
 * 28- or 32-pixel row is too short; blocks keep the scratch in L1). Inputs:
 *   gray        H * W gray levels, row-major
 *   slopes      tan(edge_k - 90 deg) for the inner bin edges, ascending (n_slopes values)
 *   pixel_base  per pixel: its cell's first feature index (column cell * n_rows + row cell)
 *               * n_orient, or -1 for a pixel in no cell
 *   pixel_mult  per pixel: row multiplicity * column multiplicity in its cell window
 *   dump        first of 8 histogram slots that collect the pixels which are not counted
 *               (rotating over 8 slots keeps consecutive dumped pixels from forming one long
 *               dependency chain of additions to a single memory location)
 * Outputs (H * W values each):
 *   slot        histogram index pixel_base + bin, or dump + (i % 8) when it is not counted
 *               (gx + 1e-15 <= 0, or no cell); bin = number of slopes <= gy / (gx + 1e-15),
 *               with gx, gy CS231n's forward differences (0 in the last column / last row)
 *   weight      sqrt(gx * gx + gy * gy) * pixel_mult
 *   special     nonzero where the bin must come from the literal atan2 test instead (vertical
 *               gradients, gx + 1e-15 == 0, a slope near an edge's; only pixels in a cell)
 * Returns the number of special pixels. Scratch: FASTNN_HOG_BLOCK doubles each in gx, gy,
 * count, near.
 */
FASTNN_HOG_CLONES
static ptrdiff_t fastnn_hog_image(const double *restrict gray, ptrdiff_t H, ptrdiff_t W,
                                  const double *restrict slopes, int n_slopes,
                                  const int *restrict pixel_base,
                                  const double *restrict pixel_mult, int dump,
                                  double *restrict gx, double *restrict gy,
                                  double *restrict count, double *restrict near,
                                  int *restrict slot, double *restrict weight,
                                  unsigned char *restrict special)
{
    const ptrdiff_t n = H * W;
    ptrdiff_t start, i, m, n_special = 0;
    for (start = 0; start < n; start += FASTNN_HOG_BLOCK) {
        const ptrdiff_t len = (n - start < FASTNN_HOG_BLOCK) ? n - start : FASTNN_HOG_BLOCK;
        const double *restrict g = gray + start;
        const int *restrict base = pixel_base + start;
        int *restrict out_slot = slot + start;
        unsigned char *restrict out_special = special + start;
        double *restrict out_weight = weight + start;
        /* gx: g[i + 1] - g[i], then 0 in the last column; gy: g[i + W] - g[i], 0 in the last
         * row (the last pixel has neither neighbour; the bounds below keep reads inside). */
        m = (start + len < n) ? len : len - 1;
        for (i = 0; i < m; i++)
            gx[i] = g[i + 1] - g[i];
        for (i = W - 1 - start % W; i < len; i += W)
            gx[i] = 0.0;
        m = (start + len <= n - W) ? len : ((n - W - start > 0) ? n - W - start : 0);
        for (i = 0; i < m; i++)
            gy[i] = g[i + W] - g[i];
        for (i = m; i < len; i++)
            gy[i] = 0.0;
        for (i = 0; i < len; i++) {
            double gxp = gx[i] + 1e-15;
            out_weight[i] = sqrt(gx[i] * gx[i] + gy[i] * gy[i]) * pixel_mult[start + i];
            count[i] = 0.0;
            /* vertical gradient, or |gx + 1e-15| < 1e-30 (including 0), where the slope test
             * is not used (bitwise & and |: no branches, so the loop vectorises) */
            near[i] = (double)(((gy[i] != 0.0) & (fabs(gxp) <= FASTNN_HOG_VERTICAL * fabs(gy[i])))
                               | (fabs(gxp) < 1e-30));
        }
        fastnn_hog_count_slopes(gx, gy, len, slopes, n_slopes, count, near);
        for (i = 0; i < len; i++) {
            int counted = (gx[i] + 1e-15 > 0.0) & (base[i] >= 0);
            out_slot[i] = counted ? base[i] + (int)count[i] : dump + (int)((start + i) & 7);
            out_special[i] = (unsigned char)((near[i] != 0.0) & (base[i] >= 0));
            n_special += out_special[i];
        }
    }
    return n_special;
}

#endif /* FASTNN_HOG_ROW_H */
