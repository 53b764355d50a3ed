"""Linear-classifier losses (multiclass SVM and softmax), looped and vectorized.

Operations ``"linear_svm_loss"`` and ``"linear_softmax_loss"``, implementations ``"naive"``
(loops over examples and classes, the specification) and ``"vectorized"`` (NumPy), signature
``(W, X, y, reg) -> (loss, dW)`` with ``W`` (D, C), ``X`` (N, D), ``y`` (N,) labels in
``[0, C)``, ``reg >= 0``; the loss is the mean over examples plus ``reg * sum(W * W)``.
The CS231n names ``svm_loss_naive`` etc. live in ``fastnn.classifiers``. Matrix products already
run in BLAS, so there is no compiled twin: a hand-written kernel would only re-implement GEMM.

- SVM: ``sum_{j != y_i} max(0, s_j - s_{y_i} + 1)`` for scores ``s = x_i W``;
- softmax: ``-log(exp(s_{y_i}) / sum_j exp(s_j))``, computed from scores shifted by their row
  maximum (same probabilities, ``exp`` cannot overflow).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from fastnn._validation import check_array, check_float, check_labels
from fastnn.kernels._operation import Operation

__all__ = [
    "check_loss_inputs",
    "linear_softmax_loss",
    "linear_svm_loss",
    "softmax_loss_validated",
    "svm_loss_validated",
]


def check_loss_inputs(
    W: ArrayLike, X: ArrayLike, y: ArrayLike, reg: float, *, check_x_finite: bool = True,
    x_name: str = "X", y_name: str = "y",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Validate ``(W, X, y, reg)`` for a linear loss and bring W and X to one float dtype.

    W must be (D, C), X (N, D) with the same D, y (N,) labels in ``[0, C)``, reg >= 0, and
    neither array may hold NaN or infinity. With ``check_x_finite=False`` the caller promises to
    check the scores ``X @ W`` instead (:func:`check_scores_finite`): with a finite W, a NaN or
    infinity anywhere in row ``i`` of X always makes row ``i`` of the scores non-finite, and the
    (N, C) scores are ~D/C times cheaper to scan than X. ``x_name`` and ``y_name`` are the
    caller's names of X and y, for the messages (``LinearClassifier.loss`` says ``X_batch``).
    """
    W = check_array(W, "W", ndim=2)
    X = check_array(X, x_name, ndim=2, finite=check_x_finite)
    if X.shape[1] != W.shape[0]:
        raise ValueError(
            f"{x_name} must have W.shape[0] = {W.shape[0]} columns ({x_name} is (N, D), W is "
            f"(D, C)); got {x_name} with shape {X.shape} and W with shape {W.shape}"
        )
    y = check_labels(y, y_name, n=X.shape[0], n_name=x_name, num_classes=W.shape[1])
    reg = check_float(reg, "reg", minimum=0.0)
    dtype = np.result_type(W, X)
    return W.astype(dtype, copy=False), X.astype(dtype, copy=False), y, reg


def _scores(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Class scores ``X @ W`` (N, C), computed as ``(W^T X^T)^T``.

    Same numbers; OpenBLAS handles this shape (few rows, many columns) better than
    ``X @ W`` (measurement in benchmarks/README.md). The result is an F-ordered view.
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


def _with_gradient(
    loss: float, dscores: np.ndarray, W: np.ndarray, X: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    """``dW = X^T dscores`` plus the L2 penalty's share of loss and gradient."""
    # (X^T A) computed as (A^T X)^T: BLAS streams X row-major once, ~2x faster than X.T @ A
    dW = np.ascontiguousarray((dscores.T @ X).T)
    if reg:
        loss += reg * float(np.sum(W * W, dtype=np.float64))
        dW += (2.0 * reg) * W
    return loss, dW


def _check_loss(impl: str, W, X, y, reg):
    """The vectorized implementations check X through the scores they compute anyway."""
    return check_loss_inputs(W, X, y, reg, check_x_finite=impl == "naive")


LINEAR_SVM_LOSS = Operation("linear_svm_loss", _check_loss)
LINEAR_SOFTMAX_LOSS = Operation("linear_softmax_loss", _check_loss)


@LINEAR_SVM_LOSS.register("naive")
def _svm_loss_naive(W, X, y, reg: float) -> tuple[float, np.ndarray]:
    """Structured SVM loss with explicit loops over examples and classes (the specification)."""
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


@LINEAR_SVM_LOSS.register("vectorized")
def _svm_loss_vectorized(W, X, y, reg: float) -> tuple[float, np.ndarray]:
    return svm_loss_validated(W, X, y, reg, check_finite=True)


def svm_loss_validated(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float, check_finite: bool = False
) -> tuple[float, np.ndarray]:
    """Vectorized hinge loss on validated inputs (``LinearClassifier.train`` calls it)."""
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
    return _with_gradient(loss, coeff, W, X, reg)


@LINEAR_SOFTMAX_LOSS.register("naive")
def _softmax_loss_naive(W, X, y, reg: float) -> tuple[float, np.ndarray]:
    """Softmax loss with explicit loops over examples and classes (the specification)."""
    num_train, num_classes = X.shape[0], W.shape[1]
    dW = np.zeros_like(W)
    loss = 0.0
    for i in range(num_train):
        scores = X[i].dot(W)
        shift = max(scores[j] for j in range(num_classes))  # stability: exp(s - max) <= 1
        exp_scores = [math.exp(scores[j] - shift) for j in range(num_classes)]
        total = sum(exp_scores)
        loss += math.log(total) - (scores[y[i]] - shift)
        for j in range(num_classes):
            p = exp_scores[j] / total
            # d loss_i / d s_j = p_j - [j == y_i]; d s_j / dW[:, j] = x_i
            dW[:, j] += (p - (j == y[i])) * X[i]
    loss /= num_train
    dW /= num_train
    loss += reg * np.sum(W * W)
    dW += 2.0 * reg * W
    return float(loss), dW


@LINEAR_SOFTMAX_LOSS.register("vectorized")
def _softmax_loss_vectorized(W, X, y, reg: float) -> tuple[float, np.ndarray]:
    return softmax_loss_validated(W, X, y, reg, check_finite=True)


def softmax_loss_validated(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float, check_finite: bool = False
) -> tuple[float, np.ndarray]:
    """Vectorized softmax loss on validated inputs (``LinearClassifier.train`` calls it)."""
    num_train = X.shape[0]
    rows = np.arange(num_train)
    scores = scores_checked(W, X) if check_finite else _scores(W, X)
    scores -= scores.max(axis=1, keepdims=True)
    # loss_i = log(sum_j exp(s_j)) - s_{y_i}, computed from the shifted scores
    probs = np.exp(scores)
    sums = probs.sum(axis=1)
    loss = float(np.sum(np.log(sums), dtype=np.float64) - np.sum(scores[rows, y], dtype=np.float64))
    loss /= num_train
    probs /= sums[:, None]
    probs[rows, y] -= 1.0
    probs /= num_train
    return _with_gradient(loss, probs, W, X, reg)


def linear_svm_loss(
    W: ArrayLike, X: ArrayLike, y: ArrayLike, reg: float, impl: str | None = None
) -> tuple[float, np.ndarray]:
    """Multiclass SVM loss and gradient ``(loss, dW)`` (module doc); impl None: vectorized."""
    return LINEAR_SVM_LOSS(W, X, y, reg, impl=impl)


def linear_softmax_loss(
    W: ArrayLike, X: ArrayLike, y: ArrayLike, reg: float, impl: str | None = None
) -> tuple[float, np.ndarray]:
    """Softmax loss and gradient ``(loss, dW)`` (module doc); impl None: vectorized."""
    return LINEAR_SOFTMAX_LOSS(W, X, y, reg, impl=impl)
