"""Input validation used at every public entry point (in the spirit of scikit-learn's check_array).

Every error names the argument, what was expected and what was received, so bad input never
reaches compiled code that could index out of bounds.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def check_array(
    x: Any,
    name: str,
    *,
    ndim: int | Iterable[int] | None = None,
    dtype: str | None = "float",
    allow_empty: bool = False,
    finite: bool = True,
    contiguous: bool = False,
    copy: bool = False,
) -> np.ndarray:
    """Convert ``x`` to an ndarray and check it.

    Parameters
    ----------
    x : array_like
        The input.
    name : str
        Argument name used in error messages.
    ndim : int or iterable of int, optional
        Allowed numbers of dimensions.
    dtype : {"float", "int", None, "float32", "float64"}
        ``"float"`` keeps float32/float64 as they are and converts anything else numeric (ints,
        bools, float16) to float64; ``"int"`` requires integer values (floats that are whole
        numbers are accepted and converted to int64); a concrete name forces that dtype;
        ``None`` leaves the dtype alone.
    allow_empty : bool
        Whether arrays with a zero-length axis are accepted.
    finite : bool
        For float output, reject NaN and infinity.
    contiguous : bool
        Return a C-contiguous array (copying if needed), as compiled kernels require.
    copy : bool
        Always return a fresh array.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except ValueError as exc:
            # ragged nesting: "setting an array element with a sequence ... inhomogeneous shape"
            raise ValueError(
                f"{name} must be a rectangular array (every row the same length), got a ragged "
                f"{type(x).__name__}: {exc}"
            ) from None
        except TypeError as exc:
            raise TypeError(f"{name} must be array-like, got {type(x).__name__}: {exc}") from None
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got an object array")

    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be a {want} array, got {arr.ndim}-D with shape {arr.shape}")

    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")

    if dtype == "float":
        if arr.dtype not in FLOAT_DTYPES:
            if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
                raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
            if np.issubdtype(arr.dtype, np.complexfloating):
                raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
            arr = arr.astype(np.float64)
    elif dtype == "int":
        if np.issubdtype(arr.dtype, np.floating):
            if arr.size and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
                raise ValueError(f"{name} must hold integers, got non-integral floats")
            if arr.size and np.abs(arr).max() >= 2.0**63:
                raise ValueError(f"{name} must hold integers that fit in int64")
            arr = arr.astype(np.int64)
        elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
            raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    elif dtype is not None:
        arr = arr.astype(dtype, copy=False)

    if finite and arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")

    if contiguous:
        arr = np.ascontiguousarray(arr)
    if copy and isinstance(x, np.ndarray) and np.shares_memory(arr, x):
        arr = arr.copy()
    return arr


def check_labels(y: Any, name: str, n: int | None = None, num_classes: int | None = None,
                 *, n_name: str | None = None) -> np.ndarray:
    """Check a 1-D array of integer class labels, optionally of length ``n`` and in ``[0, num_classes)``.

    ``n_name`` names the argument ``n`` comes from (``X``, ``y_true``): a length mismatch then
    names both arguments, since either may be the wrong one.
    """
    y = check_array(y, name, ndim=1, dtype="int", allow_empty=n == 0)
    if y.size and y.dtype.kind == "u" and y.max() > np.iinfo(np.intp).max:
        raise ValueError(f"{name} must be class indices that fit in {np.dtype(np.intp)}")
    if n is not None and y.shape[0] != n:
        if n_name is not None:
            raise ValueError(f"{name} must have {n} entries (one per example of {n_name}), got "
                             f"{y.shape[0]}: {name} and {n_name} have different lengths")
        raise ValueError(f"{name} must have {n} entries (one per example), got {y.shape[0]}")
    if y.size and y.min() < 0:
        raise ValueError(f"{name} must be non-negative class indices, got minimum {y.min()}")
    if num_classes is not None and y.size and y.max() >= num_classes:
        raise ValueError(
            f"{name} must be class indices in [0, {num_classes}), got maximum {y.max()}"
        )
    return y.astype(np.intp, copy=False)


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Check an integer scalar (bools rejected) within optional inclusive bounds."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> float:
    """Check a finite real scalar within optional bounds."""
    if type(value) is not float and (isinstance(value, bool)
                                     or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value < minimum or (not min_inclusive and value == minimum)):
        op = ">=" if min_inclusive else ">"
        raise ValueError(f"{name} must be {op} {minimum}, got {value}")
    if maximum is not None and (value > maximum or (not max_inclusive and value == maximum)):
        op = "<=" if max_inclusive else "<"
        raise ValueError(f"{name} must be {op} {maximum}, got {value}")
    return value


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """Check that ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_seed(
    seed: Any, name: str = "seed", *, allow_generator: bool = True
) -> int | np.random.Generator | None:
    """Check a random seed: None, a non-negative integer (bools rejected) or, when
    ``allow_generator``, a :class:`numpy.random.Generator` (returned as it is, to be advanced).

    ``np.random.default_rng`` would otherwise fail on a bad seed with a message that does not
    name the argument (``"expected non-negative integer"``, ``"SeedSequence expects int ..."``).
    Returns a plain ``int`` for integers (NumPy integers and 0-d integer arrays included).
    """
    if seed is None:
        return None
    if allow_generator and isinstance(seed, np.random.Generator):
        return seed
    want = "None, a non-negative integer" + (" or a numpy.random.Generator" if allow_generator
                                              else "")
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"{name} must be {want}, got bool {seed!r}")
    try:
        value = operator.index(seed)
    except TypeError:
        raise TypeError(f"{name} must be {want}, got {type(seed).__name__} {seed!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be {want}, got {value}")
    return value
