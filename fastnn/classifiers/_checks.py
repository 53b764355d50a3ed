"""Validation shared by the classifiers: labels that must match the rows of the data, seeds."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_array, check_int, check_labels


def check_labels_for(
    y: Any, y_name: str, n: int, x_name: str, *, num_classes: int | None = None
) -> np.ndarray:
    """Labels ``y`` (1-D ints) that must have one entry per row of the ``n``-row ``x_name``.

    A length mismatch names both arguments ("X has 5 rows but y has 4 labels"), since either may
    be the wrong one.
    """
    y = check_array(y, y_name, ndim=1, dtype="int", allow_empty=n == 0)
    if y.shape[0] != n:
        raise ValueError(
            f"{x_name} has {n} rows but {y_name} has {y.shape[0]} labels; they must have one "
            f"label per row"
        )
    return check_labels(y, y_name, n=n, num_classes=num_classes)


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """``None`` or a non-negative integer (bools rejected), naming ``name`` in errors."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"{name} must be None or a non-negative integer, got bool {seed!r}")
    try:
        return check_int(seed, name, minimum=0)
    except TypeError:
        raise TypeError(
            f"{name} must be None or a non-negative integer, got {type(seed).__name__} {seed!r}"
        ) from None
