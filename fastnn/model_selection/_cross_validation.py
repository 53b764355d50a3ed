"""k-fold cross-validation, as the CS231n notes describe it.

Split the training set into ``num_folds`` folds; for every candidate value of a hyperparameter,
train on all folds but one, measure accuracy on the held-out fold, and repeat so each fold is
held out once. The mean (and spread) of the fold accuracies says which value to keep::

    from fastnn.model_selection import cross_validate_knn
    result = cross_validate_knn(X_train, y_train, k_choices=[1, 3, 5, 8, 10], num_folds=5)
    print(result.table())
    best_k = result.best_value

:func:`cross_validate` is the generic version (any hyperparameter, any model: pass a function
that trains on one split and returns the validation score). :func:`cross_validate_knn` is the
fast path for k-NN: per fold it runs a single compiled search for the ``max(k)`` nearest
neighbours and scores every k from that one neighbour list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from fastnn._progress import progress
from fastnn._validation import check_array, check_choice, check_int, check_labels, check_seed
from fastnn.metrics import accuracy

__all__ = ["CVResult", "cross_validate", "cross_validate_knn", "k_fold_split"]

#: Largest ``n`` of :func:`k_fold_split`: the folds hold about ``num_folds * n`` int64 indices,
#: so a larger n is a mistake (or a MemoryError) rather than a split.
MAX_SPLIT_SIZE = 2**31 - 1


def k_fold_split(
    n: int, num_folds: int = 5, *, shuffle: bool = False, seed: int | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Indices of ``num_folds`` train/validation splits of ``n`` examples.

    Parameters
    ----------
    n : int
        Number of examples, ``2 <= n <= MAX_SPLIT_SIZE`` (2**31 - 1).
    num_folds : int
        Number of folds, ``2 <= num_folds <= n``. Fold sizes differ by at most one
        (``np.array_split``), so every example is validated exactly once.
    shuffle : bool
        Permute the examples before splitting (default: contiguous folds, as in CS231n).
    seed : int or numpy.random.Generator, optional
        Seed of the permutation when ``shuffle`` is true (checked either way: a non-negative
        integer, a Generator or None).

    Returns
    -------
    list of (train_idx, val_idx)
        One pair of index arrays per fold.
    """
    n = check_int(n, "n", minimum=2, maximum=MAX_SPLIT_SIZE)
    num_folds = check_int(num_folds, "num_folds", minimum=2, maximum=n)
    seed = check_seed(seed, "seed")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    folds = np.array_split(order, num_folds)
    splits = []
    for i, val_idx in enumerate(folds):
        train_idx = np.concatenate([f for j, f in enumerate(folds) if j != i])
        splits.append((train_idx, val_idx))
    return splits


def _as_list(values: Any, name: str) -> list[Any]:
    """``list(values)`` for a sequence of candidates; a TypeError naming ``name`` otherwise."""
    try:
        if isinstance(values, (str, bytes)):
            raise TypeError
        return list(values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of candidate values, got "
                        f"{type(values).__name__} {values!r}") from None


@dataclass
class CVResult:
    """Scores of a cross-validation: one row per candidate value, one column per fold.

    Attributes
    ----------
    param_name : str
        Name of the hyperparameter (for printing).
    values : list
        Candidate values, in the order given.
    scores : ndarray, shape (len(values), num_folds)
        Validation score (accuracy) of each value on each fold.
    """

    param_name: str
    values: list[Any]
    scores: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> np.ndarray:
        """Mean score per value over folds."""
        return self.scores.mean(axis=1)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation of the score per value over folds."""
        return self.scores.std(axis=1)

    @property
    def best_index(self) -> int:
        """Index of the best mean score (the first one listed on ties)."""
        return int(np.argmax(self.mean))

    @property
    def best_value(self) -> Any:
        """The value with the best mean score."""
        return self.values[self.best_index]

    @property
    def best_score(self) -> float:
        return float(self.mean[self.best_index])

    def as_dict(self) -> dict[Any, list[float]]:
        """``{value: [score on fold 0, fold 1, ...]}`` (CS231n's ``k_to_accuracies``)."""
        return {v: self.scores[i].tolist() for i, v in enumerate(self.values)}

    def table(self) -> str:
        """Aligned text table: value, mean, std, per-fold scores; the best row is marked."""
        name = self.param_name
        width = max(len(name), *(len(str(v)) for v in self.values))
        folds = "  ".join(f"fold{i}" for i in range(self.scores.shape[1]))
        lines = [f"{name:>{width}}    mean     std  {folds}"]
        best = self.best_index
        for i, v in enumerate(self.values):
            per_fold = "  ".join(f"{s:5.3f}" for s in self.scores[i])
            mark = "  <- best" if i == best else ""
            lines.append(
                f"{v!s:>{width}}  {self.mean[i]:6.4f}  {self.std[i]:6.4f}  {per_fold}{mark}"
            )
        return "\n".join(lines)


def cross_validate(
    score: Callable[[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray], float],
    X: ArrayLike,
    y: ArrayLike,
    param_values: Sequence[Any],
    num_folds: int = 5,
    *,
    param_name: str = "value",
    shuffle: bool = False,
    seed: int | None = None,
    show_progress: bool | None = None,
) -> CVResult:
    """k-fold cross-validation of any hyperparameter.

    Parameters
    ----------
    score : callable
        ``score(value, X_train, y_train, X_val, y_val) -> float``: train a model with the
        hyperparameter set to ``value`` on the training part and return its validation score
        (higher is better), e.g.
        ``lambda k, Xt, yt, Xv, yv: KNearestNeighbor().fit(Xt, yt).score(Xv, yv, k=k)``.
    X : array_like, shape (N, ...)
        Training examples.
    y : array_like of int, shape (N,)
        Labels.
    param_values : sequence
        Candidate values.
    num_folds : int
        Number of folds.
    param_name : str
        Name used by :meth:`CVResult.table`.
    shuffle, seed
        See :func:`k_fold_split`.
    show_progress : bool, optional
        Progress bar over (fold, value) pairs; default: when stderr is a terminal.

    Returns
    -------
    CVResult
    """
    X = check_array(X, "X", ndim=range(1, 8), dtype=None)
    y = check_labels(y, "y", n=X.shape[0], n_name="X")
    values = _as_list(param_values, "param_values")
    if not values:
        raise ValueError("param_values must contain at least one value")
    splits = k_fold_split(X.shape[0], num_folds, shuffle=shuffle, seed=seed)
    scores = np.zeros((len(values), len(splits)))
    bar = progress(total=len(values) * len(splits), desc="cross-validation", enabled=show_progress)
    for f, (train_idx, val_idx) in enumerate(splits):
        X_tr, y_tr, X_val, y_val = X[train_idx], y[train_idx], X[val_idx], y[val_idx]
        for i, value in enumerate(values):
            scores[i, f] = float(score(value, X_tr, y_tr, X_val, y_val))
            bar.update(1)
    bar.close()
    return CVResult(param_name, values, scores)


def cross_validate_knn(
    X: ArrayLike,
    y: ArrayLike,
    k_choices: Sequence[int] = (1, 3, 5, 8, 10, 12, 15, 20, 50, 100),
    num_folds: int = 5,
    *,
    metric: str = "l2",
    shuffle: bool = False,
    seed: int | None = None,
    show_progress: bool | None = None,
) -> CVResult:
    """Cross-validate the k of a k-NN classifier, one neighbour search per fold.

    The ``max(k_choices)`` nearest training points of every validation point are found once per
    fold (compiled, memory-bounded search); each k is then scored from the first k of them, with
    the same vote as :meth:`fastnn.classifiers.KNearestNeighbor.predict` (ties in distance to the
    earlier training point, ties in the vote to the smaller label). Results equal those of
    :func:`cross_validate` with a KNearestNeighbor per (fold, k), at a fraction of the cost.

    Parameters
    ----------
    X : array_like, shape (N, D) or (N, d1, ..., dk)
        Training examples (flattened to rows).
    y : array_like of int, shape (N,)
        Labels.
    k_choices : sequence of int
        Candidate numbers of neighbours; each must be at most the size of a training part.
    num_folds : int
        Number of folds.
    metric : {"l2", "l1"}
        Distance.
    shuffle, seed
        See :func:`k_fold_split`.
    show_progress : bool, optional
        Progress bar over folds; default: when stderr is a terminal.

    Returns
    -------
    CVResult
        ``param_name="k"``; ``values`` are the k choices in the given order.
    """
    from fastnn.classifiers.knn import vote
    from fastnn.kernels.distances import knn_search

    metric = check_choice(metric, "metric", ("l2", "l1"))
    X = check_array(X, "X", ndim=range(2, 8), dtype="float")
    X = X.reshape(X.shape[0], -1)
    y = check_labels(y, "y", n=X.shape[0], n_name="X")
    ks = [check_int(k, "k_choices entries", minimum=1) for k in _as_list(k_choices, "k_choices")]
    if not ks:
        raise ValueError("k_choices must contain at least one k")
    splits = k_fold_split(X.shape[0], num_folds, shuffle=shuffle, seed=seed)
    smallest_train = min(len(tr) for tr, _ in splits)
    if max(ks) > smallest_train:
        raise ValueError(
            f"k_choices must not exceed the training part of a fold ({smallest_train} examples "
            f"with {len(splits)} folds of {X.shape[0]}); got k={max(ks)}"
        )
    num_classes = int(y.max()) + 1
    k_max = max(ks)
    scores = np.zeros((len(ks), len(splits)))
    for f, (train_idx, val_idx) in enumerate(
        progress(splits, desc=f"{len(splits)}-fold CV ({metric})", enabled=show_progress)
    ):
        _, idx = knn_search(X[val_idx], X[train_idx], k_max, metric)
        neighbor_labels = y[train_idx][idx]
        for i, k in enumerate(ks):
            y_pred = vote(neighbor_labels[:, :k], num_classes)
            scores[i, f] = accuracy(y[val_idx], y_pred)
    return CVResult("k", ks, scores, extra={"metric": metric})
