"""One seeded train/validation split for the whole package (CLI, searches, user code)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from fastnn._validation import check_array, check_float, check_int, check_seed

__all__ = ["train_validation_split"]


def _validation_count(validation_size: Any, n: int) -> int:
    """Number of validation examples for a fraction (0 < f < 1) or a count (>= 1)."""
    if isinstance(validation_size, (float, np.floating)):
        fraction = check_float(
            validation_size,
            "validation_size",
            minimum=0.0,
            maximum=1.0,
            min_inclusive=False,
            max_inclusive=False,
        )
        n_val = max(1, round(fraction * n))
    elif isinstance(validation_size, numbers.Integral) or hasattr(validation_size, "__index__"):
        n_val = check_int(validation_size, "validation_size", minimum=1)
    else:
        raise TypeError(
            "validation_size must be a fraction (float in (0, 1)) or a number of examples "
            f"(int >= 1), got {type(validation_size).__name__} {validation_size!r}"
        )
    if n_val >= n:
        raise ValueError(
            f"validation_size must leave training examples: got {n_val} validation examples "
            f"out of N = {n} (at most {n - 1})"
        )
    return n_val


def train_validation_split(
    X: Any,
    y: Any,
    validation_size: float = 0.1,
    *,
    seed: int | np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a random validation set from the training data.

    Parameters
    ----------
    X : array_like of shape (N, ...)
        Examples (feature rows or images), N >= 2.
    y : array_like of shape (N, ...)
        Labels (or any per-example targets).
    validation_size : float or int
        Fraction of the examples (``0 < f < 1``, rounded, at least one) or their number
        (``1 <= n_val < N``) that go to the validation set.
    seed : int, numpy.random.Generator or None
        Seed of (or the generator that draws) the permutation: the same seed gives the same
        split. A Generator is advanced, so a caller can draw more numbers from it afterwards.

    Returns
    -------
    X_train, y_train, X_val, y_val : ndarray
        Both parts keep the examples in their original order (sorted indices), so a split of
        sorted data stays sorted.

    Raises
    ------
    ValueError
        ``X`` and ``y`` of different lengths, or a ``validation_size`` that leaves no training
        (or no validation) example.
    """
    X = check_array(X, "X", dtype=None, finite=False)
    y = check_array(y, "y", dtype=None, finite=False, allow_empty=True)
    if X.ndim < 1 or y.ndim < 1:
        raise ValueError(
            f"X and y must have one entry per example, got shapes {X.shape}, {y.shape}"
        )
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"y must have {n} entries (one per row of X), got {y.shape[0]}")
    n_val = _validation_count(validation_size, n)
    seed = check_seed(seed, "seed")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    order = rng.permutation(n)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return X[train_idx], y[train_idx], X[val_idx], y[val_idx]
