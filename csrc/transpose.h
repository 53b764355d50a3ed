/* Float32 transposes for fastnn._ext._gemm (transpose: the B operand W.T of backward products)
 * and fastnn._ext._recurrent (Wh.T and Wx.T of the LSTM backward's step products); declared for
 * Cython in csrc/transpose.pxd.
 *
 *   void fnn_transpose(src, src_rs, src_cs, dst, dst_ld, r0, r1, c0, c1)
 *       dst[c * dst_ld + r] = src[r * src_rs + c * src_cs]  for r0 <= r < r1, c0 <= c < c1
 *
 * Work goes in 16 x 16 blocks, each source and destination row segment touched whole once, so
 * rows 2 KB or a larger power of two apart (H >= 512, or W.T of a 1024-wide layer) do not
 * evict their own partly written lines. Where the CPU has AVX-512F and the source rows are
 * contiguous (src_cs == 1), a whole block is 16 vector loads, an in-register transpose (three
 * rounds of unpack/shuffle) and 16 vector stores; partial blocks and other layouts go through
 * a 16 x 16 buffer element by element. Wh.T and Wx.T of the LSTM backward (N=64, T=32, D=128,
 * H=256: 1.5 MB) on two threads: see _recurrent.pyx's lstm_steps_backward.
 */
#ifndef FASTNN_TRANSPOSE_H
#define FASTNN_TRANSPOSE_H

#include <Python.h>

/* one block of at most 16 x 16 through a buffer (any strides) */
static void fnn_transpose_block_any(const float *src, Py_ssize_t src_rs, Py_ssize_t src_cs,
                                    float *dst, Py_ssize_t dst_ld, Py_ssize_t i0,
                                    Py_ssize_t i1, Py_ssize_t j0, Py_ssize_t j1)
{
    float tile[16 * 16];
    Py_ssize_t i, j;
    for (i = i0; i < i1; i++)
        for (j = j0; j < j1; j++)
            tile[(j - j0) * 16 + (i - i0)] = src[i * src_rs + j * src_cs];
    for (j = j0; j < j1; j++)
        for (i = i0; i < i1; i++)
            dst[j * dst_ld + i] = tile[(j - j0) * 16 + (i - i0)];
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define FNN_TRANSPOSE_AVX512 1

/* a whole 16 x 16 block, source rows contiguous: rows i0.. of src to rows j0.. of dst */
__attribute__((target("avx512f"))) static inline void fnn_transpose_block16(
    const float *src, Py_ssize_t src_rs, float *dst, Py_ssize_t dst_ld)
{
    __m512 r[16], a[16], b[16];
    int k, j;
    for (k = 0; k < 16; k++)
        r[k] = _mm512_loadu_ps(src + k * src_rs);
    /* within each 128-bit lane: pairs of rows interleaved ... */
    for (k = 0; k < 8; k++) {
        a[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    /* ... then b[4k + j], lane L: column 4L + j of rows 4k..4k+3 */
    for (k = 0; k < 4; k++) {
        const __m512d a0 = _mm512_castps_pd(a[4 * k]), a1 = _mm512_castps_pd(a[4 * k + 1]);
        const __m512d a2 = _mm512_castps_pd(a[4 * k + 2]), a3 = _mm512_castps_pd(a[4 * k + 3]);
        b[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        b[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        b[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        b[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    /* lanes gathered across the four groups of rows: column 4L + j whole */
    for (j = 0; j < 4; j++) {
        const __m512 c0 = _mm512_shuffle_f32x4(b[j], b[4 + j], 0x88);
        const __m512 c1 = _mm512_shuffle_f32x4(b[j], b[4 + j], 0xdd);
        const __m512 c2 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0x88);
        const __m512 c3 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0xdd);
        _mm512_storeu_ps(dst + j * dst_ld, _mm512_shuffle_f32x4(c0, c2, 0x88));
        _mm512_storeu_ps(dst + (4 + j) * dst_ld, _mm512_shuffle_f32x4(c1, c3, 0x88));
        _mm512_storeu_ps(dst + (8 + j) * dst_ld, _mm512_shuffle_f32x4(c0, c2, 0xdd));
        _mm512_storeu_ps(dst + (12 + j) * dst_ld, _mm512_shuffle_f32x4(c1, c3, 0xdd));
    }
}

static int fnn_transpose_avx512(void)
{
    static int known = -1;   /* a benign race: every thread computes the same value */
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return known;
}
#endif

static void fnn_transpose(const float *src, Py_ssize_t src_rs, Py_ssize_t src_cs, float *dst,
                          Py_ssize_t dst_ld, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0,
                          Py_ssize_t c1)
{
    Py_ssize_t i0, i1, j0, j1;
#ifdef FNN_TRANSPOSE_AVX512
    const int vector = src_cs == 1 && fnn_transpose_avx512();
#else
    const int vector = 0;
#endif
    for (i0 = r0; i0 < r1; i0 += 16) {
        i1 = i0 + 16 < r1 ? i0 + 16 : r1;
        for (j0 = c0; j0 < c1; j0 += 16) {
            j1 = j0 + 16 < c1 ? j0 + 16 : c1;
#ifdef FNN_TRANSPOSE_AVX512
            if (vector && i1 - i0 == 16 && j1 - j0 == 16) {
                fnn_transpose_block16(src + i0 * src_rs + j0, src_rs, dst + j0 * dst_ld + i0,
                                      dst_ld);
                continue;
            }
#endif
            fnn_transpose_block_any(src, src_rs, src_cs, dst, dst_ld, i0, i1, j0, j1);
        }
    }
    (void)vector;
}

#endif
