"""The compiled core and its twins.

Every hot operation has three implementations with one signature, selected by ``impl=``:
``"naive"`` (plain Python loops, the readable reference), ``"vectorized"`` (NumPy) and
``"compiled"`` (Cython + OpenMP, the default). ``available_impls(op)`` lists them.
"""

from fastnn.kernels._registry import available_impls, get_impl, operations, register

__all__ = ["available_impls", "get_impl", "operations", "register"]
from fastnn.kernels import (
    layers,  # noqa: F401  (registers the batchnorm/layernorm kernels: naive, vectorized, compiled)
    optim,  # noqa: F401  (registers adam_update, sgd_momentum_update, rmsprop_update)
)
from fastnn.kernels.distances import knn_search, pairwise_distances  # noqa: F401  (registers "pairwise_distances", "knn_search")
from fastnn.kernels.hog import hog_descriptors  # noqa: F401  (registers the "hog" op: naive, vectorized, compiled)
