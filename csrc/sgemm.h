/* Float32 matrix product with AVX-512, shared by fastnn._ext._gemm (the Python-callable products
 * of the convolution and the recurrent sequences), fastnn._ext._conv and _winograd (per-image and
 * Winograd products) and fastnn._ext._recurrent (its step loops); declared once for Cython in
 * csrc/sgemm.pxd.
 *
 * Why not BLAS: NumPy's OpenBLAS (DYNAMIC_ARCH) picks its kernels from the CPU model it knows;
 * on CPUs newer than the OpenBLAS build (AMD Zen 5 with 0.3.31, for example) it falls back to
 * the AVX2 "Haswell" kernels and runs the products of an LSTM or a convolution at half the
 * machine's float32 rate. This kernel uses AVX-512 whenever the CPU reports it (checked at run
 * time; the caller falls back to BLAS otherwise), so the products do not depend on that table.
 *
 * Public (called from Cython):
 *   int  fnn_sgemm_available(void);      1 when the CPU has AVX-512F and the kernel is compiled
 *   int  fnn_sgemm(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate);   -1: out of memory
 *       c[i*ldc + j] (+)= sum_p a[i*a_rs + p*a_cs] * b[p*ldb + j],  i < m, j < n,  n % 32 == 0.
 *       A may be any strided view (a transposed one included: each block is packed into
 *       contiguous 12-row tiles first); B and C rows are contiguous.
 *   void fnn_sgemm_pack_row(p, a0, n0, a1, n1, pack, pack_ts)
 *       row p of an A whose rows are [a0 (n0 floats), a1 (n1 floats)] into 12-row tiles, each
 *       k-major over all of k: element (12 t + r, p) at pack[t * pack_ts + 12 p + r]
 *   void fnn_sgemm_long(m, n, k, pack, pack_ts, b, ldb, c, ldc)
 *       c = A @ B for an A packed whole that way: every 12 x 32 tile of C sums all k terms in
 *       registers and is stored once (the weight gradients of a recurrent sequence: a few
 *       hundred rows, k = T*N in the thousands).
 *   int  fnn_sgemm_pair(m, k, a, a_rs, a_cs, n, b, ldb, c, ldc, n2, b2, ldb2, c2, ldc2);
 *       c = a @ b and c2 = a @ b2 in one pass over A (a row-major A read in place).
 *   void fnn_sgemm_pack_b(k, b, ldb, out, q0, q1);   32-column panels q0:q1 of B, panel-major
 *   int  fnn_sgemm_bpanels(m, n, k, a, a_rs, a_cs, bpanels, c, ldc, accumulate);
 *       fnn_sgemm with B given panel-major (a weight reused by many products, packed once)
 *       and a row-major A read in place.
 *
 * Blocking: k in blocks of FNN_GEMM_KC (a 32-column panel of B is then KC * 128 bytes: L1),
 * rows in blocks of FNN_GEMM_MC (the A block, up to 256 KB, stays in L2 while every B panel
 * streams by: the weight gradients, with few rows and a long k, read B once), a 12 x 32
 * register tile (24 zmm accumulators, two B vectors, one broadcast: 24 FMAs per 14 loads).
 */
#ifndef FASTNN_SGEMM_H
#define FASTNN_SGEMM_H

#include <Python.h>
#include <stdlib.h>
#include <string.h>

#define FNN_GEMM_KC 256
#define FNN_GEMM_MC 256
#define FNN_GEMM_NR 32
#define FNN_GEMM_MR 12
#define FNN_GEMM_NARROW 64
#if defined(__GNUC__) || defined(__clang__)
#define FNN_SGEMM_UNUSED __attribute__((unused))   /* not every includer calls every entry */
#else
#define FNN_SGEMM_UNUSED
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)

typedef float fnn_v16 __attribute__((vector_size(64)));
typedef float fnn_v16u __attribute__((vector_size(64), aligned(4)));   /* unaligned access */

/* rows (<= FNN_GEMM_MR, a constant at every call site) x 32 columns of C over k_len terms */
__attribute__((target("avx512f"), always_inline)) static inline void fnn_sgemm_tile(
    int rows, Py_ssize_t k_len, const float *a, Py_ssize_t a_rs, Py_ssize_t a_cs,
    const float *b, Py_ssize_t ldb, float *c, Py_ssize_t ldc, int accumulate)
{
    fnn_v16 acc0[FNN_GEMM_MR], acc1[FNN_GEMM_MR];
    int r;
    Py_ssize_t p;
    for (r = 0; r < rows; r++) {
        acc0[r] = (fnn_v16){0};
        acc1[r] = (fnn_v16){0};
    }
    for (p = 0; p < k_len; p++) {
        const fnn_v16 b0 = *(const fnn_v16u *)(b + p * ldb);
        const fnn_v16 b1 = *(const fnn_v16u *)(b + p * ldb + 16);
        const float *ap = a + p * a_cs;
        for (r = 0; r < rows; r++) {
            const float s = ap[r * a_rs];
            acc0[r] += s * b0;
            acc1[r] += s * b1;
        }
    }
    for (r = 0; r < rows; r++) {
        fnn_v16u *c0 = (fnn_v16u *)(c + r * ldc), *c1 = (fnn_v16u *)(c + r * ldc + 16);
        if (accumulate) {
            *c0 += acc0[r];
            *c1 += acc1[r];
        } else {
            *c0 = acc0[r];
            *c1 = acc1[r];
        }
    }
}

/* A[i0:i0+rows, p0:p0+kc] as FNN_GEMM_MR-row tiles, each k-major: tile t holds a[p * FNN_GEMM_MR + r] (rows past
   the end of A left unset: their products are never stored) */
static void fnn_sgemm_pack_a(Py_ssize_t rows, Py_ssize_t kc, const float *a, Py_ssize_t a_rs,
                             Py_ssize_t a_cs, float *pack)
{
    Py_ssize_t i, p;
    int r;
    for (i = 0; i < rows; i += FNN_GEMM_MR) {
        const int tile_rows = rows - i < FNN_GEMM_MR ? (int)(rows - i) : FNN_GEMM_MR;
        float *dst = pack + i * kc;
        for (p = 0; p < kc; p++)
            for (r = 0; r < tile_rows; r++)
                dst[p * FNN_GEMM_MR + r] = a[(i + r) * a_rs + p * a_cs];
    }
}

/* the 32-column panels j of C = A @ B for the rows i0:i1 of one packed (tile t of the block at
   pack + t * pack_ts) or in-place A block */
__attribute__((target("avx512f"), always_inline)) static inline void fnn_sgemm_panels(
    Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t kc, const float *a, Py_ssize_t a_rs, int packed,
    const float *pack, Py_ssize_t pack_ts, Py_ssize_t n, const float *b, Py_ssize_t ldb,
    Py_ssize_t b_js, float *c, Py_ssize_t ldc, int acc)
{
    Py_ssize_t i, j;
    for (j = 0; j < n; j += FNN_GEMM_NR) {
        const float *bp = b + j * b_js;   /* b_js 1: row-major B; k: panel-major B */
        for (i = i0; i < i1; i += FNN_GEMM_MR) {
            const float *ap = packed ? pack + (i - i0) / FNN_GEMM_MR * pack_ts : a + i * a_rs;
            const Py_ssize_t ap_rs = packed ? 1 : a_rs, ap_cs = packed ? FNN_GEMM_MR : 1;
            float *cp = c + i * ldc + j;
#define FNN_TILE(R) case R: fnn_sgemm_tile(R, kc, ap, ap_rs, ap_cs, bp, ldb, cp, ldc, acc); break;
            /* constant row counts, so every tile is fully unrolled in registers */
            switch (i1 - i < FNN_GEMM_MR ? (int)(i1 - i) : FNN_GEMM_MR) {
            FNN_TILE(12) FNN_TILE(11) FNN_TILE(10) FNN_TILE(9) FNN_TILE(8) FNN_TILE(7)
            FNN_TILE(6) FNN_TILE(5) FNN_TILE(4) FNN_TILE(3) FNN_TILE(2) FNN_TILE(1)
            default: break;
#undef FNN_TILE
            }
        }
    }
}

/* C = A @ B and, when n2 > 0, C2 = A @ B2 too (same A, packed once for both); ldb 0: B is
   panel-major (fnn_sgemm_pack_b); a row-major A is read in place when n + n2 <= narrow */
__attribute__((target("avx512f"))) static void fnn_sgemm_avx512(
    Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float *a, Py_ssize_t a_rs, Py_ssize_t a_cs,
    const float *b, Py_ssize_t ldb, float *c, Py_ssize_t ldc, int accumulate, float *pack,
    Py_ssize_t n2, const float *b2, Py_ssize_t ldb2, float *c2, Py_ssize_t ldc2,
    Py_ssize_t narrow)
{
    const Py_ssize_t b_js = ldb ? 1 : k, b_ld = ldb ? ldb : FNN_GEMM_NR;
    Py_ssize_t p0, i0;
    for (p0 = 0; p0 < k; p0 += FNN_GEMM_KC) {
        const Py_ssize_t kc = k - p0 < FNN_GEMM_KC ? k - p0 : FNN_GEMM_KC;
        const int acc = accumulate || p0 > 0;
        for (i0 = 0; i0 < m; i0 += FNN_GEMM_MC) {
            const Py_ssize_t i1 = m - i0 < FNN_GEMM_MC ? m : i0 + FNN_GEMM_MC;
            /* contiguous tiles: every k step of a tile reads one 32-byte run, whatever A's
               layout (the weight gradients read A transposed); a row-major A feeding at most
               FNN_GEMM_NARROW columns is read in place: packing it would cost about as much
               as the few panels it serves (dx = da @ Wx.T of a recurrent sequence, N = 64) */
            const int packed = !(a_cs == 1 && n + n2 <= narrow);
            if (packed)
                fnn_sgemm_pack_a(i1 - i0, kc, a + i0 * a_rs + p0 * a_cs, a_rs, a_cs, pack);
            fnn_sgemm_panels(i0, i1, kc, a + p0, a_rs, packed, pack, FNN_GEMM_MR * kc, n,
                             b + p0 * b_ld, b_ld, b_js, c, ldc, acc);
            if (n2 > 0)
                fnn_sgemm_panels(i0, i1, kc, a + p0, a_rs, packed, pack, FNN_GEMM_MR * kc, n2,
                                 b2 + p0 * ldb2, ldb2, 1, c2, ldc2, acc);
        }
    }
}

static int fnn_sgemm_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
}

static float *fnn_sgemm_buffer(Py_ssize_t m, Py_ssize_t k)
{
    /* whole tiles: the last, partial tile of a block still spans FNN_GEMM_MR rows per k */
    const Py_ssize_t block = m < FNN_GEMM_MC ? m : FNN_GEMM_MC;
    const Py_ssize_t rows = (block + FNN_GEMM_MR - 1) / FNN_GEMM_MR * FNN_GEMM_MR;
    return (float *)malloc(sizeof(float) * rows * (k < FNN_GEMM_KC ? k : FNN_GEMM_KC));
}

/* returns -1 when the packing buffer cannot be allocated (nothing computed), else 0 */
static int fnn_sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float *a, Py_ssize_t a_rs,
                     Py_ssize_t a_cs, const float *b, Py_ssize_t ldb, float *c, Py_ssize_t ldc,
                     int accumulate)
{
    float *pack = fnn_sgemm_buffer(m, k);
    if (!pack)
        return -1;
    fnn_sgemm_avx512(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate, pack, 0, NULL, 0, NULL,
                     0, FNN_GEMM_NARROW);
    free(pack);
    return 0;
}

/* the 32-column panels q0 <= q < q1 of B (k, n), row-major with row stride ldb, into panel-major
   out: out[(q * k + p) * 32 + jj] = B[p, 32 q + jj] (each panel k x 32 contiguous: a product
   then streams it in order, with no cache-set conflicts from a power-of-two ldb) */
FNN_SGEMM_UNUSED static void fnn_sgemm_pack_b(Py_ssize_t k, const float *b, Py_ssize_t ldb,
                                              float *out, Py_ssize_t q0, Py_ssize_t q1)
{
    Py_ssize_t q, p;
    for (q = q0; q < q1; q++)
        for (p = 0; p < k; p++)
            memcpy(out + (q * k + p) * FNN_GEMM_NR, b + p * ldb + q * FNN_GEMM_NR,
                   FNN_GEMM_NR * sizeof(float));
}

/* c (+)= a @ B with B (k, n) given panel-major by fnn_sgemm_pack_b, a row-major A read in place
   (the step loops' few rows, just written: 32x384 @ 384x1024 97.7 vs 100.5 us packed, thread
   CPU time); -1: out of memory */
FNN_SGEMM_UNUSED static int fnn_sgemm_bpanels(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                              const float *a, Py_ssize_t a_rs, Py_ssize_t a_cs,
                                              const float *bpanels, float *c, Py_ssize_t ldc,
                                              int accumulate)
{
    float *pack = fnn_sgemm_buffer(m, k);
    if (!pack)
        return -1;
    fnn_sgemm_avx512(m, n, k, a, a_rs, a_cs, bpanels, 0, c, ldc, accumulate, pack, 0, NULL, 0,
                     NULL, 0, PY_SSIZE_T_MAX);
    free(pack);
    return 0;
}

/* row p of A (the m x k transposed operand of a product, its columns the rows of a0/a1
   side by side: n0 + n1 = m) into the whole-k tiles fnn_sgemm_long reads, 48-byte runs at a
   time; give pack_ts = 12 k + 16 (tile starts 64 bytes off a multiple of 4 KB, so the runs of
   one row do not all fall in the same cache set) */
FNN_SGEMM_UNUSED static void fnn_sgemm_pack_row(Py_ssize_t p, const float *a0, Py_ssize_t n0,
                                                const float *a1, Py_ssize_t n1, float *pack,
                                                Py_ssize_t pack_ts)
{
    Py_ssize_t c = 0, run;
    const Py_ssize_t m = n0 + n1;
    while (c < m) {
        const Py_ssize_t r = c % FNN_GEMM_MR;
        const float *src = c < n0 ? a0 + c : a1 + (c - n0);
        float *dst = pack + c / FNN_GEMM_MR * pack_ts + p * FNN_GEMM_MR + r;
        run = (c < n0 ? n0 : m) - c;   /* to the end of this piece of the row ... */
        if (run > FNN_GEMM_MR - r)      /* ... or of this tile */
            run = FNN_GEMM_MR - r;
        if (run == FNN_GEMM_MR)         /* a whole tile row: constant size, copied inline */
            memcpy(dst, src, FNN_GEMM_MR * sizeof(float));
        else
            memcpy(dst, src, run * sizeof(float));
        c += run;
    }
}

/* c = A @ B (n % 32 == 0) for an A of m rows packed whole (every k) by fnn_sgemm_pack_row,
   tile t at pack + t * pack_ts, and B row-major, read in place: the 32-column panels of B in
   turn, each streamed by every tile of A with the tile's 24 accumulators kept over all k, so
   C is written once and A is packed once (fnn_sgemm re-packs A and reloads C every 256 k).
   384 x 2048 @ 2048 x 512 on each of two threads: 3.57-3.68 vs 3.83-3.99 ms (median of 40,
   B rows 4160 bytes apart). */
FNN_SGEMM_UNUSED __attribute__((target("avx512f"))) static void fnn_sgemm_long(
    Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float *pack, Py_ssize_t pack_ts,
    const float *b, Py_ssize_t ldb, float *c, Py_ssize_t ldc)
{
    fnn_sgemm_panels(0, m, k, NULL, 0, 1, pack, pack_ts, n, b, ldb, 1, c, ldc, 0);
}

/* c = a @ b and c2 = a @ b2 (n2 % 32 == 0), one pass over A for both (the backward step of a
   recurrent sequence: dprev_h and dx from the same gate gradient), a row-major A read in place
   (just written by the cell: 32x1024 @ 1024x(256+128) 100 vs 106 us packed); -1: out of
   memory */
FNN_SGEMM_UNUSED static int fnn_sgemm_pair(
    Py_ssize_t m, Py_ssize_t k, const float *a, Py_ssize_t a_rs, Py_ssize_t a_cs, Py_ssize_t n,
    const float *b, Py_ssize_t ldb, float *c, Py_ssize_t ldc, Py_ssize_t n2, const float *b2,
    Py_ssize_t ldb2, float *c2, Py_ssize_t ldc2)
{
    float *pack = fnn_sgemm_buffer(m, k);
    if (!pack)
        return -1;
    fnn_sgemm_avx512(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, 0, pack, n2, b2, ldb2, c2, ldc2,
                     PY_SSIZE_T_MAX);
    free(pack);
    return 0;
}

#else   /* no GCC-style vectors or not x86-64: the caller uses BLAS */

FNN_SGEMM_UNUSED static void fnn_sgemm_pack_b(Py_ssize_t k, const float *b, Py_ssize_t ldb,
                                              float *out, Py_ssize_t q0, Py_ssize_t q1)
{
    (void)k; (void)b; (void)ldb; (void)out; (void)q0; (void)q1;
}

FNN_SGEMM_UNUSED static int fnn_sgemm_bpanels(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                              const float *a, Py_ssize_t a_rs, Py_ssize_t a_cs,
                                              const float *bpanels, float *c, Py_ssize_t ldc,
                                              int accumulate)
{
    (void)m; (void)n; (void)k; (void)a; (void)a_rs; (void)a_cs; (void)bpanels; (void)c;
    (void)ldc; (void)accumulate;
    return -1;
}

static int fnn_sgemm_available(void) { return 0; }

FNN_SGEMM_UNUSED static void fnn_sgemm_pack_row(Py_ssize_t p, const float *a0, Py_ssize_t n0,
                                                const float *a1, Py_ssize_t n1, float *pack,
                                                Py_ssize_t pack_ts)
{
    (void)p; (void)a0; (void)n0; (void)a1; (void)n1; (void)pack; (void)pack_ts;
}

FNN_SGEMM_UNUSED static void fnn_sgemm_long(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                            const float *pack, Py_ssize_t pack_ts,
                                            const float *b, Py_ssize_t ldb, float *c,
                                            Py_ssize_t ldc)
{
    (void)m; (void)n; (void)k; (void)pack; (void)pack_ts; (void)b; (void)ldb; (void)c;
    (void)ldc;
}

static int fnn_sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float *a, Py_ssize_t a_rs,
                     Py_ssize_t a_cs, const float *b, Py_ssize_t ldb, float *c, Py_ssize_t ldc,
                     int accumulate)
{
    (void)m; (void)n; (void)k; (void)a; (void)a_rs; (void)a_cs; (void)b; (void)ldb; (void)c;
    (void)ldc; (void)accumulate;
    return -1;
}

FNN_SGEMM_UNUSED static int fnn_sgemm_pair(
    Py_ssize_t m, Py_ssize_t k, const float *a, Py_ssize_t a_rs, Py_ssize_t a_cs, Py_ssize_t n,
    const float *b, Py_ssize_t ldb, float *c, Py_ssize_t ldc, Py_ssize_t n2, const float *b2,
    Py_ssize_t ldb2, float *c2, Py_ssize_t ldc2)
{
    (void)m; (void)k; (void)a; (void)a_rs; (void)a_cs; (void)n; (void)b; (void)ldb; (void)c;
    (void)ldc; (void)n2; (void)b2; (void)ldb2; (void)c2; (void)ldc2;
    return -1;
}

#endif
#endif
