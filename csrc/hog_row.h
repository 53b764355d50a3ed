/* Per-row HOG arithmetic for csrc/_hog.pyx, written as simple loops the compiler vectorises.
 *
 * For one image row it computes the forward-difference gradients, their magnitudes and a
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
#define FASTNN_HOG_EDGE_MARGIN 1e-9

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
/* "fma" dispatches on the CPU feature (an "arch=" clone would dispatch on the CPU model). */
#define FASTNN_HOG_CLONES_FMA __attribute__((target_clones("fma", "default")))
#else
#define FASTNN_HOG_CLONES_FMA
#endif

/* Gray levels of n pixels with C channels: C == 1 is a copy; C >= 3 uses CS231n's weights
 * 0.299, 0.587, 0.144 in one of the two ways NumPy's np.dot(rgb[..., :3], weights) evaluates
 * them (the Python side probes which one this machine's NumPy uses):
 *   plain:  (r * 0.299 + g * 0.587) + b * 0.144, every operation rounded (no contraction: the
 *           clones below never enable FMA);
 *   fused:  fma(b, 0.144, fma(g, 0.587, r * 0.299)), the left-to-right FMA chain of OpenBLAS's
 *           ddot on FMA hardware (C99 fma() is exact everywhere; the fma clone makes it
 *           one instruction). */
#define FASTNN_HOG_GRAY_PLAIN(NAME, T)                                                        \
    FASTNN_HOG_CLONES                                                                         \
    static void NAME(const T *restrict x, ptrdiff_t n, ptrdiff_t C, double *restrict gray)    \
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
    }

#define FASTNN_HOG_GRAY_FUSED(NAME, T)                                                        \
    FASTNN_HOG_CLONES_FMA                                                                     \
    static void NAME(const T *restrict x, ptrdiff_t n, ptrdiff_t C, double *restrict gray)    \
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
    }

FASTNN_HOG_GRAY_PLAIN(fastnn_hog_gray_plain_f32, float)
FASTNN_HOG_GRAY_PLAIN(fastnn_hog_gray_plain_f64, double)
FASTNN_HOG_GRAY_FUSED(fastnn_hog_gray_fused_f32, float)
FASTNN_HOG_GRAY_FUSED(fastnn_hog_gray_fused_f64, double)

/* One image row: gradients, magnitudes, bins and histogram slots, vectorisable.
 * Inputs:
 *   g          row r of the gray image (W values)
 *   g_below    row r + 1, or NULL for the last row (then gy = 0, as CS231n's np.diff padding)
 *   slopes     tan(edge_k - 90 deg) for the inner bin edges, ascending (n_slopes values)
 *   col_base   per column: column cell * n_rows * n_orient, or -1 for a column in no cell
 *   col_mult   per column: multiplicity in its cell window (0 for a column in no cell)
 *   row_base   row cell * n_orient of this row; row_mult its multiplicity
 *   dump       histogram slot that collects pixels which are not counted
 * Outputs (W values each):
 *   gx, gy     forward differences (gx = 0 in the last column)
 *   u, count, near   scratch
 *   slot       histogram index: col_base + row_base + bin, or dump when the pixel is not counted
 *              (gx + 1e-15 <= 0 or a column in no cell); bin = number of slopes <= u
 *   weight     sqrt(gx * gx + gy * gy) * (row_mult * col_mult)
 *   special    nonzero where the bin must come from the literal atan2 test instead (vertical
 *              gradients, gx + 1e-15 == 0, u within a relative 1e-9 of an edge slope)
 */
FASTNN_HOG_CLONES
static void fastnn_hog_row(const double *restrict g, const double *restrict g_below, ptrdiff_t W,
                           const double *restrict slopes, int n_slopes,
                           const int *restrict col_base, const double *restrict col_mult,
                           int row_base, double row_mult, int dump,
                           double *restrict gx, double *restrict gy, double *restrict u,
                           double *restrict count, double *restrict near,
                           int *restrict slot, double *restrict weight, int *restrict special)
{
    ptrdiff_t c;
    int k;
    for (c = 0; c < W - 1; c++)
        gx[c] = g[c + 1] - g[c];
    gx[W - 1] = 0.0;
    if (g_below != NULL) {
        for (c = 0; c < W; c++)
            gy[c] = g_below[c] - g[c];
    } else {
        for (c = 0; c < W; c++)
            gy[c] = 0.0;
    }
    for (c = 0; c < W; c++) {
        double gxp = gx[c] + 1e-15;
        weight[c] = sqrt(gx[c] * gx[c] + gy[c] * gy[c]) * (row_mult * col_mult[c]);
        /* u is only used where gxp > 0; elsewhere it may be inf or NaN, which is harmless. */
        u[c] = gy[c] / gxp;
        count[c] = 0.0;
        /* vertical gradient, or gx + 1e-15 == 0 (bitwise & and |: no branches, so the loop
         * vectorises) */
        near[c] = (double)(((gy[c] != 0.0) & (fabs(gxp) <= FASTNN_HOG_VERTICAL * fabs(gy[c])))
                           | (gxp == 0.0));
    }
    /* Slope loop outside, pixel loop inside, all in doubles, so the compiler vectorises over
     * pixels. Near-edge flags of pixels with gx + 1e-15 <= 0 are harmless: the literal test
     * drops those pixels too. */
    for (k = 0; k < n_slopes; k++) {
        const double s = slopes[k];
        const double margin = FASTNN_HOG_EDGE_MARGIN * (1.0 + fabs(s));
        for (c = 0; c < W; c++) {
            count[c] += (u[c] >= s) ? 1.0 : 0.0;
            near[c] += (fabs(u[c] - s) <= margin) ? 1.0 : 0.0;
        }
    }
    for (c = 0; c < W; c++) {
        int counted = (gx[c] + 1e-15 > 0.0) & (col_base[c] >= 0);
        slot[c] = counted ? col_base[c] + row_base + (int)count[c] : dump;
        special[c] = near[c] != 0.0;
    }
}

#endif /* FASTNN_HOG_ROW_H */
