"""Forward/backward layer functions (the CS231n contract).

Each ``*_forward`` returns ``(out, cache)``; each ``*_backward(dout, cache)`` returns the
gradients with respect to the forward inputs, in order. ``from fastnn.layers import *`` is a
drop-in replacement for CS231n's ``layers``/``layer_utils`` imports.

This file only re-exports; the code lives in one short module per layer family.
"""

from fastnn.layers.activations import (
    elu_backward,
    elu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from fastnn.layers.affine import affine_backward, affine_backward_params, affine_forward
from fastnn.layers.combos import (
    affine_bn_relu_backward,
    affine_bn_relu_forward,
    affine_ln_relu_backward,
    affine_ln_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
)
from fastnn.layers.conv import (
    conv_backward_fast,
    conv_backward_naive,
    conv_forward_fast,
    conv_forward_naive,
)
from fastnn.layers.dropout import dropout_backward, dropout_forward
from fastnn.layers.losses import softmax_loss, svm_loss
from fastnn.layers.normalization import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)
from fastnn.layers.pooling import (
    avg_pool_backward_fast,
    avg_pool_backward_naive,
    avg_pool_forward_fast,
    avg_pool_forward_naive,
    global_avg_pool_backward,
    global_avg_pool_forward,
    max_pool_backward_fast,
    max_pool_backward_naive,
    max_pool_forward_fast,
    max_pool_forward_naive,
)
from fastnn.layers.recurrent import (
    lstm_backward,
    lstm_forward,
    lstm_last_state,
    lstm_step_backward,
    lstm_step_forward,
    rnn_backward,
    rnn_forward,
    rnn_last_state,
    rnn_step_backward,
    rnn_step_forward,
)
from fastnn.layers.spatial_normalization import (
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
from fastnn.layers.temporal import (
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)

__all__ = [
    "affine_backward",
    "affine_backward_params",
    "affine_bn_relu_backward",
    "affine_bn_relu_forward",
    "affine_forward",
    "affine_ln_relu_backward",
    "affine_ln_relu_forward",
    "affine_relu_backward",
    "affine_relu_forward",
    "avg_pool_backward_fast",
    "avg_pool_backward_naive",
    "avg_pool_forward_fast",
    "avg_pool_forward_naive",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "conv_backward_fast",
    "conv_backward_naive",
    "conv_forward_fast",
    "conv_forward_naive",
    "dropout_backward",
    "dropout_forward",
    "elu_backward",
    "elu_forward",
    "global_avg_pool_backward",
    "global_avg_pool_forward",
    "layernorm_backward",
    "layernorm_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "lstm_backward",
    "lstm_forward",
    "lstm_last_state",
    "lstm_step_backward",
    "lstm_step_forward",
    "max_pool_backward_fast",
    "max_pool_backward_naive",
    "max_pool_forward_fast",
    "max_pool_forward_naive",
    "relu_backward",
    "relu_forward",
    "rnn_backward",
    "rnn_forward",
    "rnn_last_state",
    "rnn_step_backward",
    "rnn_step_forward",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_loss",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "spatial_groupnorm_backward",
    "spatial_groupnorm_forward",
    "svm_loss",
    "tanh_backward",
    "tanh_forward",
    "temporal_affine_backward",
    "temporal_affine_forward",
    "temporal_softmax_loss",
    "word_embedding_backward",
    "word_embedding_forward",
]
