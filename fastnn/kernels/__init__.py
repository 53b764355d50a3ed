"""The compiled core and its twins, one pattern for every operation.

Every hot operation is a :class:`~fastnn.kernels._operation.Operation`: one argument check and
implementations with one signature, ``"naive"`` (plain Python loops, the readable reference),
``"vectorized"`` (NumPy) and ``"compiled"`` (Cython + OpenMP, registered only when its extension
is built). Public entries take ``impl=None`` (the best available). ``available_impls(op)`` lists
an operation's implementations, ``operations()`` the operations, and ``get_impl(op, impl)`` hands
out one implementation behind the same validation as the public entry.

Families: :mod:`~fastnn.kernels.activations` (``relu_forward``, ``relu_backward``),
:mod:`~fastnn.kernels.distances` (``pairwise_distances``, ``knn_search``),
:mod:`~fastnn.kernels.hog`, :mod:`~fastnn.kernels.normalization` (batch/layer norm),
:mod:`~fastnn.kernels.optim` (fused update rules), :mod:`~fastnn.kernels.linear` (linear
classifier losses), :mod:`~fastnn.kernels.conv` (``im2col``, ``col2im``, ``conv_forward``,
``conv_backward``), :mod:`~fastnn.kernels.pool` (max/average/global-average pooling),
:mod:`~fastnn.kernels.spatial_normalization` (spatial batch/group norm),
:mod:`~fastnn.kernels.recurrent` (the fused LSTM and RNN cells) and
:mod:`~fastnn.kernels.recurrent_sequence` (whole LSTM/RNN sequences). The operations' entry
points are importable from here too (``from fastnn.kernels import im2col``).
"""

from fastnn.kernels import (
    activations,
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
from fastnn.kernels.activations import relu_backward, relu_forward
from fastnn.kernels.conv import col2im, conv_backward, conv_forward, im2col
from fastnn.kernels.distances import knn_search, pairwise_distances
from fastnn.kernels.hog import hog_descriptors
from fastnn.kernels.pool import (
    avg_pool_backward,
    avg_pool_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
)
from fastnn.kernels.recurrent import (
    lstm_cell_backward,
    lstm_cell_forward,
    rnn_cell_backward,
    rnn_cell_forward,
)
from fastnn.kernels.recurrent_sequence import (
    lstm_sequence_backward,
    lstm_sequence_forward,
    rnn_sequence_backward,
    rnn_sequence_forward,
)
from fastnn.kernels.spatial_normalization import (
    spatial_batchnorm_backward,
    spatial_batchnorm_forward_train,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

warn_missing_extensions()

__all__ = [
    "Operation",
    "activations",
    "available_impls",
    "avg_pool_backward",
    "avg_pool_forward",
    "col2im",
    "conv",
    "conv_backward",
    "conv_forward",
    "distances",
    "get_impl",
    "get_operation",
    "global_avg_pool_backward",
    "global_avg_pool_forward",
    "hog",
    "hog_descriptors",
    "im2col",
    "knn_search",
    "linear",
    "lstm_cell_backward",
    "lstm_cell_forward",
    "lstm_sequence_backward",
    "lstm_sequence_forward",
    "max_pool_backward",
    "max_pool_forward",
    "missing_extensions",
    "normalization",
    "operations",
    "optim",
    "pairwise_distances",
    "pool",
    "recurrent",
    "recurrent_sequence",
    "relu_backward",
    "relu_forward",
    "rnn_cell_backward",
    "rnn_cell_forward",
    "rnn_sequence_backward",
    "rnn_sequence_forward",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward_train",
    "spatial_groupnorm_backward",
    "spatial_groupnorm_forward",
    "spatial_normalization",
    "threads_for",
]
