"""Linear classifiers trained with minibatch stochastic gradient descent.

A linear classifier scores an example ``x`` (a row of D features) with ``s = x W``, one column of
``W`` (D, C) per class, and predicts ``argmax_j s_j``. The **bias trick**: instead of keeping a
separate bias vector ``b``, append a constant-1 feature to every example
(:func:`fastnn.preprocessing.add_bias_column`); the last row of ``W`` then plays the role of ``b``,
and one matrix product computes ``x W + b``::

    from fastnn.classifiers import Softmax
    from fastnn.preprocessing import StandardScaler, add_bias_column

    scaler = StandardScaler().fit(X_train)            # statistics from training data only
    X_train = add_bias_column(scaler.transform(X_train))
    X_test = add_bias_column(scaler.transform(X_test))
    clf = Softmax(seed=0)
    loss_history = clf.train(X_train, y_train, learning_rate=1e-3, reg=1e-4, num_iters=2000)
    accuracy = (clf.predict(X_test) == y_test).mean()

Beyond CS231n, the penalty is selectable: ``regularization="l2"`` (default, ``reg * sum(W**2)``),
``"l1"`` (``reg * sum(|W|)``, favours sparse weights) or ``"elasticnet"``
(``reg * (l1_ratio * sum(|W|) + (1 - l1_ratio) * sum(W**2))``), as in the course notes.
Training keeps the dtype of ``X``: float32 data trains in float32 end to end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from fastnn._validation import (
    check_array,
    check_choice,
    check_float,
    check_int,
    check_labels,
    check_seed,
    memory_limit_bytes,
)
from fastnn.kernels.linear import (
    check_loss_inputs,
    softmax_loss_validated,
    svm_loss_validated,
)
from fastnn.metrics import accuracy

__all__ = ["LinearClassifier", "LinearSVM", "Softmax"]

REGULARIZATIONS = ("l2", "l1", "elasticnet")

# Minibatch products below this many multiply-adds are too small to split across BLAS threads
# (measurement in benchmarks/README.md).
_SINGLE_THREAD_MACS = 2e7


def _minibatch_blas_threads(batch_size: int, dim: int, num_classes: int):
    """Context limiting BLAS to one thread for small minibatch products (needs threadpoolctl;
    a no-op without it)."""
    if batch_size * dim * num_classes > _SINGLE_THREAD_MACS:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class LinearClassifier:
    """Base class: a weight matrix ``W`` (D, C) trained by minibatch SGD on a data loss.

    Subclasses supply the data loss (:class:`LinearSVM`, :class:`Softmax`). A plain
    ``LinearClassifier`` can also be given any loss with the ``svm_loss_vectorized`` signature
    through ``data_loss=``.

    Parameters
    ----------
    regularization : {"l2", "l1", "elasticnet"}
        Penalty added to the data loss, scaled by ``reg`` at training time.
    l1_ratio : float in [0, 1]
        Mixing weight of the L1 part for ``"elasticnet"`` (1 = pure L1, 0 = pure L2).
    seed : int or None
        Seeds the weight initialisation and minibatch sampling, so runs are reproducible.
        With ``None`` each :meth:`train` call seeds its generator from NumPy's global random
        state, so ``np.random.seed(...)`` before training makes runs repeatable (as in CS231n).
    data_loss : callable or None
        ``f(W, X, y, reg) -> (loss, dW)``; only for the base class (subclasses fix it).

    Attributes
    ----------
    W : ndarray of shape (D, C) or None
        The weights; created at the first call to :meth:`train` (small Gaussian values).
    """

    def __init__(
        self,
        regularization: str = "l2",
        l1_ratio: float = 0.5,
        seed: int | None = None,
        data_loss: Callable | None = None,
    ) -> None:
        self.regularization = check_choice(regularization, "regularization", REGULARIZATIONS)
        self.l1_ratio = check_float(l1_ratio, "l1_ratio", minimum=0.0, maximum=1.0)
        seed = check_seed(seed, allow_generator=False)
        self.seed = seed
        # seed=None: the generator is drawn from the global state at each train() call
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._data_loss = data_loss
        self.W: np.ndarray | None = None

    # -- the loss ---------------------------------------------------------------------------
    def _unchecked_data_loss(self, W, X, y) -> tuple[float, np.ndarray]:
        """Data loss (no penalty) and its gradient on validated arrays."""
        if self._data_loss is None:
            raise NotImplementedError(
                "LinearClassifier needs data_loss=; use LinearSVM or Softmax for the built-in "
                "losses"
            )
        return self._data_loss(W, X, y, 0.0)

    def _penalty(self, W: np.ndarray, reg: float) -> tuple[float, np.ndarray | None]:
        """Regularisation loss and gradient for the chosen penalty."""
        if reg == 0.0:
            return 0.0, None
        if self.regularization == "l2":
            l2_weight, l1_weight = reg, 0.0
        elif self.regularization == "l1":
            l2_weight, l1_weight = 0.0, reg
        else:
            l2_weight, l1_weight = reg * (1.0 - self.l1_ratio), reg * self.l1_ratio
        loss = 0.0
        grad = np.zeros_like(W)
        if l2_weight:
            loss += l2_weight * float(np.sum(W * W, dtype=np.float64))
            grad += (2.0 * l2_weight) * W
        if l1_weight:
            # sign(0) = 0: the subgradient of |w| at 0 that keeps zero weights at zero
            loss += l1_weight * float(np.sum(np.abs(W), dtype=np.float64))
            grad += l1_weight * np.sign(W)
        return loss, grad

    def _loss_unchecked(self, W, X, y, reg) -> tuple[float, np.ndarray]:
        loss, dW = self._unchecked_data_loss(W, X, y)
        penalty, dpenalty = self._penalty(W, reg)
        if dpenalty is not None:
            dW += dpenalty
        return loss + penalty, dW

    def loss(self, X_batch: ArrayLike, y_batch: ArrayLike, reg: float) -> tuple[float, np.ndarray]:
        """Loss and gradient with respect to ``self.W`` on a minibatch.

        Parameters
        ----------
        X_batch : ndarray of shape (N, D)
        y_batch : ndarray of shape (N,)
            Labels in ``[0, C)``.
        reg : float
            Regularisation strength (>= 0) for the chosen penalty.

        Returns
        -------
        loss : float
        dW : ndarray of shape (D, C)
        """
        if self.W is None:
            raise ValueError("the classifier has no weights yet: call train(X, y) first")
        W, X, y, reg = check_loss_inputs(self.W, X_batch, y_batch, reg, x_name="X_batch",
                                          y_name="y_batch")
        return self._loss_unchecked(W, X, y, reg)

    # -- training ---------------------------------------------------------------------------
    def train(
        self,
        X: ArrayLike,
        y: ArrayLike,
        learning_rate: float = 1e-3,
        reg: float = 1e-5,
        num_iters: int = 100,
        batch_size: int = 200,
        verbose: bool = False,
        *,
        lr_decay: float = 1.0,
        momentum: float = 0.0,
        num_classes: int | None = None,
    ) -> list[float]:
        """Minibatch SGD on ``W``.

        Parameters
        ----------
        X : ndarray of shape (N, D)
            Training data (float32 trains in float32; other numeric types in float64).
        y : ndarray of shape (N,)
            Labels ``0 <= c < C``.
        learning_rate : float
            Step size (> 0).
        reg : float
            Regularisation strength (>= 0).
        num_iters : int
            Number of SGD steps.
        batch_size : int
            Examples per step, sampled with replacement (as in CS231n); between 1 and N (a
            larger batch is rejected as a likely mistake).
        verbose : bool
            Print the loss every 100 iterations.
        lr_decay : float
            Extension: multiply the learning rate by this factor after every epoch
            (``N // batch_size`` steps).
        momentum : float
            Extension: classical momentum in [0, 1); 0 is plain SGD.
        num_classes : int or None
            Number of classes C when ``W`` is created; default ``max(y) + 1``.

        Returns
        -------
        loss_history : list of float
            The minibatch loss at every iteration.
        """
        X = check_array(X, "X", ndim=2)
        num_train, dim = X.shape
        if self.W is not None and self.W.shape[0] != dim:
            raise ValueError(
                f"X must have W.shape[0] = {self.W.shape[0]} columns to continue training; "
                f"got {dim}"
            )
        y = check_labels(y, "y", n=num_train, n_name="X")
        learning_rate = check_float(
            learning_rate, "learning_rate", minimum=0.0, min_inclusive=False
        )
        reg = check_float(reg, "reg", minimum=0.0)
        num_iters = check_int(num_iters, "num_iters", minimum=0)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        if batch_size > num_train:
            # Sampling is with replacement (as in CS231n), but a batch larger than the whole
            # training set is almost always a mistake (e.g. the default 200 on a tiny subset).
            raise ValueError(
                f"batch_size must be at most the number of training examples N = {num_train}; "
                f"got {batch_size}"
            )
        lr_decay = check_float(lr_decay, "lr_decay", minimum=0.0, min_inclusive=False)
        momentum = check_float(momentum, "momentum", minimum=0.0, maximum=1.0, max_inclusive=False)

        if self.seed is None:
            # Drawn from the global state so np.random.seed(...) makes runs repeatable.
            self._rng = np.random.default_rng(int(np.random.randint(0, 2**31 - 1)))
        rng = self._rng

        # Validate everything before creating W, so a rejected call leaves the model untouched.
        if self.W is None:
            if num_classes is None:
                num_classes = int(y.max()) + 1
                size_name = f"y (maximum label {num_classes - 1})"
            else:
                num_classes = check_int(num_classes, "num_classes", minimum=1)
                size_name = f"num_classes={num_classes}"
            nbytes = dim * num_classes * X.dtype.itemsize
            if nbytes > memory_limit_bytes():
                raise ValueError(
                    f"{size_name} asks for a weight matrix W of shape ({dim}, {num_classes}) "
                    f"({nbytes / 2**30:.3g} GiB), more than this machine's memory; labels must "
                    f"be class indices 0 <= c < C"
                )
        else:
            num_classes = self.W.shape[1]
        if y.max() >= num_classes:
            raise ValueError(
                f"y must be class indices in [0, {num_classes}), got maximum {y.max()}"
            )
        if self.W is None:
            # Small random weights (CS231n scale); the dtype follows X so float32 stays float32.
            self.W = (0.001 * rng.standard_normal((dim, num_classes))).astype(X.dtype)
        W = self.W if self.W.dtype == X.dtype else self.W.astype(X.dtype)

        iterations_per_epoch = max(num_train // batch_size, 1)
        velocity = np.zeros_like(W) if momentum else None
        loss_history: list[float] = []
        with _minibatch_blas_threads(batch_size, dim, W.shape[1]):
            for it in range(num_iters):
                # Sampling with replacement is what the course notes do; it is also faster than
                # drawing a permutation at every step.
                idx = rng.integers(0, num_train, size=batch_size)
                loss, dW = self._loss_unchecked(W, X[idx], y[idx], reg)
                loss_history.append(loss)
                if velocity is not None:
                    velocity *= momentum
                    velocity -= learning_rate * dW
                    W += velocity
                else:
                    W -= learning_rate * dW
                if verbose and it % 100 == 0:
                    print(f"iteration {it} / {num_iters}: loss {loss:f}")
                if (it + 1) % iterations_per_epoch == 0:
                    learning_rate *= lr_decay
        self.W = W
        return loss_history

    # -- prediction -------------------------------------------------------------------------
    def scores(self, X: ArrayLike) -> np.ndarray:
        """Class scores ``X @ W``, shape (N, C)."""
        if self.W is None:
            raise ValueError("the classifier has no weights yet: call train(X, y) first")
        X = check_array(X, "X", ndim=2, allow_empty=True)
        if X.shape[1] != self.W.shape[0]:
            raise ValueError(
                f"X must have W.shape[0] = {self.W.shape[0]} columns; got shape {X.shape}"
            )
        return X @ self.W.astype(X.dtype, copy=False)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted labels, shape (N,): the class with the highest score."""
        return np.argmax(self.scores(X), axis=1)

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)``, scikit-learn style."""
        X = check_array(X, "X", ndim=2)
        y = check_labels(y, "y", n=X.shape[0], n_name="X")
        return accuracy(y, self.predict(X))


class LinearSVM(LinearClassifier):
    """Linear classifier with the multiclass SVM (hinge) loss, margin 1."""

    def __init__(self, regularization: str = "l2", l1_ratio: float = 0.5, seed: int | None = None):
        super().__init__(regularization=regularization, l1_ratio=l1_ratio, seed=seed)

    def _unchecked_data_loss(self, W, X, y):
        return svm_loss_validated(W, X, y, 0.0)


class Softmax(LinearClassifier):
    """Linear classifier with the softmax (cross-entropy) loss."""

    def __init__(self, regularization: str = "l2", l1_ratio: float = 0.5, seed: int | None = None):
        super().__init__(regularization=regularization, l1_ratio=l1_ratio, seed=seed)

    def _unchecked_data_loss(self, W, X, y):
        return softmax_loss_validated(W, X, y, 0.0)
