"""A progress bar: tqdm when it is installed, else a small built-in one on stderr.

Shown by default only when stderr is a terminal, so logs and CI output stay clean.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def _default_enabled() -> bool:
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


class _SimpleBar:
    """Minimal stand-in for tqdm: ``update(n)``, ``set_postfix_str``, ``close``, iteration."""

    def __init__(self, iterable, total, desc, enabled, unit):
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.enabled = enabled
        self.unit = unit
        self.n = 0
        self.postfix = ""
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if self.enabled and (now - self._last_draw > 0.1 or (self.total and self.n >= self.total)):
            self._last_draw = now
            self._draw(now)

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def _draw(self, now: float) -> None:
        elapsed = now - self.start
        if self.total:
            frac = min(1.0, self.n / self.total)
            bar = "#" * int(frac * 30)
            line = f"{self.desc}: {frac:4.0%} |{bar:<30}| {self.n}/{self.total} [{elapsed:.1f}s]"
        else:
            line = f"{self.desc}: {self.n} {self.unit} [{elapsed:.1f}s]"
        if self.postfix:
            line += f" {self.postfix}"
        sys.stderr.write("\r" + line)
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.n:
            self._draw(time.perf_counter())
            sys.stderr.write("\n")
            sys.stderr.flush()
        self.enabled = False


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    enabled: bool | None = None,
    unit: str = "it",
) -> Iterator[T]:
    """Wrap ``iterable`` (or make a manual bar when it is None) in a progress bar.

    ``enabled=None`` shows the bar only when stderr is a terminal.
    """
    if enabled is None:
        enabled = _default_enabled()
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _SimpleBar(iterable if iterable is not None else (), total, desc, enabled, unit)
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, unit=unit, leave=True)
