# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled distance kernels and fused k-nearest-neighbour search (``fastnn._ext._distances``).

Private module: call it through ``fastnn.kernels.pairwise_distances`` / ``knn_search``, which
validate shapes, dtypes, finiteness and contiguity first.  Every function here assumes C-contiguous
2-D inputs of one float dtype, at least one row and one column, and ``1 <= k <= len(Y)``.

Layout of the work
------------------
* L1 distances: the cache-blocked, register-tiled SIMD tile kernel lives in ``distances.h``
  (BLAS has no L1 product).  Here we split the output into tiles and run them with ``prange``;
  each thread owns one packing buffer, allocated once per parallel block.
* L2 distances: the cross term ``X @ Y.T`` is a matrix product, so the Python wrapper hands it to
  BLAS; this module supplies the squared row norms and the fused ``norms - 2 * dot, clamp, sqrt``
  pass (one sweep over the output instead of NumPy's four temporaries).
* k-NN search: per query row a bounded max-heap keeps the best k (distance, index) pairs, ordered
  lexicographically so ties go to the smaller training index.  For L1 the distance tiles and the
  selection are fused (a tile of distances never leaves the thread's cache-sized buffer).  For L2
  the approximate BLAS distances pick the candidates, which are then re-ranked with exactly
  computed distances (direct sum of squared differences in double precision).  The candidates
  are every point whose approximate distance is within a rigorous rounding-error bound of the
  k-th smallest one (see ``knn_select_l2``), so the result equals an exact ranking, ties to the
  smaller index, whatever the cancellation error of the expansion.
* When the norms show that the expansion could overflow, the wrapper uses ``l2_direct`` /
  ``knn_direct_l2`` instead: direct differences in double precision, no expansion.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.float cimport DBL_EPSILON, FLT_EPSILON
from libc.math cimport sqrt
from libc.stdlib cimport free, malloc

cdef extern from "distances.h" nogil:
    enum:
        FASTNN_L1_NC
        FASTNN_L1_KC
    void fastnn_l1_init()
    const char *fastnn_l1_isa()
    int fastnn_l1_force(const char *name)
    void fastnn_l1_tile_f32(const float *X, Py_ssize_t ldx, Py_ssize_t m,
                            const float *Y, Py_ssize_t ldy, Py_ssize_t n, Py_ssize_t d,
                            float *out, Py_ssize_t ldo, float *work)
    double fastnn_sq_norm_f32(const float *x, Py_ssize_t d)
    double fastnn_sq_norm_f64(const double *x, Py_ssize_t d)
    double fastnn_sq_dist_f32(const float *x, const float *y, Py_ssize_t d)
    double fastnn_sq_dist_f64(const double *x, const double *y, Py_ssize_t d)
    void fastnn_l1_tile_f64(const double *X, Py_ssize_t ldx, Py_ssize_t m,
                            const double *Y, Py_ssize_t ldy, Py_ssize_t n, Py_ssize_t d,
                            double *out, Py_ssize_t ldo, double *work)

fastnn_l1_init()

#: Y rows per L1 tile (the fused k-NN search scans the training set in tiles of this many rows).
L1_TILE_ROWS = FASTNN_L1_NC


def l1_isa() -> str:
    """Instruction set of the L1 tile kernel chosen for this CPU."""
    return fastnn_l1_isa().decode()


def force_l1_isa(name: str) -> None:
    """Use one L1 kernel variant (``"avx512f"``, ``"avx2"``, ``"baseline"``); for tests."""
    if fastnn_l1_force(name.encode()) != 0:
        raise ValueError(f"L1 kernel variant {name!r} is unknown or not supported by this CPU")


def reset_l1_isa() -> None:
    """Go back to the best L1 kernel variant for this CPU."""
    fastnn_l1_init()


# ----------------------------------------------------------------------------------------------
# small helpers (inner functions: nogil, no Python objects)

# Largest allocation we ask malloc for: Py_ssize_t arithmetic on sizes must never wrap around.
cdef Py_ssize_t _MAX_BYTES = (<Py_ssize_t> 1) << 62


def _checked_bytes(what, *factors):
    """Product of ``factors`` (Python ints: no wrap-around) as a byte count, or MemoryError."""
    total = 1
    for f in factors:
        total *= int(f)
    if total > _MAX_BYTES:
        raise MemoryError(f"the {what} would need {total} bytes, more than can be allocated")
    return total


cdef inline void _l1_tile(const floating *X, Py_ssize_t ldx, Py_ssize_t m,
                          const floating *Y, Py_ssize_t ldy, Py_ssize_t n, Py_ssize_t d,
                          floating *out, Py_ssize_t ldo, floating *work) noexcept nogil:
    # OUT: out[i*ldo + j] = sum_k |X[i, k] - Y[j, k]| for i < m, j < n (n <= FASTNN_L1_NC)
    if floating is float:
        fastnn_l1_tile_f32(X, ldx, m, Y, ldy, n, d, out, ldo, work)
    else:
        fastnn_l1_tile_f64(X, ldx, m, Y, ldy, n, d, out, ldo, work)


cdef inline double _sq_norm(const floating *x, Py_ssize_t d) noexcept nogil:
    # sum_k x[k]^2 in double precision (vectorised C in distances.h)
    if floating is float:
        return fastnn_sq_norm_f32(x, d)
    else:
        return fastnn_sq_norm_f64(x, d)


cdef inline double _sq_dist(const floating *x, const floating *y, Py_ssize_t d) noexcept nogil:
    # Direct sum of squared differences in double precision (used to re-rank candidates).
    if floating is float:
        return fastnn_sq_dist_f32(x, y, d)
    else:
        return fastnn_sq_dist_f64(x, y, d)


cdef inline bint _before(double a, Py_ssize_t ia, double b, Py_ssize_t ib) noexcept nogil:
    # Order of neighbours: by distance, then by training index (ties -> smaller index).
    return a < b or (a == b and ia < ib)


cdef inline void _sift_down(double *hd, Py_ssize_t *hi, Py_ssize_t pos,
                            Py_ssize_t size) noexcept nogil:
    # Restore the max-heap property below `pos` (root = the worst kept neighbour).
    cdef double vd = hd[pos]
    cdef Py_ssize_t vi = hi[pos], child
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and _before(hd[child], hi[child], hd[child + 1], hi[child + 1]):
            child += 1
        if not _before(vd, vi, hd[child], hi[child]):
            break
        hd[pos] = hd[child]
        hi[pos] = hi[child]
        pos = child
    hd[pos] = vd
    hi[pos] = vi


cdef inline Py_ssize_t _heap_push(double *hd, Py_ssize_t *hi, Py_ssize_t size, Py_ssize_t cap,
                                  double v, Py_ssize_t j) noexcept nogil:
    # Offer (v, j) to a bounded max-heap holding the best `cap` pairs; returns the new size.
    cdef Py_ssize_t pos, parent
    if size == cap:
        if _before(v, j, hd[0], hi[0]):
            hd[0] = v
            hi[0] = j
            _sift_down(hd, hi, 0, size)
        return size
    pos = size
    while pos > 0:
        parent = (pos - 1) // 2
        if not _before(hd[parent], hi[parent], v, j):
            break
        hd[pos] = hd[parent]
        hi[pos] = hi[parent]
        pos = parent
    hd[pos] = v
    hi[pos] = j
    return size + 1


cdef inline void _heap_sort(double *hd, Py_ssize_t *hi, Py_ssize_t size) noexcept nogil:
    # In-place heapsort of a max-heap into ascending (distance, index) order.
    cdef Py_ssize_t end
    cdef double td
    cdef Py_ssize_t ti
    end = size - 1
    while end > 0:
        td = hd[0]
        ti = hi[0]
        hd[0] = hd[end]
        hi[0] = hi[end]
        hd[end] = td
        hi[end] = ti
        _sift_down(hd, hi, 0, end)
        end -= 1


# ----------------------------------------------------------------------------------------------
# pairwise distances

def l1_distances(const floating[:, ::1] X, const floating[:, ::1] Y, floating[:, ::1] out,
                 int num_threads):
    """OUT ``out[i, j] = sum_k |X[i, k] - Y[j, k]|``; out has shape (len(X), len(Y))."""
    cdef Py_ssize_t m = X.shape[0], n = Y.shape[0], d = X.shape[1]
    cdef Py_ssize_t nc = FASTNN_L1_NC
    cdef Py_ssize_t nbj = (n + nc - 1) // nc
    # Whole columns of X rows per tile keep each packed Y block reused as much as possible;
    # split X only when there are too few Y blocks to keep every thread busy.
    cdef Py_ssize_t nbi = (4 * num_threads + nbj - 1) // nbj
    if nbi > (m + 7) // 8:
        nbi = (m + 7) // 8
    if nbi < 1:
        nbi = 1
    cdef Py_ssize_t mc = (m + nbi - 1) // nbi
    cdef Py_ssize_t ntiles = nbi * nbj, t, i0, j0, mi, nj
    cdef floating *work
    cdef int failed = 0
    cdef int *failed_ptr = &failed
    with nogil, parallel(num_threads=num_threads):
        work = <floating *> malloc(FASTNN_L1_NC * FASTNN_L1_KC * sizeof(floating))
        if work == NULL:
            failed_ptr[0] = 1
        for t in prange(ntiles, schedule="dynamic"):
            if work == NULL:
                continue
            i0 = (t // nbj) * mc
            j0 = (t % nbj) * nc
            mi = m - i0
            if mi > mc:
                mi = mc
            nj = n - j0
            if nj > nc:
                nj = nc
            if mi > 0:
                _l1_tile(&X[i0, 0], d, mi, &Y[j0, 0], d, nj, d, &out[i0, j0], n, work)
        free(work)
    if failed:
        raise MemoryError("could not allocate the L1 packing buffer")


def sq_norms(const floating[:, ::1] X, double[::1] out, int num_threads):
    """OUT ``out[i] = sum_k X[i, k]**2`` accumulated in double precision."""
    cdef Py_ssize_t i, m = X.shape[0], d = X.shape[1]
    for i in prange(m, nogil=True, num_threads=num_threads, schedule="static"):
        out[i] = _sq_norm(&X[i, 0], d)


def l2_from_gram(floating[:, ::1] G, const floating[:, ::1] X, const floating[:, ::1] Y,
                 double[::1] x_sq, double[::1] y_sq, bint squared, int num_threads):
    """IN/OUT ``G``: on entry ``X @ Y.T``; on exit the (squared) L2 distances between rows.

    OUT ``x_sq``, ``y_sq``: squared row norms (double precision), which the caller also uses as
    a free finiteness check of the inputs. ``max(|x|^2 + |y|^2 - 2 x.y, 0)`` (the clamp removes
    tiny negatives left by cancellation), then the square root unless ``squared``. Norms and the
    final pass share one parallel region: one sweep over the output instead of NumPy's four
    temporaries, and one thread start-up instead of three.
    """
    cdef Py_ssize_t i, j, m = G.shape[0], n = G.shape[1], d = X.shape[1]
    cdef double xi, v
    cdef floating *row
    with nogil, parallel(num_threads=num_threads):
        for j in prange(n, schedule="static"):
            y_sq[j] = _sq_norm(&Y[j, 0], d)
        # (implicit barrier: every norm of Y is ready before any row uses them)
        for i in prange(m, schedule="static"):
            xi = _sq_norm(&X[i, 0], d)
            x_sq[i] = xi
            row = &G[i, 0]
            if squared:
                for j in range(n):
                    v = xi + y_sq[j] - 2.0 * row[j]
                    row[j] = <floating> (v if v > 0.0 else 0.0)
            else:
                for j in range(n):
                    v = xi + y_sq[j] - 2.0 * row[j]
                    row[j] = <floating> sqrt(v if v > 0.0 else 0.0)


def l2_direct(const floating[:, ::1] X, const floating[:, ::1] Y, floating[:, ::1] out,
              bint squared, int num_threads):
    """OUT ``out[i, j]``: (squared) L2 distance by direct differences in double precision.

    For inputs whose norms would overflow the expansion ``|x|^2 + |y|^2 - 2 x.y`` in their dtype;
    a distance beyond the dtype's range becomes inf, as in the two-loop reference.
    """
    cdef Py_ssize_t i, j, m = X.shape[0], n = Y.shape[0], d = X.shape[1]
    if Y.shape[1] != d or out.shape[0] != m or out.shape[1] != n:
        raise ValueError("X, Y and out have inconsistent shapes")
    cdef double v
    for i in prange(m, nogil=True, num_threads=num_threads, schedule="dynamic"):
        for j in range(n):
            v = _sq_dist(&X[i, 0], &Y[j, 0], d)
            out[i, j] = <floating> (v if squared else sqrt(v))


# ----------------------------------------------------------------------------------------------
# k-nearest-neighbour search

def knn_l1(const floating[:, ::1] X, const floating[:, ::1] Y, Py_ssize_t k,
           Py_ssize_t block_rows, floating[:, ::1] out_dist, Py_ssize_t[:, ::1] out_idx,
           int num_threads):
    """Fused L1 distance + top-k: OUT ``out_dist``, ``out_idx`` of shape (len(X), k).

    Query rows are processed in blocks of ``block_rows``; per block, the training set is scanned
    in tiles of ``L1_TILE_ROWS`` rows whose distances go straight into per-row heaps, so the
    memory used is ``threads * block_rows * (L1_TILE_ROWS + 2 k)`` numbers, whatever the sizes.
    """
    cdef Py_ssize_t m = X.shape[0], n = Y.shape[0], d = X.shape[1]
    cdef Py_ssize_t nc = FASTNN_L1_NC
    # Everything the nogil block indexes with is checked here: a bad size there corrupts the heap.
    if d != Y.shape[1] or d < 1 or m < 1:
        raise ValueError(f"X and Y must be non-empty with one number of columns; got "
                         f"{X.shape[0]}x{X.shape[1]} and {Y.shape[0]}x{Y.shape[1]}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, len(Y) = {n}]; got {k}")
    if not 1 <= block_rows <= m:
        raise ValueError(f"block_rows must be in [1, len(X) = {m}]; got {block_rows}")
    if (out_dist.shape[0] != m or out_dist.shape[1] != k or out_idx.shape[0] != m
            or out_idx.shape[1] != k):
        raise ValueError(f"out_dist and out_idx must have shape ({m}, {k})")
    cdef Py_ssize_t work_bytes = _checked_bytes(
        "L1 packing buffer", FASTNN_L1_NC, FASTNN_L1_KC, sizeof(floating))
    cdef Py_ssize_t tile_bytes = _checked_bytes(
        "k-NN distance tile", block_rows, FASTNN_L1_NC, sizeof(floating))
    cdef Py_ssize_t hd_bytes = _checked_bytes("k-NN heaps", block_rows, k, sizeof(double))
    cdef Py_ssize_t hi_bytes = _checked_bytes("k-NN heaps", block_rows, k, sizeof(Py_ssize_t))
    cdef Py_ssize_t hs_bytes = _checked_bytes("k-NN heaps", block_rows, sizeof(Py_ssize_t))
    cdef Py_ssize_t nblocks = (m + block_rows - 1) // block_rows
    cdef Py_ssize_t b, i0, mb, j0, nj, r, jj, c
    cdef floating *work
    cdef floating *tile
    cdef floating *trow
    cdef double *hd
    cdef Py_ssize_t *hi
    cdef Py_ssize_t *hsize
    cdef Py_ssize_t size
    cdef int failed = 0
    cdef int *failed_ptr = &failed
    with nogil, parallel(num_threads=num_threads):
        work = <floating *> malloc(work_bytes)
        tile = <floating *> malloc(tile_bytes)
        hd = <double *> malloc(hd_bytes)
        hi = <Py_ssize_t *> malloc(hi_bytes)
        hsize = <Py_ssize_t *> malloc(hs_bytes)
        if work == NULL or tile == NULL or hd == NULL or hi == NULL or hsize == NULL:
            failed_ptr[0] = 1
        for b in prange(nblocks, schedule="dynamic"):
            if failed_ptr[0]:
                continue
            i0 = b * block_rows
            mb = m - i0
            if mb > block_rows:
                mb = block_rows
            for r in range(mb):
                hsize[r] = 0
            j0 = 0
            while j0 < n:
                nj = n - j0
                if nj > nc:
                    nj = nc
                _l1_tile(&X[i0, 0], d, mb, &Y[j0, 0], d, nj, d, tile, nc, work)
                for r in range(mb):
                    trow = tile + r * nc
                    size = hsize[r]
                    for jj in range(nj):
                        size = _heap_push(hd + r * k, hi + r * k, size, k, trow[jj], j0 + jj)
                    hsize[r] = size
                j0 = j0 + nc
            for r in range(mb):
                _heap_sort(hd + r * k, hi + r * k, k)
                for c in range(k):
                    out_dist[i0 + r, c] = <floating> hd[r * k + c]
                    out_idx[i0 + r, c] = hi[r * k + c]
        free(work)
        free(tile)
        free(hd)
        free(hi)
        free(hsize)
    if failed:
        raise MemoryError("could not allocate the k-NN workspace")


def knn_select_l2(const floating[:, ::1] G, const floating[:, ::1] X, const floating[:, ::1] Y,
                  const double[::1] x_sq, const double[::1] y_sq, Py_ssize_t k,
                  bint squared, floating[:, ::1] out_dist, Py_ssize_t[:, ::1] out_idx,
                  int num_threads):
    """Exact top-k from a block of the L2 expansion: OUT ``out_dist``, ``out_idx`` (len(X), k).

    ``G = X @ Y.T`` (computed by BLAS for this block of query rows) gives approximate squared
    distances ``v_j = |x|^2 + |y_j|^2 - 2 G_j``.  Their rounding error is bounded rigorously:
    whatever the summation order, ``|fl(x.y) - x.y| <= gamma_d sum_k |x_k y_k|`` with
    ``gamma_d = d u / (1 - d u) <= d eps`` (u = eps / 2) and ``sum |x_k y_k| <= (|x|^2+|y|^2)/2``;
    the norms and ``v`` are formed in double precision.  So ``delta_j = (d + 4) eps (|x|^2 +
    |y_j|^2)`` bounds ``|v_j - true_j|`` with a factor-2 margin.  With ``T`` the k-th smallest
    ``v`` and ``delta_S`` the largest bound among those k points, the true k-th distance is at most
    ``T + delta_S``; every point with ``v_j <= T + delta_S + delta_j`` is re-ranked by its direct
    squared distance (double precision), and nothing else can be among the k nearest (ties
    included).  No candidate buffer: survivors go straight into an exact k-heap, so memory stays
    ``O(k)`` per thread; when many points are nearly tied the row simply costs a direct scan.
    """
    cdef Py_ssize_t m = G.shape[0], n = G.shape[1], d = X.shape[1]
    if X.shape[0] != m or Y.shape[0] != n or Y.shape[1] != d or d < 1:
        raise ValueError("G, X and Y have inconsistent shapes")
    if x_sq.shape[0] != m or y_sq.shape[0] != n:
        raise ValueError("x_sq and y_sq must have one entry per row of X and Y")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, len(Y) = {n}]; got {k}")
    if (out_dist.shape[0] != m or out_dist.shape[1] != k or out_idx.shape[0] != m
            or out_idx.shape[1] != k):
        raise ValueError(f"out_dist and out_idx must have shape ({m}, {k})")
    cdef Py_ssize_t hd_bytes = _checked_bytes("k-NN heaps", 2, k, sizeof(double))
    cdef Py_ssize_t hi_bytes = _checked_bytes("k-NN heaps", 2, k, sizeof(Py_ssize_t))
    cdef double eps = FLT_EPSILON if floating is float else DBL_EPSILON
    cdef double rel = (d + 4) * eps
    # Past d eps ~ 1 the bound above no longer holds: every point is a candidate.
    cdef bint direct = rel >= 0.5
    cdef Py_ssize_t i, j, c, size
    cdef double xi, v, thr, ymax
    cdef const floating *grow
    cdef double *cd
    cdef Py_ssize_t *ci
    cdef double *fd
    cdef Py_ssize_t *fi
    cdef int failed = 0
    cdef int *failed_ptr = &failed
    with nogil, parallel(num_threads=num_threads):
        cd = <double *> malloc(hd_bytes)
        ci = <Py_ssize_t *> malloc(hi_bytes)
        if cd == NULL or ci == NULL:
            failed_ptr[0] = 1
            fd = NULL
            fi = NULL
        else:
            fd = cd + k
            fi = ci + k
        for i in prange(m, schedule="dynamic", chunksize=4):
            if failed_ptr[0]:
                continue
            xi = x_sq[i]
            grow = &G[i, 0]
            size = 0
            if direct:
                for j in range(n):
                    size = _heap_push(fd, fi, size, k, _sq_dist(&X[i, 0], &Y[j, 0], d), j)
            else:
                # pass 1: the k best approximate values; root = T, the k-th smallest
                for j in range(n):
                    v = xi + y_sq[j] - 2.0 * grow[j]
                    size = _heap_push(cd, ci, size, k, v, j)
                ymax = 0.0
                for c in range(k):
                    if y_sq[ci[c]] > ymax:
                        ymax = y_sq[ci[c]]
                thr = cd[0] + rel * (xi + ymax)
                # pass 2: every point that may be among the true k nearest, ranked exactly
                size = 0
                for j in range(n):
                    v = xi + y_sq[j] - 2.0 * grow[j]
                    if v <= thr + rel * (xi + y_sq[j]):
                        size = _heap_push(fd, fi, size, k, _sq_dist(&X[i, 0], &Y[j, 0], d), j)
            _heap_sort(fd, fi, k)
            for c in range(k):
                out_dist[i, c] = <floating> (fd[c] if squared else sqrt(fd[c]))
                out_idx[i, c] = fi[c]
        free(cd)
        free(ci)
    if failed:
        raise MemoryError("could not allocate the k-NN workspace")


def knn_direct_l2(const floating[:, ::1] X, const floating[:, ::1] Y, Py_ssize_t k,
                  bint squared, floating[:, ::1] out_dist, Py_ssize_t[:, ::1] out_idx,
                  int num_threads):
    """Top-k by direct squared differences in double precision (no expansion, no overflow of
    ``|x|^2 + |y|^2``): OUT ``out_dist``, ``out_idx`` (len(X), k). Used for huge-magnitude data."""
    cdef Py_ssize_t m = X.shape[0], n = Y.shape[0], d = X.shape[1]
    if Y.shape[1] != d or d < 1:
        raise ValueError("X and Y must have one number of columns")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, len(Y) = {n}]; got {k}")
    if (out_dist.shape[0] != m or out_dist.shape[1] != k or out_idx.shape[0] != m
            or out_idx.shape[1] != k):
        raise ValueError(f"out_dist and out_idx must have shape ({m}, {k})")
    cdef Py_ssize_t hd_bytes = _checked_bytes("k-NN heaps", k, sizeof(double))
    cdef Py_ssize_t hi_bytes = _checked_bytes("k-NN heaps", k, sizeof(Py_ssize_t))
    cdef Py_ssize_t i, j, c, size
    cdef double *fd
    cdef Py_ssize_t *fi
    cdef int failed = 0
    cdef int *failed_ptr = &failed
    with nogil, parallel(num_threads=num_threads):
        fd = <double *> malloc(hd_bytes)
        fi = <Py_ssize_t *> malloc(hi_bytes)
        if fd == NULL or fi == NULL:
            failed_ptr[0] = 1
        for i in prange(m, schedule="dynamic", chunksize=4):
            if failed_ptr[0]:
                continue
            size = 0
            for j in range(n):
                size = _heap_push(fd, fi, size, k, _sq_dist(&X[i, 0], &Y[j, 0], d), j)
            _heap_sort(fd, fi, k)
            for c in range(k):
                out_dist[i, c] = <floating> (fd[c] if squared else sqrt(fd[c]))
                out_idx[i, c] = fi[c]
        free(fd)
        free(fi)
    if failed:
        raise MemoryError("could not allocate the k-NN workspace")
