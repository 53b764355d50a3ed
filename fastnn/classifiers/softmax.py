"""Softmax (cross-entropy) loss for a linear classifier, looped and vectorized.

For scores ``s = x_i W`` the loss of example ``i`` is ``-log(exp(s_{y_i}) / sum_j exp(s_j))``;
the total loss is the mean over examples plus ``reg * sum(W * W)``. Both versions subtract the
row maximum from the scores before exponentiating: the probabilities are unchanged and
``exp`` can no longer overflow.

Registered as operation ``"softmax_loss"`` with impls ``"naive"`` and ``"vectorized"``.
"""

from __future__ import annotations

import math

import numpy as np

from fastnn.classifiers.linear_svm import _scores, check_loss_inputs, scores_checked
from fastnn.kernels._registry import register

__all__ = ["softmax_loss_naive", "softmax_loss_vectorized"]


@register("softmax_loss", "naive")
def softmax_loss_naive(W, X, y, reg: float) -> tuple[float, np.ndarray]:
    """Softmax loss with explicit loops over examples and classes (the specification).

    Parameters
    ----------
    W : ndarray of shape (D, C)
        Weights, one column per class.
    X : ndarray of shape (N, D)
        Minibatch of examples, one per row.
    y : ndarray of shape (N,)
        Labels in ``[0, C)``.
    reg : float
        Regularisation strength (>= 0); the penalty is ``reg * sum(W * W)``.

    Returns
    -------
    loss : float
    dW : ndarray of shape (D, C)
        Gradient of the loss with respect to ``W``.
    """
    W, X, y, reg = check_loss_inputs(W, X, y, reg)
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


@register("softmax_loss", "vectorized")
def softmax_loss_vectorized(W, X, y, reg: float) -> tuple[float, np.ndarray]:
    """Softmax loss without Python loops; same contract as :func:`softmax_loss_naive`."""
    W, X, y, reg = check_loss_inputs(W, X, y, reg, check_x_finite=False)
    return _softmax_loss(W, X, y, reg, check_finite=True)


def _softmax_loss(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float, check_finite: bool = False
) -> tuple[float, np.ndarray]:
    """Vectorized softmax loss on already-validated inputs (the training loop calls this)."""
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
    # (X^T A) computed as (A^T X)^T: BLAS streams X row-major once, ~2x faster than X.T @ A
    dW = np.ascontiguousarray((probs.T @ X).T)
    if reg:
        loss += reg * float(np.sum(W * W, dtype=np.float64))
        dW += (2.0 * reg) * W
    return loss, dW
