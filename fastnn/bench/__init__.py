"""Benchmark suites behind ``fastnn bench SUITE``.

A suite is a function ``suite(compare: bool, quick: bool) -> list[BenchRow]`` registered with
``@register_suite("name")`` in a module of this package (modules are discovered, so adding a
suite never touches this file). ``compare=True`` adds the optional peers (PyTorch, SciPy,
scikit-learn) when they are installed; every side runs with ``fastnn.get_num_threads()`` threads.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass

from fastnn._config import get_num_threads


@dataclass
class BenchRow:
    """One timed implementation of one operation."""

    operation: str
    shape: str
    implementation: str
    median_s: float
    flops: float | None = None  # floating-point operations per call, when meaningful

    @property
    def gflops(self) -> float | None:
        return None if self.flops is None else self.flops / self.median_s / 1e9


_SUITES: dict[str, Callable[..., list[BenchRow]]] = {}


Suite = Callable[..., list[BenchRow]]


def register_suite(name: str) -> Callable[[Suite], Suite]:
    """Decorator: make ``func`` the benchmark suite ``name`` of ``fastnn bench``."""

    def decorator(func: Suite) -> Suite:
        _SUITES[name] = func
        return func

    return decorator


def suites() -> dict[str, Callable[..., list[BenchRow]]]:
    """All registered suites, importing every module of this package once."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(_SUITES.items()))


def time_call(func: Callable[[], object], *, repeat: int = 5, min_time: float = 0.2) -> float:
    """Median wall time of ``func()`` over ``repeat`` runs (after one warm-up call).

    Fast calls are looped so that each measured sample lasts about ``min_time / repeat``.
    """
    func()
    start = time.perf_counter()
    func()
    single = max(time.perf_counter() - start, 1e-7)
    inner = max(1, int(min_time / repeat / single))
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            func()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def time_interleaved(
    funcs: Sequence[Callable[[], object]],
    *,
    repeat: int = 15,
    min_time: float = 1.0,
    contexts: Sequence[Callable[[], ContextManager[object]] | None] | None = None,
) -> list[float]:
    """Median wall time of each of ``funcs``, sampled in interleaved rounds.

    Round r times every function once (looped, like :func:`time_call`, so that a sample lasts
    about ``min_time / repeat``), so a slow phase of a shared or virtual machine (another job, a
    noisy neighbour) hits all of them alike and their ratios stay fair, which timing one
    implementation's samples after the other's does not give.

    Parameters
    ----------
    funcs : sequence of callables
        The calls to time (each warmed up once first).
    repeat : int
        Rounds (samples per function).
    min_time : float
        Seconds each function is timed for in all, about.
    contexts : sequence of (callable returning a context manager, or None), optional
        ``contexts[i]()`` is entered around every sample of ``funcs[i]`` (outside the timed
        region), e.g. a BLAS thread limit.

    Returns
    -------
    list of float
        The median seconds per call, in the order of ``funcs``.
    """
    contexts = list(contexts) if contexts is not None else [None] * len(funcs)
    if len(contexts) != len(funcs):
        raise ValueError(f"contexts must have one entry per function ({len(funcs)}), got "
                         f"{len(contexts)}")

    def entered(i: int) -> ContextManager[object]:
        make = contexts[i]
        return make() if make is not None else contextlib.nullcontext()

    inner = []
    for i, func in enumerate(funcs):
        with entered(i):
            func()
            start = time.perf_counter()
            func()
            single = max(time.perf_counter() - start, 1e-7)
        inner.append(max(1, int(min_time / repeat / single)))
    samples: list[list[float]] = [[] for _ in funcs]
    for _ in range(repeat):
        for i, func in enumerate(funcs):
            with entered(i):
                start = time.perf_counter()
                for _ in range(inner[i]):
                    func()
                samples[i].append((time.perf_counter() - start) / inner[i])
    return [statistics.median(s) for s in samples]


def limit_peer_threads(n: int | None = None) -> None:
    """Give the optional peers the same thread count as fastnn (PyTorch; BLAS via threadpoolctl)."""
    n = get_num_threads() if n is None else n
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass


def format_table(rows: list[BenchRow]) -> str:
    """Operation, shape, implementation, median time, speed-up over the slowest of the same
    operation and shape, and GFLOP/s where it applies."""
    slowest: dict[tuple[str, str], float] = {}
    for r in rows:
        key = (r.operation, r.shape)
        slowest[key] = max(slowest.get(key, 0.0), r.median_s)
    header = ("operation", "shape", "implementation", "median", "speed-up", "GFLOP/s")
    lines = [header]
    for r in rows:
        gf = r.gflops
        lines.append(
            (
                r.operation,
                r.shape,
                r.implementation,
                _format_seconds(r.median_s),
                f"{slowest[(r.operation, r.shape)] / r.median_s:.1f}x",
                "-" if gf is None else f"{gf:.1f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for j, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) if i < 3 else cell.rjust(w)
                             for i, (cell, w) in enumerate(zip(line, widths))))
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _format_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.1f} us"
