/* One instantiation of the L1 (cityblock) tile kernel.
 *
 * This file is a template: distances.h includes it several times, each time with different
 * parameter macros, to build one kernel per instruction set (AVX-512, AVX2, SSE2/generic) and
 * per precision (float, double).  Parameters:
 *
 *   L1_NAME       name of the function to define
 *   L1_REAL       float or double
 *   L1_UINT       unsigned integer of the same width (for the sign-bit mask)
 *   L1_VEC_BYTES  SIMD register width in bytes (GCC/clang vector extension)
 *   L1_MR         X rows per micro-kernel (each broadcast value is reused L1_NRV times)
 *   L1_NRV        vectors of Y per micro-kernel row (each loaded vector is reused L1_MR times)
 *   L1_ATTR       function attributes (e.g. __attribute__((target("avx2"))))
 *
 * The kernel computes out[i * ldo + j] = sum_k |X[i, k] - Y[j, k]| for i < m, j < n.
 * n must not exceed FASTNN_L1_NC; work must hold FASTNN_L1_NC * FASTNN_L1_KC elements.
 *
 * Why this shape: a plain "for k: s += fabs(x[k] - y[k])" loop is a floating-point reduction,
 * which compilers refuse to vectorise without -ffast-math.  Packing Y transposed into panels of
 * NR rows ([k][NR] contiguous) turns the inner loop into NR independent accumulations, i.e.
 * element-wise vector arithmetic with no reordering of additions.
 * The MR x NRV register tile means each loaded Y vector serves MR rows of X and each broadcast
 * X value serves NRV vectors, so the loop is bound by arithmetic, not loads.  Y is blocked
 * along k (KC) so a packed block stays in cache; running sums are carried across k-blocks
 * through `out`, so each distance is still summed in the order k = 0, 1, ..., d-1.
 */

#define L1_LANES ((int)(L1_VEC_BYTES / sizeof(L1_REAL)))
#define L1_NR (L1_LANES * L1_NRV)
#define L1_VEC FNN_CAT(L1_NAME, _vec)
#define L1_UVEC FNN_CAT(L1_NAME, _uvec)

typedef L1_REAL L1_VEC __attribute__((vector_size(L1_VEC_BYTES)));
typedef L1_UINT L1_UVEC __attribute__((vector_size(L1_VEC_BYTES)));

L1_ATTR static void L1_NAME(const L1_REAL *X, Py_ssize_t ldx, Py_ssize_t m,
                            const L1_REAL *Y, Py_ssize_t ldy, Py_ssize_t n, Py_ssize_t d,
                            L1_REAL *out, Py_ssize_t ldo, L1_REAL *work)
{
    const Py_ssize_t npanels = (n + L1_NR - 1) / L1_NR;
    L1_UVEC absmask;
    L1_REAL tile[L1_MR * L1_NR];
    int v, r;

    for (v = 0; v < L1_LANES; v++)
        absmask[v] = ~((L1_UINT)1 << (8 * sizeof(L1_UINT) - 1));

    for (Py_ssize_t k0 = 0; k0 < d; k0 += FASTNN_L1_KC) {
        const Py_ssize_t kc = (d - k0 < FASTNN_L1_KC) ? d - k0 : FASTNN_L1_KC;

        /* Pack Y[:, k0:k0+kc] into panels: work[p][kk][jj] = Y[p*NR + jj, k0 + kk]
           (rows past n are zero; their sums are computed and thrown away). */
        for (Py_ssize_t p = 0; p < npanels; p++) {
            L1_REAL *dst = work + p * kc * L1_NR;
            for (int jj = 0; jj < L1_NR; jj++) {
                const Py_ssize_t j = p * L1_NR + jj;
                if (j < n) {
                    const L1_REAL *src = Y + j * ldy + k0;
                    for (Py_ssize_t kk = 0; kk < kc; kk++)
                        dst[kk * L1_NR + jj] = src[kk];
                } else {
                    for (Py_ssize_t kk = 0; kk < kc; kk++)
                        dst[kk * L1_NR + jj] = 0;
                }
            }
        }

        for (Py_ssize_t i0 = 0; i0 < m; i0 += L1_MR) {
            const L1_REAL *xr[L1_MR];
            const int mr = (m - i0 < L1_MR) ? (int)(m - i0) : L1_MR;
            /* Missing rows of a short last group repeat the last real row (results discarded),
               so the micro-kernel never branches. */
            for (r = 0; r < L1_MR; r++)
                xr[r] = X + (i0 + (r < mr ? r : mr - 1)) * ldx + k0;

            for (Py_ssize_t p = 0; p < npanels; p++) {
                const L1_REAL *yp = work + p * kc * L1_NR;
                const Py_ssize_t nr = (n - p * L1_NR < L1_NR) ? n - p * L1_NR : L1_NR;
                L1_VEC acc[L1_MR][L1_NRV];
                /* Continue the running sums of the previous k-block, so every distance is
                   accumulated strictly in the order k = 0, 1, ..., d-1. */
                memset(tile, 0, sizeof(tile));
                if (k0 > 0) {
                    for (r = 0; r < mr; r++) {
                        const L1_REAL *o = out + (i0 + r) * ldo + p * L1_NR;
                        for (Py_ssize_t jj = 0; jj < nr; jj++) tile[r * L1_NR + jj] = o[jj];
                    }
                }
                memcpy(acc, tile, sizeof(tile));

                for (Py_ssize_t kk = 0; kk < kc; kk++) {
                    L1_VEC yv[L1_NRV];
                    for (v = 0; v < L1_NRV; v++)
                        memcpy(&yv[v], yp + kk * L1_NR + v * L1_LANES, sizeof(L1_VEC));
                    for (r = 0; r < L1_MR; r++) {
                        /* x - 0 is exact for every x, so this folds to a plain broadcast
                           (0 + x would not: it turns -0.0 into +0.0). */
                        const L1_VEC xb = xr[r][kk] - (L1_VEC){0};
                        for (v = 0; v < L1_NRV; v++) {
                            const L1_VEC diff = yv[v] - xb;
                            acc[r][v] += (L1_VEC)((L1_UVEC)diff & absmask);
                        }
                    }
                }

                memcpy(tile, acc, sizeof(tile));
                for (r = 0; r < mr; r++) {
                    L1_REAL *o = out + (i0 + r) * ldo + p * L1_NR;
                    for (Py_ssize_t jj = 0; jj < nr; jj++) o[jj] = tile[r * L1_NR + jj];
                }
            }
        }
    }
}

#undef L1_LANES
#undef L1_NR
#undef L1_VEC
#undef L1_UVEC
#undef L1_NAME
#undef L1_REAL
#undef L1_UINT
#undef L1_VEC_BYTES
#undef L1_MR
#undef L1_NRV
#undef L1_ATTR
