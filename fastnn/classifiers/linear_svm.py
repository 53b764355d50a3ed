"""Multiclass SVM (hinge) loss of a linear classifier, CS231n's names.

For scores ``s = x_i W`` the loss of example ``i`` is ``sum_{j != y_i} max(0, s_j - s_{y_i} + 1)``;
the total loss is the mean over examples plus ``reg * sum(W * W)``. The implementations are the
kernel operation ``"linear_svm_loss"`` (:mod:`fastnn.kernels.linear`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fastnn.kernels.linear import linear_svm_loss

__all__ = ["svm_loss_naive", "svm_loss_vectorized"]


def svm_loss_naive(W: ArrayLike, X: ArrayLike, y: ArrayLike, reg: float) -> tuple[float, np.ndarray]:
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
    return linear_svm_loss(W, X, y, reg, impl="naive")


def svm_loss_vectorized(
    W: ArrayLike, X: ArrayLike, y: ArrayLike, reg: float
) -> tuple[float, np.ndarray]:
    """Structured SVM loss without Python loops; same contract as :func:`svm_loss_naive`."""
    return linear_svm_loss(W, X, y, reg, impl="vectorized")
