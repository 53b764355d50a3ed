/* Winograd F(4x4, 3x3) transforms for the float32 3x3 stride-1 convolution (fastnn._ext._winograd).
 *
 * Lavin & Gray 2015: a 4x4 output tile Y of the correlation of a 6x6 input tile d with a 3x3
 * filter g is  Y = A^T [(G g G^T) . (B^T d B)] A  (. elementwise), with the interpolation points
 * 0, +-1, +-2 and infinity:
 *
 *   B^T = [4  0 -5  0  1  0]    G = [ 1/4     0     0 ]    A^T = [1  1  1  1  1  0]
 *         [0 -4 -4  1  1  0]        [-1/6  -1/6  -1/6 ]          [0  1 -1  2 -2  0]
 *         [0  4 -4 -1  1  0]        [-1/6   1/6  -1/6 ]          [0  1  1  4  4  0]
 *         [0 -2 -1  2  1  0]        [1/24  1/12   1/6 ]          [0  1 -1  8 -8  1]
 *         [0  2 -1 -2  1  0]        [1/24 -1/12   1/6 ]
 *         [0  4  0 -5  0  1]        [ 0     0      1  ]
 *
 * The 36 elementwise products summed over channels are 36 independent matrix products (done by
 * the caller on fnn_sgemm). Here: the transforms, each on 16 tiles (or 16 filters) at a time,
 * one 16-float vector per transform coefficient ("lane" = tile or filter):
 *
 *   fnn_wino_filter_block U[xi] = (G g G^T)[xi] of 16 consecutive 3x3 filters;
 *   fnn_wino_input_block  V[xi][t] = (B^T d B)[xi] of tiles t0 .. t0+15 of one channel;
 *   fnn_wino_output_block Y = A^T m A (+ bias) of tiles t0 .. t0+15 of one filter, clipped;
 *   fnn_wino_zgrad_block  Z[xi][k] = (A dY A^T)[xi] of one tile for filters k0 .. k0+15;
 *   fnn_wino_filter_grad_block  dg = G^T dU G of 16 filters.
 *
 * Tiles: tile t of a chunk is image t / tiles_img, tile row (t % tiles_img) / tiles_w and
 * column (t % tiles_img) % tiles_w; its output rows are 4*ti .. 4*ti+3, its input rows
 * 4*ti - pad .. 4*ti - pad + 5 (zeros outside the image). Lanes past the last tile are zeros.
 * The vector code needs GCC-style vectors and runs only where fnn_sgemm_available() (AVX-512F);
 * elsewhere FNN_WINO_COMPILED is 0 and the caller must not call these.
 */
#ifndef FASTNN_WINOGRAD_H
#define FASTNN_WINOGRAD_H

#include <Python.h>
#include <string.h>

#include "sgemm.h"

#define FNN_WINO_LANES 16

/* every thread of the enclosing parallel region waits here (Cython's prange ends without a
   barrier: "omp for nowait"); an orphaned directive, a no-op without OpenMP */
static void fnn_wino_barrier(void)
{
#ifdef _OPENMP
#pragma omp barrier
#endif
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)

#include <immintrin.h>

#define FNN_WINO_COMPILED 1
#define FNN_WINO_TARGET __attribute__((target("avx512f")))

typedef float fnn_wv __attribute__((vector_size(64)));
typedef float fnn_wvu __attribute__((vector_size(64), aligned(4)));   /* unaligned access */

/* o = B^T d for one 6-vector (rows or columns of a tile) */
#define FNN_WINO_BT(d0, d1, d2, d3, d4, d5, o) do {                    \
        const fnn_wv q0 = (d4) - 4.0f * (d2), q1 = (d3) - 4.0f * (d1); \
        const fnn_wv q2 = (d4) - (d2), q3 = 2.0f * ((d3) - (d1));      \
        (o)[0] = 4.0f * (d0) - 5.0f * (d2) + (d4);                     \
        (o)[1] = q0 + q1;                                              \
        (o)[2] = q0 - q1;                                              \
        (o)[3] = q2 + q3;                                              \
        (o)[4] = q2 - q3;                                              \
        (o)[5] = 4.0f * (d1) - 5.0f * (d3) + (d5);                     \
    } while (0)

/* o (4) = A^T m for one 6-vector */
#define FNN_WINO_AT(m0, m1, m2, m3, m4, m5, o) do {                    \
        const fnn_wv p12 = (m1) + (m2), n12 = (m1) - (m2);             \
        const fnn_wv p34 = (m3) + (m4), n34 = (m3) - (m4);             \
        (o)[0] = (m0) + p12 + p34;                                     \
        (o)[1] = n12 + 2.0f * n34;                                     \
        (o)[2] = p12 + 4.0f * p34;                                     \
        (o)[3] = n12 + 8.0f * n34 + (m5);                              \
    } while (0)

/* o (6) = A y for one 4-vector (the adjoint of A^T) */
#define FNN_WINO_A(y0, y1, y2, y3, o) do {                             \
        const fnn_wv p02 = (y0) + (y2), p13 = (y1) + (y3);             \
        const fnn_wv q02 = (y0) + 4.0f * (y2), q13 = 2.0f * (y1) + 8.0f * (y3); \
        (o)[0] = (y0);                                                 \
        (o)[1] = p02 + p13;                                            \
        (o)[2] = p02 - p13;                                            \
        (o)[3] = q02 + q13;                                            \
        (o)[4] = q02 - q13;                                            \
        (o)[5] = (y3);                                                 \
    } while (0)

/* o (6) = G g for one 3-vector */
#define FNN_WINO_G(g0, g1, g2, o) do {                                 \
        const fnn_wv p02 = (g0) + (g2);                                \
        const fnn_wv q02 = (g0) * (1.0f / 24.0f) + (g2) * (1.0f / 6.0f); \
        (o)[0] = (g0) * 0.25f;                                         \
        (o)[1] = ((p02) + (g1)) * (-1.0f / 6.0f);                      \
        (o)[2] = ((p02) - (g1)) * (-1.0f / 6.0f);                      \
        (o)[3] = q02 + (g1) * (1.0f / 12.0f);                          \
        (o)[4] = q02 - (g1) * (1.0f / 12.0f);                          \
        (o)[5] = (g2);                                                 \
    } while (0)

/* o (3) = G^T d for one 6-vector */
#define FNN_WINO_GT(d0, d1, d2, d3, d4, d5, o) do {                    \
        const fnn_wv p12 = (d1) + (d2), p34 = (d3) + (d4);             \
        (o)[0] = (d0) * 0.25f - p12 * (1.0f / 6.0f) + p34 * (1.0f / 24.0f); \
        (o)[1] = ((d2) - (d1)) * (1.0f / 6.0f) + ((d3) - (d4)) * (1.0f / 12.0f); \
        (o)[2] = (p34 - p12) * (1.0f / 6.0f) + (d5);                   \
    } while (0)

/* u[xi * xi_stride + l] = (G g G^T)[xi] of the 3x3 filters g + 9 * l, l < live (zeros for the
   other lanes of the 16) */
FNN_WINO_TARGET static void fnn_wino_filter_block(const float *g, Py_ssize_t live, float *u,
                                                  Py_ssize_t xi_stride)
{
    float gb[9][FNN_WINO_LANES] __attribute__((aligned(64)));
    fnn_wv cols[3][6], o[6];
    int l, e, r, s;
    for (l = 0; l < FNN_WINO_LANES; l++)
        for (e = 0; e < 9; e++)
            gb[e][l] = l < live ? g[9 * l + e] : 0.0f;
    for (e = 0; e < 3; e++) {   /* G times column e of g */
        const fnn_wv *gv = (const fnn_wv *)gb;
        FNN_WINO_G(gv[e], gv[3 + e], gv[6 + e], cols[e]);
    }
    for (r = 0; r < 6; r++) {   /* row r of (G g) times G^T */
        FNN_WINO_G(cols[0][r], cols[1][r], cols[2][r], o);
        for (s = 0; s < 6; s++)
            *(fnn_wvu *)(u + (r * 6 + s) * xi_stride) = o[s];
    }
}

/* dg[l * dg_stride + 3 * i + j] = (G^T dU G)[i][j] for the lanes l < live of the 16 transformed
   filter gradients dU[xi] = du[xi * xi_stride + l] */
FNN_WINO_TARGET static void fnn_wino_filter_grad_block(const float *du, Py_ssize_t xi_stride,
                                                       Py_ssize_t live, float *dg,
                                                       Py_ssize_t dg_stride)
{
    float gb[9][FNN_WINO_LANES] __attribute__((aligned(64)));
    fnn_wv rows[6][3], o[3], d[6];
    int l, e, r, s;
    for (r = 0; r < 6; r++) {   /* row r of dU times G */
        for (s = 0; s < 6; s++)
            d[s] = *(const fnn_wvu *)(du + (r * 6 + s) * xi_stride);
        FNN_WINO_GT(d[0], d[1], d[2], d[3], d[4], d[5], rows[r]);
    }
    for (e = 0; e < 3; e++) {   /* G^T times column e */
        FNN_WINO_GT(rows[0][e], rows[1][e], rows[2][e], rows[3][e], rows[4][e], rows[5][e], o);
        for (r = 0; r < 3; r++)
            *(fnn_wv *)gb[r * 3 + e] = o[r];
    }
    for (l = 0; l < live && l < FNN_WINO_LANES; l++)
        for (e = 0; e < 9; e++)
            dg[l * dg_stride + e] = gb[e][l];
}

/* dst (hp x wp) = the plane src (h x w) shifted by pad rows and columns, zeros around it
   (hp >= h + pad, wp >= w + pad) */
static void fnn_wino_pad_plane(const float *src, Py_ssize_t h, Py_ssize_t w, int pad,
                               float *dst, Py_ssize_t hp, Py_ssize_t wp)
{
    Py_ssize_t y;
    memset(dst, 0, sizeof(float) * wp * pad);
    for (y = 0; y < h; y++) {
        float *row = dst + (y + pad) * wp;
        memset(row, 0, sizeof(float) * pad);
        memcpy(row + pad, src + y * w, sizeof(float) * w);
        memset(row + pad + w, 0, sizeof(float) * (wp - pad - w));
    }
    memset(dst + (h + pad) * wp, 0, sizeof(float) * wp * (hp - h - pad));
}

/* Transpose of 8 rows, each [8 floats of lane j | 8 floats of lane j + 8], into the 6 vectors
   of columns 0 .. 5 over the 16 lanes (in-lane unpacks and shuffles, then one two-source
   permute per column: about 30 shuffles where 16 x 6 scalar stores and loads would be) */
FNN_WINO_TARGET static inline void fnn_wino_transpose_8x16(const __m512 *rr, fnn_wv *col)
{
    const __m512i lo = _mm512_set_epi32(27, 26, 25, 24, 11, 10, 9, 8, 19, 18, 17, 16, 3, 2, 1, 0);
    const __m512i hi = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 23, 22, 21, 20,
                                        7, 6, 5, 4);
    __m512 t[8], u[8];
    int j;
    for (j = 0; j < 8; j += 2) {
        t[j] = _mm512_unpacklo_ps(rr[j], rr[j + 1]);
        t[j + 1] = _mm512_unpackhi_ps(rr[j], rr[j + 1]);
    }
    for (j = 0; j < 8; j += 4) {
        u[j] = _mm512_shuffle_ps(t[j], t[j + 2], 0x44);
        u[j + 1] = _mm512_shuffle_ps(t[j], t[j + 2], 0xEE);
        u[j + 2] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0x44);
        u[j + 3] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
    }
    col[0] = (fnn_wv)_mm512_permutex2var_ps(u[0], lo, u[4]);
    col[1] = (fnn_wv)_mm512_permutex2var_ps(u[1], lo, u[5]);
    col[2] = (fnn_wv)_mm512_permutex2var_ps(u[2], lo, u[6]);
    col[3] = (fnn_wv)_mm512_permutex2var_ps(u[3], lo, u[7]);
    col[4] = (fnn_wv)_mm512_permutex2var_ps(u[0], hi, u[4]);
    col[5] = (fnn_wv)_mm512_permutex2var_ps(u[1], hi, u[5]);
}

/* v[xi * xi_stride + l] = (B^T d B)[xi] of tile t0 + l (l < 16) of one channel of a padded
   chunk: the channel's plane in the chunk's first image at p (image b at p + b * img_stride,
   rows of wp floats, the tile at row 4*ti and column 4*tj; each row is read 8 floats wide, so
   the buffer must extend 2 floats past the last tile); zeros for t >= t_end */
FNN_WINO_TARGET static void fnn_wino_input_block(
    const float *p, Py_ssize_t img_stride, Py_ssize_t wp, Py_ssize_t tiles_w,
    Py_ssize_t tiles_img, Py_ssize_t t0, Py_ssize_t t_end, float *v, Py_ssize_t xi_stride)
{
    const float *src[FNN_WINO_LANES];
    fnn_wv rows[6][6], o[6];
    __m512 rr[8];
    unsigned live = 0;
    int l, r, s;
    for (l = 0; l < FNN_WINO_LANES; l++) {
        const Py_ssize_t t = t0 + l < t_end ? t0 + l : 0;   /* dead lanes: tile 0, zeroed below */
        const Py_ssize_t b = t / tiles_img, rem = t - b * tiles_img;
        src[l] = p + b * img_stride + 4 * (rem / tiles_w) * wp + 4 * (rem % tiles_w);
        if (t0 + l < t_end)
            live |= 1u << l;
    }
    for (r = 0; r < 6; r++) {
        fnn_wv d[6];
        for (l = 0; l < 8; l++)
            rr[l] = _mm512_castpd_ps(_mm512_insertf64x4(
                _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(src[l] + r * wp))),
                _mm256_castps_pd(_mm256_loadu_ps(src[l + 8] + r * wp)), 1));
        fnn_wino_transpose_8x16(rr, d);
        /* rows: B^T over each row's 6 columns */
        FNN_WINO_BT(d[0], d[1], d[2], d[3], d[4], d[5], rows[r]);
    }
    /* then B^T over each resulting column */
    for (s = 0; s < 6; s++) {
        FNN_WINO_BT(rows[0][s], rows[1][s], rows[2][s], rows[3][s], rows[4][s], rows[5][s], o);
        for (r = 0; r < 6; r++)
            *(fnn_wvu *)(v + (r * 6 + s) * xi_stride) =
                (fnn_wv)_mm512_maskz_mov_ps((__mmask16)live, (__m512)o[r]);
    }
}

/* the tiles t0 .. t0+15 (those < t_end) of one output plane (the chunk's first image at out,
   image b at out + b * img_stride, oh x ow) = A^T m A + bias, m[xi] at m + xi * xi_stride.
   The 16 coefficient vectors are transposed 4x4 within each 128-bit block (unpacks and
   shuffles): block k of u[4a + j] is then row a of the tile of lane 4k + j, one 4-float store
   for a whole tile's row. */
FNN_WINO_TARGET static void fnn_wino_output_block(
    const float *m, Py_ssize_t xi_stride, float bias, float *out, Py_ssize_t img_stride,
    Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t tiles_w, Py_ssize_t tiles_img, Py_ssize_t t0,
    Py_ssize_t t_end)
{
    float part[4] __attribute__((aligned(16)));
    fnn_wv cols[6][4], o[4];
    __m512 y[16], tt[16], u[16];
    int r, s, a, c, j;
    for (s = 0; s < 6; s++) {
        fnn_wv mv[6];
        for (r = 0; r < 6; r++)
            mv[r] = *(const fnn_wvu *)(m + (r * 6 + s) * xi_stride);
        FNN_WINO_AT(mv[0], mv[1], mv[2], mv[3], mv[4], mv[5], cols[s]);
    }
    for (a = 0; a < 4; a++) {
        FNN_WINO_AT(cols[0][a], cols[1][a], cols[2][a], cols[3][a], cols[4][a], cols[5][a], o);
        for (c = 0; c < 4; c++)
            y[a * 4 + c] = (__m512)(o[c] + bias);
    }
    for (j = 0; j < 16; j += 2) {
        tt[j] = _mm512_unpacklo_ps(y[j], y[j + 1]);
        tt[j + 1] = _mm512_unpackhi_ps(y[j], y[j + 1]);
    }
    for (j = 0; j < 16; j += 4) {
        u[j] = _mm512_shuffle_ps(tt[j], tt[j + 2], 0x44);
        u[j + 1] = _mm512_shuffle_ps(tt[j], tt[j + 2], 0xEE);
        u[j + 2] = _mm512_shuffle_ps(tt[j + 1], tt[j + 3], 0x44);
        u[j + 3] = _mm512_shuffle_ps(tt[j + 1], tt[j + 3], 0xEE);
    }
/* the lanes 4K .. 4K+3 (K a constant: the block index of the extract) */
#define FNN_WINO_STORE_LANES(K)                                                              \
    for (j = 0; j < 4; j++) {                                                                \
        const Py_ssize_t t = t0 + 4 * (K) + j;                                               \
        if (t >= t_end)                                                                      \
            break;                                                                           \
        const Py_ssize_t b = t / tiles_img, rem = t - b * tiles_img;                         \
        const Py_ssize_t y0 = 4 * (rem / tiles_w), x0 = 4 * (rem % tiles_w);                 \
        const int nr = oh - y0 < 4 ? (int)(oh - y0) : 4;                                     \
        const int nc = ow - x0 < 4 ? (int)(ow - x0) : 4;                                     \
        float *dst = out + b * img_stride + y0 * ow + x0;                                    \
        for (a = 0; a < nr; a++) {                                                           \
            const __m128 row = _mm512_extractf32x4_ps(u[4 * a + j], (K));                   \
            if (nc == 4) {                                                                   \
                _mm_storeu_ps(dst + a * ow, row);                                            \
            } else {                                                                         \
                _mm_store_ps(part, row);                                                     \
                for (c = 0; c < nc; c++)                                                     \
                    dst[a * ow + c] = part[c];                                               \
            }                                                                                \
        }                                                                                    \
    }
    FNN_WINO_STORE_LANES(0)
    FNN_WINO_STORE_LANES(1)
    FNN_WINO_STORE_LANES(2)
    FNN_WINO_STORE_LANES(3)
#undef FNN_WINO_STORE_LANES
}

/* z[xi * xi_stride + l] = (A dY A^T)[xi] of tile t for filter k0 + l (l < 16), zeros for
   k >= k_end: dY is the 4x4 tile of a padded chunk of dout (the chunk's first image at dy,
   image b at dy + b * img_stride, filter k's plane at + k * plane, rows of wq floats: zeros
   past the output's edge). Each lane's tile row is one 4-float load; four lanes share a
   vector and a 4x4 transpose within each 128-bit block puts every element over the 16 lanes. */
FNN_WINO_TARGET static void fnn_wino_zgrad_block(
    const float *dy, Py_ssize_t img_stride, Py_ssize_t plane, Py_ssize_t wq,
    Py_ssize_t tiles_w, Py_ssize_t tiles_img, Py_ssize_t t, Py_ssize_t k0, Py_ssize_t k_end,
    float *z, Py_ssize_t xi_stride)
{
    fnn_wv rows[4][6], o[6], d[4];
    __m512 rr[4], tt[4];
    int r, s, a, j;
    const Py_ssize_t b = t / tiles_img, rem = t - b * tiles_img;
    const float *src = dy + b * img_stride + 4 * (rem / tiles_w) * wq + 4 * (rem % tiles_w);
    const Py_ssize_t live = k_end - k0;
    const __mmask16 lanes = (__mmask16)(live >= FNN_WINO_LANES ? 0xFFFFu
                                        : live <= 0 ? 0u : (1u << live) - 1u);
    Py_ssize_t off[FNN_WINO_LANES];
    for (j = 0; j < FNN_WINO_LANES; j++)   /* dead lanes read filter 0, zeroed below */
        off[j] = j < live ? (k0 + j) * plane : 0;
    for (a = 0; a < 4; a++) {
        const float *row = src + a * wq;
        for (j = 0; j < 4; j++) {   /* rr[j]: the rows of lanes j, j+4, j+8, j+12 */
            __m512 v = _mm512_castps128_ps512(_mm_loadu_ps(row + off[j]));
            v = _mm512_insertf32x4(v, _mm_loadu_ps(row + off[j + 4]), 1);
            v = _mm512_insertf32x4(v, _mm_loadu_ps(row + off[j + 8]), 2);
            rr[j] = _mm512_insertf32x4(v, _mm_loadu_ps(row + off[j + 12]), 3);
        }
        tt[0] = _mm512_unpacklo_ps(rr[0], rr[1]);
        tt[1] = _mm512_unpackhi_ps(rr[0], rr[1]);
        tt[2] = _mm512_unpacklo_ps(rr[2], rr[3]);
        tt[3] = _mm512_unpackhi_ps(rr[2], rr[3]);
        d[0] = (fnn_wv)_mm512_shuffle_ps(tt[0], tt[2], 0x44);
        d[1] = (fnn_wv)_mm512_shuffle_ps(tt[0], tt[2], 0xEE);
        d[2] = (fnn_wv)_mm512_shuffle_ps(tt[1], tt[3], 0x44);
        d[3] = (fnn_wv)_mm512_shuffle_ps(tt[1], tt[3], 0xEE);
        FNN_WINO_A(d[0], d[1], d[2], d[3], rows[a]);
    }
    for (s = 0; s < 6; s++) {
        FNN_WINO_A(rows[0][s], rows[1][s], rows[2][s], rows[3][s], o);
        for (r = 0; r < 6; r++)
            *(fnn_wvu *)(z + (r * 6 + s) * xi_stride) =
                (fnn_wv)_mm512_maskz_mov_ps(lanes, (__m512)o[r]);
    }
}

/* One chunk of the forward pass, all on the calling thread: images x[0 .. nimg-1] (C, h, w
   each) padded into xp, transformed into v (36 slabs of sv floats, C rows of Tp), the 36
   products m[xi] (K, Tp) = u[xi] (K, C) @ v[xi] on fnn_sgemm, out[0 .. nimg-1] (K, oh, ow) =
   A^T m A + bias. Buffers: xp nimg*C*hp*wp + 16 floats, v 36*sv, m 36*sm (sv >= C*Tp,
   sm >= K*Tp). Returns -1 when fnn_sgemm cannot allocate, else 0. */
static int fnn_wino_forward_chunk(
    const float *x, Py_ssize_t nimg, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, int pad,
    const float *u, Py_ssize_t su, Py_ssize_t k, const float *bias, float *out,
    float *xp, float *v, Py_ssize_t sv, float *m, Py_ssize_t sm)
{
    const Py_ssize_t oh = h + 2 * pad - 2, ow = w + 2 * pad - 2;
    const Py_ssize_t tiles_w = (ow + 3) / 4, tiles_img = (oh + 3) / 4 * tiles_w;
    const Py_ssize_t hp = 4 * ((oh + 3) / 4) + 2, wp = 4 * tiles_w + 2, plane = hp * wp;
    const Py_ssize_t t_count = nimg * tiles_img, tp = (t_count + 31) / 32 * 32;
    Py_ssize_t i, blk, xi;
    for (i = 0; i < nimg * c; i++)
        fnn_wino_pad_plane(x + i * h * w, h, w, pad, xp + i * plane, hp, wp);
    for (i = 0; i < c; i++)
        for (blk = 0; blk < tp; blk += FNN_WINO_LANES)
            fnn_wino_input_block(xp + i * plane, c * plane, wp, tiles_w, tiles_img, blk,
                                 t_count, v + i * tp + blk, sv);
    for (xi = 0; xi < 36; xi++)
        if (fnn_sgemm(k, tp, c, u + xi * su, c, 1, v + xi * sv, tp, m + xi * sm, tp, 0))
            return -1;
    for (i = 0; i < k; i++)
        for (blk = 0; blk < t_count; blk += FNN_WINO_LANES)
            fnn_wino_output_block(m + i * tp + blk, sm, bias[i], out + i * oh * ow,
                                  k * oh * ow, oh, ow, tiles_w, tiles_img, blk, t_count);
    return 0;
}

/* One chunk of the filter gradient, on the calling thread: du[xi] (C, Kp) += v[xi] (C, Tp) @
   z[xi] (Tp, Kp) with v the transformed images x[0 .. nimg-1] (as above) and z = A dY A^T of
   the padded dout[0 .. nimg-1] (K planes of oh x ow each). Buffers: xp and v as above, dp
   nimg*K*hq*wq floats, z 36*sz (sz >= Tp*Kp). Returns -1 when fnn_sgemm cannot allocate. */
static int fnn_wino_dw_chunk(
    const float *x, Py_ssize_t nimg, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, int pad,
    const float *dy, Py_ssize_t k, Py_ssize_t kp, float *xp, float *v, Py_ssize_t sv,
    float *dp, float *z, Py_ssize_t sz, float *du, Py_ssize_t sd)
{
    const Py_ssize_t oh = h + 2 * pad - 2, ow = w + 2 * pad - 2;
    const Py_ssize_t tiles_w = (ow + 3) / 4, tiles_img = (oh + 3) / 4 * tiles_w;
    const Py_ssize_t hp = 4 * ((oh + 3) / 4) + 2, wp = 4 * tiles_w + 2, plane = hp * wp;
    const Py_ssize_t hq = hp - 2, wq = wp - 2, dplane = hq * wq;
    const Py_ssize_t t_count = nimg * tiles_img, tp = (t_count + 31) / 32 * 32;
    Py_ssize_t i, blk, xi, t;
    for (i = 0; i < nimg * c; i++)
        fnn_wino_pad_plane(x + i * h * w, h, w, pad, xp + i * plane, hp, wp);
    for (i = 0; i < c; i++)
        for (blk = 0; blk < tp; blk += FNN_WINO_LANES)
            fnn_wino_input_block(xp + i * plane, c * plane, wp, tiles_w, tiles_img, blk,
                                 t_count, v + i * tp + blk, sv);
    for (i = 0; i < nimg * k; i++)
        fnn_wino_pad_plane(dy + i * oh * ow, oh, ow, 0, dp + i * dplane, hq, wq);
    for (t = 0; t < t_count; t++)
        for (blk = 0; blk < kp; blk += FNN_WINO_LANES)
            fnn_wino_zgrad_block(dp, k * dplane, dplane, wq, tiles_w, tiles_img, t, blk, k,
                                 z + t * kp + blk, sz);
    for (xi = 0; xi < 36; xi++)   /* the padding tiles' rows: zeros */
        memset(z + xi * sz + t_count * kp, 0, sizeof(float) * (tp - t_count) * kp);
    for (xi = 0; xi < 36; xi++)
        if (fnn_sgemm(c, kp, tp, v + xi * sv, tp, 1, z + xi * sz, kp, du + xi * sd, kp, 1))
            return -1;
    return 0;
}

#else   /* no GCC-style vectors or not x86-64: fnn_sgemm_available() is 0, nothing calls these */

#define FNN_WINO_COMPILED 0

static int fnn_wino_forward_chunk(
    const float *x, Py_ssize_t nimg, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, int pad,
    const float *u, Py_ssize_t su, Py_ssize_t k, const float *bias, float *out,
    float *xp, float *v, Py_ssize_t sv, float *m, Py_ssize_t sm)
{
    (void)x; (void)nimg; (void)c; (void)h; (void)w; (void)pad; (void)u; (void)su; (void)k;
    (void)bias; (void)out; (void)xp; (void)v; (void)sv; (void)m; (void)sm;
    return -1;
}

static int fnn_wino_dw_chunk(
    const float *x, Py_ssize_t nimg, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, int pad,
    const float *dy, Py_ssize_t k, Py_ssize_t kp, float *xp, float *v, Py_ssize_t sv,
    float *dp, float *z, Py_ssize_t sz, float *du, Py_ssize_t sd)
{
    (void)x; (void)nimg; (void)c; (void)h; (void)w; (void)pad; (void)dy; (void)k; (void)kp;
    (void)xp; (void)v; (void)sv; (void)dp; (void)z; (void)sz; (void)du; (void)sd;
    return -1;
}

static void fnn_wino_filter_block(const float *g, Py_ssize_t live, float *u, Py_ssize_t xi_stride)
{
    (void)g; (void)live; (void)u; (void)xi_stride;
}

static void fnn_wino_filter_grad_block(const float *du, Py_ssize_t xi_stride, Py_ssize_t live,
                                       float *dg, Py_ssize_t dg_stride)
{
    (void)du; (void)xi_stride; (void)live; (void)dg; (void)dg_stride;
}

static void fnn_wino_input_block(const float *p, Py_ssize_t img_stride, Py_ssize_t wp,
                                 Py_ssize_t tiles_w, Py_ssize_t tiles_img, Py_ssize_t t0,
                                 Py_ssize_t t_end, float *v, Py_ssize_t xi_stride)
{
    (void)p; (void)img_stride; (void)wp; (void)tiles_w; (void)tiles_img; (void)t0;
    (void)t_end; (void)v; (void)xi_stride;
}

static void fnn_wino_output_block(const float *m, Py_ssize_t xi_stride, float bias, float *out,
                                  Py_ssize_t img_stride, Py_ssize_t oh, Py_ssize_t ow,
                                  Py_ssize_t tiles_w, Py_ssize_t tiles_img, Py_ssize_t t0,
                                  Py_ssize_t t_end)
{
    (void)m; (void)xi_stride; (void)bias; (void)out; (void)img_stride; (void)oh; (void)ow;
    (void)tiles_w; (void)tiles_img; (void)t0; (void)t_end;
}

static void fnn_wino_zgrad_block(const float *dy, Py_ssize_t img_stride, Py_ssize_t plane,
                                 Py_ssize_t wq, Py_ssize_t tiles_w, Py_ssize_t tiles_img,
                                 Py_ssize_t t, Py_ssize_t k0, Py_ssize_t k_end, float *z,
                                 Py_ssize_t xi_stride)
{
    (void)dy; (void)img_stride; (void)plane; (void)wq; (void)tiles_w; (void)tiles_img;
    (void)t; (void)k0; (void)k_end; (void)z; (void)xi_stride;
}

#endif
#endif
