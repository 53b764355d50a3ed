"""The matrix products and the threading of the compiled recurrent sequences
(:mod:`fastnn.kernels.recurrent_sequence`): float32 products on the compiled AVX-512 kernel
where it applies (:mod:`fastnn.kernels._gemm`, csrc/sgemm.h), BLAS otherwise; the batch rows split
between threads for the step loop and for the big products over all steps."""

from __future__ import annotations

import mmap
import sys
import threading

import numpy as np

from fastnn.kernels import _gemm
from fastnn.kernels._operation import threads_for
from fastnn.kernels.recurrent import SEQUENCE_MIN_WORK_PER_THREAD, _cell_threads, _ext

__all__: list[str] = []


# --------------------------------------------------------------------------------- compiled
def _time_major(a: np.ndarray, scratch: str | None = None) -> np.ndarray:
    """(N, T, K) -> a C-contiguous (T, N, K) copy, so each step's slice is one block (into the
    named per-thread scratch buffer when ``scratch`` is given)."""
    if scratch is None:
        return np.ascontiguousarray(a.transpose(1, 0, 2))
    out = _scratch(scratch, (a.shape[1], a.shape[0], a.shape[2]), a.dtype)
    np.copyto(out, a.transpose(1, 0, 2))
    return out


# The big temporaries of a sequence call (time-major copies, the gate gradients) live in
# per-thread buffers reused from call to call: fresh multi-megabyte arrays are fresh pages, and
# faulting them in cost a third of the CPU time of an N=64, T=32, H=256 LSTM forward+backward
# (~5000 page faults, 11 ms of system time per call). A buffer grows to the largest size a
# thread has needed and stays allocated while the thread lives.
_WORKSPACE = threading.local()

# Scratch and recycled buffers of 1 MB and more sit on 2 MB-aligned memory advised for
# transparent huge pages (Linux): the LSTM backward reads its gate gradients (8 MB for N=64,
# T=32, H=256) 128 bytes per 4 KB row, a new page per row, and a 2 MB page holds ~500 of them.
# In one process, interleaved (benchmarks/README.md): the scratch buffers on it made the LSTM
# backward call 1.5-1.7% faster and the forward+backward 0.9-1.1%; the recycled ones another
# 0.4-0.6%. _HUGE_RECYCLED switches the latter off.
_HUGE_PAGE = 2 << 20
_HUGE_MIN_BYTES = 1 << 20
_HUGE_RECYCLED = True


def _empty_huge(shape, dtype) -> np.ndarray:
    """np.empty(shape, dtype), on huge-page-advised memory where available. The array is built
    directly on the mapping (its base), so views of it keep the array itself referenced, as
    views of an np.empty array do (what _recycled's reference count relies on)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
    if nbytes < _HUGE_MIN_BYTES or advice is None or not flags:
        return np.empty(shape, dtype)
    try:
        mapping = mmap.mmap(-1, nbytes + _HUGE_PAGE, flags=flags)
        mapping.madvise(advice)
    except (OSError, ValueError):   # no memory for the mapping, or advice refused: plain pages
        return np.empty(shape, dtype)
    address = np.frombuffer(mapping, np.uint8, count=1).ctypes.data
    return np.ndarray(shape, dtype, buffer=mapping, offset=-address % _HUGE_PAGE)


def _scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """The calling thread's reusable buffer ``name`` viewed as ``shape`` (contents undefined)."""
    store = getattr(_WORKSPACE, "arrays", None)
    if store is None:
        store = _WORKSPACE.arrays = {}
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    buf = store.get((name, dtype))
    if buf is None or buf.size < size:
        buf = store[(name, dtype)] = _empty_huge(size, dtype)
    return buf[:size].reshape(shape)


# The arrays a sequence forward returns (states, gates: ~50 MB for a batch of 64 windows of 100
# steps of an LSTM 256) are recycled the same way, but only once nothing else holds them: the
# training loop drops the previous window's cache before the next forward, and fresh pages
# for them cost ~6,000 page faults (13 ms of system time) per CharRNN training step.
def _recycled(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A fresh-or-recycled array ``shape`` (contents undefined): the calling thread's previous
    array ``name`` when no other reference to it (or to a view of it) is left, else a new one
    (kept for the next call in its place)."""
    store = getattr(_WORKSPACE, "recycled", None)
    if store is None:
        store = _WORKSPACE.recycled = {}
    key = (name, np.dtype(dtype))
    buf = store.get(key)
    # references: the store, ``buf`` and getrefcount's argument; any view adds its own
    if buf is None or buf.shape != tuple(shape) or sys.getrefcount(buf) > 3:
        buf = store[key] = _empty_huge(shape, dtype) if _HUGE_RECYCLED else np.empty(shape, dtype)
    return buf


# The examples of a batch never interact inside a sequence, so the step loop runs on P chunks
# of rows at once, each on its own thread with single-threaded BLAS and the cell on one thread:
# no synchronisation per time step (a (64, 256) x (256, 1024) product is too small for BLAS to
# split well, and its threads waiting for each other cost whole time slices on a busy machine).
# Work too small to split runs on one thread with BLAS on one thread too (waking BLAS's sleeping
# threads for a small product can take longer than the product). Needs threadpoolctl to pin
# BLAS; without it, or with too few rows to split big work, BLAS threads itself.
_MIN_ROWS_PER_CHUNK = 8
_BLAS: list = []       # [threadpoolctl.ThreadpoolController or None], created on first use
_POOL: list = []       # [ThreadPoolExecutor, its worker count], created on first use
_PIN_LOCK = threading.Lock()


def _blas_controller():
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController
            _BLAS.append(ThreadpoolController())
        except ImportError:
            _BLAS.append(None)
    return _BLAS[0]


def _fast_product(a: np.ndarray, b: np.ndarray) -> bool:
    """``a @ b`` runs on the compiled AVX-512 float32 product (:func:`_gemm.fits`); the
    compiled step loops (``_ext.lstm_steps_*``) call the same kernel from C, so this also
    decides whether they apply."""
    return _gemm.fits(a, b) and bool(getattr(_ext, "SGEMM_AVAILABLE", False))


def _product(a: np.ndarray, b: np.ndarray, out: np.ndarray, fast: bool) -> None:
    """``out = a @ b`` on one thread: the compiled product if ``fast``, else BLAS."""
    if fast:
        _gemm.product(a, b, out, num_threads=1)
    else:
        np.matmul(a, b, out=out)


def _row_chunks(rows: int, work: float, pin: bool = True) -> list[slice] | None:
    """Slices of ``rows``, one per thread, for a job of ``work`` flops; None: do not pin BLAS
    (let it thread one call over all rows). ``pin`` False: the job's products are compiled
    ones, BLAS is not involved, and threadpoolctl is not needed to split."""
    if pin and _blas_controller() is None:
        return None
    parts = threads_for(work, SEQUENCE_MIN_WORK_PER_THREAD)
    if parts >= 2:
        parts = min(parts, rows // _MIN_ROWS_PER_CHUNK)
        if parts < 2:
            return None
    return [slice(rows * i // parts, rows * (i + 1) // parts) for i in range(parts)]


def _concurrently(job, chunks: list[slice]) -> None:
    """``job(rows)`` for every chunk, the first on this thread, the others on the pool."""
    if len(chunks) == 1:
        job(chunks[0])
        return
    if not _POOL or _POOL[1] < len(chunks) - 1:
        from concurrent.futures import ThreadPoolExecutor
        _POOL[:] = [ThreadPoolExecutor(max_workers=len(chunks) - 1,
                                       thread_name_prefix="fastnn-recurrent"),
                    len(chunks) - 1]
    futures = [_POOL[0].submit(job, r) for r in chunks[1:]]
    job(chunks[0])
    for future in futures:
        future.result()


def _run_on_chunks(job, chunks: list[slice] | None, rows: int, pin: bool = True) -> None:
    """``job(rows)`` for every chunk, concurrently, with BLAS on one thread meanwhile unless
    ``pin`` is False (``chunks`` None: ``job`` over all rows, BLAS as configured)."""
    if chunks is None:
        job(slice(0, rows))
    elif not pin:
        _concurrently(job, chunks)
    else:
        # one pinned region at a time: two overlapping limit/restore pairs could leave BLAS
        # pinned
        with _PIN_LOCK, _blas_controller().limit(limits=1, user_api="blas"):
            _concurrently(job, chunks)


def _step_plan(n: int, h: int, t_len: int, gates: int, fast: bool
               ) -> tuple[list[slice] | None, int]:
    """Row chunks of the step loop and the cell's thread count inside it (``fast``: the step
    products are compiled ones)."""
    chunks = _row_chunks(n, 2.0 * t_len * n * h * gates * h, pin=not fast)
    # pinned (chunks): one cell thread per chunk; otherwise the cell's own rule
    return chunks, 1 if chunks is not None else _cell_threads(n, h, SEQUENCE_MIN_WORK_PER_THREAD)


def _step_threads(n: int, h: int, t_len: int, gates: int) -> int:
    """Threads of a compiled step loop (``_ext.lstm_steps_*``), by the step loop's rule."""
    parts = threads_for(2.0 * t_len * n * h * gates * h, SEQUENCE_MIN_WORK_PER_THREAD)
    return max(1, min(parts, n // _MIN_ROWS_PER_CHUNK))


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = a @ b``, the rows of ``out`` split between threads (single-threaded BLAS each)
    by the step loop's rule."""
    m, k = a.shape
    work = 2.0 * m * k * b.shape[1]
    if _gemm.fits(a, b, out):
        return _gemm.product(a, b, out, min_work_per_thread=SEQUENCE_MIN_WORK_PER_THREAD)
    chunks = _row_chunks(m, work)
    _run_on_chunks(lambda r: np.matmul(a[r], b, out=out[r]), chunks, m)
    return out


def _input_projection(x: np.ndarray, Wx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x as time-major (T, N, D) and ``x @ Wx`` of every step in ONE product, (T, N, K)."""
    n, t_len, d = x.shape
    x_tm = _time_major(x, "x")
    proj = np.empty((t_len, n, Wx.shape[1]), dtype=x.dtype)
    _matmul(x_tm.reshape(t_len * n, d), Wx, proj.reshape(t_len * n, -1))
    return x_tm, proj


def _shared_out(jobs, rows: int, k: int) -> list[tuple]:
    """The weight-gradient products (dWh, dWx[, dx]) cut into one piece per thread each, biggest
    first, for ONE parallel region: the weight gradients by columns (every thread packs the
    few rows of A once and reads only its columns of da), dx by rows. Whole products, one per
    thread, left a thread idle for a third of the time (dWh is half the work)."""
    work = sum(2.0 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in jobs)
    parts = threads_for(work, SEQUENCE_MIN_WORK_PER_THREAD)
    if parts < 2:
        return jobs
    pieces = []
    for a, b, out in jobs[:2]:
        width = b.shape[1]
        step = -(-width // (parts * _gemm.COLUMNS)) * _gemm.COLUMNS
        pieces += [(a, b, out, j, min(j + step, width)) for j in range(0, width, step)]
    if len(jobs) > 2:
        a, b, out = jobs[2]
        pieces += [(a[r], b, out[r]) for r in _even_slices(rows, min(parts, rows))]
    return sorted(pieces, key=lambda job: -job[0].shape[0] * job[0].shape[1]
                  * ((job[4] - job[3]) if len(job) == 5 else job[1].shape[1]))


def _even_slices(rows: int, parts: int) -> list[slice]:
    return [slice(rows * i // parts, rows * (i + 1) // parts) for i in range(parts)]


def _weight_gradients(x, Wx, Wh, hs, da):
    """dx, dWx, dWh, db with ONE product each over all T steps (da time-major (T, N, K))."""
    t_len, n, k = da.shape
    rows = t_len * n
    da_all = da.reshape(rows, k)
    # (a, b, out) of dWh, dWx, dx; hs[t] is step t's previous state
    jobs = [(hs[:-1].reshape(rows, -1).T, da_all, np.empty_like(Wh)),
            (_time_major(x, "x").reshape(rows, -1).T, da_all, np.empty_like(Wx)),
            (da_all, _gemm.transposed(Wx), _scratch("dx", (rows, Wx.shape[0]), da.dtype))]
    if all(_gemm.fits(a, b, out) for a, b, out in jobs):
        _gemm.products(_shared_out(jobs, rows, k), SEQUENCE_MIN_WORK_PER_THREAD)
    else:
        for a, b, out in jobs:
            _matmul(a, b, out)
    dWh, dWx, dx_tm = (out for _, _, out in jobs)
    dx = dx_tm.reshape(t_len, n, -1).transpose(1, 0, 2).copy()
    return dx, dWx, dWh, da_all.sum(axis=0)
