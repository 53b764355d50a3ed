"""Classification accuracy: one definition for the whole package.

:func:`accuracy` compares labels; :func:`model_accuracy` asks a model for its labels a batch at a
time and compares them. A model may be either kind the package has:

- a classifier with ``predict(X)`` returning labels (k-NN, the linear classifiers), or
- a CS231n model whose ``loss(X)`` without labels returns class scores (FullyConnectedNet);
  the label is the arg-max of the scores.

Example
-------
>>> import numpy as np
>>> from fastnn.metrics import accuracy
>>> accuracy([0, 1, 2, 2], np.array([0, 1, 1, 2]))
0.75
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._progress import progress
from fastnn._validation import check_array, check_int, check_labels

__all__ = ["accuracy", "model_accuracy", "predict_in_batches"]

#: Examples per batch when a model is asked for labels: bounds the memory of the scores (and of
#: k-NN's distance matrix) and lets a progress bar move.
DEFAULT_BATCH_SIZE = 1000


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of predictions equal to the true labels.

    Parameters
    ----------
    y_true : array_like of shape (N,)
        True class indices (non-negative integers), N >= 1.
    y_pred : array_like of shape (N,)
        Predicted class indices.

    Returns
    -------
    float
        ``mean(y_pred == y_true)``, in [0, 1].

    Raises
    ------
    ValueError
        Empty or differently sized inputs, or labels that are not class indices.
    """
    y_true = check_labels(y_true, "y_true")
    y_pred = check_labels(y_pred, "y_pred", n=y_true.shape[0], n_name="y_true")
    return float(np.mean(y_pred == y_true))


def _labels_of(model: Any, X_batch: np.ndarray, predict_kwargs: dict[str, Any]) -> np.ndarray:
    """Labels of one batch: ``predict`` when the model has it, else the arg-max of ``loss``."""
    if hasattr(model, "predict"):
        return np.asarray(model.predict(X_batch, **predict_kwargs))
    scores = np.asarray(model.loss(X_batch, **predict_kwargs))
    if scores.ndim != 2 or scores.shape[0] != X_batch.shape[0]:
        raise ValueError(
            f"model.loss(X) must return class scores of shape ({X_batch.shape[0]}, C) "
            f"for a batch of {X_batch.shape[0]} examples; got shape {scores.shape}"
        )
    return np.argmax(scores, axis=1)


def predict_in_batches(
    model: Any,
    X: Any,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress: bool | None = False,
    desc: str = "predict",
    **predict_kwargs: Any,
) -> np.ndarray:
    """Labels a model assigns to ``X``, computed ``batch_size`` examples at a time.

    Parameters
    ----------
    model : object
        Has ``predict(X, **predict_kwargs)`` returning labels, or a CS231n ``loss(X)`` returning
        scores of shape (batch, C) (then the label is the arg-max).
    X : array_like of shape (N, ...)
        Examples, N >= 1; passed to the model unchanged apart from the batching.
    batch_size : int
        Examples per call, >= 1.
    show_progress : bool or None
        Progress bar over the batches (None: only when stderr is a terminal).
    desc : str
        Label of the progress bar.
    **predict_kwargs
        Passed to every ``predict`` (or ``loss``) call, e.g. ``k=5`` for k-NN.

    Returns
    -------
    ndarray of shape (N,), intp
    """
    if not (hasattr(model, "predict") or hasattr(model, "loss")):
        raise TypeError(
            "model must have predict(X) (labels) or a CS231n loss(X) (scores); got "
            f"{type(model).__name__}"
        )
    X = check_array(X, "X", dtype=None, finite=False)
    if X.ndim < 1:
        raise ValueError(f"X must have one row per example, got a 0-D array {X!r}")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    n = X.shape[0]
    labels = np.empty(n, dtype=np.intp)
    starts = range(0, n, batch_size)
    for lo in progress(starts, desc=desc, enabled=show_progress):
        hi = min(lo + batch_size, n)
        batch_labels = _labels_of(model, X[lo:hi], predict_kwargs)
        if batch_labels.shape != (hi - lo,):
            raise ValueError(
                f"model returned labels of shape {batch_labels.shape} for a batch of "
                f"{hi - lo} examples; expected ({hi - lo},)"
            )
        labels[lo:hi] = batch_labels
    return labels


def model_accuracy(
    model: Any,
    X: Any,
    y: Any,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress: bool | None = False,
    desc: str = "accuracy",
    **predict_kwargs: Any,
) -> float:
    """Accuracy of a model on ``(X, y)``, predicting ``batch_size`` examples at a time.

    Parameters
    ----------
    model : object
        Has ``predict(X)`` (labels) or a CS231n ``loss(X)`` (scores); see
        :func:`predict_in_batches`.
    X : array_like of shape (N, ...)
        Examples, N >= 1.
    y : array_like of shape (N,)
        True class indices.
    batch_size : int
        Examples per model call, >= 1.
    show_progress : bool or None
        Progress bar over the batches (None: only when stderr is a terminal).
    desc : str
        Label of the progress bar.
    **predict_kwargs
        Passed to every ``predict`` (or ``loss``) call.

    Returns
    -------
    float
        Fraction of examples whose predicted label equals ``y``.
    """
    X = check_array(X, "X", dtype=None, finite=False)
    y = check_labels(y, "y", n=X.shape[0] if X.ndim else None, n_name="X")
    y_pred = predict_in_batches(
        model, X, batch_size=batch_size, show_progress=show_progress, desc=desc,
        **predict_kwargs,
    )
    return accuracy(y, y_pred)
