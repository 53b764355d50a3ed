"""Checks that a backward function was handed the cache of its own forward function.

A cache from another layer, a tuple of the wrong length or one holding the wrong types would
otherwise fail deep inside NumPy (or a compiled kernel) with a message that does not say what
went wrong; these raise a ValueError (wrong length or shapes) or TypeError (wrong types) naming
``cache``, the forward function it must come from and what was found.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.ndim}-D {value.dtype} array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def unpack_cache(cache: Any, forward: str, fields: tuple[str, ...]) -> tuple:
    """``cache`` as a tuple of ``len(fields)`` items, as ``forward`` returns it.

    Parameters
    ----------
    cache : tuple
        The cache handed to a backward function.
    forward : str
        Name of the forward function that makes this cache (for the message).
    fields : tuple of str
        Names of the items, in order.

    Returns
    -------
    tuple
        The items.

    Raises
    ------
    TypeError
        ``cache`` is not a tuple (or list).
    ValueError
        It holds a different number of items.
    """
    layout = f"({', '.join(fields)})"
    if not isinstance(cache, (tuple, list)):
        raise TypeError(f"cache must be the {layout} tuple returned by {forward}; got "
                        f"{_describe(cache)}")
    if len(cache) != len(fields):
        raise ValueError(f"cache must be the {layout} tuple returned by {forward} "
                         f"({len(fields)} items); got {_describe(cache)}")
    return tuple(cache)


def cached_array(value: Any, field: str, forward: str, ndim: int | None = None) -> np.ndarray:
    """The cached array ``field`` of a ``forward`` cache: an ndarray (of ``ndim`` dimensions).

    Parameters
    ----------
    value : ndarray
        The cached item.
    field : str
        Its name in the cache.
    forward : str
        The forward function the cache must come from.
    ndim : int, optional
        Required number of dimensions.

    Returns
    -------
    ndarray
        ``value`` itself.
    """
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
        raise TypeError(f"cache must come from {forward}: its {field} must be a numeric ndarray; "
                        f"got {_describe(value)}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"cache must come from {forward}: its {field} must be {ndim}-D; got "
                         f"{_describe(value)}")
    return value


def cached_number(value: Any, field: str, forward: str) -> float:
    """The cached real scalar ``field`` of a ``forward`` cache (bools refused).

    Parameters
    ----------
    value : float
        The cached item.
    field, forward : str
        Its name in the cache and the forward function the cache must come from.

    Returns
    -------
    float
        ``value`` as a Python float.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"cache must come from {forward}: its {field} must be a real number; "
                        f"got {_describe(value)}")
    return float(value)


def cached_flag(value: Any, field: str, forward: str) -> bool:
    """The cached bool ``field`` of a ``forward`` cache.

    Parameters
    ----------
    value : bool
        The cached item.
    field, forward : str
        Its name in the cache and the forward function the cache must come from.

    Returns
    -------
    bool
        ``value`` as a Python bool.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"cache must come from {forward}: its {field} must be a bool; got "
                        f"{_describe(value)}")
    return bool(value)


def cached_shape(value: np.ndarray, field: str, forward: str, shape: tuple[int, ...]) -> None:
    """Raise a ValueError naming ``cache`` unless the cached ``field`` has ``shape``.

    Parameters
    ----------
    value : ndarray
        The cached array.
    field, forward : str
        Its name in the cache and the forward function the cache must come from.
    shape : tuple of int
        The shape the other cached arrays imply.
    """
    if value.shape != shape:
        raise ValueError(f"cache must come from {forward}: its {field} must have shape {shape} "
                         f"to match the other cached arrays; got {value.shape}")
