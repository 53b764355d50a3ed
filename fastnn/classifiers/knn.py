"""k-nearest-neighbour classifier (CS231n ``k_nearest_neighbor.py`` interface, made fast).

Training just memorises the data. Prediction finds the k training images closest to each test
image (L2 or L1 distance on raw features) and takes a majority vote of their labels; a tie in the
vote goes to the smaller label, a tie in distance to the earlier training example.

``predict(X, k, num_loops=0)`` (the default) uses the compiled fused search
(:func:`fastnn.kernels.knn_search`), which never builds the full distance matrix; the CS231n
paths ``num_loops=1`` / ``2`` and ``compute_distances_*`` remain for teaching and checking.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fastnn._validation import check_array, check_choice, check_int, check_labels
from fastnn.kernels.distances import knn_search, pairwise_distances
from fastnn.metrics import accuracy

__all__ = ["KNearestNeighbor", "vote"]

# Largest (queries x classes) count table the vote builds directly (128 MiB of intp).
_DENSE_VOTE_LIMIT = 16 * 2**20


def vote(neighbor_labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Majority vote per row of ``neighbor_labels`` (N, k); ties go to the smaller label.

    Parameters
    ----------
    neighbor_labels : ndarray of int, shape (N, k)
        Labels of each query's neighbours (their order does not matter).
    num_classes : int, optional
        Number of classes (default: ``max label + 1``).

    Returns
    -------
    y_pred : ndarray of intp, shape (N,)
    """
    neighbor_labels = np.asarray(neighbor_labels, dtype=np.intp)
    n, k = neighbor_labels.shape
    if num_classes is None:
        num_classes = int(neighbor_labels.max()) + 1 if neighbor_labels.size else 1
    if n * num_classes > _DENSE_VOTE_LIMIT:
        return _vote_by_sorting(neighbor_labels)
    counts = np.zeros((n, num_classes), dtype=np.intp)
    rows = np.repeat(np.arange(n), k)
    np.add.at(counts, (rows, neighbor_labels.ravel()), 1)
    return np.argmax(counts, axis=1)  # argmax returns the first (smallest) label among ties


def _vote_by_sorting(neighbor_labels: np.ndarray) -> np.ndarray:
    """The same vote in O(N * k) memory whatever the label values (large or sparse labels).

    Each row is sorted, equal labels form runs, and the longest run wins; runs appear in
    increasing label order and argmax takes the first maximum, so ties go to the smaller label.
    """
    n, k = neighbor_labels.shape
    ordered = np.sort(neighbor_labels, axis=1)
    starts = np.ones((n, k), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    run_id = np.cumsum(starts, axis=1) - 1
    rows = np.repeat(np.arange(n), k)
    run_length = np.zeros((n, k), dtype=np.intp)
    np.add.at(run_length, (rows, run_id.ravel()), 1)
    run_label = np.empty((n, k), dtype=ordered.dtype)
    run_label[rows, run_id.ravel()] = ordered.ravel()
    return run_label[np.arange(n), np.argmax(run_length, axis=1)]


class KNearestNeighbor:
    """k-NN classifier with L2 or L1 distance.

    Parameters
    ----------
    metric : {"l2", "l1"}
        Distance between images (Euclidean or Manhattan).

    Attributes
    ----------
    X_train : ndarray, shape (num_train, D)
    y_train : ndarray of intp, shape (num_train,)
    """

    def __init__(self, metric: str = "l2") -> None:
        self.metric = check_choice(metric, "metric", ("l2", "l1"))

    # -- training ----------------------------------------------------------------------------

    def train(self, X: ArrayLike, y: ArrayLike) -> None:
        """Memorise the training data.

        Parameters
        ----------
        X : array_like, shape (num_train, D) or (num_train, d1, ..., dk)
            Training examples (flattened to rows).
        y : array_like of int, shape (num_train,)
            Labels, ``y[i]`` is the class of ``X[i]``.
        """
        X = self._rows(X, "X", finite=True)
        self.y_train = check_labels(y, "y", n=X.shape[0], n_name="X")
        self.X_train = np.ascontiguousarray(X)
        self.num_classes_ = int(self.y_train.max()) + 1

    def fit(self, X: ArrayLike, y: ArrayLike) -> KNearestNeighbor:
        """Scikit-learn style alias of :meth:`train`; returns ``self``."""
        self.train(X, y)
        return self

    # -- prediction --------------------------------------------------------------------------

    def predict(self, X: ArrayLike, k: int = 1, num_loops: int = 0) -> np.ndarray:
        """Predict labels for test data.

        Parameters
        ----------
        X : array_like, shape (num_test, D)
            Test examples.
        k : int
            Number of nearest neighbours that vote (1 <= k <= num_train).
        num_loops : {0, 1, 2}
            0 (default): the compiled fused k-NN search; 1 or 2: build the full distance matrix
            with one or two Python loops (:meth:`compute_distances_one_loop` / ``two_loops``).
            All three give the same predictions.

        Returns
        -------
        y_pred : ndarray of intp, shape (num_test,)
        """
        self._check_trained()
        num_loops = check_int(num_loops, "num_loops", minimum=0, maximum=2)
        k = self._check_k(k)
        if num_loops == 0:
            X = self._test_rows(X)
            _, idx = knn_search(X, self.X_train, k, self.metric)
            return vote(self.y_train[idx], self.num_classes_)
        if num_loops == 1:
            dists = self.compute_distances_one_loop(X)
        else:
            dists = self.compute_distances_two_loops(X)
        return self.predict_labels(dists, k=k)

    def kneighbors(self, X: ArrayLike, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Distances and training indices, both (num_test, k), of the k nearest neighbours."""
        self._check_trained()
        return knn_search(self._test_rows(X), self.X_train, self._check_k(k), self.metric)

    def score(self, X: ArrayLike, y: ArrayLike, k: int = 1) -> float:
        """Accuracy of ``predict(X, k)`` against labels ``y``."""
        self._check_trained()
        X = self._test_rows(X)
        y = check_labels(y, "y", n=X.shape[0], n_name="X")
        return accuracy(y, self.predict(X, k=k))

    # -- the CS231n distance computations ----------------------------------------------------

    def compute_distances_two_loops(self, X: ArrayLike) -> np.ndarray:
        """Distances between each test and each training point, with a loop over both.

        Returns
        -------
        dists : ndarray, shape (num_test, num_train)
            ``dists[i, j]`` is the distance between the i-th test and the j-th training point.
        """
        return self._distances(X, "naive")

    def compute_distances_one_loop(self, X: ArrayLike) -> np.ndarray:
        """Same as :meth:`compute_distances_two_loops`, looping only over test points."""
        return self._distances(X, "one_loop")

    def compute_distances_no_loops(self, X: ArrayLike) -> np.ndarray:
        """Same as :meth:`compute_distances_two_loops`, without explicit loops (NumPy)."""
        return self._distances(X, "vectorized")

    def predict_labels(self, dists: ArrayLike, k: int = 1) -> np.ndarray:
        """Majority label among the k nearest training points of each test point.

        Parameters
        ----------
        dists : array_like, shape (num_test, num_train)
            Distances as returned by the ``compute_distances_*`` methods.
        k : int
            Number of neighbours that vote; ties in the vote go to the smaller label, ties in
            distance to the earlier training point.

        Returns
        -------
        y_pred : ndarray of intp, shape (num_test,)
        """
        self._check_trained()
        dists = check_array(dists, "dists", ndim=2, dtype="float", finite=False)
        if dists.shape[1] != self.X_train.shape[0]:
            raise ValueError(
                f"dists must have one column per training point ({self.X_train.shape[0]}); "
                f"got shape {dists.shape}"
            )
        if np.isnan(dists).any():
            raise ValueError("dists contains NaN")
        k = self._check_k(k)
        closest = np.argsort(dists, axis=1, kind="stable")[:, :k]
        return vote(self.y_train[closest], self.num_classes_)

    # -- helpers -----------------------------------------------------------------------------

    def _distances(self, X, impl: str) -> np.ndarray:
        self._check_trained()
        return pairwise_distances(self._test_rows(X), self.X_train, self.metric, impl=impl)

    @staticmethod
    def _rows(X, name: str, finite: bool = False) -> np.ndarray:
        # Finiteness of test data is checked once, by the distance kernels.
        X = check_array(X, name, ndim=range(2, 8), dtype="float", finite=finite)
        return X.reshape(X.shape[0], -1)

    def _test_rows(self, X) -> np.ndarray:
        X = self._rows(X, "X")
        if X.shape[1] != self.X_train.shape[1]:
            raise ValueError(
                f"X must have {self.X_train.shape[1]} features per example like the training "
                f"data; got {X.shape[1]}"
            )
        return X

    def _check_k(self, k) -> int:
        k = check_int(k, "k", minimum=1)
        if k > self.X_train.shape[0]:
            raise ValueError(
                f"k must be <= the number of training examples ({self.X_train.shape[0]}); got {k}"
            )
        return k

    def _check_trained(self) -> None:
        if not hasattr(self, "X_train"):
            raise RuntimeError("KNearestNeighbor is not trained yet: call train(X, y) first")
