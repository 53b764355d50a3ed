# cython: language_level=3
"""Winograd F(4x4, 3x3) float32 convolution (stride 1, dilation 1) on the AVX-512 product.

Lavin & Gray 2015 (transforms in csrc/winograd.h). The output is cut into 4x4 tiles, each read
from a 6x6 input tile (zeros outside the image); per chunk of images, with T tiles padded to
``Tp`` (a multiple of 32, zero columns):

- ``V[xi]`` (C, Tp) = (B^T d B)[xi] per channel and tile, ``U[xi]`` (K, C) = (G g G^T)[xi]
  (once per call), ``M[xi]`` (K, Tp) = ``U[xi] @ V[xi]``: 36 independent products on
  ``fnn_sgemm``, each whole on one thread;
- ``forward``: out = A^T m A per filter and tile, plus the bias, clipped at the border. The
  input gradient of a stride-1 3x3 convolution is this forward pass of ``dout`` with the filters
  flipped in both spatial axes and transposed to (C, K, 3, 3), padding ``2 - pad`` (the caller
  does that);
- ``backward_weights``: ``Z[xi]`` (Tp, Kp) = (A dY A^T)[xi] per tile and filter (Kp: K rounded
  up to 32, zero columns), ``dU^T[xi]`` (C, Kp) += ``V[xi] @ Z[xi]`` over the chunks, then
  dw = G^T dU G per filter and channel.

Memory is a few buffers of 36 * (channels) * Tp floats per chunk: the caller's ``chunk`` (images
per chunk) bounds it, whatever the batch. Each call is ONE parallel region: the chunk loop runs
in every thread and its transform and product loops are shared between the threads, with a
barrier wherever one loop reads what the previous one wrote. Every
entry re-checks the CPU, shapes, the pad range (0 .. 2), ``chunk >= 1`` and ``num_threads >= 1``
before releasing the GIL; C-contiguity and float32 are enforced by the memoryview types.
"""

from cython.parallel cimport parallel, prange
from libc.stdlib cimport calloc, free, malloc

cdef extern from "sgemm.h" nogil:
    int fnn_sgemm_available()
    int fnn_sgemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* a, Py_ssize_t a_rs,
                  Py_ssize_t a_cs, const float* b, Py_ssize_t ldb, float* c, Py_ssize_t ldc,
                  int accumulate)

cdef extern from "winograd.h" nogil:
    int FNN_WINO_COMPILED
    int FNN_WINO_LANES
    void fnn_wino_barrier()
    void fnn_wino_filter_block(const float* g, Py_ssize_t live, float* u, Py_ssize_t xi_stride)
    void fnn_wino_filter_grad_block(const float* du, Py_ssize_t xi_stride, Py_ssize_t live,
                                    float* dg, Py_ssize_t dg_stride)
    void fnn_wino_pad_plane(const float* src, Py_ssize_t h, Py_ssize_t w, int pad, float* dst,
                            Py_ssize_t hp, Py_ssize_t wp)
    void fnn_wino_input_block(const float* p, Py_ssize_t img_stride, Py_ssize_t wp,
                              Py_ssize_t tiles_w, Py_ssize_t tiles_img, Py_ssize_t t0,
                              Py_ssize_t t_end, float* v, Py_ssize_t xi_stride)
    void fnn_wino_output_block(const float* m, Py_ssize_t xi_stride, float bias, float* out,
                               Py_ssize_t img_stride, Py_ssize_t oh, Py_ssize_t ow,
                               Py_ssize_t tiles_w, Py_ssize_t tiles_img, Py_ssize_t t0,
                               Py_ssize_t t_end)
    void fnn_wino_zgrad_block(const float* dy, Py_ssize_t img_stride, Py_ssize_t plane,
                              Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t tiles_w,
                              Py_ssize_t tiles_img, Py_ssize_t t, Py_ssize_t t_end,
                              Py_ssize_t k0, Py_ssize_t k_end, float* z, Py_ssize_t xi_stride)

#: True when the transforms are compiled in and the CPU has AVX-512F (else use im2col)
AVAILABLE = bool(FNN_WINO_COMPILED and fnn_sgemm_available())
#: Largest zero padding of the entry points (the input gradient needs 2 - pad >= 0)
MAX_PAD = 2
cdef enum:
    _COLUMNS = 32   # the product's column tile: tiles per chunk are padded to a multiple

#: Tiles per chunk are padded to a multiple of this (the product's column tile)
TILE_COLUMNS = _COLUMNS


cdef Py_ssize_t _INT32_SPAN = 1 << 30   # offsets a gather may use (half of int32: margins)


cdef inline Py_ssize_t _round_up(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b * b


cdef inline Py_ssize_t _slab(Py_ssize_t floats) noexcept nogil:
    """Stride between the 36 slabs of a transform buffer: whole 64-byte lines plus one, so the
    36 coefficients of a tile land in different L1 sets (a power-of-two stride would put them
    all in one set and evict them from each other)."""
    return _round_up(floats, 16) + 16


cdef float* _aligned(void** raw, Py_ssize_t floats, bint zero):
    """A 64-byte aligned buffer of ``floats`` floats (``raw[0]`` is what to free), or NULL."""
    raw[0] = calloc(floats + 16, sizeof(float)) if zero else malloc((floats + 16) * sizeof(float))
    if raw[0] == NULL:
        return NULL
    return <float*>((<size_t>raw[0] + 63) // 64 * 64)


cdef int _check(Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, tuple w_shape,
                Py_ssize_t k, int pad, Py_ssize_t chunk, int num_threads) except -1:
    """What every entry needs: the CPU, positive sizes, (K, C, 3, 3) filters, the pad range, an
    output of at least one pixel, chunk >= 1 and num_threads >= 1."""
    if not AVAILABLE:
        raise RuntimeError("the Winograd convolution needs a CPU with AVX-512F (use im2col)")
    if n < 1 or c < 1 or h < 1 or w < 1:
        raise ValueError(f"x must have positive sizes, got ({n}, {c}, {h}, {w})")
    if w_shape != (k, c, 3, 3) or k < 1:
        raise ValueError(f"w must have shape (K, {c}, 3, 3) with K >= 1 for x with {c} "
                         f"channels, got {w_shape}")
    if not 0 <= pad <= MAX_PAD:
        raise ValueError(f"pad must be in 0 .. {MAX_PAD}, got {pad}")
    if h + 2 * pad < 3 or w + 2 * pad < 3:
        raise ValueError(f"x of size ({h}, {w}) with pad {pad} is smaller than the 3x3 kernel")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    # the gathers index a chunk of images (and 16 planes of dout) with int32 offsets
    if c * h * w > _INT32_SPAN or 16 * (h + 2 * pad) * (w + 2 * pad) > _INT32_SPAN:
        raise ValueError(f"x of shape ({n}, {c}, {h}, {w}) has images too large for the "
                         f"Winograd kernels (use im2col)")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return 0


def forward(
    const float[:, :, :, ::1] x,      # IN  (N, C, H, W)
    const float[:, :, :, ::1] w,      # IN  (K, C, 3, 3)
    const float[::1] b,               # IN  (K,)
    float[:, :, :, ::1] out,          # OUT (N, K, H + 2*pad - 2, W + 2*pad - 2)
    int pad,
    Py_ssize_t chunk,
    int num_threads,
):
    """``out = conv(x, w) + b`` (cross-correlation, stride 1), ``chunk`` images at a time."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3]
    cdef Py_ssize_t k = w.shape[0]
    _check(n, c, h, wd, (w.shape[0], w.shape[1], w.shape[2], w.shape[3]), k, pad, chunk, num_threads)
    cdef Py_ssize_t oh = h + 2 * pad - 2, ow = wd + 2 * pad - 2
    if b.shape[0] != k:
        raise ValueError(f"b must have shape ({k},), got ({b.shape[0]},)")
    if (out.shape[0], out.shape[1], out.shape[2], out.shape[3]) != (n, k, oh, ow):
        raise ValueError(f"out must have shape {(n, k, oh, ow)}, got {(out.shape[0], out.shape[1], out.shape[2], out.shape[3])}")
    cdef Py_ssize_t tiles_w = (ow + 3) // 4, tiles_img = (oh + 3) // 4 * tiles_w
    chunk = min(chunk, n, max(1, _INT32_SPAN // (c * h * wd)))
    cdef Py_ssize_t tp_max = _round_up(chunk * tiles_img, _COLUMNS)
    cdef Py_ssize_t su = _slab(k * c), sv = _slab(c * tp_max), sm = _slab(k * tp_max)
    cdef Py_ssize_t hp = 4 * ((oh + 3) // 4) + 2, wp = 4 * tiles_w + 2, plane = hp * wp
    cdef void* raw[4]
    cdef float* u = _aligned(&raw[0], 36 * su, False)
    cdef float* v = _aligned(&raw[1], 36 * sv, False)
    cdef float* m = _aligned(&raw[2], 36 * sm, False)
    cdef float* xp = _aligned(&raw[3], chunk * c * plane, False)
    cdef int failed = 0
    cdef int* failed_p = &failed
    cdef Py_ssize_t i, xi, n0, nimg, t_count, tp, blocks, ch, blk, f
    cdef Py_ssize_t out_img = k * oh * ow, lanes = FNN_WINO_LANES
    n0 = nimg = t_count = tp = blocks = 0   # set before the region: its copies start defined
    try:
        if u == NULL or v == NULL or m == NULL or xp == NULL:
            raise MemoryError("Winograd forward: cannot allocate the transform buffers")
        with nogil, parallel(num_threads=num_threads):
            for i in prange(0, k * c, lanes, schedule="static"):
                fnn_wino_filter_block(&w[0, 0, 0, 0] + 9 * i, k * c - i, u + i, su)
            while n0 < n:
                nimg = chunk if n - n0 > chunk else n - n0
                t_count = nimg * tiles_img
                tp = _round_up(t_count, _COLUMNS)
                blocks = tp // lanes
                for i in prange(nimg * c, schedule="static"):
                    fnn_wino_pad_plane(&x[n0, 0, 0, 0] + i * h * wd, h, wd, pad, xp + i * plane,
                                       hp, wp)
                fnn_wino_barrier()
                for i in prange(c * blocks, schedule="static"):
                    ch = i // blocks
                    blk = i - ch * blocks
                    fnn_wino_input_block(xp + ch * plane, c * plane, wp, tiles_w, tiles_img,
                                         blk * lanes, t_count, v + ch * tp + blk * lanes, sv)
                fnn_wino_barrier()
                for xi in prange(36, schedule="dynamic"):
                    if fnn_sgemm(k, tp, c, u + xi * su, c, 1, v + xi * sv, tp, m + xi * sm, tp,
                                 0):
                        failed_p[0] = 1
                fnn_wino_barrier()
                for i in prange(k * blocks, schedule="static"):
                    f = i // blocks
                    blk = i - f * blocks
                    fnn_wino_output_block(m + f * tp + blk * lanes, sm, b[f],
                                          &out[n0, f, 0, 0], out_img, oh, ow, tiles_w,
                                          tiles_img, blk * lanes, t_count)
                n0 = n0 + nimg
    finally:
        free(raw[0])
        free(raw[1])
        free(raw[2])
        free(raw[3])
    if failed:
        raise MemoryError("Winograd forward: sgemm could not allocate its packing buffer")


def backward_weights(
    const float[:, :, :, ::1] dout,   # IN  (N, K, H + 2*pad - 2, W + 2*pad - 2)
    const float[:, :, :, ::1] x,      # IN  (N, C, H, W)
    float[:, :, :, ::1] dw,           # OUT (K, C, 3, 3)
    int pad,
    Py_ssize_t chunk,
    int num_threads,
):
    """``dw`` = the filter gradient of :func:`forward` for the upstream gradient ``dout``."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3]
    cdef Py_ssize_t k = dw.shape[0]
    _check(n, c, h, wd, (dw.shape[0], dw.shape[1], dw.shape[2], dw.shape[3]), k, pad, chunk, num_threads)
    cdef Py_ssize_t oh = h + 2 * pad - 2, ow = wd + 2 * pad - 2
    if (dout.shape[0], dout.shape[1], dout.shape[2], dout.shape[3]) != (n, k, oh, ow):
        raise ValueError(f"dout must have shape {(n, k, oh, ow)}, got "
                         f"{(dout.shape[0], dout.shape[1], dout.shape[2], dout.shape[3])}")
    cdef Py_ssize_t tiles_w = (ow + 3) // 4, tiles_img = (oh + 3) // 4 * tiles_w
    chunk = min(chunk, n, max(1, _INT32_SPAN // (c * h * wd)))
    cdef Py_ssize_t tp_max = _round_up(chunk * tiles_img, _COLUMNS)
    cdef Py_ssize_t kp = _round_up(k, _COLUMNS)
    cdef Py_ssize_t sd = _slab(c * kp), sv = _slab(c * tp_max), sz = _slab(tp_max * kp)
    cdef Py_ssize_t hp = 4 * ((oh + 3) // 4) + 2, wp = 4 * tiles_w + 2, plane = hp * wp
    cdef void* raw[4]
    cdef float* du = _aligned(&raw[0], 36 * sd, True)
    cdef float* v = _aligned(&raw[1], 36 * sv, False)
    cdef float* z = _aligned(&raw[2], 36 * sz, False)
    cdef float* xp = _aligned(&raw[3], chunk * c * plane, False)
    cdef int failed = 0
    cdef int* failed_p = &failed
    cdef Py_ssize_t i, xi, n0, nimg, t_count, tp, blocks, ch, blk, t, kb
    cdef Py_ssize_t dy_img = k * oh * ow, lanes = FNN_WINO_LANES
    cdef Py_ssize_t k_blocks = kp // FNN_WINO_LANES, k_live = (k + lanes - 1) // lanes
    n0 = nimg = t_count = tp = blocks = 0   # set before the region: its copies start defined
    try:
        if du == NULL or v == NULL or z == NULL or xp == NULL:
            raise MemoryError("Winograd backward: cannot allocate the transform buffers")
        with nogil, parallel(num_threads=num_threads):
            while n0 < n:
                nimg = chunk if n - n0 > chunk else n - n0
                t_count = nimg * tiles_img
                tp = _round_up(t_count, _COLUMNS)
                blocks = tp // lanes
                for i in prange(nimg * c, schedule="static"):
                    fnn_wino_pad_plane(&x[n0, 0, 0, 0] + i * h * wd, h, wd, pad, xp + i * plane,
                                       hp, wp)
                fnn_wino_barrier()
                for i in prange(c * blocks, schedule="static"):
                    ch = i // blocks
                    blk = i - ch * blocks
                    fnn_wino_input_block(xp + ch * plane, c * plane, wp, tiles_w, tiles_img,
                                         blk * lanes, t_count, v + ch * tp + blk * lanes, sv)
                for i in prange(tp * k_blocks, schedule="static"):
                    t = i // k_blocks
                    kb = i - t * k_blocks
                    fnn_wino_zgrad_block(&dout[n0, 0, 0, 0], dy_img, oh * ow, oh, ow, tiles_w,
                                         tiles_img, t, t_count, kb * lanes, k,
                                         z + t * kp + kb * lanes, sz)
                fnn_wino_barrier()
                for xi in prange(36, schedule="dynamic"):
                    if fnn_sgemm(c, kp, tp, v + xi * sv, tp, 1, z + xi * sz, kp, du + xi * sd, kp,
                                 1):
                        failed_p[0] = 1
                fnn_wino_barrier()
                n0 = n0 + nimg
            for i in prange(c * k_live, schedule="static"):
                ch = i // k_live
                kb = (i - ch * k_live) * lanes
                fnn_wino_filter_grad_block(du + ch * kp + kb, sd, k - kb, &dw[kb, ch, 0, 0], c * 9)
    finally:
        free(raw[0])
        free(raw[1])
        free(raw[2])
        free(raw[3])
    if failed:
        raise MemoryError("Winograd backward: sgemm could not allocate its packing buffer")
