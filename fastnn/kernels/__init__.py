"""The compiled core and its twins.

Every hot operation has three implementations with one signature, selected by ``impl=``:
``"naive"`` (plain Python loops, the readable reference), ``"vectorized"`` (NumPy) and
``"compiled"`` (Cython + OpenMP, the default). ``available_impls(op)`` lists them;
``operations()`` lists the registered operations.
"""

# Importing the families registers their implementations.
from fastnn.kernels import normalization, optim
from fastnn.kernels._registry import available_impls, get_impl, operations, register
from fastnn.kernels.distances import knn_search, pairwise_distances
from fastnn.kernels.hog import hog_descriptors

__all__ = [
    "available_impls",
    "get_impl",
    "hog_descriptors",
    "knn_search",
    "normalization",
    "operations",
    "optim",
    "pairwise_distances",
    "register",
]
