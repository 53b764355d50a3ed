# cython: language_level=3
"""Pooling kernels: max, average and global average pooling, forward and backward.

Every array is seen as a stack of P = N * C planes (``x`` (P, H, W), pooled maps (P, Ho, Wo)),
and threads take whole planes (``prange`` over P), so no two threads ever write the same
element and the backward scatter needs no atomics.

- max pooling keeps, per window, the first maximum in row-major window order (like torch and
  ``np.argmax``); a NaN counts as larger than every number and the last NaN of a window wins,
  exactly torch's CPU rule (``val > maxval || isnan(val)``), so NaN propagates as in torch and
  its gradient goes where torch sends it. ``argmax`` holds the index of the winner in the
  flattened H*W plane.
- Non-overlapping 2x2 stride-2 windows (the common case) and 3x3 windows (any stride) have
  unrolled, branch-free forward loops.
- The max-pool backward zeroes each plane (memset) and scatter-adds ``dout`` at ``argmax``:
  correct for any indices (overlapping windows add up) and, measured on (64, 32, 32, 32), several
  times faster than writing each 2x2 block directly (interleaved scalar stores into two rows).
  Indices outside [0, H*W) are never written: the plane is flagged and the entry point raises
  after the parallel region. The average-pool backward writes tiling windows directly.

The wrapper (``fastnn.kernels.pool``) validates everything and allocates every output; these
entry points still refuse inconsistent shapes and thread counts below 1 before releasing the GIL.
"""

import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy, memset

ctypedef fused floating:
    float
    double


cdef int _check_geometry(Py_ssize_t h, Py_ssize_t w, Py_ssize_t ph, Py_ssize_t pw,
                         Py_ssize_t stride, Py_ssize_t ho, Py_ssize_t wo, str pooled_name,
                         int num_threads) except -1:
    """Window inside the plane, the pooled map exactly (H - ph) / stride + 1 by ..., threads >= 1."""
    if h < 1 or w < 1:
        raise ValueError(f"planes must be at least 1x1, got {h}x{w}")
    if ph < 1 or pw < 1 or stride < 1:
        raise ValueError(f"pool_height, pool_width and stride must be >= 1, got {ph}, {pw}, "
                         f"{stride}")
    if ph > h or pw > w or (h - ph) % stride or (w - pw) % stride:
        raise ValueError(f"a {ph}x{pw} window with stride {stride} does not tile a {h}x{w} plane")
    if ho != (h - ph) // stride + 1 or wo != (w - pw) // stride + 1:
        raise ValueError(f"{pooled_name} must be {(h - ph) // stride + 1}x"
                         f"{(w - pw) // stride + 1} per plane, got {ho}x{wo}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return 0


cdef int _check_planes(Py_ssize_t p, Py_ssize_t p2, str name) except -1:
    if p != p2:
        raise ValueError(f"{name} must have {p2} planes, got {p}")
    return 0


cdef inline bint _beats(floating v, floating m) noexcept nogil:
    """v replaces the running maximum m: strictly larger, or a NaN (so the last NaN of a
    window wins, as in torch). A bitwise operator, not a short-circuit one, so the callers
    compile to selects instead of unpredictable branches."""
    return (v > m) | (v != v)


# ----------------------------------------------------------------------------- max pooling
cdef void _max_plane_2x2(const floating* x, Py_ssize_t w, Py_ssize_t ho, Py_ssize_t wo,
                         floating* out, int64_t* arg) noexcept nogil:
    """Non-overlapping 2x2 stride-2 windows of one plane, as a tournament: the winner of
    (top-left, top-right) against the winner of (bottom-left, bottom-right), ties keeping the
    earlier element (so: the row-major first maximum). Branch-free (random data makes every
    comparison a coin flip): ``m = v if v > m else m`` compiles to maxss, and comparisons as
    0/1 integers move the index. NaN-free rows take this path; a row pair holding a NaN is
    redone by :func:`_max_plane`, which applies the NaN rule."""
    cdef Py_ssize_t i, j, pb, pd, pbot, kt, kb
    cdef const floating* r0
    cdef const floating* r1
    cdef floating a, b, c, d, top, bottom
    cdef bint nan
    for i in range(ho):
        r0 = x + 2 * i * w
        r1 = r0 + w
        nan = False
        for j in range(wo):
            a = r0[2 * j]
            b = r0[2 * j + 1]
            c = r1[2 * j]
            d = r1[2 * j + 1]
            nan = nan | (a != a) | (b != b) | (c != c) | (d != d)
            pb = b > a
            pd = d > c
            top = b if b > a else a
            bottom = d if d > c else c
            pbot = bottom > top
            kt = 2 * j + pb
            kb = w + 2 * j + pd
            out[i * wo + j] = bottom if bottom > top else top
            arg[i * wo + j] = 2 * i * w + kt + pbot * (kb - kt)
        if nan:
            _max_plane(r0, w, 2, 2, 2, 1, wo, out + i * wo, arg + i * wo)
            for j in range(wo):
                arg[i * wo + j] += 2 * i * w


cdef void _max_window_exact(const floating* x, Py_ssize_t w, Py_ssize_t ph, Py_ssize_t pw,
                            floating* out, int64_t* arg) noexcept nogil:
    """One window starting at x[0], scanned in row-major order with the NaN rule (the
    specification of the tie and NaN rules; ``arg`` relative to x)."""
    cdef Py_ssize_t a, b, idx
    cdef floating m = x[0], v
    cdef int64_t k = 0
    for a in range(ph):
        for b in range(pw):
            idx = a * w + b
            v = x[idx]
            if _beats(v, m):
                m = v
                k = idx
    out[0] = m
    arg[0] = k


cdef inline void _take(floating v, Py_ssize_t idx, floating* m, Py_ssize_t* k) noexcept nogil:
    """Running maximum of a row-major scan, branch-free: v replaces m only when larger."""
    k[0] = k[0] + (v > m[0]) * (idx - k[0])
    m[0] = v if v > m[0] else m[0]


cdef void _max_plane_3x3(const floating* x, Py_ssize_t w, Py_ssize_t stride, Py_ssize_t ho,
                         Py_ssize_t wo, floating* out, int64_t* arg) noexcept nogil:
    """3x3 windows with any stride (3x3 stride 2 is the common overlapping pool), the nine
    elements of each window scanned unrolled in row-major order with :func:`_take`; an output
    row whose windows hold a NaN is redone by :func:`_max_window_exact`."""
    cdef Py_ssize_t i, j, start, k
    cdef const floating* p
    cdef floating m, v
    cdef bint nan
    for i in range(ho):
        nan = False
        for j in range(wo):
            start = i * stride * w + j * stride
            p = x + start
            m = p[0]
            k = 0
            nan = nan | (m != m)
            v = p[1]
            nan = nan | (v != v)
            _take(v, 1, &m, &k)
            v = p[2]
            nan = nan | (v != v)
            _take(v, 2, &m, &k)
            v = p[w]
            nan = nan | (v != v)
            _take(v, w, &m, &k)
            v = p[w + 1]
            nan = nan | (v != v)
            _take(v, w + 1, &m, &k)
            v = p[w + 2]
            nan = nan | (v != v)
            _take(v, w + 2, &m, &k)
            v = p[2 * w]
            nan = nan | (v != v)
            _take(v, 2 * w, &m, &k)
            v = p[2 * w + 1]
            nan = nan | (v != v)
            _take(v, 2 * w + 1, &m, &k)
            v = p[2 * w + 2]
            nan = nan | (v != v)
            _take(v, 2 * w + 2, &m, &k)
            out[i * wo + j] = m
            arg[i * wo + j] = start + k
        if nan:
            for j in range(wo):
                start = i * stride * w + j * stride
                _max_window_exact(x + start, w, 3, 3, out + i * wo + j, arg + i * wo + j)
                arg[i * wo + j] += start


cdef void _max_plane(const floating* x, Py_ssize_t w, Py_ssize_t ph, Py_ssize_t pw,
                     Py_ssize_t stride, Py_ssize_t ho, Py_ssize_t wo, floating* out,
                     int64_t* arg) noexcept nogil:
    """Any window and stride (overlapping allowed) over one plane, one output row at a time:
    the row's running maxima live in ``out``/``arg`` and every window offset (a, b), in
    row-major order, updates all Wo of them in one long loop (instead of Wo short window
    loops). Replacing only on strictly larger keeps the first maximum. The update is
    branch-free (maxss for the value, a 0/1 integer moving the index); an output row whose
    windows hold a NaN is redone by :func:`_max_window_exact`."""
    cdef Py_ssize_t i, j, a, b, base, idx, better
    cdef floating v, m
    cdef floating* o
    cdef int64_t* k
    cdef bint nan
    for i in range(ho):
        o = out + i * wo
        k = arg + i * wo
        base = i * stride * w
        for j in range(wo):
            o[j] = x[base + j * stride]
            k[j] = base + j * stride
        nan = False
        for a in range(ph):
            for b in range(pw):
                for j in range(wo):
                    idx = base + a * w + j * stride + b
                    v = x[idx]
                    m = o[j]
                    nan = nan | (v != v)
                    better = v > m
                    k[j] = k[j] + better * (idx - k[j])
                    o[j] = v if v > m else m
        if nan:
            for j in range(wo):
                _max_window_exact(x + base + j * stride, w, ph, pw, o + j, k + j)
                k[j] += base + j * stride


def max_pool_forward(
    const floating[:, :, ::1] x,   # IN  (P, H, W)
    Py_ssize_t pool_height,
    Py_ssize_t pool_width,
    Py_ssize_t stride,
    floating[:, :, ::1] out,       # OUT (P, Ho, Wo)
    int64_t[:, :, ::1] argmax,     # OUT (P, Ho, Wo) index of the maximum in the H*W plane
    int num_threads,
):
    """Max pooling of every plane with its argmax."""
    cdef Py_ssize_t p = x.shape[0], h = x.shape[1], w = x.shape[2]
    cdef Py_ssize_t ho = out.shape[1], wo = out.shape[2], q
    _check_geometry(h, w, pool_height, pool_width, stride, ho, wo, "out", num_threads)
    _check_planes(out.shape[0], p, "out")
    _check_planes(argmax.shape[0], p, "argmax")
    if argmax.shape[1] != ho or argmax.shape[2] != wo:
        raise ValueError(f"argmax must be {ho}x{wo} per plane like out")
    cdef bint tile2 = pool_height == 2 and pool_width == 2 and stride == 2
    for q in prange(p, nogil=True, num_threads=num_threads, schedule="static"):
        if tile2:
            _max_plane_2x2(&x[q, 0, 0], w, ho, wo, &out[q, 0, 0], &argmax[q, 0, 0])
        elif pool_height == 3 and pool_width == 3:
            _max_plane_3x3(&x[q, 0, 0], w, stride, ho, wo, &out[q, 0, 0], &argmax[q, 0, 0])
        else:
            _max_plane(&x[q, 0, 0], w, pool_height, pool_width, stride, ho, wo,
                       &out[q, 0, 0], &argmax[q, 0, 0])


cdef bint _max_back_scatter(const floating* g, const int64_t* arg, Py_ssize_t hw,
                            Py_ssize_t n_out, floating* dx) noexcept nogil:
    """dx = 0, then dx[arg] += g; False (nothing written out of range) on an index outside
    [0, hw)."""
    cdef Py_ssize_t t
    cdef int64_t k
    memset(dx, 0, hw * sizeof(floating))
    for t in range(n_out):
        k = arg[t]
        if k < 0 or k >= hw:
            return False
        dx[k] += g[t]
    return True


def max_pool_backward(
    const floating[:, :, ::1] dout,   # IN  (P, Ho, Wo)
    const int64_t[:, :, ::1] argmax,  # IN  (P, Ho, Wo)
    floating[:, :, ::1] dx,           # OUT (P, H, W)
    int num_threads,
):
    """dx[p].flat[argmax[p]] += dout[p] for every plane p (overlapping windows add up).

    Raises ValueError (after the parallel region, nothing written out of bounds) when an index
    lies outside [0, H*W).
    """
    cdef Py_ssize_t p = dout.shape[0], ho = dout.shape[1], wo = dout.shape[2]
    cdef Py_ssize_t h = dx.shape[1], w = dx.shape[2], q
    _check_planes(argmax.shape[0], p, "argmax")
    _check_planes(dx.shape[0], p, "dx")
    if argmax.shape[1] != ho or argmax.shape[2] != wo:
        raise ValueError(f"argmax must have the shape of dout ({ho}x{wo} per plane), got "
                         f"{argmax.shape[1]}x{argmax.shape[2]}")
    if h < 1 or w < 1 or ho < 1 or wo < 1:
        raise ValueError(f"planes must not be empty, got dx {h}x{w} and dout {ho}x{wo}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    cdef uint8_t[::1] bad = np.zeros(p, dtype=np.uint8)
    for q in prange(p, nogil=True, num_threads=num_threads, schedule="static"):
        if not _max_back_scatter(&dout[q, 0, 0], &argmax[q, 0, 0], h * w, ho * wo,
                                 &dx[q, 0, 0]):
            bad[q] = 1
    for q in range(p):
        if bad[q]:
            raise ValueError(f"argmax must hold indices in [0, {h * w}) (the flattened "
                             f"{h}x{w} plane); plane {q} has one outside")


# ------------------------------------------------------------------------- average pooling
cdef void _avg_plane_2x2(const floating* x, Py_ssize_t w, Py_ssize_t ho, Py_ssize_t wo,
                         floating* out) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef const floating* r0
    cdef const floating* r1
    for i in range(ho):
        r0 = x + 2 * i * w
        r1 = r0 + w
        for j in range(wo):
            out[i * wo + j] = <floating>(
                ((<double>r0[2 * j] + r0[2 * j + 1]) + (<double>r1[2 * j] + r1[2 * j + 1]))
                * 0.25)


cdef void _avg_plane(const floating* x, Py_ssize_t w, Py_ssize_t ph, Py_ssize_t pw,
                     Py_ssize_t stride, Py_ssize_t ho, Py_ssize_t wo,
                     floating* out) noexcept nogil:
    cdef Py_ssize_t i, j, a, b, start
    cdef double s
    cdef double area = <double>(ph * pw)
    for i in range(ho):
        for j in range(wo):
            start = i * stride * w + j * stride
            s = 0.0
            for a in range(ph):
                for b in range(pw):
                    s = s + x[start + a * w + b]
            out[i * wo + j] = <floating>(s / area)


def avg_pool_forward(
    const floating[:, :, ::1] x,   # IN  (P, H, W)
    Py_ssize_t pool_height,
    Py_ssize_t pool_width,
    Py_ssize_t stride,
    floating[:, :, ::1] out,       # OUT (P, Ho, Wo)
    int num_threads,
):
    """Mean of every window (sums in double)."""
    cdef Py_ssize_t p = x.shape[0], h = x.shape[1], w = x.shape[2]
    cdef Py_ssize_t ho = out.shape[1], wo = out.shape[2], q
    _check_geometry(h, w, pool_height, pool_width, stride, ho, wo, "out", num_threads)
    _check_planes(out.shape[0], p, "out")
    cdef bint tile2 = pool_height == 2 and pool_width == 2 and stride == 2
    for q in prange(p, nogil=True, num_threads=num_threads, schedule="static"):
        if tile2:
            _avg_plane_2x2(&x[q, 0, 0], w, ho, wo, &out[q, 0, 0])
        else:
            _avg_plane(&x[q, 0, 0], w, pool_height, pool_width, stride, ho, wo, &out[q, 0, 0])


cdef void _avg_back_plane(const floating* g, Py_ssize_t h, Py_ssize_t w, Py_ssize_t ph,
                          Py_ssize_t pw, Py_ssize_t stride, Py_ssize_t ho, Py_ssize_t wo,
                          floating* dx) noexcept nogil:
    """Each window receives dout / (ph * pw). Tiling windows (stride == window): the first row
    of each band of windows is written in order, then copied to the band's other rows
    (sequential stores; on the test machine interleaved stores into two rows ran several times
    slower). Other strides: zero the plane, then add window by window."""
    cdef Py_ssize_t i, j, a, b, start
    cdef floating v
    cdef floating* row
    cdef double area = <double>(ph * pw)
    if stride == ph and stride == pw:
        for i in range(ho):
            row = dx + i * ph * w
            for j in range(wo):
                v = <floating>(g[i * wo + j] / area)
                for b in range(pw):
                    row[j * pw + b] = v
            for a in range(1, ph):
                memcpy(row + a * w, row, w * sizeof(floating))
        return
    memset(dx, 0, h * w * sizeof(floating))
    for i in range(ho):
        for j in range(wo):
            v = <floating>(g[i * wo + j] / area)
            start = i * stride * w + j * stride
            for a in range(ph):
                for b in range(pw):
                    dx[start + a * w + b] += v


def avg_pool_backward(
    const floating[:, :, ::1] dout,   # IN  (P, Ho, Wo)
    Py_ssize_t pool_height,
    Py_ssize_t pool_width,
    Py_ssize_t stride,
    floating[:, :, ::1] dx,           # OUT (P, H, W)
    int num_threads,
):
    """Gradient of average pooling: every window's share dout / (ph * pw), summed."""
    cdef Py_ssize_t p = dout.shape[0], h = dx.shape[1], w = dx.shape[2], q
    _check_geometry(h, w, pool_height, pool_width, stride, dout.shape[1], dout.shape[2],
                    "dout", num_threads)
    _check_planes(dx.shape[0], p, "dx")
    for q in prange(p, nogil=True, num_threads=num_threads, schedule="static"):
        _avg_back_plane(&dout[q, 0, 0], h, w, pool_height, pool_width, stride,
                        dout.shape[1], dout.shape[2], &dx[q, 0, 0])


# ------------------------------------------------------------------ global average pooling
def global_avg_pool_forward(
    const floating[:, ::1] x,   # IN  (P, H*W)
    floating[::1] out,          # OUT (P,)
    int num_threads,
):
    """Mean of every plane, four double accumulators (one long chain is latency-bound)."""
    cdef Py_ssize_t p = x.shape[0], hw = x.shape[1], q, t
    _check_planes(out.shape[0], p, "out")
    if hw < 1 or num_threads < 1:
        raise ValueError(f"planes must not be empty and num_threads >= 1, got {hw}, "
                         f"{num_threads}")
    cdef double s0, s1, s2, s3
    cdef const floating* row
    for q in prange(p, nogil=True, num_threads=num_threads, schedule="static"):
        row = &x[q, 0]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        t = 0
        while t + 4 <= hw:
            s0 = s0 + row[t]
            s1 = s1 + row[t + 1]
            s2 = s2 + row[t + 2]
            s3 = s3 + row[t + 3]
            t = t + 4
        while t < hw:
            s0 = s0 + row[t]
            t = t + 1
        out[q] = <floating>(((s0 + s1) + (s2 + s3)) / hw)


def global_avg_pool_backward(
    const floating[::1] dout,   # IN  (P,)
    floating[:, ::1] dx,        # OUT (P, H*W)
    int num_threads,
):
    """Every element of plane p receives dout[p] / (H*W)."""
    cdef Py_ssize_t p = dout.shape[0], hw = dx.shape[1], q, t
    _check_planes(dx.shape[0], p, "dx")
    if hw < 1 or num_threads < 1:
        raise ValueError(f"planes must not be empty and num_threads >= 1, got {hw}, "
                         f"{num_threads}")
    cdef floating v
    for q in prange(p, nogil=True, num_threads=num_threads, schedule="static"):
        v = <floating>(dout[q] / <double>hw)
        for t in range(hw):
            dx[q, t] = v
