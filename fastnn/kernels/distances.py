"""Pairwise distances and k-nearest-neighbour search.

``pairwise_distances(X, Y, metric, impl)`` returns the ``(len(X), len(Y))`` matrix of distances
between the rows of ``X`` (queries) and the rows of ``Y`` (e.g. training points):

* ``"l2"``: ``sqrt(sum_k (X[i, k] - Y[j, k])**2)``
* ``"sqeuclidean"``: the same without the square root
* ``"l1"``: ``sum_k |X[i, k] - Y[j, k]|`` (Manhattan / cityblock)

Four implementations share one signature (``available_impls("pairwise_distances")``):

* ``"naive"``: two Python loops over rows, the readable specification;
* ``"one_loop"``: one loop over query rows, broadcasting against all of ``Y``;
* ``"vectorized"``: no loops; L2 through ``|x|^2 + |y|^2 - 2 x.y`` with a matrix product;
* ``"compiled"`` (default): L2 with the cross term from BLAS and one fused Cython pass for norms,
  clamp and square root; L1 with a cache-blocked, register-tiled SIMD kernel (``csrc/``).

``knn_search(X, Y, k, metric)`` returns the ``k`` nearest rows of ``Y`` for every row of ``X``,
sorted by distance with ties going to the smaller index, without ever building the full distance
matrix (query rows are processed in chunks with a bounded workspace).

Numerical notes: the L2 expansion loses precision when two points are close compared to their
norms (cancellation); tiny negative results are clamped to 0 before the square root.
``knn_search`` (compiled) is exact nonetheless: it keeps every point whose approximate distance is
within a rigorous bound of the expansion's rounding error of the k-th smallest, and re-ranks them
by directly computed distances (double precision), ties to the smaller index. When the squared
norms are so large that the expansion could overflow the dtype (``max |x|^2 + max |y|^2 >
finfo.max / 4``), the compiled L2 paths switch to direct differences in double precision and the
vectorized one to float64 (float32 data) or power-of-two scaled inputs (float64 data); a distance
beyond the dtype's range is then inf, as in the naive reference.

Float32 inputs give float32 results (accumulated in float32 for L1, in the BLAS product for L2).
Mixed float32/float64 inputs are computed in float64: both arrays are converted, so e.g. float64
queries against float32 training data copy the training data to float64 on every call (pass
queries of the training dtype to avoid it). Integer and boolean inputs are converted to float64.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fastnn._validation import check_array, check_choice, check_int
from fastnn.kernels._operation import Operation, load_extension, threads_for

__all__ = ["METRICS", "knn_search", "pairwise_distances"]

METRICS = ("l2", "sqeuclidean", "l1")

# Upper bound on the scratch memory of one knn_search call (the distance block of a query chunk).
_WORKSPACE_BYTES = 64 * 2**20


def _expansion_may_overflow(x_sq: np.ndarray, y_sq: np.ndarray, dtype: np.dtype) -> bool:
    """True when ``|x|^2 + |y|^2 - 2 x.y`` could overflow ``dtype`` (double-precision norms).

    Below the limit every term, the BLAS partial sums of ``x.y`` included (bounded by
    ``|x| |y| <= (|x|^2 + |y|^2) / 2``), stays under a quarter of the largest finite value.
    """
    limit = float(np.finfo(dtype).max) / 4
    return bool(float(np.max(x_sq)) + float(np.max(y_sq)) > limit)


_ext = load_extension("_distances")


def _all_finite(a: np.ndarray) -> bool:
    # A sum is NaN/inf whenever an element is; it can also overflow on finite data, so only a
    # non-finite sum triggers the exact (slower, memory-hungry) element-wise test.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(a, axis=None)):
            return True
    return bool(np.isfinite(a).all())


def _check_finite(a: np.ndarray, name: str) -> None:
    if not _all_finite(a):
        raise ValueError(f"{name} contains NaN or infinity")


def _check_finite_by_norms(a: np.ndarray, sq_norms: np.ndarray, name: str) -> None:
    # Squared norms are accumulated in double precision: for float32 data they are finite
    # exactly when every element is; a non-finite norm of float64 data may be overflow of
    # finite values, which the exact test tells apart.
    if not np.isfinite(sq_norms).all():
        _check_finite(a, name)


def _check_pair(X, Y, *, finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validate two 2-D float arrays with the same number of columns and give them one dtype.

    ``finite=False`` leaves the NaN/infinity test to the caller (the compiled L2 paths get it
    for free from the squared norms they compute anyway, saving a pass over the data).
    """
    X = check_array(X, "X", ndim=2, dtype="float", finite=False)
    Y = check_array(Y, "Y", ndim=2, dtype="float", finite=False)
    if finite:
        _check_finite(X, "X")
        _check_finite(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            "X and Y must have the same number of features (columns); "
            f"got X with shape {X.shape} and Y with shape {Y.shape}"
        )
    dtype = np.result_type(X.dtype, Y.dtype)
    return X.astype(dtype, copy=False), Y.astype(dtype, copy=False)


def _check_metric(metric: str) -> str:
    return check_choice(metric, "metric", METRICS)


def _check_pairwise(impl: str, X, Y, metric: str = "l2"):
    """X (N, D) and Y (M, D) finite, metric known; the compiled L2 path checks finiteness itself,
    through the squared norms it computes anyway."""
    metric = _check_metric(metric)
    X, Y = _check_pair(X, Y, finite=not (impl == "compiled" and metric != "l1"))
    return X, Y, metric


def _check_knn(impl: str, X, Y, k, metric: str = "l2", chunk_size=None):
    """As for pairwise distances, plus 1 <= k <= len(Y) and chunk_size >= 1 (or None)."""
    X, Y, metric = _check_pairwise(impl, X, Y, metric)
    k = check_int(k, "k", minimum=1)
    if k > Y.shape[0]:
        raise ValueError(
            f"k must be <= the number of reference rows (len(Y) = {Y.shape[0]}); got k={k}"
        )
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    return X, Y, k, metric, chunk_size


PAIRWISE_DISTANCES = Operation("pairwise_distances", _check_pairwise)
KNN_SEARCH = Operation("knn_search", _check_knn)


# ----------------------------------------------------------------------------------------------
# the four implementations (inputs already validated by pairwise_distances)


@PAIRWISE_DISTANCES.register("naive")
def _pairwise_naive(X: np.ndarray, Y: np.ndarray, metric: str) -> np.ndarray:
    """Two loops: one distance per (query row, reference row) pair, straight from the formula."""
    out = np.empty((X.shape[0], Y.shape[0]), dtype=X.dtype)
    for i in range(X.shape[0]):
        for j in range(Y.shape[0]):
            diff = X[i] - Y[j]
            if metric == "l1":
                out[i, j] = np.sum(np.abs(diff))
            elif metric == "sqeuclidean":
                out[i, j] = np.sum(diff * diff)
            else:
                out[i, j] = np.sqrt(np.sum(diff * diff))
    return out


@PAIRWISE_DISTANCES.register("one_loop")
def _pairwise_one_loop(X: np.ndarray, Y: np.ndarray, metric: str) -> np.ndarray:
    """One loop over query rows; each row is broadcast against all of ``Y``."""
    out = np.empty((X.shape[0], Y.shape[0]), dtype=X.dtype)
    for i in range(X.shape[0]):
        diff = Y - X[i]
        if metric == "l1":
            out[i] = np.sum(np.abs(diff), axis=1)
        else:
            sq = np.sum(diff * diff, axis=1)
            out[i] = sq if metric == "sqeuclidean" else np.sqrt(sq)
    return out


@PAIRWISE_DISTANCES.register("vectorized")
def _pairwise_vectorized(X: np.ndarray, Y: np.ndarray, metric: str) -> np.ndarray:
    """No loops. L2: ``|x|^2 + |y|^2 - 2 x.y`` (a matrix product); L1: one broadcast."""
    if metric == "l1":
        # (len(X), len(Y), D) temporary: fine for the sizes this reference is meant for.
        return np.abs(X[:, None, :] - Y[None, :, :]).sum(axis=2)
    with np.errstate(over="ignore", invalid="ignore"):
        out = _l2_expansion(X, Y, metric)
        bad = ~np.isfinite(out)
        if bad.any():
            # Inputs are finite, so the expansion overflowed for these pairs (huge norms):
            # direct differences in float64 for them only, in slices of bounded memory,
            # rounded to the dtype (inf where the squared distance is beyond float64 or the
            # distance beyond the dtype, as in the naive loops).
            ii, jj = np.nonzero(bad)
            step = max(1, 2**20 // X.shape[1])
            for lo in range(0, ii.size, step):
                diff = X[ii[lo : lo + step]].astype(np.float64) - Y[jj[lo : lo + step]]
                sq = np.einsum("ij,ij->i", diff, diff)
                out[ii[lo : lo + step], jj[lo : lo + step]] = (
                    sq if metric == "sqeuclidean" else np.sqrt(sq)
                )
    return out


def _l2_expansion(X: np.ndarray, Y: np.ndarray, metric: str) -> np.ndarray:
    """``|x|^2 + |y|^2 - 2 x.y`` for every pair of rows, clamped at 0, square-rooted for l2."""
    sq = np.sum(X * X, axis=1)[:, None] + np.sum(Y * Y, axis=1)[None, :] - 2 * (X @ Y.T)
    np.maximum(sq, 0, out=sq)  # cancellation can leave tiny negatives
    return sq if metric == "sqeuclidean" else np.sqrt(sq)


@PAIRWISE_DISTANCES.register("compiled", available=_ext is not None)
def _pairwise_compiled(X: np.ndarray, Y: np.ndarray, metric: str) -> np.ndarray:
    """Cython/OpenMP: SIMD L1 tiles; L2 as BLAS product + fused norms/clamp/sqrt pass."""
    ext = _ext
    X = np.ascontiguousarray(X)
    Y = np.ascontiguousarray(Y)
    if metric == "l1":
        out = np.empty((X.shape[0], Y.shape[0]), dtype=X.dtype)
        ext.l1_distances(X, Y, out, threads_for(3.0 * out.size * X.shape[1]))
        return out
    with np.errstate(over="ignore", invalid="ignore"):
        # the cross term: BLAS (if it overflows, the norms below send us to the direct path)
        out = np.matmul(X, Y.T)
    x_sq = np.empty(X.shape[0])
    y_sq = np.empty(Y.shape[0])
    flops = 8.0 * out.size + 2.0 * (X.size + Y.size)
    ext.l2_from_gram(out, X, Y, x_sq, y_sq, metric == "sqeuclidean", threads_for(flops))
    _check_finite_by_norms(X, x_sq, "X")
    _check_finite_by_norms(Y, y_sq, "Y")
    if _expansion_may_overflow(x_sq, y_sq, X.dtype):
        # The expansion overflowed (or may have): direct differences in double precision.
        flops = 3.0 * out.size * X.shape[1]
        ext.l2_direct(X, Y, out, metric == "sqeuclidean", threads_for(flops))
    return out


def pairwise_distances(
    X: ArrayLike, Y: ArrayLike, metric: str = "l2", impl: str | None = None
) -> np.ndarray:
    """Distances between every row of ``X`` and every row of ``Y``.

    Parameters
    ----------
    X : array_like, shape (N, D)
        Query rows.
    Y : array_like, shape (M, D)
        Reference rows (e.g. the training set).
    metric : {"l2", "sqeuclidean", "l1"}
        Euclidean, squared Euclidean or Manhattan distance.
    impl : {"naive", "one_loop", "vectorized", "compiled"} or None
        Which implementation computes it (None: the best available); all agree (see the module
        docstring for precision).

    Returns
    -------
    dists : ndarray, shape (N, M)
        ``dists[i, j]`` is the distance between ``X[i]`` and ``Y[j]``; float32 when both inputs
        are float32, else float64.

    Raises
    ------
    ValueError
        For arrays that are not 2-D, empty, non-finite, with different numbers of columns, or an
        unknown metric or impl.
    """
    return PAIRWISE_DISTANCES(X, Y, metric, impl=impl)


# ----------------------------------------------------------------------------------------------
# k-nearest-neighbour search


@KNN_SEARCH.register("naive")
def _knn_naive(X: np.ndarray, Y: np.ndarray, k: int, metric: str, chunk_size: int | None):
    """Per query: every distance by the two-loop reference, then the k smallest by
    (distance, index)."""
    dist = np.empty((X.shape[0], k), dtype=X.dtype)
    idx = np.empty((X.shape[0], k), dtype=np.intp)
    for i in range(X.shape[0]):
        row = _pairwise_naive(X[i : i + 1], Y, metric)[0]
        order = sorted(range(Y.shape[0]), key=lambda j: (row[j], j))[:k]
        idx[i] = order
        dist[i] = row[order]
    return dist, idx


@KNN_SEARCH.register("vectorized")
def _knn_vectorized(X: np.ndarray, Y: np.ndarray, k: int, metric: str, chunk_size: int | None):
    """Chunks of query rows: NumPy distances, then a stable argsort (ties -> smaller index)."""
    rows = _chunk_rows(X.shape[0], Y.shape[0], X.dtype.itemsize, chunk_size)
    dist = np.empty((X.shape[0], k), dtype=X.dtype)
    idx = np.empty((X.shape[0], k), dtype=np.intp)
    for start in range(0, X.shape[0], rows):
        stop = min(start + rows, X.shape[0])
        # L1 by rows: the no-loop broadcast would need rows * len(Y) * D floats
        pairwise = _pairwise_one_loop if metric == "l1" else _pairwise_vectorized
        d = pairwise(X[start:stop], Y, metric)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        idx[start:stop] = order
        dist[start:stop] = np.take_along_axis(d, order, axis=1)
    return dist, idx


@KNN_SEARCH.register("compiled", available=_ext is not None)
def _knn_compiled(X: np.ndarray, Y: np.ndarray, k: int, metric: str, chunk_size: int | None):
    """Fused distance + top-k in Cython, query rows in chunks with a bounded workspace."""
    ext = _ext
    X = np.ascontiguousarray(X)
    Y = np.ascontiguousarray(Y)
    m, n = X.shape[0], Y.shape[0]
    threads = threads_for(3.0 * m * n * X.shape[1])
    dist = np.empty((m, k), dtype=X.dtype)
    idx = np.empty((m, k), dtype=np.intp)
    if metric == "l1":
        if chunk_size is None:
            # Enough blocks for every thread, each at most 256 rows, and heaps of at most
            # ~16 MiB per thread even for very large k.
            blocks = max(2 * threads, -(-m // 256))
            chunk_size = -(-m // blocks)
            chunk_size = max(1, min(chunk_size, (16 * 2**20) // (16 * k)))
        # A block never needs more rows than there are queries; larger values would only
        # inflate the per-thread workspace (the kernel rejects them).
        chunk_size = min(chunk_size, m)
        ext.knn_l1(X, Y, k, chunk_size, dist, idx, threads)
        return dist, idx

    y_sq = np.empty(n)
    ext.sq_norms(Y, y_sq, threads)
    x_sq = np.empty(m)
    ext.sq_norms(X, x_sq, threads)
    _check_finite_by_norms(X, x_sq, "X")
    _check_finite_by_norms(Y, y_sq, "Y")
    if _expansion_may_overflow(x_sq, y_sq, X.dtype):
        ext.knn_direct_l2(X, Y, k, metric == "sqeuclidean", dist, idx, threads)
        return dist, idx
    rows = _chunk_rows(m, n, X.dtype.itemsize, chunk_size)
    gram = np.empty((min(rows, m), n), dtype=X.dtype)
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        block = gram[: stop - start]
        np.matmul(X[start:stop], Y.T, out=block)
        ext.knn_select_l2(
            block, X[start:stop], Y, x_sq[start:stop], y_sq, k,
            metric == "sqeuclidean", dist[start:stop], idx[start:stop], threads,
        )
    return dist, idx


def _chunk_rows(m: int, n: int, itemsize: int, chunk_size: int | None) -> int:
    """Query rows per chunk so that one (rows, n) distance block fits the workspace budget."""
    if chunk_size is not None:
        return min(chunk_size, m)
    return max(1, min(m, _WORKSPACE_BYTES // max(1, n * itemsize)))


def knn_search(
    X: ArrayLike,
    Y: ArrayLike,
    k: int,
    metric: str = "l2",
    *,
    impl: str | None = None,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``Y`` for every row of ``X``.

    Parameters
    ----------
    X : array_like, shape (N, D)
        Query rows.
    Y : array_like, shape (M, D)
        Reference rows (the training set).
    k : int
        Number of neighbours, ``1 <= k <= M``.
    metric : {"l2", "sqeuclidean", "l1"}
        Distance (as in :func:`pairwise_distances`).
    impl : {"naive", "vectorized", "compiled"} or None
        Implementation (None: the best available); ``"compiled"`` fuses distances and selection.
    chunk_size : int, optional
        Query rows processed together (default: chosen so the scratch memory stays around
        64 MiB whatever N and M are). Results do not depend on it.

    Returns
    -------
    distances : ndarray, shape (N, k)
        Distances to the neighbours, ascending along each row (dtype as in pairwise_distances).
    indices : ndarray of intp, shape (N, k)
        Row indices into ``Y``; among equal distances the smaller index comes first.
    """
    return KNN_SEARCH(X, Y, k, metric, chunk_size, impl=impl)
