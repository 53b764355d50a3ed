# cython: language_level=3
"""Winograd F(4x4, 3x3) float32 convolution (stride 1, dilation 1) on the AVX-512 product.

Lavin & Gray 2015 (transforms in csrc/winograd.h). The output is cut into 4x4 tiles, each read
from a 6x6 input tile (zeros outside the image); per chunk of images, with T tiles padded to
``Tp`` (a multiple of 32, zero columns):

- ``V[xi]`` (C, Tp) = (B^T d B)[xi] per channel and tile, ``U[xi]`` (K, C) = (G g G^T)[xi]
  (once per call), ``M[xi]`` (K, Tp) = ``U[xi] @ V[xi]``: 36 products on ``fnn_sgemm``;
- ``forward``: out = A^T m A per filter and tile, plus the bias, clipped at the border. The
  input gradient of a stride-1 3x3 convolution is this forward pass of ``dout`` with the filters
  flipped in both spatial axes and transposed to (C, K, 3, 3), padding ``2 - pad`` (the caller
  does that);
- ``backward_weights``: ``Z[xi]`` (Tp, Kp) = (A dY A^T)[xi] per tile and filter (Kp: K rounded
  up to 32, zero columns), ``dU^T[xi]`` (C, Kp) += ``V[xi] @ Z[xi]`` over the chunks, then
  dw = G^T dU G per filter and channel.

Threads: each chunk runs whole on one thread (padding, transforms, its 36 products), each with
buffers of its own: forward chunks go to the threads as they finish; the filter gradient sums
one ``dU`` per thread at the end, over a fixed share of the chunks per thread (so the result
is the same run after run). No barrier inside the chunk loop: a thread that is slow or
descheduled does not hold the others, and the products stay in the thread's cache. Memory is
``num_threads`` times a few buffers of 36 * (channels) * Tp floats: the caller's ``chunk``
(images per chunk) bounds it, whatever the batch. Every entry re-checks the CPU, shapes, the
pad range (0 .. 2), ``chunk >= 1`` and ``num_threads >= 1`` before releasing the GIL;
C-contiguity and float32 are enforced by the memoryview types.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport calloc, free, malloc

from sgemm cimport fnn_sgemm, fnn_sgemm_available

cdef extern from "winograd.h" nogil:
    int FNN_WINO_COMPILED
    int FNN_WINO_LANES
    void fnn_wino_barrier()
    int fnn_wino_forward_chunk(const float* x, Py_ssize_t nimg, Py_ssize_t c, Py_ssize_t h,
                               Py_ssize_t w, int pad, const float* u, Py_ssize_t su,
                               Py_ssize_t k, const float* bias, float* out, float* xp,
                               float* v, Py_ssize_t sv, float* m, Py_ssize_t sm)
    int fnn_wino_dw_chunk(const float* x, Py_ssize_t nimg, Py_ssize_t c, Py_ssize_t h,
                          Py_ssize_t w, int pad, const float* dy, Py_ssize_t k, Py_ssize_t kp,
                          float* xp, float* v, Py_ssize_t sv, float* dp, float* z,
                          Py_ssize_t sz, float* du, Py_ssize_t sd)
    void fnn_wino_filter_block(const float* g, Py_ssize_t live, float* u, Py_ssize_t xi_stride)
    void fnn_wino_filter_grad_block(const float* du, Py_ssize_t xi_stride, Py_ssize_t live,
                                    float* dg, Py_ssize_t dg_stride)

#: True when the transforms are compiled in and the CPU has AVX-512F (else use im2col)
AVAILABLE = bool(FNN_WINO_COMPILED and fnn_sgemm_available())
#: Largest zero padding of the entry points (the input gradient needs 2 - pad >= 0)
MAX_PAD = 2
cdef enum:
    _COLUMNS = 32   # the product's column tile: tiles per chunk are padded to a multiple

#: Tiles per chunk are padded to a multiple of this (the product's column tile)
TILE_COLUMNS = _COLUMNS


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
    chunk = min(chunk, n)
    cdef Py_ssize_t tp_max = _round_up(chunk * tiles_img, _COLUMNS)
    cdef Py_ssize_t plane = (4 * ((oh + 3) // 4) + 2) * (4 * tiles_w + 2)
    cdef Py_ssize_t su = _slab(k * c), sv = _slab(c * tp_max), sm = _slab(k * tp_max)
    cdef Py_ssize_t sx = _round_up(chunk * c * plane + 16, 16)   # rows are read 8 floats wide
    cdef Py_ssize_t per_thread = 36 * sv + 36 * sm + sx
    cdef Py_ssize_t chunks = (n + chunk - 1) // chunk
    num_threads = min(num_threads, chunks)
    cdef void* raw[2]
    cdef float* u = _aligned(&raw[0], 36 * su, False)
    cdef float* work = _aligned(&raw[1], num_threads * per_thread, False)
    cdef int failed = 0
    cdef int* failed_p = &failed
    cdef Py_ssize_t i, ci, n0, nimg, lanes = FNN_WINO_LANES
    cdef float* mine
    try:
        if u == NULL or work == NULL:
            raise MemoryError("Winograd forward: cannot allocate the transform buffers")
        with nogil, parallel(num_threads=num_threads):
            for i in prange(0, k * c, lanes, schedule="static"):
                fnn_wino_filter_block(&w[0, 0, 0, 0] + 9 * i, k * c - i, u + i, su)
            fnn_wino_barrier()
            for ci in prange(chunks, schedule="dynamic"):
                n0 = ci * chunk
                nimg = chunk if n - n0 > chunk else n - n0
                mine = work + threadid() * per_thread
                if fnn_wino_forward_chunk(&x[n0, 0, 0, 0], nimg, c, h, wd, pad, u, su, k, &b[0],
                                          &out[n0, 0, 0, 0], mine + 36 * sv + 36 * sm, mine,
                                          sv, mine + 36 * sv, sm):
                    failed_p[0] = 1
    finally:
        free(raw[0])
        free(raw[1])
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
    chunk = min(chunk, n)
    cdef Py_ssize_t tp_max = _round_up(chunk * tiles_img, _COLUMNS)
    cdef Py_ssize_t kp = _round_up(k, _COLUMNS)
    cdef Py_ssize_t hq = 4 * ((oh + 3) // 4), wq = 4 * tiles_w
    cdef Py_ssize_t plane = (hq + 2) * (wq + 2)
    cdef Py_ssize_t sd = _slab(c * kp), sv = _slab(c * tp_max), sz = _slab(tp_max * kp)
    cdef Py_ssize_t sx = _round_up(chunk * c * plane + 16, 16)   # rows are read 8 floats wide
    cdef Py_ssize_t sy = _round_up(chunk * k * hq * wq, 16)
    cdef Py_ssize_t per_thread = 36 * sv + 36 * sz + sx + sy
    cdef Py_ssize_t chunks = (n + chunk - 1) // chunk
    num_threads = min(num_threads, chunks)
    cdef void* raw[2]
    cdef float* du = _aligned(&raw[0], num_threads * 36 * sd, True)
    cdef float* work = _aligned(&raw[1], num_threads * per_thread, False)
    cdef int failed = 0
    cdef int* failed_p = &failed
    cdef Py_ssize_t i, j, ci, n0, nimg, ch, kb, lanes = FNN_WINO_LANES
    cdef Py_ssize_t k_live = (k + lanes - 1) // lanes
    cdef float* mine
    try:
        if du == NULL or work == NULL:
            raise MemoryError("Winograd backward: cannot allocate the transform buffers")
        with nogil, parallel(num_threads=num_threads):
            # static: each thread sums the same chunks in the same order, run after run
            for ci in prange(chunks, schedule="static"):
                n0 = ci * chunk
                nimg = chunk if n - n0 > chunk else n - n0
                mine = work + threadid() * per_thread
                if fnn_wino_dw_chunk(&x[n0, 0, 0, 0], nimg, c, h, wd, pad, &dout[n0, 0, 0, 0],
                                     k, kp, mine + 36 * sv + 36 * sz, mine, sv,
                                     mine + 36 * sv + 36 * sz + sx, mine + 36 * sv, sz,
                                     du + threadid() * 36 * sd, sd):
                    failed_p[0] = 1
            fnn_wino_barrier()
            # the threads' sums into the first one's, then dw = G^T dU G
            for i in prange(36 * sd, schedule="static"):
                for j in range(1, num_threads):
                    du[i] += du[j * 36 * sd + i]
            fnn_wino_barrier()
            for i in prange(c * k_live, schedule="static"):
                ch = i // k_live
                kb = (i - ch * k_live) * lanes
                fnn_wino_filter_grad_block(du + ch * kp + kb, sd, k - kb, &dw[kb, ch, 0, 0], c * 9)
    finally:
        free(raw[0])
        free(raw[1])
    if failed:
        raise MemoryError("Winograd backward: sgemm could not allocate its packing buffer")
