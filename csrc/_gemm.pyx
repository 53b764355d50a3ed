# cython: language_level=3
"""The float32 AVX-512 matrix product (csrc/sgemm.h) as Python-callable entry points.

Used through :mod:`fastnn.kernels._gemm` (which falls back to ``np.matmul`` wherever these do
not apply) by the convolution and the recurrent sequences; the recurrent step loops call the
same C function directly from fastnn._ext._recurrent.

- ``sgemm(a, b, c, accumulate, num_threads)``: ``c = a @ b`` (or ``c += a @ b``), the rows of c
  split between threads in blocks of whole 8-row tiles, one parallel region;
- ``sgemm_jobs(jobs, num_threads)``: independent products ``(a, b, c)``, each whole on one
  thread, threads taking the next job as they finish (one parallel region for all of them); a
  job ``(a, b, c, j0, j1)`` computes only the columns ``j0:j1`` of ``c = a @ b`` (multiples of
  :data:`SGEMM_COLUMNS`, or ``j1 = N``), so one big product can be shared out by columns.

Operands: ``a`` (M, K) with any strides (a transposed view is fine: the kernel packs it), ``b``
(K, N) and ``c`` (M, N) C-contiguous float32, N a multiple of :data:`SGEMM_COLUMNS`. Every
entry point checks shapes, strides, the CPU and ``num_threads >= 1`` before releasing the GIL.
"""

from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc

from sgemm cimport fnn_sgemm, fnn_sgemm_available
from transpose cimport fnn_transpose

#: True when the CPU has AVX-512F and the kernel is compiled in (else use BLAS)
SGEMM_AVAILABLE = bool(fnn_sgemm_available())
#: N (the width of b and c) must be a multiple of this: the register tile's width
SGEMM_COLUMNS = 32


cdef int _check_product(const float[:, :] a, const float[:, ::1] b, float[:, ::1] c,
                        int num_threads) except -1:
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    if not SGEMM_AVAILABLE:
        raise RuntimeError("sgemm needs a CPU with AVX-512F (use BLAS)")
    if m < 1 or k < 1 or n < 1 or n % SGEMM_COLUMNS:
        raise ValueError(f"sgemm needs M, K, N >= 1 and N a multiple of {SGEMM_COLUMNS}, "
                         f"got M={m}, K={k}, N={n}")
    if b.shape[0] != k or c.shape[0] != m or c.shape[1] != n:
        raise ValueError(f"sgemm shapes do not chain: a ({m}, {k}), b ({b.shape[0]}, {n}), "
                         f"c ({c.shape[0]}, {c.shape[1]})")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    if a.strides[0] % sizeof(float) or a.strides[1] % sizeof(float):
        raise ValueError("a's strides must be whole float32 elements")
    return 0


def sgemm(
    const float[:, :] a,              # IN  (M, K), any strides (a transposed view is fine)
    const float[:, ::1] b,            # IN  (K, N), N a multiple of SGEMM_COLUMNS
    float[:, ::1] c,                  # OUT (M, N): a @ b, or c + a @ b with accumulate
    bint accumulate,
    int num_threads,
):
    """``c = a @ b`` (or ``c += a @ b``) in float32 with AVX-512 (sgemm.h), threads over
    blocks of 8 rows; only where ``SGEMM_AVAILABLE``."""
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1], chunk, parts, start, stop
    cdef Py_ssize_t a_rs = a.strides[0] // sizeof(float), a_cs = a.strides[1] // sizeof(float)
    cdef int acc = accumulate, failed = 0
    _check_product(a, b, c, num_threads)
    # contiguous row blocks of whole 8-row tiles, one per thread
    chunk = ((m + num_threads - 1) // num_threads + 7) // 8 * 8
    parts = (m + chunk - 1) // chunk
    if parts == 1:
        with nogil:
            failed = fnn_sgemm(m, n, k, &a[0, 0], a_rs, a_cs, &b[0, 0], n, &c[0, 0], n, acc)
    else:
        with nogil, parallel(num_threads=num_threads):
            for start in prange(0, m, chunk, schedule="static"):
                stop = start + chunk if start + chunk < m else m
                # a reduction (+=): a plain assignment in a prange is thread-private
                failed += fnn_sgemm(stop - start, n, k, &a[start, 0], a_rs, a_cs, &b[0, 0], n,
                                    &c[start, 0], n, acc)
    if failed:
        raise MemoryError("sgemm could not allocate its packing buffer")


cdef struct _Product:
    Py_ssize_t m, n, k, a_rs, a_cs, ld
    const float* a
    const float* b
    float* c


def sgemm_jobs(jobs, int num_threads):
    """Independent products ``c = a @ b`` for every ``(a, b, c)`` in ``jobs`` (operands as for
    :func:`sgemm`), each product whole on one thread, threads taking the next job as they
    finish: one parallel region for several products (one wait for the slowest thread instead
    of one per product, and each B read by one thread only). A job ``(a, b, c, j0, j1)`` does
    the columns ``j0:j1`` of ``c`` only (``j0 < j1``, both multiples of SGEMM_COLUMNS or
    ``j1 = N``): the pieces of one product shared out between threads by columns. Give the
    biggest jobs first (a thread that picks a big job last finishes last)."""
    cdef Py_ssize_t count = len(jobs), j, j0, j1
    cdef const float[:, :] a
    cdef const float[:, ::1] b
    cdef float[:, ::1] c
    cdef int failed = 0
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    if count == 0:
        return
    cdef _Product* work = <_Product*> malloc(count * sizeof(_Product))
    if work == NULL:
        raise MemoryError("sgemm_jobs could not allocate its job list")
    views = []   # keeps every buffer acquired while the threads run
    try:
        for j in range(count):
            job = tuple(jobs[j])
            if len(job) not in (3, 5):
                raise ValueError(f"job {j} must be (a, b, c) or (a, b, c, j0, j1), got "
                                 f"{len(job)} items")
            a, b, c = job[:3]
            _check_product(a, b, c, num_threads)
            j0, j1 = (0, b.shape[1]) if len(job) == 3 else (job[3], job[4])
            if not (0 <= j0 < j1 <= b.shape[1]) or j0 % SGEMM_COLUMNS or (
                    j1 % SGEMM_COLUMNS and j1 != b.shape[1]):
                raise ValueError(f"job {j}: columns {j0}:{j1} must satisfy 0 <= j0 < j1 <= "
                                 f"N = {b.shape[1]}, multiples of {SGEMM_COLUMNS}")
            views.append((a, b, c))
            work[j].m, work[j].k, work[j].n = a.shape[0], a.shape[1], j1 - j0
            work[j].ld = b.shape[1]
            work[j].a_rs = a.strides[0] // sizeof(float)
            work[j].a_cs = a.strides[1] // sizeof(float)
            work[j].a, work[j].b, work[j].c = &a[0, 0], &b[0, j0], &c[0, j0]
        with nogil, parallel(num_threads=num_threads if num_threads < count else count):
            for j in prange(count, schedule="dynamic"):
                failed += fnn_sgemm(work[j].m, work[j].n, work[j].k, work[j].a, work[j].a_rs,
                                    work[j].a_cs, work[j].b, work[j].ld, work[j].c, work[j].ld,
                                    0)
    finally:
        free(work)
    if failed:
        raise MemoryError("sgemm_jobs could not allocate a packing buffer")


def transpose(
    const float[:, :] a,              # IN  (M, K), any strides
    float[:, ::1] out,                # OUT (K, M): a.T, C-contiguous
):
    """``out = a.T`` in 16 x 16 blocks (csrc/transpose.h): each block's 16 source row segments
    read whole, then its 16 destination row segments written whole (with AVX-512 in registers
    where a's rows are contiguous, else through a small buffer), so no cache line has to stay
    resident while it is filled piecemeal (with rows 2 KB or a larger power of two apart, the
    32 x 32 blocks written column by column before evicted their own lines). Through the
    buffer, a (1024, 256): 1.50 -> 0.10 ms (NumPy's strided copy 0.29); (1024, 1024): 5.94 ->
    0.40 (3.39); (3136, 128): 0.18 -> 0.13 (0.42). Serves the B operand ``W.T`` of backward
    products."""
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1]
    cdef Py_ssize_t a_rs, a_cs
    if out.shape[0] != k or out.shape[1] != m:
        raise ValueError(f"out must have shape ({k}, {m}) (a transposed), got "
                         f"({out.shape[0]}, {out.shape[1]})")
    if m == 0 or k == 0:
        return
    if a.strides[0] % sizeof(float) or a.strides[1] % sizeof(float):
        raise ValueError("a's strides must be whole float32 elements")
    a_rs, a_cs = a.strides[0] // sizeof(float), a.strides[1] // sizeof(float)
    with nogil:
        fnn_transpose(&a[0, 0], a_rs, a_cs, &out[0, 0], m, 0, m, 0, k)
