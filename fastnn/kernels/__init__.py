"""The compiled core and its twins, one pattern for every operation.

Every hot operation is a :class:`~fastnn.kernels._operation.Operation`: one argument check and
implementations with one signature, ``"naive"`` (plain Python loops, the readable reference),
``"vectorized"`` (NumPy) and ``"compiled"`` (Cython + OpenMP, registered only when its extension
is built). Public entries take ``impl=None`` (the best available). ``available_impls(op)`` lists
an operation's implementations, ``operations()`` the operations, and ``get_impl(op, impl)`` hands
out one implementation behind the same validation as the public entry.

Families: :mod:`~fastnn.kernels.distances` (``pairwise_distances``, ``knn_search``),
:mod:`~fastnn.kernels.hog`, :mod:`~fastnn.kernels.normalization` (batch/layer norm),
:mod:`~fastnn.kernels.optim` (fused update rules), :mod:`~fastnn.kernels.linear` (linear
classifier losses).
"""

from fastnn.kernels import (
    conv,
    distances,
    hog,
    linear,
    normalization,
    optim,
    pool,
    recurrent,
    recurrent_sequence,
    spatial_normalization,
)
from fastnn.kernels._operation import (
    Operation,
    available_impls,
    get_impl,
    get_operation,
    missing_extensions,
    operations,
    threads_for,
    warn_missing_extensions,
)
from fastnn.kernels.distances import knn_search, pairwise_distances
from fastnn.kernels.hog import hog_descriptors

warn_missing_extensions()

__all__ = [
    "Operation",
    "available_impls",
    "conv",
    "distances",
    "get_impl",
    "get_operation",
    "hog",
    "hog_descriptors",
    "knn_search",
    "linear",
    "missing_extensions",
    "normalization",
    "operations",
    "optim",
    "pairwise_distances",
    "pool",
    "recurrent",
    "recurrent_sequence",
    "spatial_normalization",
    "threads_for",
]
