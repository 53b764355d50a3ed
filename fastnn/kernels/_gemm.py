"""The float32 matrix products of the compiled kernels: ONE dispatch for the convolution and the
recurrent sequences.

``out (+)= a @ b`` runs on the compiled AVX-512 kernel (``fastnn._ext._gemm``, csrc/sgemm.h)
when the CPU has AVX-512F, every operand is float32, ``b`` and ``out`` are C-contiguous and
their width is a multiple of :data:`COLUMNS` (``a`` may have any strides: the kernel packs it);
otherwise on ``np.matmul(..., out=)`` (BLAS). Why a kernel of our own: NumPy's OpenBLAS picks
its kernels from the CPU models it knows and may run only its AVX2 ones on a newer AVX-512 CPU
(or be told to by ``OPENBLAS_CORETYPE``), half the machine's float32 rate.

Threads: one parallel region per product, the rows of ``out`` split between
``threads_for(2*M*K*N, min_work_per_thread)`` threads (or an explicit ``num_threads``);
:func:`products` runs several independent products in one region, each whole on one thread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fastnn.kernels._operation import MIN_WORK_PER_THREAD, load_extension, threads_for

__all__: list[str] = []

_ext = load_extension("_gemm")

#: The compiled product can run here (tests set it to False to exercise the BLAS fallback)
AVAILABLE = bool(getattr(_ext, "SGEMM_AVAILABLE", False))
#: The width of ``b`` and ``out`` must be a multiple of this for the compiled product
COLUMNS = int(getattr(_ext, "SGEMM_COLUMNS", 32))

_F32 = np.dtype(np.float32)


def fits(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> bool:
    """True when ``a @ b`` (into ``out``, if given) runs on the compiled product."""
    return (AVAILABLE and a.dtype == _F32 and b.dtype == _F32 and a.ndim == 2 and b.ndim == 2
            and b.flags.c_contiguous and b.shape[1] % COLUMNS == 0
            and a.shape[0] >= 1 and a.shape[1] >= 1 and b.shape[1] >= 1
            and (out is None or (out.dtype == _F32 and out.flags.c_contiguous
                                 and out.flags.writeable)))


def product(a: np.ndarray, b: np.ndarray, out: np.ndarray, accumulate: bool = False,
            num_threads: int | None = None,
            min_work_per_thread: float = MIN_WORK_PER_THREAD) -> np.ndarray:
    """``out = a @ b`` (``out += a @ b`` with ``accumulate``), compiled where :func:`fits`.

    Parameters
    ----------
    a : ndarray, shape (M, K)
    b : ndarray, shape (K, N)
    out : ndarray, shape (M, N)
        Must not overlap ``a`` or ``b``.
    accumulate : bool
        Add the product to ``out`` instead of overwriting it.
    num_threads : int, optional
        Threads of the compiled product (None: ``threads_for(2*M*K*N, min_work_per_thread)``);
        the BLAS fallback threads as BLAS is configured.
    min_work_per_thread : float
        Flops a thread must get when ``num_threads`` is None.

    Returns
    -------
    ndarray
        ``out``.
    """
    if fits(a, b, out):
        if num_threads is None:
            num_threads = threads_for(2.0 * a.shape[0] * a.shape[1] * b.shape[1],
                                      min_work_per_thread)
        _ext.sgemm(a, b, out, accumulate, num_threads)
    elif accumulate:
        out += a @ b
    else:
        np.matmul(a, b, out=out)
    return out


def products(jobs: Sequence[tuple], min_work_per_thread: float = MIN_WORK_PER_THREAD) -> None:
    """``out = a @ b`` for every ``(a, b, out)`` of ``jobs``: when all fit, in ONE parallel
    region (each product whole on one thread, threads taking the next as they finish; threads
    by ``threads_for`` of the total flops), else one :func:`product` after another. A job
    ``(a, b, out, j0, j1)`` computes only ``out[:, j0:j1] = a @ b[:, j0:j1]`` (``j0``, ``j1``
    multiples of :data:`COLUMNS`): a big product cut into column pieces for several threads.
    Put the biggest jobs first."""
    if jobs and all(fits(job[0], job[1], job[2]) for job in jobs):
        work = sum(2.0 * a.shape[0] * a.shape[1] * (job[4] - job[3] if len(job) == 5
                                                     else b.shape[1])
                   for job in jobs for a, b in [job[:2]])
        _ext.sgemm_jobs(list(jobs), threads_for(work, min_work_per_thread))
    else:
        for a, b, out, *cols in jobs:
            if cols:
                out[:, cols[0]:cols[1]] = a @ b[:, cols[0]:cols[1]]
            else:
                product(a, b, out, min_work_per_thread=min_work_per_thread)


def transposed(a: np.ndarray) -> np.ndarray:
    """A new C-contiguous ``a.T`` of a 2-D array: compiled for float32 (the B operand ``W.T`` of
    a backward product; ~6x faster than NumPy's strided copy), ``np.ascontiguousarray``
    otherwise."""
    if (_ext is not None and a.dtype == _F32 and a.ndim == 2
            and hasattr(_ext, "transpose")):
        out = np.empty(a.shape[::-1], _F32)
        _ext.transpose(a, out)
        return out
    return np.ascontiguousarray(a.T)
