# cython: language_level=3
"""Direct float32 convolution for few input channels: stride 1, dilation 1, any kernel size,
any zero padding (vector code in csrc/conv_direct.h).

- ``forward(x, w, b, out, pad, num_threads)``: ``out = conv(x, w) + b``;
- ``backward_weights(dout, x, dw, db, pad, num_threads)``: the filter and bias gradients.

No im2col: each image's channels are copied once into a zero-padded buffer of the thread that
owns it, and every output (forward) or filter-gradient term (dw) is read straight from it,
16 output columns per AVX-512 vector. Threads take whole images: forward images as they come
(each output is written by one thread, so the order does not matter), dw images in a fixed share
per thread with one accumulator each, summed at the end in a fixed order (in double), so the
result repeats bit for bit for a given thread count. Every entry re-checks the CPU, the shapes,
the padding and ``num_threads >= 1`` before releasing the GIL; C-contiguity and float32 are
enforced by the memoryview types.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport calloc, free, malloc

cdef extern from "conv_direct.h" nogil:
    int FNN_DIRECT_COMPILED
    int FNN_DIRECT_LANES
    ctypedef struct fnn_direct_geom:
        Py_ssize_t c, h, w, fh, fw, pad, oh, ow
        Py_ssize_t ld, ph, plane
        Py_ssize_t fwd_floats, dw_floats
        Py_ssize_t k, kpad
        Py_ssize_t blocks
    int fnn_direct_available()
    void fnn_direct_geometry(fnn_direct_geom* g, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w,
                             Py_ssize_t fh, Py_ssize_t fw, Py_ssize_t pad)
    void fnn_direct_offsets(const fnn_direct_geom* g, Py_ssize_t* off)
    int fnn_direct_forward_image(const fnn_direct_geom* g, const Py_ssize_t* off,
                                 const float* x, const float* w, const float* b, Py_ssize_t nf,
                                 float* out, float* buf)
    int fnn_direct_dw_image(const fnn_direct_geom* g, const Py_ssize_t* off, const float* dy,
                            const float* x, Py_ssize_t nf, float* buf, float* acc,
                            float* dbacc)

cdef extern from *:
    """
    static void fnn_direct_barrier(void)
    {
    #ifdef _OPENMP
    #pragma omp barrier
    #endif
    }
    """
    void _barrier "fnn_direct_barrier" () nogil

#: True when the vector code is compiled in and the CPU has AVX-512F (else use im2col)
AVAILABLE = bool(FNN_DIRECT_COMPILED and fnn_direct_available())


cdef float* _pages(void** raw, Py_ssize_t floats):
    """A zeroed buffer of ``floats`` floats starting on a 4 KB boundary (``raw[0]`` is what to
    free), or NULL: the work of each thread is a whole number of pages from there."""
    raw[0] = calloc(floats + 1024, sizeof(float))
    if raw[0] == NULL:
        return NULL
    return <float*>((<size_t>raw[0] + 4095) // 4096 * 4096)


cdef int _check(Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, tuple w_shape,
                int pad, int num_threads, fnn_direct_geom* g) except -1:
    """The CPU, positive sizes, (F, C, fh, fw) filters, pad >= 0, an output of at least one
    pixel, num_threads >= 1; fills the buffer geometry ``g``."""
    if not AVAILABLE:
        raise RuntimeError("the direct convolution needs a CPU with AVX-512F (use im2col)")
    if n < 1 or c < 1 or h < 1 or w < 1:
        raise ValueError(f"x must have positive sizes, got ({n}, {c}, {h}, {w})")
    nf, wc, fh, fw = w_shape
    if nf < 1 or wc != c or fh < 1 or fw < 1:
        raise ValueError(f"w must have shape (F, {c}, fh, fw) with positive F, fh, fw for x "
                         f"with {c} channels, got {w_shape}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    if h + 2 * pad < fh or w + 2 * pad < fw:
        raise ValueError(f"x of size ({h}, {w}) with pad {pad} is smaller than the "
                         f"{fh}x{fw} kernel")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    fnn_direct_geometry(g, c, h, w, fh, fw, pad)
    return 0


def forward(
    const float[:, :, :, ::1] x,      # IN  (N, C, H, W)
    const float[:, :, :, ::1] w,      # IN  (F, C, fh, fw)
    const float[::1] b,               # IN  (F,)
    float[:, :, :, ::1] out,          # OUT (N, F, H + 2*pad - fh + 1, W + 2*pad - fw + 1)
    int pad,
    int num_threads,
):
    """``out = conv(x, w) + b`` (cross-correlation, stride 1), each image on one thread."""
    cdef fnn_direct_geom g
    cdef Py_ssize_t n = x.shape[0], nf = w.shape[0]
    _check(n, x.shape[1], x.shape[2], x.shape[3], (w.shape[0], w.shape[1], w.shape[2], w.shape[3]),
           pad, num_threads, &g)
    if b.shape[0] != nf:
        raise ValueError(f"b must have shape ({nf},), got ({b.shape[0]},)")
    if (out.shape[0], out.shape[1], out.shape[2], out.shape[3]) != (n, nf, g.oh, g.ow):
        raise ValueError(f"out must have shape {(n, nf, g.oh, g.ow)}, got "
                         f"{(out.shape[0], out.shape[1], out.shape[2], out.shape[3])}")
    num_threads = min(num_threads, n)
    cdef Py_ssize_t per_thread = g.fwd_floats
    cdef void* raw = NULL
    cdef float* work = _pages(&raw, num_threads * per_thread)
    cdef Py_ssize_t* off = <Py_ssize_t*>malloc(g.kpad * sizeof(Py_ssize_t))
    cdef Py_ssize_t i
    try:
        if work == NULL or off == NULL:
            raise MemoryError("direct convolution: cannot allocate the image buffers")
        fnn_direct_offsets(&g, off)
        with nogil, parallel(num_threads=num_threads):
            for i in prange(n, schedule="dynamic"):
                fnn_direct_forward_image(&g, off, &x[i, 0, 0, 0], &w[0, 0, 0, 0], &b[0], nf,
                                         &out[i, 0, 0, 0], work + threadid() * per_thread)
    finally:
        free(raw)
        free(off)


def backward_weights(
    const float[:, :, :, ::1] dout,   # IN  (N, F, H + 2*pad - fh + 1, W + 2*pad - fw + 1)
    const float[:, :, :, ::1] x,      # IN  (N, C, H, W)
    float[:, :, :, ::1] dw,           # OUT (F, C, fh, fw)
    float[::1] db,                    # OUT (F,)
    int pad,
    int num_threads,
):
    """``dw``, ``db`` = the filter and bias gradients of :func:`forward` for ``dout``."""
    cdef fnn_direct_geom g
    cdef Py_ssize_t n = x.shape[0], nf = dw.shape[0]
    _check(n, x.shape[1], x.shape[2], x.shape[3],
           (dw.shape[0], dw.shape[1], dw.shape[2], dw.shape[3]), pad, num_threads, &g)
    if (dout.shape[0], dout.shape[1], dout.shape[2], dout.shape[3]) != (n, nf, g.oh, g.ow):
        raise ValueError(f"dout must have shape {(n, nf, g.oh, g.ow)}, got "
                         f"{(dout.shape[0], dout.shape[1], dout.shape[2], dout.shape[3])}")
    if db.shape[0] != nf:
        raise ValueError(f"db must have shape ({nf},), got ({db.shape[0]},)")
    num_threads = min(num_threads, n)
    cdef Py_ssize_t lanes = FNN_DIRECT_LANES
    cdef Py_ssize_t sbuf = g.dw_floats
    cdef Py_ssize_t sacc = nf * g.kpad * lanes, sdb = nf * lanes
    cdef Py_ssize_t per_thread = (sbuf + sacc + sdb + 1023) // 1024 * 1024
    cdef void* raw = NULL
    cdef float* work = _pages(&raw, num_threads * per_thread)
    cdef Py_ssize_t* off = <Py_ssize_t*>malloc(g.kpad * sizeof(Py_ssize_t))
    cdef Py_ssize_t i, e, f, t, j, l
    cdef float* mine
    cdef const float* a
    cdef double s
    cdef float* dw_flat = &dw[0, 0, 0, 0]
    try:
        if work == NULL or off == NULL:
            raise MemoryError("direct convolution: cannot allocate the image buffers")
        fnn_direct_offsets(&g, off)
        with nogil, parallel(num_threads=num_threads):
            # static: each thread sums the same images in the same order, run after run
            for i in prange(n, schedule="static"):
                mine = work + threadid() * per_thread
                fnn_direct_dw_image(&g, off, &dout[i, 0, 0, 0], &x[i, 0, 0, 0], nf, mine,
                                    mine + sbuf, mine + sbuf + sacc)
            _barrier()
            # every (filter, tap) and bias: threads in order, lanes in order, in double
            for e in prange(nf * (g.k + 1), schedule="static"):
                f = e // (g.k + 1)
                t = e - f * (g.k + 1)
                s = 0
                for j in range(num_threads):
                    if t < g.k:
                        a = work + j * per_thread + sbuf + (f * g.kpad + t) * lanes
                    else:
                        a = work + j * per_thread + sbuf + sacc + f * lanes
                    for l in range(lanes):
                        s = s + a[l]
                if t < g.k:
                    dw_flat[f * g.k + t] = <float>s
                else:
                    db[f] = <float>s
    finally:
        free(raw)
        free(off)
