"""Multiclass SVM (hinge) loss for a linear classifier, looped and vectorized.

For scores ``s = x_i W`` the loss of example ``i`` is ``sum_{j != y_i} max(0, s_j - s_{y_i} + 1)``;
the total loss is the mean over examples plus ``reg * sum(W * W)``.

Both implementations share one signature and are registered as operation ``"svm_loss"``
(impls ``"naive"`` and ``"vectorized"``) so tests and benchmarks iterate over them. Matrix
products already run in BLAS, so there is no compiled twin: a hand-written kernel would only
re-implement GEMM.
"""

from __future__ import annotations

import numpy as np

from fastnn._validation import check_array, check_float, check_labels
from fastnn.kernels._registry import register

__all__ = ["svm_loss_naive", "svm_loss_vectorized"]


def check_loss_inputs(
    W, X, y, reg, *, check_x_finite: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Validate ``(W, X, y, reg)`` for a linear loss and bring W and X to one float dtype.

    W must be (D, C), X (N, D) with the same D, y (N,) labels in ``[0, C)``, reg >= 0, and
    neither array may hold NaN or infinity. With ``check_x_finite=False`` the caller promises to
    check the scores ``X @ W`` instead (:func:`check_scores_finite`): with a finite W, a NaN or
    infinity anywhere in row ``i`` of X always makes row ``i`` of the scores non-finite, and the
    (N, C) scores are ~D/C times cheaper to scan than X.
    """
    W = check_array(W, "W", ndim=2)
    X = check_array(X, "X", ndim=2, finite=check_x_finite)
    if X.shape[1] != W.shape[0]:
        raise ValueError(
            f"X must have W.shape[0] = {W.shape[0]} columns (X is (N, D), W is (D, C)); "
            f"got X with shape {X.shape} and W with shape {W.shape}"
        )
    y = check_labels(y, "y", n=X.shape[0], num_classes=W.shape[1])
    reg = check_float(reg, "reg", minimum=0.0)
    dtype = np.result_type(W, X)
    return W.astype(dtype, copy=False), X.astype(dtype, copy=False), y, reg


def _scores(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Class scores ``X @ W`` (N, C), computed as ``(W^T X^T)^T``.

    Same numbers, but OpenBLAS handles the (C x D) @ (D x N) shape (few rows, many columns) far
    better than (N x D) @ (D x C) when the machine is busy: on the shared 2-core box, 500 x 3073
    x 10 took 1.1 ms of CPU this way and 8 ms as ``X @ W`` with two BLAS threads (whose
    threads spin while waiting for each other). The result is an F-ordered view.
    """
    return (W.T @ X.T).T


def check_scores_finite(scores: np.ndarray) -> None:
    """Raise the NaN-in-X error when the class scores ``X @ W`` (finite W) are not finite."""
    if not np.isfinite(scores).all():
        bad = int(np.flatnonzero(~np.isfinite(scores).all(axis=1))[0])
        raise ValueError(
            f"X contains NaN or infinity (or values so large that X @ W overflows); "
            f"first bad row: {bad}"
        )


def scores_checked(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Class scores ``X @ W`` with the NaN/infinity check on X done through the scores."""
    with np.errstate(invalid="ignore", over="ignore"):  # reported by check_scores_finite
        scores = _scores(W, X)
    check_scores_finite(scores)
    return scores


@register("svm_loss", "naive")
def svm_loss_naive(W, X, y, reg: float) -> tuple[float, np.ndarray]:
    """Structured SVM loss with explicit loops over examples and classes (the specification).

    Parameters
    ----------
    W : ndarray of shape (D, C)
        Weights, one column per class.
    X : ndarray of shape (N, D)
        Minibatch of examples, one per row.
    y : ndarray of shape (N,)
        Labels; ``y[i] = c`` means ``X[i]`` belongs to class ``c`` with ``0 <= c < C``.
    reg : float
        Regularisation strength (>= 0); the penalty is ``reg * sum(W * W)``.

    Returns
    -------
    loss : float
    dW : ndarray of shape (D, C)
        Gradient of the loss with respect to ``W``, in the common float dtype of ``W`` and ``X``.
    """
    W, X, y, reg = check_loss_inputs(W, X, y, reg)
    num_train, num_classes = X.shape[0], W.shape[1]
    dW = np.zeros_like(W)
    loss = 0.0
    for i in range(num_train):
        scores = X[i].dot(W)
        correct_class_score = scores[y[i]]
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - correct_class_score + 1.0  # delta = 1
            if margin > 0:
                loss += margin
                # d margin / dW[:, j] = x_i and d margin / dW[:, y_i] = -x_i
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    loss /= num_train
    dW /= num_train
    loss += reg * np.sum(W * W)
    dW += 2.0 * reg * W
    return float(loss), dW


@register("svm_loss", "vectorized")
def svm_loss_vectorized(W, X, y, reg: float) -> tuple[float, np.ndarray]:
    """Structured SVM loss without Python loops; same contract as :func:`svm_loss_naive`."""
    W, X, y, reg = check_loss_inputs(W, X, y, reg, check_x_finite=False)
    return _svm_loss(W, X, y, reg, check_finite=True)


def _svm_loss(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float, check_finite: bool = False
) -> tuple[float, np.ndarray]:
    """Vectorized hinge loss on already-validated inputs (the training loop calls this directly)."""
    num_train = X.shape[0]
    rows = np.arange(num_train)
    scores = scores_checked(W, X) if check_finite else _scores(W, X)
    correct = scores[rows, y][:, None]
    # margins in place: fewer temporaries of shape (N, C)
    margins = scores
    margins -= correct
    margins += 1.0
    np.maximum(margins, 0.0, out=margins)
    margins[rows, y] = 0.0
    loss = float(margins.sum(dtype=np.float64)) / num_train
    # Each positive margin adds x_i to column j and subtracts it from column y_i.
    coeff = (margins > 0).astype(W.dtype)
    coeff[rows, y] = -coeff.sum(axis=1)
    coeff /= num_train
    # (X^T A) computed as (A^T X)^T: BLAS streams X row-major once, ~2x faster than X.T @ A
    dW = np.ascontiguousarray((coeff.T @ X).T)
    if reg:
        loss += reg * float(np.sum(W * W, dtype=np.float64))
        dW += (2.0 * reg) * W
    return loss, dW
