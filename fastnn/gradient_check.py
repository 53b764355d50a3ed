"""Numerical gradients by centered differences, for checking analytic backward passes.

The functions perturb the caller's array ``x`` in place, one entry at a time, and restore it
afterwards: callers pass closures that read that same array, so a copy would not work.
Use float64 inputs; float32 round-off swamps the differences. Integer (or bool) ``x`` cannot
hold ``x + h``, so it is converted to a float64 copy first: then ``f`` must compute from its
argument, not from a closure over the caller's integer array. When a copy was differentiated and
``f``'s value never changed, ``f`` evidently reads the caller's array, and the result would be a
silent zero gradient: that is a ValueError naming ``x`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from random import randrange
from typing import Any

import numpy as np

from fastnn._validation import check_array, check_float, check_int, check_seed

__all__ = [
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "rel_error",
]

MAX_SPARSE_CHECKS = 10**6  # each check evaluates f twice; more is a mistake, not a test


def _relative_error(a: Any, b: Any) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


def rel_error(x: Any, y: Any) -> float:
    """Maximum relative error ``|x - y| / max(1e-8, |x| + |y|)`` (the CS231n definition).

    Parameters
    ----------
    x, y : array_like
        Two arrays (or scalars) of the same shape; no broadcasting, so a transposed or
        flattened gradient is an error rather than a meaningless small number.

    Returns
    -------
    float
        The largest element-wise relative error.

    Raises
    ------
    ValueError
        The shapes differ, or an input is empty or ragged.
    TypeError
        An input is not real-valued (complex, object or strings).
    """
    x = check_array(x, "x", dtype="float", finite=False)
    y = check_array(y, "y", dtype="float", finite=False)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    return float(np.max(_relative_error(x, y)))


def _perturbed_in_place(x: Any) -> bool:
    """Whether ``x`` itself is perturbed (a float ndarray), rather than a float64 copy of it."""
    return isinstance(x, np.ndarray) and x.dtype.kind in "fc"


def _as_float_point(x: Any) -> np.ndarray:
    """``x`` itself when it is a float array (perturbed in place), else a float64 copy."""
    if _perturbed_in_place(x):
        if not x.flags.writeable:
            raise ValueError(
                "x must be a writeable array: it is perturbed in place (and restored), got a "
                "read-only array (pass x.copy() and let f compute from its argument)"
            )
        return x
    arr = check_array(x, "x", dtype=None, allow_empty=True, finite=False)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"x must be a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _check_responded(copied: bool, responded: bool, x: np.ndarray) -> None:
    """Refuse the silent zero gradient of a closure over a caller's array that was not perturbed."""
    if copied and not responded and x.size:
        raise ValueError(
            "x must be a writeable float array when f reads the caller's array: x was "
            "differentiated as a float64 copy (it is not a float ndarray) and f's value never "
            "changed, so f does not compute from its argument; pass x.astype(np.float64) and "
            "let f read that array (or compute from its argument)"
        )


def _check_f(f: Any) -> None:
    if not callable(f):
        raise TypeError(f"f must be callable (f(x) -> value), got {type(f).__name__} {f!r}")


def _step(h: Any) -> float:
    return check_float(h, "h", minimum=0.0, min_inclusive=False)


def _values_around(f, x: np.ndarray, ix: tuple, h: float, capture=None):
    """``(f(x) with x[ix] + h, f(x) with x[ix] - h)``, restoring ``x[ix]`` even if ``f`` raises.

    ``capture`` copies an array result before ``x`` changes again (``f`` may return a view or a
    buffer it reuses).
    """
    old = x[ix]
    try:
        x[ix] = old + h
        plus = f(x) if capture is None else capture(f(x))
        x[ix] = old - h
        minus = f(x) if capture is None else capture(f(x))
    finally:
        x[ix] = old
    return plus, minus


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, verbose: bool = True, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of a scalar function ``f`` at ``x``.

    Parameters
    ----------
    f : callable
        Takes ``x`` and returns a scalar.
    x : ndarray
        Point at which to evaluate (writeable); modified temporarily and restored. Integer
        input is converted to a float64 copy (see the module docstring).
    verbose : bool
        Print each index and its gradient.
    h : float
        Step (> 0) for the centered difference ``(f(x + h) - f(x - h)) / 2h``.

    Returns
    -------
    grad : ndarray, same shape as ``x`` (float64 for integer ``x``)
    """
    _check_f(f)
    h = _step(h)
    copied = not _perturbed_in_place(x)
    x = _as_float_point(x)
    grad = np.zeros_like(x)
    responded = False
    for ix in np.ndindex(x.shape):
        fxph, fxmh = _values_around(f, x, ix, h)
        responded = responded or bool(fxph != fxmh)
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    _check_responded(copied, responded, x)
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of an array-valued ``f`` at ``x``, contracted with upstream ``df``.

    Parameters
    ----------
    f : callable
        Takes ``x`` and returns an array shaped like ``df``.
    x : ndarray
        Point at which to evaluate (writeable); modified temporarily and restored. Integer
        input is converted to a float64 copy (see the module docstring).
    df : array_like
        Upstream gradient, real numbers, exactly the shape of ``f(x)``.
    h : float
        Step (> 0) for the centered differences.

    Returns
    -------
    grad : ndarray, same shape as ``x``
        ``sum(df * d f(x) / d x)`` for every entry of ``x``: what a backward pass computes for
        an output gradient ``df``.
    """
    _check_f(f)
    h = _step(h)
    copied = not _perturbed_in_place(x)
    x = _as_float_point(x)
    df = check_array(df, "df", dtype="float", allow_empty=True, finite=False)
    grad = np.zeros_like(x)
    if x.size == 0 and _capture(f(x)).shape != df.shape:  # no entry to perturb: check df once
        raise ValueError(f"df must have the shape of f(x) (no broadcasting): f(x) returned shape "
                         f"{_capture(f(x)).shape}, df has shape {df.shape}")
    responded = False
    for ix in np.ndindex(x.shape):
        pos, neg = _values_around(f, x, ix, h, capture=_capture)
        responded = responded or bool(np.any(pos != neg))
        if pos.shape != df.shape or neg.shape != df.shape:
            raise ValueError(
                f"df must have the shape of f(x) (no broadcasting): f(x) returned shape "
                f"{pos.shape if pos.shape != df.shape else neg.shape}, df has shape {df.shape}"
            )
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    _check_responded(copied, responded, x)
    return grad


def _capture(value: Any) -> np.ndarray:
    """A copy of ``f(x)``'s array result (checked numeric; ``f`` may reuse its buffer)."""
    value = np.array(value, copy=True)
    if not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
        raise TypeError(f"f(x) must return a numeric array, got dtype {value.dtype}")
    return value


def grad_check_sparse(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
    seed: int | None = None,
    verbose: bool = True,
) -> np.ndarray:
    """Compare ``analytic_grad`` with centered differences at ``num_checks`` random entries.

    Prints ``numerical: <num> analytic: <num>, relative error: <num>`` per entry (the CS231n
    format).

    Parameters
    ----------
    f : callable
        Takes ``x`` and returns a scalar.
    x : ndarray
        Point at which to check (perturbed and restored; integer input becomes a float64 copy).
    analytic_grad : array_like
        The gradient to check: real numbers, shape of ``x``.
    num_checks : int
        Entries to sample (with replacement), 0 to :data:`MAX_SPARSE_CHECKS`.
    h : float
        Step (> 0) for the centered differences.
    seed : int or numpy.random.Generator, optional
        Seed (a non-negative integer) for the entry choice (default: Python's global
        ``random``, as CS231n).
    verbose : bool
        Print one line per check.

    Returns
    -------
    ndarray, shape (num_checks,)
        The relative errors.
    """
    _check_f(f)
    num_checks = check_int(num_checks, "num_checks", minimum=0, maximum=MAX_SPARSE_CHECKS)
    h = _step(h)
    seed = check_seed(seed, "seed")
    copied = not _perturbed_in_place(x)
    x = _as_float_point(x)
    analytic_grad = check_array(analytic_grad, "analytic_grad", dtype="float", allow_empty=True,
                                finite=False)
    if analytic_grad.shape != x.shape:
        raise ValueError(
            f"analytic_grad must have the shape of x {x.shape}, got {analytic_grad.shape}"
        )
    if num_checks and x.size == 0:
        raise ValueError(f"x must not be empty to check entries of it, got shape {x.shape}")
    rng = np.random.default_rng(seed) if seed is not None else None
    errors = np.empty(num_checks)
    responded = False
    for i in range(num_checks):
        if rng is None:
            ix = tuple(randrange(m) for m in x.shape)
        else:
            ix = tuple(int(rng.integers(m)) for m in x.shape)
        fxph, fxmh = _values_around(f, x, ix, h)
        responded = responded or bool(fxph != fxmh)
        grad_numerical = (fxph - fxmh) / (2 * h)
        grad_analytic = analytic_grad[ix]
        errors[i] = _relative_error(grad_numerical, grad_analytic)
        if verbose:
            print(
                f"numerical: {grad_numerical:f} analytic: {grad_analytic:f}, "
                f"relative error: {errors[i]:e}"
            )
    if num_checks:
        _check_responded(copied, responded, x)
    return errors
