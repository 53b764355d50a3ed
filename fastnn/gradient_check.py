"""Numerical gradients by centered differences, for checking analytic backward passes.

The functions perturb the caller's array ``x`` in place, one entry at a time, and restore it
afterwards: callers pass closures that read that same array, so a copy would not work.
Use float64 inputs; float32 round-off swamps the differences. Integer (or bool) ``x`` cannot
hold ``x + h``, so it is converted to a float64 copy first: then ``f`` must compute from its
argument, not from a closure over the caller's integer array.
"""

from __future__ import annotations

from collections.abc import Callable
from random import randrange
from typing import Any

import numpy as np

from fastnn._validation import check_float, check_int

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
        The shapes differ.
    """
    if np.shape(x) != np.shape(y):
        raise ValueError(f"x and y must have the same shape, got {np.shape(x)} and {np.shape(y)}")
    return float(np.max(_relative_error(x, y)))


def _as_float_point(x: Any) -> np.ndarray:
    """``x`` itself when it is a float array (perturbed in place), else a float64 copy."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "fc":
        return x
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"x must be a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64)


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
        Point at which to evaluate; modified temporarily and restored. Integer input is
        converted to a float64 copy (see the module docstring).
    verbose : bool
        Print each index and its gradient.
    h : float
        Step (> 0) for the centered difference ``(f(x + h) - f(x - h)) / 2h``.

    Returns
    -------
    grad : ndarray, same shape as ``x`` (float64 for integer ``x``)
    """
    h = _step(h)
    x = _as_float_point(x)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        fxph, fxmh = _values_around(f, x, ix, h)
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
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
        Point at which to evaluate; modified temporarily and restored. Integer input is
        converted to a float64 copy (see the module docstring).
    df : ndarray
        Upstream gradient, the shape of ``f(x)``.
    h : float
        Step (> 0) for the centered differences.

    Returns
    -------
    grad : ndarray, same shape as ``x``
        ``sum(df * d f(x) / d x)`` for every entry of ``x``: what a backward pass computes for
        an output gradient ``df``.
    """
    h = _step(h)
    x = _as_float_point(x)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        pos, neg = _values_around(f, x, ix, h, capture=lambda v: np.array(v, copy=True))
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


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
    analytic_grad : ndarray
        The gradient to check, shape of ``x``.
    num_checks : int
        Entries to sample (with replacement), 0 to :data:`MAX_SPARSE_CHECKS`.
    h : float
        Step (> 0) for the centered differences.
    seed : int, optional
        Seed for the entry choice (default: Python's global ``random``, as CS231n).
    verbose : bool
        Print one line per check.

    Returns
    -------
    ndarray, shape (num_checks,)
        The relative errors.
    """
    num_checks = check_int(num_checks, "num_checks", minimum=0, maximum=MAX_SPARSE_CHECKS)
    h = _step(h)
    if np.shape(analytic_grad) != np.shape(x):
        raise ValueError(
            f"analytic_grad must have the shape of x {np.shape(x)}, got {np.shape(analytic_grad)}"
        )
    x = _as_float_point(x)
    if num_checks and x.size == 0:
        raise ValueError(f"x must not be empty to check entries of it, got shape {x.shape}")
    rng = np.random.default_rng(seed) if seed is not None else None
    errors = np.empty(num_checks)
    for i in range(num_checks):
        if rng is None:
            ix = tuple(randrange(m) for m in x.shape)
        else:
            ix = tuple(int(rng.integers(m)) for m in x.shape)
        fxph, fxmh = _values_around(f, x, ix, h)
        grad_numerical = (fxph - fxmh) / (2 * h)
        grad_analytic = analytic_grad[ix]
        errors[i] = _relative_error(grad_numerical, grad_analytic)
        if verbose:
            print(
                f"numerical: {grad_numerical:f} analytic: {grad_analytic:f}, "
                f"relative error: {errors[i]:e}"
            )
    return errors
