# cython: language_level=3
"""im2col / col2im kernels for convolution (stride, zero padding, dilation, any kernel size).

``im2col`` copies the receptive fields of images ``n0 .. n1-1`` of ``x`` (N, C, H, W) into the
rows of ``cols``: row ``c*fh*fw + i*fw + j`` holds, for every image ``b = n - n0`` and output
position ``p = oh*out_w + ow``, the input pixel ``x[n, c, oh*stride - pad + i*dilation,
ow*stride - pad + j*dilation]`` (0 outside the image) at column ``b*col_stride_n +
p*col_stride_p``. The two column strides give both layouts in use:

- CS231n's ``im2col_indices`` layout (column ``p*N + n``): ``col_stride_n=1, col_stride_p=N``
  (filled row by row, images innermost, so the writes are contiguous);
- the convolution's chunk workspace (column ``b*P + p``): ``col_stride_n=P, col_stride_p=1``,
  where each (row, image) run of ``P`` columns is contiguous, so a row of an input plane is
  copied with unit strides on both sides (and the BLAS product then covers the whole chunk).

``col2im`` is the adjoint: it writes the planes ``dx[n0:n1]`` as the sum of every column entry
that ``im2col`` would have read from each pixel (overlapping windows add up).

Threads take (image, channel) planes: each plane of ``dx`` (and each block of rows of ``cols``
for one image) belongs to exactly one of them, so no two threads ever write the same element.
The valid output columns of each kernel offset are computed once, so the inner loops have no
bounds tests. Every entry re-checks sizes, index ranges and ``num_threads >= 1`` before
releasing the GIL.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport free, malloc
from libc.string cimport memset

ctypedef fused floating:
    float
    double


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """ceil(a / b) for b > 0 and any sign of a (C division truncates towards zero)."""
    if a >= 0:
        return (a + b - 1) // b
    return -((-a) // b)


cdef inline Py_ssize_t _clip(Py_ssize_t v, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


cdef int _check_geometry(
    Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w,
    Py_ssize_t rows, Py_ssize_t ncols, Py_ssize_t n0, Py_ssize_t n1,
    int fh, int fw, int pad, int stride, int dilation, Py_ssize_t out_h, Py_ssize_t out_w,
    Py_ssize_t col_stride_n, Py_ssize_t col_stride_p, int num_threads,
) except -1:
    """Everything the loops rely on for in-bounds access."""
    if n < 1 or c < 1 or h < 1 or w < 1:
        raise ValueError(f"image array must have positive sizes, got ({n}, {c}, {h}, {w})")
    if fh < 1 or fw < 1 or stride < 1 or dilation < 1 or pad < 0:
        raise ValueError(f"need field sizes, stride, dilation >= 1 and pad >= 0, got "
                         f"{fh}, {fw}, {stride}, {dilation}, {pad}")
    if out_h != (h + 2 * pad - dilation * (fh - 1) - 1) // stride + 1 or out_h < 1 or \
            out_w != (w + 2 * pad - dilation * (fw - 1) - 1) // stride + 1 or out_w < 1:
        raise ValueError(f"output size ({out_h}, {out_w}) does not match the geometry")
    if not 0 <= n0 < n1 <= n:
        raise ValueError(f"image range [{n0}, {n1}) not inside [0, {n})")
    if rows != c * fh * fw:
        raise ValueError(f"cols must have {c * fh * fw} rows, got {rows}")
    if col_stride_n < 0 or col_stride_p < 1:
        raise ValueError(f"bad column strides {col_stride_n}, {col_stride_p}")
    if (n1 - n0 - 1) * col_stride_n + (out_h * out_w - 1) * col_stride_p >= ncols:
        raise ValueError(f"cols has {ncols} columns, too few for the requested layout")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return 0


cdef void _im2col_plane(
    const floating* xp, floating* cols, Py_ssize_t ld, Py_ssize_t row0,
    Py_ssize_t h, Py_ssize_t w, int fh, int fw, int pad, int stride, int dilation,
    Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t sp,
) noexcept nogil:
    """Rows row0 .. row0+fh*fw-1 of one image plane ``xp`` (H, W); ``cols`` points at this
    image's first column, ``ld`` is the row length of the column matrix."""
    cdef Py_ssize_t i, j, oh, ow, hh, lo, hi, off
    cdef floating* dst
    cdef const floating* src
    for i in range(fh):
        for j in range(fw):
            dst = cols + (row0 + i * fw + j) * ld
            off = j * dilation - pad
            # output columns whose input column ow*stride + off lies in [0, w)
            lo = _clip(_ceil_div(-off, stride), 0, out_w)
            hi = _clip(_ceil_div(w - off, stride), lo, out_w)
            for oh in range(out_h):
                hh = oh * stride - pad + i * dilation
                if hh < 0 or hh >= h:
                    for ow in range(out_w):
                        dst[ow * sp] = 0
                else:
                    src = xp + hh * w
                    for ow in range(lo):
                        dst[ow * sp] = 0
                    if sp == 1 and stride == 1:
                        for ow in range(lo, hi):
                            dst[ow] = src[ow + off]
                    else:
                        for ow in range(lo, hi):
                            dst[ow * sp] = src[ow * stride + off]
                    for ow in range(hi, out_w):
                        dst[ow * sp] = 0
                dst += out_w * sp


cdef void _im2col_row_images_inner(
    const floating* x, floating* dst, Py_ssize_t nimg, Py_ssize_t image_size,
    Py_ssize_t h, Py_ssize_t w, Py_ssize_t i, Py_ssize_t j, int pad, int stride, int dilation,
    Py_ssize_t out_h, Py_ssize_t out_w,
) noexcept nogil:
    """One row (kernel tap (i, j) of the channel plane ``x`` of the first image) in CS231n's
    layout, images innermost: ``dst[p*nimg + n]``. One output row (out_w * nimg entries, a
    block that stays in L1) at a time, each image's input row read contiguously."""
    cdef Py_ssize_t oh, ow, hh, k, lo, hi, off = j * dilation - pad
    cdef const floating* src
    lo = _clip(_ceil_div(-off, stride), 0, out_w)
    hi = _clip(_ceil_div(w - off, stride), lo, out_w)
    for oh in range(out_h):
        hh = oh * stride - pad + i * dilation
        if hh < 0 or hh >= h:
            for k in range(out_w * nimg):
                dst[k] = 0
        else:
            for k in range(lo * nimg):
                dst[k] = 0
            for k in range(hi * nimg, out_w * nimg):
                dst[k] = 0
            for k in range(nimg):
                src = x + k * image_size + hh * w + off
                for ow in range(lo, hi):
                    dst[ow * nimg + k] = src[ow * stride]
        dst += out_w * nimg


cdef void _col2im_channel_images_inner(
    const floating* cols, Py_ssize_t ld, floating* dx, Py_ssize_t nimg, Py_ssize_t image_size,
    Py_ssize_t h, Py_ssize_t w, int fh, int fw, int pad, int stride, int dilation,
    Py_ssize_t out_h, Py_ssize_t out_w,
) noexcept nogil:
    """Adjoint of the above for the fh*fw rows of one channel (``cols`` at its first row,
    ``dx`` at its plane in the first image): the planes of every image are overwritten."""
    cdef Py_ssize_t i, j, oh, ow, hh, k, e, lo, hi, off
    cdef const floating* src
    cdef floating* d
    for k in range(nimg):
        for e in range(h * w):
            dx[k * image_size + e] = 0
    for i in range(fh):
        for j in range(fw):
            src = cols + (i * fw + j) * ld
            off = j * dilation - pad
            lo = _clip(_ceil_div(-off, stride), 0, out_w)
            hi = _clip(_ceil_div(w - off, stride), lo, out_w)
            for oh in range(out_h):
                hh = oh * stride - pad + i * dilation
                if 0 <= hh < h:
                    for k in range(nimg):
                        d = dx + k * image_size + hh * w + off
                        for ow in range(lo, hi):
                            d[ow * stride] += src[ow * nimg + k]
                src += out_w * nimg


cdef void _col2im_plane(
    const floating* cols, floating* dxp, Py_ssize_t ld, Py_ssize_t row0,
    Py_ssize_t h, Py_ssize_t w, int fh, int fw, int pad, int stride, int dilation,
    Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t sp,
) noexcept nogil:
    """dxp (H, W) = sum of the rows row0 .. row0+fh*fw-1 scattered back (adjoint of the above)."""
    cdef Py_ssize_t i, j, oh, ow, hh, lo, hi, off, k
    cdef const floating* src
    cdef floating* dst
    for k in range(h * w):
        dxp[k] = 0
    for i in range(fh):
        for j in range(fw):
            src = cols + (row0 + i * fw + j) * ld
            off = j * dilation - pad
            lo = _clip(_ceil_div(-off, stride), 0, out_w)
            hi = _clip(_ceil_div(w - off, stride), lo, out_w)
            for oh in range(out_h):
                hh = oh * stride - pad + i * dilation
                if 0 <= hh < h:
                    dst = dxp + hh * w
                    if sp == 1 and stride == 1:
                        for ow in range(lo, hi):
                            dst[ow + off] += src[ow]
                    else:
                        for ow in range(lo, hi):
                            dst[ow * stride + off] += src[ow * sp]
                src += out_w * sp


def im2col(
    const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
    floating[:, ::1] cols,            # OUT (C*fh*fw, ncols)
    Py_ssize_t n0, Py_ssize_t n1,
    int fh, int fw, int pad, int stride, int dilation,
    Py_ssize_t out_h, Py_ssize_t out_w,
    Py_ssize_t col_stride_n, Py_ssize_t col_stride_p,
    int num_threads,
):
    """Receptive fields of images n0 .. n1-1 into ``cols`` (layout in the module doc)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    _check_geometry(n, c, h, w, cols.shape[0], cols.shape[1], n0, n1, fh, fw, pad, stride,
                    dilation, out_h, out_w, col_stride_n, col_stride_p, num_threads)
    cdef Py_ssize_t planes = (n1 - n0) * c, t, b, ch, kk = fh * fw
    cdef Py_ssize_t ld = cols.shape[1], nimg = n1 - n0, image_size = c * h * w
    if col_stride_n == 1 and col_stride_p == nimg:
        # CS231n's layout (images innermost): one thread per row, contiguous writes
        with nogil, parallel(num_threads=num_threads):
            for t in prange(c * kk, schedule="static"):
                ch = t // kk
                _im2col_row_images_inner(&x[n0, ch, 0, 0], &cols[t, 0], nimg, image_size, h, w,
                                         (t - ch * kk) // fw, (t - ch * kk) % fw, pad, stride,
                                         dilation, out_h, out_w)
        return
    with nogil, parallel(num_threads=num_threads):
        for t in prange(planes, schedule="static"):
            b = t // c
            ch = t - b * c
            _im2col_plane(&x[n0 + b, ch, 0, 0], &cols[0, 0] + b * col_stride_n, ld, ch * kk,
                          h, w, fh, fw, pad, stride, dilation, out_h, out_w, col_stride_p)


def col2im(
    const floating[:, ::1] cols,      # IN  (C*fh*fw, ncols)
    floating[:, :, :, ::1] dx,        # OUT (N, C, H, W): planes n0 .. n1-1 overwritten
    Py_ssize_t n0, Py_ssize_t n1,
    int fh, int fw, int pad, int stride, int dilation,
    Py_ssize_t out_h, Py_ssize_t out_w,
    Py_ssize_t col_stride_n, Py_ssize_t col_stride_p,
    int num_threads,
):
    """Adjoint of :func:`im2col`: ``dx[n0:n1]`` = the column entries summed back per pixel."""
    cdef Py_ssize_t n = dx.shape[0], c = dx.shape[1], h = dx.shape[2], w = dx.shape[3]
    _check_geometry(n, c, h, w, cols.shape[0], cols.shape[1], n0, n1, fh, fw, pad, stride,
                    dilation, out_h, out_w, col_stride_n, col_stride_p, num_threads)
    cdef Py_ssize_t planes = (n1 - n0) * c, t, b, ch, kk = fh * fw
    cdef Py_ssize_t ld = cols.shape[1], nimg = n1 - n0, image_size = c * h * w
    if col_stride_n == 1 and col_stride_p == nimg:
        # CS231n's layout: one thread per channel (its rows write only its planes)
        with nogil, parallel(num_threads=num_threads):
            for ch in prange(c, schedule="static"):
                _col2im_channel_images_inner(&cols[ch * kk, 0], ld, &dx[n0, ch, 0, 0], nimg,
                                             image_size, h, w, fh, fw, pad, stride, dilation,
                                             out_h, out_w)
        return
    with nogil, parallel(num_threads=num_threads):
        for t in prange(planes, schedule="static"):
            b = t // c
            ch = t - b * c
            _col2im_plane(&cols[0, 0] + b * col_stride_n, &dx[n0 + b, ch, 0, 0], ld, ch * kk,
                          h, w, fh, fw, pad, stride, dilation, out_h, out_w, col_stride_p)


# ------------------------------------------------ float32: one image per thread, AVX-512 product
from sgemm cimport fnn_sgemm, fnn_sgemm_available

#: True when the AVX-512 product is compiled in and the CPU has AVX-512F (per-image entries)
SGEMM_AVAILABLE = bool(fnn_sgemm_available())


cdef extern from *:
    """
    static void fnn_conv_barrier(void)
    {
    #ifdef _OPENMP
    #pragma omp barrier
    #endif
    }
    """
    void _barrier "fnn_conv_barrier" () nogil


cdef inline Py_ssize_t _round32(Py_ssize_t a) noexcept nogil:
    return (a + 31) // 32 * 32


cdef inline Py_ssize_t _out_len(Py_ssize_t size, int field, int pad, int stride,
                                int dilation) noexcept nogil:
    """Output positions along one side: (size + 2*pad - dilation*(field - 1) - 1) // stride + 1."""
    return (size + 2 * pad - dilation * (field - 1) - 1) // stride + 1


cdef int _check_images(Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, Py_ssize_t rows,
                       int fh, int fw, int pad, int stride, int dilation, int num_threads,
                       ) except -1:
    if not SGEMM_AVAILABLE:
        raise RuntimeError("the per-image float32 convolution needs AVX-512F (use the chunks)")
    cdef Py_ssize_t oh = _out_len(h, fh, pad, stride, dilation)
    cdef Py_ssize_t ow = _out_len(w, fw, pad, stride, dilation)
    # one image's columns: H'*W' of them, unit stride
    _check_geometry(n, c, h, w, rows, oh * ow, 0, n, fh, fw, pad, stride, dilation, oh, ow, 0,
                    1, num_threads)
    return 0


def conv_forward_images(
    const float[:, :, :, ::1] x,      # IN  (N, C, H, W)
    const float[:, ::1] w2,           # IN  (F, C*fh*fw)
    const float[::1] b,               # IN  (F,)
    float[:, :, :, ::1] out,          # OUT (N, F, H', W')
    int fh, int fw, int pad, int stride, int dilation,
    int num_threads,
):
    """``out[n] = w2 @ im2col(x[n]) + b`` with each image whole on one thread (its columns,
    C*fh*fw by H'*W' padded to a multiple of 32, stay in that thread's cache)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3]
    cdef Py_ssize_t f = w2.shape[0], rows = w2.shape[1], kk = fh * fw
    _check_images(n, c, h, wd, rows, fh, fw, pad, stride, dilation, num_threads)
    cdef Py_ssize_t oh = _out_len(h, fh, pad, stride, dilation)
    cdef Py_ssize_t ow = _out_len(wd, fw, pad, stride, dilation)
    if b.shape[0] != f:
        raise ValueError(f"b must have shape ({f},), got ({b.shape[0]},)")
    if (out.shape[0], out.shape[1], out.shape[2], out.shape[3]) != (n, f, oh, ow):
        raise ValueError(f"out must have shape {(n, f, oh, ow)}")
    cdef Py_ssize_t p = oh * ow, pp = _round32(p)
    num_threads = min(num_threads, n)
    cdef Py_ssize_t per_thread = rows * pp + f * pp
    cdef float* work = <float*>malloc(num_threads * per_thread * sizeof(float))
    cdef int failed = 0
    cdef int* failed_p = &failed
    cdef Py_ssize_t i, ch, k, q
    cdef float* cols
    cdef float* res
    cdef float* dst
    cdef float bias
    if work == NULL:
        raise MemoryError("conv_forward_images: cannot allocate the column buffers")
    try:
        with nogil, parallel(num_threads=num_threads):
            # the padding columns of every thread's columns: zeros (im2col writes the others)
            for i in prange(num_threads * rows, schedule="static"):
                if pp > p:
                    memset(work + (i // rows) * per_thread + (i % rows) * pp + p, 0,
                           (pp - p) * sizeof(float))
            _barrier()
            for i in prange(n, schedule="dynamic"):
                cols = work + threadid() * per_thread
                res = cols + rows * pp
                for ch in range(c):
                    _im2col_plane(&x[i, ch, 0, 0], cols, pp, ch * kk, h, wd, fh, fw, pad, stride,
                                  dilation, oh, ow, 1)
                if fnn_sgemm(f, pp, rows, &w2[0, 0], rows, 1, cols, pp, res, pp, 0):
                    failed_p[0] = 1
                for k in range(f):
                    bias = b[k]
                    dst = &out[i, k, 0, 0]
                    for q in range(p):
                        dst[q] = res[k * pp + q] + bias
    finally:
        free(work)
    if failed:
        raise MemoryError("conv_forward_images: sgemm could not allocate its packing buffer")


def conv_dw_images(
    const float[:, :, :, ::1] dout,   # IN  (N, F, H', W')
    const float[:, :, :, ::1] x,      # IN  (N, C, H, W)
    float[:, ::1] dw_t,               # OUT (C*fh*fw, F): the filter gradient, transposed
    int fh, int fw, int pad, int stride, int dilation,
    int num_threads,
):
    """``dw_t = sum_n im2col(x[n]) @ dout[n].T`` with each image whole on one thread: its
    columns and its dout transposed (H'*W' by F, padded to a multiple of 32 with zero columns)
    stay in that thread's cache; one accumulator per thread, summed at the end. (Writing the
    columns transposed instead, to multiply dout[n] by them, took longer: strided stores.)"""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3]
    cdef Py_ssize_t rows = dw_t.shape[0], f = dw_t.shape[1], kk = fh * fw
    _check_images(n, c, h, wd, rows, fh, fw, pad, stride, dilation, num_threads)
    cdef Py_ssize_t oh = _out_len(h, fh, pad, stride, dilation)
    cdef Py_ssize_t ow = _out_len(wd, fw, pad, stride, dilation)
    if (dout.shape[0], dout.shape[1], dout.shape[2], dout.shape[3]) != (n, f, oh, ow):
        raise ValueError(f"dout must have shape {(n, f, oh, ow)}")
    cdef Py_ssize_t p = oh * ow, fp = _round32(f)
    num_threads = min(num_threads, n)
    cdef Py_ssize_t per_thread = rows * p + p * fp + rows * fp
    cdef float* work = <float*>malloc(num_threads * per_thread * sizeof(float))
    cdef int failed = 0
    cdef int* failed_p = &failed
    cdef Py_ssize_t i, ch, k, q, j, e, t
    cdef float* cols
    cdef float* dt
    cdef float* acc
    cdef const float* src
    if work == NULL:
        raise MemoryError("conv_dw_images: cannot allocate the column buffers")
    try:
        with nogil, parallel(num_threads=num_threads):
            # every thread's accumulator and the padding columns of its transposed dout: zeros
            for t in prange(num_threads, schedule="static"):
                dt = work + t * per_thread + rows * p
                acc = dt + p * fp
                if fp > f:
                    for q in range(p):
                        memset(dt + q * fp + f, 0, (fp - f) * sizeof(float))
                memset(acc, 0, rows * fp * sizeof(float))
            _barrier()
            # static: each thread sums the same images in the same order, run after run
            for i in prange(n, schedule="static"):
                cols = work + threadid() * per_thread
                dt = cols + rows * p
                acc = dt + p * fp
                for ch in range(c):
                    _im2col_plane(&x[i, ch, 0, 0], cols, p, ch * kk, h, wd, fh, fw, pad, stride,
                                  dilation, oh, ow, 1)
                for k in range(f):
                    src = &dout[i, k, 0, 0]
                    for q in range(p):
                        dt[q * fp + k] = src[q]
                if fnn_sgemm(rows, fp, p, cols, p, 1, dt, fp, acc, fp, 1):
                    failed_p[0] = 1
            _barrier()
            for e in prange(rows * f, schedule="static"):
                q = e // f
                k = e - q * f
                dw_t[q, k] = 0
                for j in range(num_threads):
                    dw_t[q, k] += work[j * per_thread + rows * p + p * fp + q * fp + k]
    finally:
        free(work)
    if failed:
        raise MemoryError("conv_dw_images: sgemm could not allocate its packing buffer")


def conv_dx_images(
    const float[:, :, :, ::1] dout,   # IN  (N, F, H', W')
    const float[:, ::1] w2,           # IN  (F, C*fh*fw)
    float[:, :, :, ::1] dx,           # OUT (N, C, H, W)
    int fh, int fw, int pad, int stride, int dilation,
    int num_threads,
):
    """``dx[n] = col2im(w2.T @ dout[n])`` with each image whole on one thread (dout[n] copied
    into a buffer H'*W' padded to a multiple of 32 wide, the column gradient in that thread's
    cache)."""
    cdef Py_ssize_t n = dx.shape[0], c = dx.shape[1], h = dx.shape[2], wd = dx.shape[3]
    cdef Py_ssize_t f = w2.shape[0], rows = w2.shape[1], kk = fh * fw
    _check_images(n, c, h, wd, rows, fh, fw, pad, stride, dilation, num_threads)
    cdef Py_ssize_t oh = _out_len(h, fh, pad, stride, dilation)
    cdef Py_ssize_t ow = _out_len(wd, fw, pad, stride, dilation)
    if (dout.shape[0], dout.shape[1], dout.shape[2], dout.shape[3]) != (n, f, oh, ow):
        raise ValueError(f"dout must have shape {(n, f, oh, ow)}")
    cdef Py_ssize_t p = oh * ow, pp = _round32(p)
    num_threads = min(num_threads, n)
    cdef Py_ssize_t per_thread = f * pp + rows * pp
    cdef float* work = <float*>malloc(num_threads * per_thread * sizeof(float))
    cdef int failed = 0
    cdef int* failed_p = &failed
    cdef Py_ssize_t i, ch, k, q
    cdef float* dt
    cdef float* dcols
    cdef const float* src
    if work == NULL:
        raise MemoryError("conv_dx_images: cannot allocate the column buffers")
    try:
        with nogil, parallel(num_threads=num_threads):
            for i in prange(n, schedule="dynamic"):
                dt = work + threadid() * per_thread
                dcols = dt + f * pp
                for k in range(f):
                    src = &dout[i, k, 0, 0]
                    for q in range(p):
                        dt[k * pp + q] = src[q]
                    for q in range(p, pp):
                        dt[k * pp + q] = 0
                if fnn_sgemm(rows, pp, f, &w2[0, 0], 1, rows, dt, pp, dcols, pp, 0):
                    failed_p[0] = 1
                for ch in range(c):
                    _col2im_plane(dcols, &dx[i, ch, 0, 0], pp, ch * kk, h, wd, fh, fw, pad,
                                  stride, dilation, oh, ow, 1)
    finally:
        free(work)
    if failed:
        raise MemoryError("conv_dx_images: sgemm could not allocate its packing buffer")
