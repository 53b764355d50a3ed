"""The one place that decides how many threads compiled kernels use.

The count is between 1 and :func:`max_num_threads`, the number of cores this process may run on
(``os.sched_getaffinity``, which honours ``taskset``, cpusets and container CPU sets; where the
platform has no affinity call, ``os.cpu_count()``). More threads than that cannot run at the same
time: they only take turns on the same cores, and every parallel region then waits for a
descheduled thread. ``set_num_threads`` and the ``FASTNN_NUM_THREADS`` environment variable
(read once, at import) follow the same rule and raise the same ValueError outside it.
"""

from __future__ import annotations

import operator
import os

_ENV_VAR = "FASTNN_NUM_THREADS"


def max_num_threads() -> int:
    """Number of cores this process may run on: the largest accepted thread count.

    Returns
    -------
    int
        ``len(os.sched_getaffinity(0))``, or ``os.cpu_count()`` where that call does not exist;
        at least 1.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _check_count(n: int, name: str) -> int:
    limit = max_num_threads()
    if n < 1 or n > limit:
        raise ValueError(f"{name} must be a positive integer no larger than the {limit} cores "
                         f"this process may run on, got {n}")
    return n


def _threads_from_env() -> int:
    raw = os.environ.get(_ENV_VAR)
    if raw is None or raw.strip() == "":
        return max_num_threads()
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{_ENV_VAR} must be a positive integer, got {raw!r}") from None
    return _check_count(value, _ENV_VAR)


_num_threads: int = _threads_from_env()


def set_num_threads(n: int) -> None:
    """Set the number of threads every compiled kernel uses.

    Parameters
    ----------
    n : int
        Thread count, from 1 to :func:`max_num_threads`. The default comes from
        ``FASTNN_NUM_THREADS``, else it is :func:`max_num_threads`. NumPy's BLAS has its own
        setting (``OPENBLAS_NUM_THREADS``, or ``threadpoolctl``); benchmarks set both.

    Raises
    ------
    TypeError
        ``n`` is not an integer (bools included).
    ValueError
        ``n`` is below 1 or above :func:`max_num_threads`.
    """
    global _num_threads
    if isinstance(n, bool):
        raise TypeError("n must be a positive integer, got bool")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be a positive integer, got {type(n).__name__}") from None
    _num_threads = _check_count(n, "n")


def get_num_threads() -> int:
    """Number of threads the compiled kernels use (see :func:`set_num_threads`).

    Returns
    -------
    int
        The current count.
    """
    return _num_threads
