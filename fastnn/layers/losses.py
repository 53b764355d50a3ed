"""Classification losses on scores ``x`` (N, C) with integer labels ``y`` (N,).

Both return ``(loss, dx)`` with the loss averaged over the N examples (as in CS231n) and ``dx``
of ``x``'s dtype.
"""

from __future__ import annotations

import numpy as np

from fastnn._validation import check_array, check_labels

__all__ = ["softmax_loss", "svm_loss"]


def _check_scores_labels(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = check_array(x, "x", ndim=2, finite=False)
    y = check_labels(y, "y", n=x.shape[0], num_classes=x.shape[1], n_name="x")
    return x, y


def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Multiclass SVM (hinge) loss with margin 1.

    Parameters
    ----------
    x : ndarray, shape (N, C)
        Scores; ``x[i, j]`` is the score of class j for example i.
    y : ndarray of int, shape (N,)
        Labels in ``[0, C)``.

    Returns
    -------
    loss : float
        ``mean_i sum_{j != y_i} max(0, x[i, j] - x[i, y_i] + 1)``.
    dx : ndarray, shape (N, C)
    """
    x, y = _check_scores_labels(x, y)
    n = x.shape[0]
    rows = np.arange(n)
    margins = x - x[rows, y][:, None]
    margins += 1
    np.maximum(margins, 0, out=margins)
    margins[rows, y] = 0
    loss = float(margins.sum()) / n
    positive = margins > 0
    dx = positive.astype(x.dtype)
    dx[rows, y] -= positive.sum(axis=1)
    dx /= n
    return loss, dx


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy loss, stable for any score range (scores are shifted by their max).

    Parameters
    ----------
    x : ndarray, shape (N, C)
        Scores (logits).
    y : ndarray of int, shape (N,)
        Labels in ``[0, C)``.

    Returns
    -------
    loss : float
        ``-mean_i log softmax(x_i)[y_i]``.
    dx : ndarray, shape (N, C)
        ``(softmax(x) - onehot(y)) / N``.
    """
    x, y = _check_scores_labels(x, y)
    n = x.shape[0]
    rows = np.arange(n)
    shifted = x - x.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    # log-probabilities of the true classes only: no (N, C) log needed
    loss = -float(np.sum(shifted[rows, y] - np.log(sum_exp[:, 0]))) / n
    dx = exp
    dx /= sum_exp
    dx[rows, y] -= 1
    dx /= n
    return loss, dx
