/* Direct float32 convolution for few input channels (stride 1, dilation 1):
 * fastnn._ext._conv_direct.
 *
 * One image at a time, on one thread: its C channels are copied into a zero-padded buffer
 * (rows of `ld` floats, `ph` rows per channel) that stays in L1/L2, then every output is a sum
 * over the K = C*fh*fw kernel taps of a weight times an unaligned 16-float row segment of that
 * buffer: vectors run along the output width (the last, partial vector of a row is masked).
 * Tap t = (ch*fh + i)*fw + j reads the buffer at off[t] = ch*plane + i*ld + j from the output
 * position, so the taps of every channel and kernel size are one flat loop.
 *
 *   forward: a register tile of FNN_DIRECT_FB filters by FNN_DIRECT_RB output rows (16
 *     accumulators, started at the bias): per tap RB row loads, FB weight broadcasts, FB*RB FMAs,
 *     stored to a staging block (see FNN_DIRECT_ALIAS) and copied out per filter block.
 *   dw: a register tile of FNN_DIRECT_DFB filters by FNN_DIRECT_KB taps (27 accumulators) summed
 *     over the whole image: per 16 outputs DFB dout loads (masked, zero past the row end), KB
 *     buffer loads, DFB*KB FMAs; then added to the thread's vector accumulators (F x kpad x 16
 *     floats; taps past K read offset 0 and are never reported). db: the first tap block's
 *     pass also sums its dout vectors per filter, into F x 16 floats.
 *
 * Buffer geometry (fnn_direct_geom): ld = 16*ceil(ow/16) + fw - 1 columns (the last vector's
 * taps stay inside the row), ph = RB*ceil(oh/RB) + fh - 1 rows (a partial row tile reads, but
 * does not store, rows past the end), each channel a whole number of 4 KB pages. Padding
 * cells are zeroed once by the caller (calloc) and never written: each image writes only its
 * interior.
 *
 * The vector code needs GCC-style target attributes and runs only where
 * fnn_direct_available() (AVX-512F at run time); elsewhere FNN_DIRECT_COMPILED is 0 and the
 * caller must not call the image functions (they return -1).
 */
#ifndef FASTNN_CONV_DIRECT_H
#define FASTNN_CONV_DIRECT_H

#include <Python.h>
#include <string.h>

#define FNN_DIRECT_LANES 16
#define FNN_DIRECT_FB 4
#define FNN_DIRECT_RB 4
#define FNN_DIRECT_DFB 3
#define FNN_DIRECT_KB 9
/* Floats per 4 KB page, and the forward's staging offset from the padded input (half a page).
   A load whose address matches an earlier, still pending store in its low 12 bits waits for
   it ("4K aliasing"): storing the output tiles straight into `out` made the forward of
   x (128, 1, 28, 28) by 32 3x3 filters take 0.59 .. 1.98 ms on one thread depending only on
   where numpy put `out`. Tiles go to a staging block in the output's layout, each filter's
   plane on whole pages, half a page away (modulo 4 KB) from the rows being read; each plane
   is then one contiguous copy (fnn_direct_copy; copying row by row from a staging block in
   the input's layout took 0.77-0.93 instead of 0.70-0.85 ms). */
#define FNN_DIRECT_PAGE 1024
#define FNN_DIRECT_ALIAS 512

typedef struct {
    Py_ssize_t c, h, w, fh, fw, pad, oh, ow;
    Py_ssize_t ld, ph, plane;   /* buffer row length, rows per channel, floats per channel */
    Py_ssize_t splane;          /* floats per filter of the forward's staging block */
    Py_ssize_t fwd_floats, dw_floats;   /* per-thread work of forward / dw, 4 KB aligned */
    Py_ssize_t k, kpad;         /* taps, taps rounded up to FNN_DIRECT_KB */
    Py_ssize_t blocks;          /* 16-wide vectors per output row */
} fnn_direct_geom;

/* buffer and tap geometry of a problem (no allocation, no vector code) */
static void fnn_direct_geometry(fnn_direct_geom *g, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w,
                                Py_ssize_t fh, Py_ssize_t fw, Py_ssize_t pad)
{
    g->c = c; g->h = h; g->w = w; g->fh = fh; g->fw = fw; g->pad = pad;
    g->oh = h + 2 * pad - fh + 1;
    g->ow = w + 2 * pad - fw + 1;
    g->blocks = (g->ow + FNN_DIRECT_LANES - 1) / FNN_DIRECT_LANES;
    g->ld = g->blocks * FNN_DIRECT_LANES + fw - 1;
    g->ph = (g->oh + FNN_DIRECT_RB - 1) / FNN_DIRECT_RB * FNN_DIRECT_RB + fh - 1;
    /* whole 4 KB pages per channel (see FNN_DIRECT_ALIAS) */
    g->plane = (g->ph * g->ld + FNN_DIRECT_PAGE - 1) / FNN_DIRECT_PAGE * FNN_DIRECT_PAGE;
    g->k = c * fh * fw;
    g->kpad = (g->k + FNN_DIRECT_KB - 1) / FNN_DIRECT_KB * FNN_DIRECT_KB;
    g->splane = (g->oh * g->ow + FNN_DIRECT_PAGE - 1) / FNN_DIRECT_PAGE * FNN_DIRECT_PAGE;
    g->fwd_floats = c * g->plane + FNN_DIRECT_ALIAS + FNN_DIRECT_FB * g->splane;
    g->fwd_floats = (g->fwd_floats + FNN_DIRECT_PAGE - 1) / FNN_DIRECT_PAGE * FNN_DIRECT_PAGE;
    g->dw_floats = (c * g->plane + FNN_DIRECT_PAGE - 1) / FNN_DIRECT_PAGE * FNN_DIRECT_PAGE;
}

/* off[t] for every tap t < kpad (0 for the padding taps) */
static void fnn_direct_offsets(const fnn_direct_geom *g, Py_ssize_t *off)
{
    Py_ssize_t ch, i, j, t = 0;
    for (ch = 0; ch < g->c; ch++)
        for (i = 0; i < g->fh; i++)
            for (j = 0; j < g->fw; j++)
                off[t++] = ch * g->plane + i * g->ld + j;
    for (; t < g->kpad; t++)
        off[t] = 0;
}

/* the interior of the padded buffer from one image x (C, H, W) */
static void fnn_direct_fill(const fnn_direct_geom *g, const float *x, float *buf)
{
    Py_ssize_t ch, r;
    for (ch = 0; ch < g->c; ch++)
        for (r = 0; r < g->h; r++)
            memcpy(buf + ch * g->plane + (r + g->pad) * g->ld + g->pad,
                   x + (ch * g->h + r) * g->w, (size_t)g->w * sizeof(float));
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)

#include <immintrin.h>

#define FNN_DIRECT_COMPILED 1
/* GCC: Python's -fwrapv (signed overflow wraps) kept the dw loop's index arithmetic from
   being simplified (dw of a 28x28 image, 32 3x3 filters: 7.6-10.4 vs 5.5-7.8 us, one
   thread, alternating runs on a busy machine); these loops never overflow */
#if defined(__GNUC__) && !defined(__clang__)
#define FNN_DIRECT_TARGET __attribute__((target("avx512f"), optimize("no-wrapv")))
#else
#define FNN_DIRECT_TARGET __attribute__((target("avx512f")))
#endif

static int fnn_direct_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
}

/* fb (a constant at every call site) filters x RB rows x 16 columns of the output, rows < rows
   stored; xb: the buffer at the tile's first output position; w, bias, out at filter f0 */
FNN_DIRECT_TARGET __attribute__((always_inline)) static inline void fnn_direct_fwd_tile(
    int fb, const float *xb, Py_ssize_t ld, const Py_ssize_t *off, Py_ssize_t k,
    const float *w, const float *bias, float *out, Py_ssize_t fstride, Py_ssize_t ow,
    Py_ssize_t rows, __mmask16 m)
{
    __m512 acc[FNN_DIRECT_FB][FNN_DIRECT_RB];
    int f, r;
    Py_ssize_t t;
    for (f = 0; f < fb; f++)
        for (r = 0; r < FNN_DIRECT_RB; r++)
            acc[f][r] = _mm512_set1_ps(bias[f]);
    for (t = 0; t < k; t++) {
        const float *p = xb + off[t];
        __m512 in[FNN_DIRECT_RB];
        for (r = 0; r < FNN_DIRECT_RB; r++)
            in[r] = _mm512_loadu_ps(p + r * ld);
        for (f = 0; f < fb; f++) {
            const __m512 wv = _mm512_set1_ps(w[f * k + t]);
            for (r = 0; r < FNN_DIRECT_RB; r++)
                acc[f][r] = _mm512_fmadd_ps(wv, in[r], acc[f][r]);
        }
    }
    for (f = 0; f < fb; f++)
        for (r = 0; r < FNN_DIRECT_RB; r++)
            if (r < rows)
                _mm512_mask_storeu_ps(out + f * fstride + r * ow, m, acc[f][r]);
}

FNN_DIRECT_TARGET static void fnn_direct_fwd_tile_any(
    Py_ssize_t fb, const float *xb, Py_ssize_t ld, const Py_ssize_t *off, Py_ssize_t k,
    const float *w, const float *bias, float *out, Py_ssize_t fstride, Py_ssize_t ow,
    Py_ssize_t rows, __mmask16 m)
{
    /* whole tiles with constant row counts: their stores need no test (no accumulator spills) */
    if (fb == FNN_DIRECT_FB && rows == FNN_DIRECT_RB)
        fnn_direct_fwd_tile(FNN_DIRECT_FB, xb, ld, off, k, w, bias, out, fstride, ow,
                            FNN_DIRECT_RB, m);
    else if (fb == 4)
        fnn_direct_fwd_tile(4, xb, ld, off, k, w, bias, out, fstride, ow, rows, m);
    else if (fb == 3)
        fnn_direct_fwd_tile(3, xb, ld, off, k, w, bias, out, fstride, ow, rows, m);
    else if (fb == 2)
        fnn_direct_fwd_tile(2, xb, ld, off, k, w, bias, out, fstride, ow, rows, m);
    else
        fnn_direct_fwd_tile(1, xb, ld, off, k, w, bias, out, fstride, ow, rows, m);
}

/* dst[0:n] = src[0:n], in ascending order (a descending copy where the loads would run into
   the pending stores' low address bits took 1.23-1.27 instead of 0.85-0.93 ms for the forward
   of x (128, 1, 28, 28) by 32 3x3 filters into fresh output arrays) */
FNN_DIRECT_TARGET static void fnn_direct_copy(float *dst, const float *src, Py_ssize_t n)
{
    const Py_ssize_t whole = n / FNN_DIRECT_LANES * FNN_DIRECT_LANES;
    const __mmask16 tail = (__mmask16)((1u << (n - whole)) - 1u);
    Py_ssize_t q;
    for (q = 0; q < whole; q += FNN_DIRECT_LANES)
        _mm512_storeu_ps(dst + q, _mm512_loadu_ps(src + q));
    if (tail)
        _mm512_mask_storeu_ps(dst + whole, tail, _mm512_maskz_loadu_ps(tail, src + whole));
}

/* out (F, oh, ow) = conv(x (C, H, W), w (F, K)) + b for one image; buf: this thread's work
   (fwd_floats, 4 KB aligned, padding zero): the padded channels, then the staging block */
FNN_DIRECT_TARGET static int fnn_direct_forward_image(
    const fnn_direct_geom *g, const Py_ssize_t *off, const float *x, const float *w,
    const float *b, Py_ssize_t nf, float *out, float *buf)
{
    const Py_ssize_t fstride = g->oh * g->ow;
    const Py_ssize_t tail = g->ow - (g->blocks - 1) * FNN_DIRECT_LANES;
    const __mmask16 tail_mask = (__mmask16)((1u << tail) - 1u);
    float *stage = buf + g->c * g->plane + FNN_DIRECT_ALIAS;
    Py_ssize_t r0, bl, f0, f;
    fnn_direct_fill(g, x, buf);
    for (f0 = 0; f0 < nf; f0 += FNN_DIRECT_FB) {
        const Py_ssize_t fb = nf - f0 < FNN_DIRECT_FB ? nf - f0 : FNN_DIRECT_FB;
        for (r0 = 0; r0 < g->oh; r0 += FNN_DIRECT_RB) {
            const Py_ssize_t rows = g->oh - r0 < FNN_DIRECT_RB ? g->oh - r0 : FNN_DIRECT_RB;
            Py_ssize_t q;
            /* the output lines these rows are copied to after the block, fetched meanwhile */
            for (f = 0; f < fb; f++)
                for (q = 0; q < rows * g->ow; q += FNN_DIRECT_LANES)
                    _mm_prefetch((const char *)(out + (f0 + f) * fstride + r0 * g->ow + q),
                                 _MM_HINT_T0);
            for (bl = 0; bl < g->blocks; bl++)
                fnn_direct_fwd_tile_any(fb, buf + r0 * g->ld + bl * FNN_DIRECT_LANES, g->ld, off,
                                        g->k, w + f0 * g->k, b + f0,
                                        stage + r0 * g->ow + bl * FNN_DIRECT_LANES, g->splane,
                                        g->ow, rows,
                                        bl == g->blocks - 1 ? tail_mask : (__mmask16)0xFFFF);
        }
        for (f = 0; f < fb; f++)
            fnn_direct_copy(out + (f0 + f) * fstride, stage + f * g->splane, fstride);
    }
    return 0;
}

/* fb (constant) filters x FNN_DIRECT_KB taps of the filter gradient of one image, added to
   acc (fb rows of kpad * 16 floats, at tap t0); dy at filter f0's plane, off at tap t0; with_db
   (constant): also the dout sums of the fb filters, added to dbacc (fb rows of 16 floats) */
FNN_DIRECT_TARGET __attribute__((always_inline)) static inline void fnn_direct_dw_tile(
    int fb, int with_db, const fnn_direct_geom *g, const float *dy, const float *buf,
    const Py_ssize_t *off, float *acc, float *dbacc, __mmask16 tail_mask, const float *next,
    Py_ssize_t next_fb)
{
    __m512 s[FNN_DIRECT_DFB][FNN_DIRECT_KB], sb[FNN_DIRECT_DFB];
    const Py_ssize_t fstride = g->oh * g->ow;
    Py_ssize_t o[FNN_DIRECT_KB];
    Py_ssize_t r, bl;
    int f, t;
    for (t = 0; t < FNN_DIRECT_KB; t++)
        o[t] = off[t];
    for (f = 0; f < fb; f++) {
        sb[f] = _mm512_setzero_ps();
        for (t = 0; t < FNN_DIRECT_KB; t++)
            s[f][t] = _mm512_setzero_ps();
    }
    for (r = 0; r < g->oh; r++) {
        for (bl = 0; bl < g->blocks; bl++) {
            const __mmask16 m = bl == g->blocks - 1 ? tail_mask : (__mmask16)0xFFFF;
            const float *xb = buf + r * g->ld + bl * FNN_DIRECT_LANES;
            __m512 d[FNN_DIRECT_DFB];
            for (f = 0; f < fb; f++) {
                d[f] = _mm512_maskz_loadu_ps(m, dy + f * fstride + r * g->ow
                                                + bl * FNN_DIRECT_LANES);
                if (with_db)
                    sb[f] = _mm512_add_ps(sb[f], d[f]);
            }
            /* the next filter block's dout, read by the next pass: fetched during this one */
            for (f = 0; f < FNN_DIRECT_DFB; f++)
                if (f < next_fb)
                    _mm_prefetch((const char *)(next + f * fstride + r * g->ow
                                                + bl * FNN_DIRECT_LANES), _MM_HINT_T0);
            for (t = 0; t < FNN_DIRECT_KB; t++) {
                const __m512 in = _mm512_loadu_ps(xb + o[t]);
                for (f = 0; f < fb; f++)
                    s[f][t] = _mm512_fmadd_ps(d[f], in, s[f][t]);
            }
        }
    }
    for (f = 0; f < fb; f++)
        for (t = 0; t < FNN_DIRECT_KB; t++) {
            float *a = acc + (f * g->kpad + t) * FNN_DIRECT_LANES;
            _mm512_storeu_ps(a, _mm512_add_ps(_mm512_loadu_ps(a), s[f][t]));
        }
    if (with_db)
        for (f = 0; f < fb; f++) {
            float *a = dbacc + f * FNN_DIRECT_LANES;
            _mm512_storeu_ps(a, _mm512_add_ps(_mm512_loadu_ps(a), sb[f]));
        }
}

/* acc (F, kpad, 16) += the filter gradient of one image, dbacc (F, 16) += its dout sums;
   dy (F, oh, ow), x (C, H, W); buf: this thread's padded buffer */
FNN_DIRECT_TARGET static int fnn_direct_dw_image(
    const fnn_direct_geom *g, const Py_ssize_t *off, const float *dy, const float *x,
    Py_ssize_t nf, float *buf, float *acc, float *dbacc)
{
    const Py_ssize_t fstride = g->oh * g->ow;
    const Py_ssize_t tail = g->ow - (g->blocks - 1) * FNN_DIRECT_LANES;
    const __mmask16 tail_mask = (__mmask16)((1u << tail) - 1u);
    Py_ssize_t f0, t0;
    fnn_direct_fill(g, x, buf);
    for (f0 = 0; f0 < nf; f0 += FNN_DIRECT_DFB) {
        const Py_ssize_t fb = nf - f0 < FNN_DIRECT_DFB ? nf - f0 : FNN_DIRECT_DFB;
        const float *d = dy + f0 * fstride;
        /* the first tap block also sums dout (db): no second pass over dout (1.3 of the
           4.6 us of a 28x28 image's dw with 32 3x3 filters) */
        for (t0 = 0; t0 < g->kpad; t0 += FNN_DIRECT_KB) {
            float *a = acc + (f0 * g->kpad + t0) * FNN_DIRECT_LANES;
            float *ab = dbacc + f0 * FNN_DIRECT_LANES;
            /* the last pass over this block's taps prefetches the next block's dout */
            const Py_ssize_t nfb = t0 + FNN_DIRECT_KB < g->kpad ? 0
                : (nf - f0 - fb < FNN_DIRECT_DFB ? nf - f0 - fb : FNN_DIRECT_DFB);
            const float *nx = d + fb * fstride;
            if (fb == 3 && t0 == 0)
                fnn_direct_dw_tile(3, 1, g, d, buf, off + t0, a, ab, tail_mask, nx, nfb);
            else if (fb == 3)
                fnn_direct_dw_tile(3, 0, g, d, buf, off + t0, a, ab, tail_mask, nx, nfb);
            else if (fb == 2)
                fnn_direct_dw_tile(2, t0 == 0, g, d, buf, off + t0, a, ab, tail_mask, nx, nfb);
            else
                fnn_direct_dw_tile(1, t0 == 0, g, d, buf, off + t0, a, ab, tail_mask, nx, nfb);
        }
    }
    return 0;
}

#else   /* no GCC-style target attributes or not x86-64: fnn_direct_available() is 0 */

#define FNN_DIRECT_COMPILED 0

static int fnn_direct_available(void) { return 0; }

static int fnn_direct_forward_image(
    const fnn_direct_geom *g, const Py_ssize_t *off, const float *x, const float *w,
    const float *b, Py_ssize_t nf, float *out, float *buf)
{
    (void)g; (void)off; (void)x; (void)w; (void)b; (void)nf; (void)out; (void)buf;
    return -1;
}

static int fnn_direct_dw_image(
    const fnn_direct_geom *g, const Py_ssize_t *off, const float *dy, const float *x,
    Py_ssize_t nf, float *buf, float *acc, float *dbacc)
{
    (void)g; (void)off; (void)dy; (void)x; (void)nf; (void)buf; (void)acc; (void)dbacc;
    return -1;
}

#endif
#endif
