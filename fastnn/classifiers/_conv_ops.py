"""Forward and backward of one :class:`~fastnn.classifiers._conv_spec.Layer` of a ConvNet.

Every layer runs the public ``fastnn.layers`` function of its kind (the fast convolution and
pooling, spatial batch/group norm, affine, batch norm, ReLU, dropout), so a ConvNet computes
exactly what a hand-written CS231n network of the same layers would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn.classifiers._conv_spec import Layer
from fastnn.layers.activations import relu_backward, relu_forward
from fastnn.layers.affine import affine_backward, affine_backward_params, affine_forward
from fastnn.layers.conv import conv_backward_fast, conv_forward_fast
from fastnn.layers.dropout import dropout_backward, dropout_forward
from fastnn.layers.normalization import batchnorm_backward_alt, batchnorm_forward
from fastnn.layers.pooling import (
    avg_pool_backward_fast,
    avg_pool_forward_fast,
    global_avg_pool_backward,
    global_avg_pool_forward,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from fastnn.layers.spatial_normalization import (
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

__all__ = ["layer_backward", "layer_forward"]


def layer_forward(layer: Layer, h: np.ndarray, params: dict[str, np.ndarray],
                  runtime: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """``(out, cache)`` of ``layer`` on ``h``; ``runtime`` is the layer's bn/gn/dropout dict
    (mode already set by the caller) or its conv/pool parameter dict."""
    kind, i = layer.kind, layer.index
    if kind == "conv":
        return conv_forward_fast(h, params[f"W{i}"], params[f"b{i}"], runtime)
    if kind == "relu":
        return relu_forward(h)
    if kind == "maxpool":
        return max_pool_forward_fast(h, runtime)
    if kind == "avgpool":
        return avg_pool_forward_fast(h, runtime)
    if kind == "gap":
        out, cache = global_avg_pool_forward(h)
        return out.reshape(h.shape[0], -1), (cache, out.shape)
    if kind == "bn2d":
        return spatial_batchnorm_forward(h, params[f"gamma{i}"], params[f"beta{i}"], runtime)
    if kind == "gn":
        return spatial_groupnorm_forward(h, params[f"gamma{i}"], params[f"beta{i}"],
                                         layer.args["groups"], runtime)
    if kind == "fc":
        return affine_forward(h, params[f"W{i}"], params[f"b{i}"])
    if kind == "bn1d":
        return batchnorm_forward(h, params[f"gamma{i}"], params[f"beta{i}"], runtime)
    if kind == "dropout":
        return dropout_forward(h, runtime)
    raise AssertionError(f"unknown layer kind {kind!r}")  # the parser makes no other kinds


def layer_backward(layer: Layer, dout: np.ndarray, cache: Any,
                   need_dx: bool) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """``(dx, grads)`` of ``layer``: ``grads`` names its parameters; ``dx`` is None when
    ``need_dx`` is False and the layer can skip it (convolution, affine)."""
    kind, i = layer.kind, layer.index
    if kind == "conv":
        dx, dw, db = conv_backward_fast(dout, cache, need_dx=need_dx)
        return dx, {f"W{i}": dw, f"b{i}": db}
    if kind == "fc":
        if need_dx:
            dx, dw, db = affine_backward(dout, cache)
            return dx, {f"W{i}": dw, f"b{i}": db}
        dw, db = affine_backward_params(dout, cache)
        return None, {f"W{i}": dw, f"b{i}": db}
    if kind in ("bn2d", "gn", "bn1d"):
        backward = {"bn2d": spatial_batchnorm_backward, "gn": spatial_groupnorm_backward,
                    "bn1d": batchnorm_backward_alt}[kind]
        dx, dgamma, dbeta = backward(dout, cache)
        return dx, {f"gamma{i}": dgamma, f"beta{i}": dbeta}
    if kind == "relu":
        return relu_backward(dout, cache), {}
    if kind == "maxpool":
        return max_pool_backward_fast(dout, cache), {}
    if kind == "avgpool":
        return avg_pool_backward_fast(dout, cache), {}
    if kind == "gap":
        pool_cache, out_shape = cache
        return global_avg_pool_backward(dout.reshape(out_shape), pool_cache), {}
    if kind == "dropout":
        return dropout_backward(dout, cache), {}
    raise AssertionError(f"unknown layer kind {kind!r}")
