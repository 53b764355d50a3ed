"""The one pattern every kernel operation follows.

An :class:`Operation` is a named computation (``"pairwise_distances"``, ``"hog"``, ...) with

* one argument check, declared once: ``check(impl, *args, **kwargs) -> args`` validates the raw
  arguments (shapes, dtypes, ranges; errors name the argument) and returns them normalised
  (float dtype, C order where a kernel needs it) as the positional arguments of every
  implementation;
* several implementations with that one signature, registered by decorator under
  ``"naive"`` (plain loops, the readable specification), ``"vectorized"`` (NumPy) and
  ``"compiled"`` (Cython + OpenMP); the compiled one is registered only when its extension
  module imports (:func:`load_extension`).

Calling the operation (``op(*args, impl=None)``) always validates first, then runs the chosen
implementation; ``impl=None`` picks the best one available (compiled, else vectorized), so a
source tree without a build runs on NumPy everywhere. :func:`get_impl` hands out the same
validated call bound to one implementation: nothing outside this package reaches a kernel with
unchecked arrays. In the spirit of scikit-learn's pairwise-distances-reduction dispatcher,
``op.is_usable_for(*args)`` answers "is this input usable" and ``op(*args)`` computes.

Thread counts come from one function, :func:`threads_for`, from the amount of work a call does.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from fastnn._config import get_num_threads

__all__ = [
    "MIN_WORK_PER_THREAD",
    "Operation",
    "available_impls",
    "get_impl",
    "get_operation",
    "load_extension",
    "missing_extensions",
    "operations",
    "threads_for",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Preference order of ``impl=None``: the first registered name in this list wins.
PREFERENCE = ("compiled", "vectorized", "one_loop", "naive")

#: Elementary operations (flops, element updates) a thread must get before a kernel forks
#: a team: waking a thread costs microseconds on an idle machine and a whole time slice on a
#: busy one, so small calls run on one thread.
MIN_WORK_PER_THREAD = 1e6

_OPERATIONS: dict[str, Operation] = {}
_MISSING: list[str] = []


def threads_for(work: float, min_work_per_thread: float = MIN_WORK_PER_THREAD,
                num_threads: int | None = None) -> int:
    """Threads for a kernel call doing about ``work`` elementary operations.

    At most ``num_threads`` (default :func:`fastnn.get_num_threads`), and never so many that a
    thread gets less than ``min_work_per_thread``; at least 1.
    """
    limit = get_num_threads() if num_threads is None else num_threads
    return int(max(1, min(limit, work // min_work_per_thread)))


def load_extension(name: str) -> ModuleType | None:
    """Import ``fastnn._ext.<name>``; None (remembered for one warning) when it is not built."""
    try:
        return importlib.import_module(f"fastnn._ext.{name}")
    except ImportError:
        _MISSING.append(f"fastnn._ext.{name}")
        return None


def missing_extensions() -> tuple[str, ...]:
    """Compiled modules that failed to import (their operations run on NumPy)."""
    return tuple(_MISSING)


def warn_missing_extensions() -> None:
    """One warning naming every compiled module that is not built (called once on import)."""
    if _MISSING:
        warnings.warn(
            f"fastnn: compiled extension(s) {', '.join(_MISSING)} not built; the NumPy "
            "implementations are used instead (build with `pip install .` for the fast kernels)",
            RuntimeWarning,
            stacklevel=3,
        )


class Operation:
    """A kernel operation: its argument check and its registered implementations.

    Parameters
    ----------
    name : str
        Registry name, unique in the package.
    check : callable
        ``check(impl, *args, **kwargs) -> tuple``: validates the caller's arguments and returns
        the positional arguments every implementation takes. ``impl`` is the implementation that
        will run (a check may leave a test to the compiled kernel that does it for free).
    """

    def __init__(self, name: str, check: Callable[..., tuple]) -> None:
        if name in _OPERATIONS:
            raise RuntimeError(f"operation {name!r} defined twice")
        self.name = name
        self.check = check
        self._impls: dict[str, Callable[..., Any]] = {}
        self._default: str | None = None
        _OPERATIONS[name] = self

    def register(self, impl: str, *, available: bool = True) -> Callable[[F], F]:
        """Decorator: register ``func`` as implementation ``impl`` (skipped when not available,
        e.g. a compiled kernel whose extension did not import)."""

        def decorator(func: F) -> F:
            if available:
                if impl in self._impls:
                    raise RuntimeError(f"implementation {impl!r} of {self.name!r} registered twice")
                self._impls[impl] = func
                self._default = next((n for n in PREFERENCE if n in self._impls),
                                     next(iter(self._impls)))
            return func

        return decorator

    @property
    def impls(self) -> tuple[str, ...]:
        """Registered implementation names, in registration order."""
        return tuple(self._impls)

    @property
    def default(self) -> str:
        """What ``impl=None`` means: the best registered implementation (by ``PREFERENCE``)."""
        if self._default is None:
            raise RuntimeError(f"operation {self.name!r} has no implementation registered")
        return self._default

    def resolve(self, impl: str | None) -> str:
        """``impl`` checked against the registry (None: :attr:`default`)."""
        if impl is None:
            return self._default if self._default is not None else self.default
        if not isinstance(impl, str) or impl not in self._impls:
            choices = ", ".join(map(repr, self._impls))
            raise ValueError(
                f"impl must be one of {choices} (or None) for {self.name}; got {impl!r}")
        return impl

    def is_usable_for(self, *args: Any, impl: str | None = None, **kwargs: Any) -> bool:
        """Whether the arguments pass this operation's check."""
        try:
            self.check(self.resolve(impl), *args, **kwargs)
        except (ValueError, TypeError):
            return False
        return True

    def __call__(self, *args: Any, impl: str | None = None, **kwargs: Any) -> Any:
        """Validate the arguments, then compute with ``impl`` (None: the best available)."""
        name = self.resolve(impl)
        return self._impls[name](*self.check(name, *args, **kwargs))

    def bind(self, impl: str) -> Callable[..., Any]:
        """The validated call with ``impl`` fixed (what :func:`get_impl` hands out)."""
        name = self.resolve(impl)

        @functools.wraps(self._impls[name])
        def validated(*args: Any, **kwargs: Any) -> Any:
            return self._impls[name](*self.check(name, *args, **kwargs))

        return validated


def get_operation(op_name: str) -> Operation:
    """The :class:`Operation` registered as ``op_name``."""
    if not isinstance(op_name, str) or op_name not in _OPERATIONS:
        known = ", ".join(sorted(_OPERATIONS)) or "none"
        raise ValueError(f"op_name must be a known operation ({known}); got {op_name!r}")
    return _OPERATIONS[op_name]


def available_impls(op_name: str) -> tuple[str, ...]:
    """Names of the implementations registered for ``op_name``, in registration order."""
    return get_operation(op_name).impls


def get_impl(op_name: str, impl: str | None = None) -> Callable[..., Any]:
    """Implementation ``impl`` of ``op_name`` (None: the best available), validating its input.

    The returned function takes the operation's public arguments (without ``impl``), checks
    them exactly as the public entry does and then runs that one implementation.
    """
    op = get_operation(op_name)
    return op.bind(op.resolve(impl))


def operations() -> tuple[str, ...]:
    """All registered operation names, sorted."""
    return tuple(sorted(_OPERATIONS))
