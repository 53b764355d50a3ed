"""Convenience "sandwich" layers (CS231n ``layer_utils``): affine or convolution followed by
(normalisation and) ReLU, and convolution-ReLU-max pool.

The convolutional backward passes take ``need_dx=True``: with False the convolution skips its
input gradient (``dx`` is None), which the first layer of a network never needs."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn.layers._cache import cached_array, unpack_cache
from fastnn.layers.activations import relu_backward, relu_forward
from fastnn.layers.affine import affine_backward, affine_forward
from fastnn.layers.conv import conv_backward_fast, conv_forward_fast
from fastnn.layers.normalization import (
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)
from fastnn.layers.pooling import max_pool_backward_fast, max_pool_forward_fast
from fastnn.layers.spatial_normalization import (
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)

__all__ = [
    "affine_bn_relu_backward",
    "affine_bn_relu_forward",
    "affine_ln_relu_backward",
    "affine_ln_relu_forward",
    "affine_relu_backward",
    "affine_relu_forward",
    "conv_bn_relu_backward",
    "conv_bn_relu_forward",
    "conv_relu_backward",
    "conv_relu_forward",
    "conv_relu_pool_backward",
    "conv_relu_pool_forward",
]


def _unpack(cache: Any, forward: str, fields: tuple[str, ...]) -> tuple:
    """The sub-caches: tuples for the affine, convolution, normalisation and pooling layers,
    relu's cached array.

    Checked up front: relu's backward runs first and would accept any array as its cache.
    """
    parts = unpack_cache(cache, forward, fields)
    for field, part in zip(fields, parts):
        if field == "relu_cache":
            cached_array(part, field, forward)
        elif not isinstance(part, (tuple, list)):
            raise TypeError(f"cache must come from {forward}: its {field} must be a tuple; got "
                            f"a {type(part).__name__}")
    return parts


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Affine then ReLU.

    Parameters
    ----------
    x : ndarray, shape (N, d_1, ..., d_k)
        Input minibatch (each example flattened to D values).
    w : ndarray, shape (D, M)
    b : ndarray, shape (M,)

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple
        ``(fc_cache, relu_cache)``.
    """
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """Backward of :func:`affine_relu_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, M)
    cache : tuple
        ``(fc_cache, relu_cache)`` from :func:`affine_relu_forward`.

    Returns
    -------
    dx, dw, db : ndarray
        Shapes of ``x``, ``w`` and ``b``.
    """
    fc_cache, relu_cache = _unpack(cache, "affine_relu_forward", ("fc_cache", "relu_cache"))
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)


def affine_bn_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
    bn_param: dict,
) -> tuple[np.ndarray, tuple]:
    """Affine, batch normalisation, ReLU.

    Parameters
    ----------
    x : ndarray, shape (N, d_1, ..., d_k)
        Input minibatch (each example flattened to D values).
    w : ndarray, shape (D, M)
    b : ndarray, shape (M,)
    gamma, beta : ndarray, shape (M,)
    bn_param : dict
        As in :func:`fastnn.layers.batchnorm_forward` (its running averages are updated).

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple
        ``(fc_cache, bn_cache, relu_cache)``.
    """
    a, fc_cache = affine_forward(x, w, b)
    an, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (fc_cache, bn_cache, relu_cache)


def affine_bn_relu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """Backward of :func:`affine_bn_relu_forward` (batch norm by its closed form).

    Parameters
    ----------
    dout : ndarray, shape (N, M)
    cache : tuple
        ``(fc_cache, bn_cache, relu_cache)`` from :func:`affine_bn_relu_forward`.

    Returns
    -------
    dx, dw, db, dgamma, dbeta : ndarray
        Shapes of ``x``, ``w``, ``b``, ``gamma`` and ``beta``.
    """
    fc_cache, bn_cache, relu_cache = _unpack(cache, "affine_bn_relu_forward",
                                             ("fc_cache", "bn_cache", "relu_cache"))
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = batchnorm_backward_alt(dan, bn_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def affine_ln_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
    ln_param: dict,
) -> tuple[np.ndarray, tuple]:
    """Affine, layer normalisation, ReLU.

    Parameters
    ----------
    x : ndarray, shape (N, d_1, ..., d_k)
        Input minibatch (each example flattened to D values).
    w : ndarray, shape (D, M)
    b : ndarray, shape (M,)
    gamma, beta : ndarray, shape (M,)
    ln_param : dict
        As in :func:`fastnn.layers.layernorm_forward`.

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple
        ``(fc_cache, ln_cache, relu_cache)``.
    """
    a, fc_cache = affine_forward(x, w, b)
    an, ln_cache = layernorm_forward(a, gamma, beta, ln_param)
    out, relu_cache = relu_forward(an)
    return out, (fc_cache, ln_cache, relu_cache)


def affine_ln_relu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """Backward of :func:`affine_ln_relu_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, M)
    cache : tuple
        ``(fc_cache, ln_cache, relu_cache)`` from :func:`affine_ln_relu_forward`.

    Returns
    -------
    dx, dw, db, dgamma, dbeta : ndarray
        Shapes of ``x``, ``w``, ``b``, ``gamma`` and ``beta``.
    """
    fc_cache, ln_cache, relu_cache = _unpack(cache, "affine_ln_relu_forward",
                                             ("fc_cache", "ln_cache", "relu_cache"))
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = layernorm_backward(dan, ln_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                      conv_param: dict) -> tuple[np.ndarray, tuple]:
    """Convolution (:func:`fastnn.layers.conv_forward_fast`) then ReLU.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (F, C, HH, WW)
    b : ndarray, shape (F,)
    conv_param : dict
        ``stride``, ``pad`` (and optionally ``dilation``).

    Returns
    -------
    out : ndarray, shape (N, F, H', W')
    cache : tuple
        ``(conv_cache, relu_cache)``.
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout: np.ndarray, cache: tuple,
                       need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Backward of :func:`conv_relu_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, F, H', W')
    cache : tuple
        ``(conv_cache, relu_cache)``.
    need_dx : bool
        False skips the input gradient (``dx`` is None).

    Returns
    -------
    dx, dw, db : ndarray (dx None when not needed)
    """
    conv_cache, relu_cache = _unpack(cache, "conv_relu_forward", ("conv_cache", "relu_cache"))
    da = relu_backward(dout, relu_cache)
    return conv_backward_fast(da, conv_cache, need_dx=need_dx)


def conv_bn_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray,
                         beta: np.ndarray, conv_param: dict,
                         bn_param: dict) -> tuple[np.ndarray, tuple]:
    """Convolution, spatial batch normalisation, ReLU.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (F, C, HH, WW)
    b : ndarray, shape (F,)
    gamma, beta : ndarray, shape (F,)
    conv_param : dict
        ``stride``, ``pad`` (and optionally ``dilation``).
    bn_param : dict
        As in :func:`fastnn.layers.spatial_batchnorm_forward` (running averages updated).

    Returns
    -------
    out : ndarray, shape (N, F, H', W')
    cache : tuple
        ``(conv_cache, bn_cache, relu_cache)``.
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout: np.ndarray, cache: tuple,
                          need_dx: bool = True) -> tuple[np.ndarray | None, ...]:
    """Backward of :func:`conv_bn_relu_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, F, H', W')
    cache : tuple
        ``(conv_cache, bn_cache, relu_cache)``.
    need_dx : bool
        False skips the input gradient (``dx`` is None).

    Returns
    -------
    dx, dw, db, dgamma, dbeta : ndarray (dx None when not needed)
    """
    conv_cache, bn_cache, relu_cache = _unpack(cache, "conv_bn_relu_forward",
                                               ("conv_cache", "bn_cache", "relu_cache"))
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dan, bn_cache)
    dx, dw, db = conv_backward_fast(da, conv_cache, need_dx=need_dx)
    return dx, dw, db, dgamma, dbeta


def conv_relu_pool_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict,
                           pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Convolution, ReLU, max pooling (:func:`fastnn.layers.max_pool_forward_fast`).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (F, C, HH, WW)
    b : ndarray, shape (F,)
    conv_param : dict
        ``stride``, ``pad`` (and optionally ``dilation``).
    pool_param : dict
        ``pool_height``, ``pool_width``, ``stride``.

    Returns
    -------
    out : ndarray
    cache : tuple
        ``(conv_cache, relu_cache, pool_cache)``.
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    try:
        out, pool_cache = max_pool_forward_fast(s, pool_param)
    except ValueError as exc:  # the pooled map is the convolution's output, not the caller's x
        raise ValueError(f"pool_param does not fit the convolution output of shape {a.shape} "
                         f"(x {np.shape(x)}, w {np.shape(w)}): {exc}") from None
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout: np.ndarray, cache: tuple,
                            need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray,
                                                           np.ndarray]:
    """Backward of :func:`conv_relu_pool_forward`.

    Parameters
    ----------
    dout : ndarray
        Gradient of the pooled output.
    cache : tuple
        ``(conv_cache, relu_cache, pool_cache)``.
    need_dx : bool
        False skips the input gradient (``dx`` is None).

    Returns
    -------
    dx, dw, db : ndarray (dx None when not needed)
    """
    conv_cache, relu_cache, pool_cache = _unpack(
        cache, "conv_relu_pool_forward", ("conv_cache", "relu_cache", "pool_cache"))
    ds = max_pool_backward_fast(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    return conv_backward_fast(da, conv_cache, need_dx=need_dx)
