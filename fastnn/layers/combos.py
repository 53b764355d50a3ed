"""Convenience "sandwich" layers: affine followed by (normalisation and) ReLU."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn.layers._cache import cached_array, unpack_cache
from fastnn.layers.activations import relu_backward, relu_forward
from fastnn.layers.affine import affine_backward, affine_forward
from fastnn.layers.normalization import (
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)

__all__ = [
    "affine_bn_relu_backward",
    "affine_bn_relu_forward",
    "affine_ln_relu_backward",
    "affine_ln_relu_forward",
    "affine_relu_backward",
    "affine_relu_forward",
]


def _unpack(cache: Any, forward: str, fields: tuple[str, ...]) -> tuple:
    """The sub-caches: tuples for the affine and normalisation layers, relu's cached array.

    Checked up front: relu's backward runs first and would accept any array as its cache.
    """
    parts = unpack_cache(cache, forward, fields)
    for field, part in zip(fields[:-1], parts[:-1]):
        if not isinstance(part, (tuple, list)):
            raise TypeError(f"cache must come from {forward}: its {field} must be a tuple; got "
                            f"a {type(part).__name__}")
    cached_array(parts[-1], fields[-1], forward)
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
