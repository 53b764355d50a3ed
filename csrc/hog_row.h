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

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define FASTNN_HOG_CLONES __attribute__((target_clones("avx2", "default")))
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

/* One whole image, as flat loops over its H * W pixels (long loops vectorise well; a 32-pixel
 * row is too short). Inputs:
 *   gray        H * W gray levels, row-major
 *   slopes      tan(edge_k - 90 deg) for the inner bin edges, ascending (n_slopes values)
 *   pixel_base  per pixel: its cell's first feature index (column cell * n_rows + row cell)
 *               * n_orient, or -1 for a pixel in no cell
 *   pixel_mult  per pixel: row multiplicity * column multiplicity in its cell window
 *   dump        histogram slot that collects pixels which are not counted
 * Outputs (H * W values each):
 *   gx, gy      forward differences (0 in the last column / last row, CS231n's np.diff padding)
 *   slot        histogram index pixel_base + bin, or dump when the pixel is not counted
 *               (gx + 1e-15 <= 0, or no cell); bin = number of slopes <= gy / (gx + 1e-15)
 *   weight      sqrt(gx * gx + gy * gy) * pixel_mult
 *   special     nonzero where the bin must come from the literal atan2 test instead (vertical
 *               gradients, gx + 1e-15 == 0, a slope within a relative 1e-9 of an edge's)
 *   u, count, near   scratch
 */
FASTNN_HOG_CLONES
static void fastnn_hog_image(const double *restrict gray, ptrdiff_t H, ptrdiff_t W,
                             const double *restrict slopes, int n_slopes,
                             const int *restrict pixel_base, const double *restrict pixel_mult,
                             int dump, double *restrict gx, double *restrict gy,
                             double *restrict u, double *restrict count, double *restrict near,
                             int *restrict slot, double *restrict weight, int *restrict special)
{
    const ptrdiff_t n = H * W;
    ptrdiff_t i;
    int k;
    for (i = 0; i < n - 1; i++)
        gx[i] = gray[i + 1] - gray[i];
    for (i = W - 1; i < n; i += W)
        gx[i] = 0.0;
    for (i = 0; i < n - W; i++)
        gy[i] = gray[i + W] - gray[i];
    for (i = n - W; i < n; i++)
        gy[i] = 0.0;
    for (i = 0; i < n; i++) {
        double gxp = gx[i] + 1e-15;
        weight[i] = sqrt(gx[i] * gx[i] + gy[i] * gy[i]) * pixel_mult[i];
        /* u is only used where gxp > 0; elsewhere it may be inf or NaN, which is harmless. */
        u[i] = gy[i] / gxp;
        count[i] = 0.0;
        /* vertical gradient, or gx + 1e-15 == 0 (bitwise & and |: no branches, so the loop
         * vectorises) */
        near[i] = (double)(((gy[i] != 0.0) & (fabs(gxp) <= FASTNN_HOG_VERTICAL * fabs(gy[i])))
                           | (gxp == 0.0));
    }
    /* Slope loop outside, pixel loop inside, all in doubles, so the compiler vectorises over
     * pixels. Near-edge flags of pixels with gx + 1e-15 <= 0 are harmless: the literal test
     * drops those pixels too. */
    for (k = 0; k < n_slopes; k++) {
        const double s = slopes[k];
        const double margin = FASTNN_HOG_EDGE_MARGIN * (1.0 + fabs(s));
        for (i = 0; i < n; i++) {
            count[i] += (u[i] >= s) ? 1.0 : 0.0;
            near[i] += (fabs(u[i] - s) <= margin) ? 1.0 : 0.0;
        }
    }
    for (i = 0; i < n; i++) {
        int counted = (gx[i] + 1e-15 > 0.0) & (pixel_base[i] >= 0);
        slot[i] = counted ? pixel_base[i] + (int)count[i] : dump;
        special[i] = near[i] != 0.0;
    }
}

#endif /* FASTNN_HOG_ROW_H */
