"""Input validation used at every public entry point (in the spirit of scikit-learn's check_array).

Every error names the argument, what was expected and what was received, so bad input never
reaches compiled code that could index out of bounds.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
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
    if n is not None and n_name is not None and y.shape[0] != n:
        raise ValueError(f"{n_name} has {n} rows but {name} has {y.shape[0]} labels: {name} and "
                         f"{n_name} have different lengths (one label per row)")
    if y.size and y.dtype.kind == "u" and y.max() > np.iinfo(np.intp).max:
        raise ValueError(f"{name} must be class indices that fit in {np.dtype(np.intp)}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name} must have {n} entries (one per example), got {y.shape[0]}")
    if y.size and y.min() < 0:
        raise ValueError(f"{name} must be non-negative class indices, got minimum {y.min()}")
    if num_classes is not None and y.size and y.max() >= num_classes:
        raise ValueError(
            f"{name} must be class indices in [0, {num_classes}), got maximum {y.max()}"
        )
    return y.astype(np.intp, copy=False)


def memory_limit_bytes() -> int:
    """Physical memory of this machine in bytes, or 2**47 (64-bit user address space) if unknown:
    the bound for "can this ever be allocated" checks made before allocating."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 2**47


def check_fits_in_memory(nbytes: float, name: str, what: str) -> None:
    """ValueError naming ``name`` when ``what`` needs more bytes than this machine's memory
    (checked before allocating, so an absurd size is an error instead of a MemoryError)."""
    limit = memory_limit_bytes()
    if nbytes > limit:
        raise ValueError(f"{name} is too large: {what} would need {nbytes / 2**30:.3g} GiB, more "
                         f"than this machine's memory ({limit / 2**30:.3g} GiB)")


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


def check_path(value: Any, name: str) -> Path:
    """``value`` as a :class:`~pathlib.Path`; anything but ``str``/``os.PathLike`` is a TypeError
    naming the argument ``name`` (bytes paths are accepted too, as :mod:`os` does)."""
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    if isinstance(value, bytes):
        return Path(os.fsdecode(value))
    raise TypeError(f"{name} must be a str or os.PathLike, got {type(value).__name__} {value!r:.80}")


def check_data_dict(data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A CS231n data dict: ``X_train``/``X_val`` (one row per example, the same example shape,
    float) and ``y_train``/``y_val`` labels, one per row; errors name the key (``data['X_val']``).

    Returns
    -------
    X_train, y_train, X_val, y_val : ndarray
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"data must be a dict with X_train, y_train, X_val, y_val; got "
                        f"{type(data).__name__}")
    missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
    if missing:
        raise ValueError(f"data is missing the key(s) {', '.join(missing)} (expected "
                         f"X_train, y_train, X_val, y_val; got {', '.join(map(str, data))})")
    X_train = check_array(data["X_train"], "data['X_train']", dtype="float")
    if X_train.ndim < 2:
        raise ValueError(f"data['X_train'] must have one row per example (ndim >= 2), got "
                         f"shape {X_train.shape}")
    X_val = check_array(data["X_val"], "data['X_val']", dtype="float")
    if X_val.ndim < 2:
        raise ValueError(f"data['X_val'] must have one row per example (ndim >= 2), got "
                         f"shape {X_val.shape}")
    if X_val.shape[1:] != X_train.shape[1:]:
        raise ValueError(f"data['X_val'] examples must have the shape of data['X_train'] "
                         f"examples {X_train.shape[1:]}, got {X_val.shape[1:]}")
    y_train = check_labels(data["y_train"], "data['y_train']", n=X_train.shape[0],
                           n_name="data['X_train']")
    y_val = check_labels(data["y_val"], "data['y_val']", n=X_val.shape[0], n_name="data['X_val']")
    return X_train, y_train, X_val, y_val


def check_state_arrays(state: Any, expected: Mapping[str, tuple[int, ...]],
                       dtype: Any) -> dict[str, np.ndarray]:
    """Validate a model's ``set_state`` argument against the shapes its ``get_state`` gives.

    Parameters
    ----------
    state : Mapping of str -> ndarray
        What the caller passed.
    expected : Mapping of str -> tuple of int
        Every entry the model's state must have, with its shape.
    dtype : dtype
        The model's dtype; the returned arrays are copies in it.

    Returns
    -------
    dict of str -> ndarray
        Converted copies, so the model can commit them all at once (all-or-nothing).

    Raises
    ------
    TypeError, ValueError
        Naming a missing, unknown, non-float or ill-shaped entry.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict of arrays, got {type(state).__name__}")
    if set(state) != set(expected):
        raise ValueError(f"state must have the entries {sorted(expected)}, got "
                         f"{sorted(map(str, state))}")
    converted = {}
    for name, shape in expected.items():
        value = state[name]
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise TypeError(f"state[{name!r}] must be a real floating array, got {kind}")
        if value.shape != shape:
            raise ValueError(f"state[{name!r}] must have shape {shape}, got {value.shape}")
        converted[name] = value.astype(dtype, copy=True)
    return converted
