"""The one place that decides how many threads compiled kernels use."""

from __future__ import annotations

import operator
import os

_ENV_VAR = "FASTNN_NUM_THREADS"


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _threads_from_env() -> int:
    raw = os.environ.get(_ENV_VAR)
    if raw is None or raw.strip() == "":
        return _available_cores()
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{_ENV_VAR} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{_ENV_VAR} must be a positive integer, got {raw!r}")
    return value


_num_threads: int = _threads_from_env()


def set_num_threads(n: int) -> None:
    """Set the number of threads every compiled kernel uses.

    Parameters
    ----------
    n : int
        Positive thread count. The default comes from ``FASTNN_NUM_THREADS``, else the number of
        cores this process may run on. NumPy's BLAS has its own setting (``OPENBLAS_NUM_THREADS``,
        or ``threadpoolctl``); benchmarks set both.
    """
    global _num_threads
    if isinstance(n, bool):
        raise TypeError("n must be a positive integer, got bool")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be a positive integer, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    _num_threads = n


def get_num_threads() -> int:
    """Number of threads the compiled kernels use (see :func:`set_num_threads`)."""
    return _num_threads
