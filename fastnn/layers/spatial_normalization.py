"""Spatial batch normalisation and spatial group normalisation of (N, C, H, W) activations.

Spatial batch norm is vanilla batch norm with the N*H*W values of each channel as the batch
(the numbers of CS231n's transpose-reshape implementation, computed without transposing);
group norm normalises each example's channel groups of C/G channels over those channels and
H*W, then scales and shifts per channel.

Train-mode forward and backward call the validated entries of
:mod:`fastnn.kernels.spatial_normalization` (compiled when built). The caches hold ``x``
itself, the per-channel (or per-(n, group)) mean and ``inv_std = 1 / sqrt(var + eps)`` and
``gamma``: backward recomputes ``x_hat`` from ``x``, so forward writes one array, not two.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_array
from fastnn.kernels import spatial_normalization as kernels
from fastnn.layers._cache import cached_array, cached_flag, cached_shape, unpack_cache
from fastnn.layers._params import (
    blend_running_stats,
    check_param_dict,
    get_eps,
    get_mode,
    get_momentum,
    get_running_stats,
)
from fastnn.layers.normalization import _check_dout_shape

__all__ = [
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "spatial_groupnorm_backward",
    "spatial_groupnorm_forward",
]

_SBN_FIELDS = ("x", "gamma", "mean", "inv_std", "train")
_SGN_FIELDS = ("x", "gamma", "mean", "inv_std")


def _check_x(x: Any) -> np.ndarray:
    return check_array(x, "x", ndim=4, finite=False, contiguous=True)


def _channel_view(v: np.ndarray) -> np.ndarray:
    """A (C,) vector broadcast over (N, C, H, W)."""
    return v[:, None, None]


# ------------------------------------------------------------------------ spatial batch norm
def spatial_batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of spatial batch normalisation.

    Each channel is normalised with the mean and (biased) variance of its N*H*W values; the
    running averages in ``bn_param`` are updated in train mode exactly as by
    :func:`fastnn.layers.batchnorm_forward`::

        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var  = momentum * running_var  + (1 - momentum) * sample_var

    (PyTorch's ``momentum`` is ``1 - momentum`` here, and PyTorch blends in the unbiased
    variance ``sample_var * M / (M - 1)``, M = N*H*W.) Test mode normalises with the running
    averages: a per-channel affine map.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    gamma, beta : ndarray, shape (C,)
        Per-channel scale and shift.
    bn_param : dict
        ``mode`` ("train" or "test", required), ``eps`` (default 1e-5), ``momentum`` (in
        [0, 1), default 0.9), ``running_mean`` and ``running_var`` (shape (C,); zeros of the
        layer's dtype when missing; written back on every call).

    Returns
    -------
    out : ndarray, shape (N, C, H, W)
    cache : tuple
        ``(x, gamma, mean, inv_std, train)`` for :func:`spatial_batchnorm_backward`.
    """
    bn_param = check_param_dict(bn_param, "bn_param")
    mode = get_mode(bn_param, "bn_param")
    eps = get_eps(bn_param, "bn_param")
    momentum = get_momentum(bn_param, "bn_param")
    x = _check_x(x)
    if mode == "train":
        out, mean, var, inv_std = kernels.spatial_batchnorm_forward_train(x, gamma, beta, eps)
        x = np.asarray(x, dtype=out.dtype)  # the dtype the kernel computed in (gamma promotes)
        gamma = np.asarray(gamma)
        running_mean, running_var = blend_running_stats(
            *get_running_stats(bn_param, "bn_param", x.shape[1], x.dtype), mean, var, momentum)
    else:
        c = x.shape[1]
        gamma = check_array(gamma, "gamma", finite=False)
        beta = check_array(beta, "beta", finite=False)
        for name, v in (("gamma", gamma), ("beta", beta)):
            if v.shape != (c,):
                raise ValueError(f"{name} must have shape ({c},) to match x {x.shape}; got "
                                 f"{v.shape}")
        # the layer's dtype (x, gamma, beta promoted, as in train mode): float64 running
        # averages must not turn a float32 model's output into float64
        dtype = np.result_type(x, gamma, beta)
        running_mean, running_var = get_running_stats(bn_param, "bn_param", c, dtype)
        x = x.astype(dtype, copy=False)
        mean = running_mean.astype(dtype, copy=False)
        inv_std = 1 / np.sqrt(running_var.astype(dtype, copy=False) + dtype.type(eps))
        scale = gamma.astype(dtype, copy=False) * inv_std
        out = x * _channel_view(scale)
        out += _channel_view(beta - mean * scale)
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, (x, gamma, mean, inv_std, mode == "train")


def _sbn_cache(cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    forward = "spatial_batchnorm_forward"
    x, gamma, mean, inv_std, train = unpack_cache(cache, forward, _SBN_FIELDS)
    x = cached_array(x, "x", forward, ndim=4)
    c = x.shape[1]
    for field, value in (("gamma", gamma), ("mean", mean), ("inv_std", inv_std)):
        cached_shape(cached_array(value, field, forward), field, forward, (c,))
    return x, gamma, mean, inv_std, cached_flag(train, "train", forward)


def spatial_batchnorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of spatial batch normalisation (closed form).

    With ``x_hat = (x - mean) * inv_std`` and M = N*H*W values per channel::

        dbeta = sum(dout), dgamma = sum(dout * x_hat)      (over N, H, W)
        dx = gamma * inv_std * (dout - dbeta / M - x_hat * dgamma / M)

    (in test mode ``dx = gamma * inv_std * dout``: the running averages do not depend on x).

    Parameters
    ----------
    dout : ndarray, shape (N, C, H, W)
    cache : tuple
        From :func:`spatial_batchnorm_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dgamma, dbeta : ndarray, shape (C,)
    """
    x, gamma, mean, inv_std, train = _sbn_cache(cache)
    _check_dout_shape(dout, x)
    if train:
        return kernels.spatial_batchnorm_backward(dout, x, gamma, mean, inv_std)
    dout = check_array(dout, "dout", ndim=4, finite=False)
    x_hat = (x - _channel_view(mean)) * _channel_view(inv_std)
    dgamma = np.einsum("ncij,ncij->c", dout, x_hat)
    dbeta = dout.sum(axis=(0, 2, 3))
    return dout * _channel_view(gamma * inv_std), dgamma, dbeta


# ------------------------------------------------------------------------ spatial group norm
def _check_affine(v: Any, name: str, c: int, x: np.ndarray) -> np.ndarray:
    v = check_array(v, name, finite=False)
    if v.shape != (1, c, 1, 1):
        raise ValueError(f"{name} must have shape (1, {c}, 1, 1) to match x {x.shape}; got "
                         f"{v.shape}")
    return v


def spatial_groupnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, gn_param: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of spatial group normalisation.

    The C channels form G groups of C/G consecutive channels; each example's group is
    normalised with its own mean and (biased) variance over its C/G*H*W values, then every
    channel is scaled and shifted: ``out = gamma * x_hat + beta``. Same in train and test mode.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    gamma, beta : ndarray, shape (1, C, 1, 1)
        Per-channel scale and shift.
    G : int
        Number of groups; must divide C.
    gn_param : dict
        ``eps`` (default 1e-5); other keys are ignored.

    Returns
    -------
    out : ndarray, shape (N, C, H, W)
    cache : tuple
        ``(x, gamma, mean, inv_std)`` with ``mean`` and ``inv_std`` of shape (N, G), for
        :func:`spatial_groupnorm_backward`.
    """
    gn_param = check_param_dict(gn_param, "gn_param")
    eps = get_eps(gn_param, "gn_param")
    x = _check_x(x)
    c = x.shape[1]
    gamma = _check_affine(gamma, "gamma", c, x)
    beta = _check_affine(beta, "beta", c, x)
    out, mean, _, inv_std = kernels.spatial_groupnorm_forward(
        x, gamma.reshape(c), beta.reshape(c), G, eps)
    return out, (np.asarray(x, dtype=out.dtype), gamma, mean, inv_std)


def _sgn_cache(cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    forward = "spatial_groupnorm_forward"
    x, gamma, mean, inv_std = unpack_cache(cache, forward, _SGN_FIELDS)
    x = cached_array(x, "x", forward, ndim=4)
    cached_shape(cached_array(gamma, "gamma", forward), "gamma", forward, (1, x.shape[1], 1, 1))
    mean = cached_array(mean, "mean", forward, ndim=2)
    cached_shape(cached_array(inv_std, "inv_std", forward), "inv_std", forward, mean.shape)
    return x, gamma, mean, inv_std


def spatial_groupnorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of spatial group normalisation.

    Per example and group (M = C/G*H*W values), with ``gx = dout * gamma``::

        dx = inv_std * (gx - mean(gx) - x_hat * mean(gx * x_hat))

    and per channel ``dbeta = sum(dout)``, ``dgamma = sum(dout * x_hat)`` over N, H, W.

    Parameters
    ----------
    dout : ndarray, shape (N, C, H, W)
    cache : tuple
        From :func:`spatial_groupnorm_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dgamma, dbeta : ndarray, shape (1, C, 1, 1)
    """
    x, gamma, mean, inv_std = _sgn_cache(cache)
    _check_dout_shape(dout, x)
    c = x.shape[1]
    dx, dgamma, dbeta = kernels.spatial_groupnorm_backward(dout, x, gamma.reshape(c), mean,
                                                           inv_std)
    return dx, dgamma.reshape(1, c, 1, 1), dbeta.reshape(1, c, 1, 1)
