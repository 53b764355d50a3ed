"""One small registry per operation: impl name -> function with the operation's signature.

Tests and benchmarks iterate over ``available_impls(op)`` instead of naming implementations by
hand; the conventional names are ``"naive"`` (plain loops, the readable specification),
``"vectorized"`` (NumPy) and ``"compiled"`` (Cython + OpenMP, the default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

_REGISTRY: dict[str, dict[str, Callable]] = {}


def register(op_name: str, impl: str) -> Callable[[F], F]:
    """Decorator: register ``func`` as implementation ``impl`` of operation ``op_name``."""

    def decorator(func: F) -> F:
        impls = _REGISTRY.setdefault(op_name, {})
        if impl in impls:
            raise RuntimeError(f"implementation {impl!r} of {op_name!r} registered twice")
        impls[impl] = func
        return func

    return decorator


def available_impls(op_name: str) -> tuple[str, ...]:
    """Names of the implementations registered for ``op_name``, in registration order."""
    if op_name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ValueError(f"op_name must be a known operation ({known}); got {op_name!r}")
    return tuple(_REGISTRY[op_name])


def get_impl(op_name: str, impl: str) -> Callable:
    """The function registered as ``impl`` for ``op_name``; a clear ValueError otherwise."""
    impls = _REGISTRY.get(op_name, {})
    if impl not in impls:
        choices = ", ".join(map(repr, impls)) or "none"
        raise ValueError(f"impl must be one of {choices} for {op_name}; got {impl!r}")
    return impls[impl]


def operations() -> tuple[str, ...]:
    """All registered operation names."""
    return tuple(_REGISTRY)
