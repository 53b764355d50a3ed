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

/* v[xi * xi_stride + l] = (B^T d B)[xi] of tile t0 + l (l < 16) of one channel of a padded
   chunk: the channel's plane in the chunk's first image at p (image b at p + b * img_stride,
   rows of wp floats, the tile at row 4*ti and column 4*tj); zeros for t >= t_end */
FNN_WINO_TARGET static void fnn_wino_input_block(
    const float *p, Py_ssize_t img_stride, Py_ssize_t wp, Py_ssize_t tiles_w,
    Py_ssize_t tiles_img, Py_ssize_t t0, Py_ssize_t t_end, float *v, Py_ssize_t xi_stride)
{
    float d[36][FNN_WINO_LANES] __attribute__((aligned(64)));
    fnn_wv rows[6][6], o[6];
    int l, r, s;
    for (l = 0; l < FNN_WINO_LANES; l++) {
        const Py_ssize_t t = t0 + l;
        if (t >= t_end) {
            for (r = 0; r < 36; r++)
                d[r][l] = 0.0f;
            continue;
        }
        const Py_ssize_t b = t / tiles_img, rem = t - b * tiles_img;
        const float *src = p + b * img_stride + 4 * (rem / tiles_w) * wp + 4 * (rem % tiles_w);
        for (r = 0; r < 6; r++)
            for (s = 0; s < 6; s++)
                d[r * 6 + s][l] = src[r * wp + s];
    }
    /* rows: B^T over each row's 6 columns; then B^T over each resulting column */
    for (r = 0; r < 6; r++) {
        const fnn_wv *dr = (const fnn_wv *)d[r * 6];
        FNN_WINO_BT(dr[0], dr[1], dr[2], dr[3], dr[4], dr[5], rows[r]);
    }
    for (s = 0; s < 6; s++) {
        FNN_WINO_BT(rows[0][s], rows[1][s], rows[2][s], rows[3][s], rows[4][s], rows[5][s], o);
        for (r = 0; r < 6; r++)
            *(fnn_wvu *)(v + (r * 6 + s) * xi_stride) = o[r];
    }
}

/* the tiles t0 .. t0+15 (those < t_end) of one output plane (the chunk's first image at out,
   image b at out + b * img_stride, oh x ow) = A^T m A + bias, m[xi] at m + xi * xi_stride */
FNN_WINO_TARGET static void fnn_wino_output_block(
    const float *m, Py_ssize_t xi_stride, float bias, float *out, Py_ssize_t img_stride,
    Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t tiles_w, Py_ssize_t tiles_img, Py_ssize_t t0,
    Py_ssize_t t_end)
{
    float y[16][FNN_WINO_LANES] __attribute__((aligned(64)));
    fnn_wv cols[6][4], o[4];
    int l, r, s, a, c;
    for (s = 0; s < 6; s++) {
        fnn_wv mv[6];
        for (r = 0; r < 6; r++)
            mv[r] = *(const fnn_wvu *)(m + (r * 6 + s) * xi_stride);
        FNN_WINO_AT(mv[0], mv[1], mv[2], mv[3], mv[4], mv[5], cols[s]);
    }
    for (a = 0; a < 4; a++) {
        FNN_WINO_AT(cols[0][a], cols[1][a], cols[2][a], cols[3][a], cols[4][a], cols[5][a], o);
        for (c = 0; c < 4; c++)
            *(fnn_wv *)y[a * 4 + c] = o[c] + bias;
    }
    for (l = 0; l < FNN_WINO_LANES && t0 + l < t_end; l++) {
        const Py_ssize_t t = t0 + l, b = t / tiles_img, rem = t - b * tiles_img;
        const Py_ssize_t y0 = 4 * (rem / tiles_w), x0 = 4 * (rem % tiles_w);
        const int nr = oh - y0 < 4 ? (int)(oh - y0) : 4, nc = ow - x0 < 4 ? (int)(ow - x0) : 4;
        float *dst = out + b * img_stride + y0 * ow + x0;
        if (nr == 4 && nc == 4) {   /* whole tile: constant bounds, unrolled */
            for (a = 0; a < 4; a++)
                for (c = 0; c < 4; c++)
                    dst[a * ow + c] = y[a * 4 + c][l];
        } else {
            for (a = 0; a < nr; a++)
                for (c = 0; c < nc; c++)
                    dst[a * ow + c] = y[a * 4 + c][l];
        }
    }
}

/* z[xi * xi_stride + l] = (A dY A^T)[xi] of tile t for filter k0 + l (l < 16): dY is the 4x4
   output tile of dout (the chunk's first image at dy, image b at dy + b * img_stride, filter
   k's plane at + k * plane, oh x ow; zeros outside it); zeros for k >= k_end or t >= t_end.
   One masked gather per tile element (lane l at offset l * plane: the caller keeps
   16 * plane inside int32) */
FNN_WINO_TARGET static void fnn_wino_zgrad_block(
    const float *dy, Py_ssize_t img_stride, Py_ssize_t plane, Py_ssize_t oh, Py_ssize_t ow,
    Py_ssize_t tiles_w, Py_ssize_t tiles_img, Py_ssize_t t, Py_ssize_t t_end, Py_ssize_t k0,
    Py_ssize_t k_end, float *z, Py_ssize_t xi_stride)
{
    fnn_wv rows[4][6], o[6], d[4];
    int r, s, a, c;
    if (t >= t_end) {
        for (r = 0; r < 36; r++)
            *(fnn_wvu *)(z + r * xi_stride) = (fnn_wv){0};
        return;
    }
    const Py_ssize_t b = t / tiles_img, rem = t - b * tiles_img;
    const Py_ssize_t y0 = 4 * (rem / tiles_w), x0 = 4 * (rem % tiles_w);
    const int nr = oh - y0 < 4 ? (int)(oh - y0) : 4, nc = ow - x0 < 4 ? (int)(ow - x0) : 4;
    const float *src = dy + b * img_stride + k0 * plane + y0 * ow + x0;
    const Py_ssize_t live = k_end - k0;
    const __mmask16 lanes = (__mmask16)(live >= FNN_WINO_LANES ? 0xFFFFu
                                        : live <= 0 ? 0u : (1u << live) - 1u);
    const __m512i vidx = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32((int)plane));
    for (a = 0; a < 4; a++) {
        for (c = 0; c < 4; c++)
            d[c] = (a < nr && c < nc)
                   ? (fnn_wv)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, vidx,
                                                      (const void *)(src + a * ow + c), 4)
                   : (fnn_wv){0};
        FNN_WINO_A(d[0], d[1], d[2], d[3], rows[a]);
    }
    for (s = 0; s < 6; s++) {
        FNN_WINO_A(rows[0][s], rows[1][s], rows[2][s], rows[3][s], o);
        for (r = 0; r < 6; r++)
            *(fnn_wvu *)(z + (r * 6 + s) * xi_stride) = o[r];
    }
}

#else   /* no GCC-style vectors or not x86-64: fnn_sgemm_available() is 0, nothing calls these */

#define FNN_WINO_COMPILED 0

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
                                 Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t tiles_w,
                                 Py_ssize_t tiles_img, Py_ssize_t t, Py_ssize_t t_end,
                                 Py_ssize_t k0, Py_ssize_t k_end, float *z, Py_ssize_t xi_stride)
{
    (void)dy; (void)img_stride; (void)plane; (void)oh; (void)ow; (void)tiles_w;
    (void)tiles_img; (void)t; (void)t_end; (void)k0; (void)k_end; (void)z; (void)xi_stride;
}

#endif
#endif
