"""Batch normalisation (over the batch axis) and layer normalisation (over the feature axis).

Both normalise ``x`` (N, D) to ``x_hat`` with zero mean and unit variance (biased variance,
``eps`` added inside the square root), then scale and shift: ``out = gamma * x_hat + beta``.
The caches hold ``x_hat``, ``gamma`` and ``1 / sqrt(var + eps)``: everything either backward
formula needs.

The train-mode forward passes and the closed-form backward passes call the validated entries of
:mod:`fastnn.kernels.normalization` (which check the arrays, bring them to one float dtype and
pick the best implementation); the computational-graph ``batchnorm_backward`` stays in NumPy,
node by node, as the readable derivation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_array
from fastnn.kernels import normalization as kernels
from fastnn.layers._cache import cached_array, cached_flag, cached_shape, unpack_cache
from fastnn.layers._params import (
    blend_running_stats,
    check_param_dict,
    get_eps,
    get_mode,
    get_momentum,
    get_running_stats,
)

__all__ = [
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "layernorm_backward",
    "layernorm_forward",
]

_BN_FIELDS = ("x_hat", "gamma", "inv_std", "train")
_LN_FIELDS = ("x_hat", "gamma", "inv_std")


def _check_inputs(x: Any, gamma: Any, beta: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test-mode checks (train mode leaves them to the kernel entry)."""
    x = check_array(x, "x", ndim=2, finite=False)
    d = x.shape[1]
    gamma = check_array(gamma, "gamma", ndim=1, finite=False)
    beta = check_array(beta, "beta", ndim=1, finite=False)
    if gamma.shape != (d,):
        raise ValueError(f"gamma must have shape ({d},) to match x {x.shape}; got {gamma.shape}")
    if beta.shape != (d,):
        raise ValueError(f"beta must have shape ({d},) to match x {x.shape}; got {beta.shape}")
    return x, gamma, beta


def _check_dout_shape(dout: Any, x_hat: np.ndarray) -> None:
    """dout must match the forward output (its other checks belong to whoever computes)."""
    try:
        shape = np.shape(dout)
    except (ValueError, TypeError) as exc:  # a ragged nested list has no shape
        raise ValueError(f"dout must be an array of the forward output's shape {x_hat.shape}; "
                         f"got a ragged {type(dout).__name__}: {exc}") from None
    if shape != x_hat.shape:
        raise ValueError(f"dout must have the forward output's shape {x_hat.shape}; got {shape}")


def _bn_cache(cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    x_hat, gamma, inv_std, train = unpack_cache(cache, "batchnorm_forward", _BN_FIELDS)
    x_hat = cached_array(x_hat, "x_hat", "batchnorm_forward", ndim=2)
    d = x_hat.shape[1]
    for field, value in (("gamma", gamma), ("inv_std", inv_std)):
        cached_shape(cached_array(value, field, "batchnorm_forward"), field, "batchnorm_forward",
                     (d,))
    return x_hat, gamma, inv_std, cached_flag(train, "train", "batchnorm_forward")


def _ln_cache(cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x_hat, gamma, inv_std = unpack_cache(cache, "layernorm_forward", _LN_FIELDS)
    x_hat = cached_array(x_hat, "x_hat", "layernorm_forward", ndim=2)
    n, d = x_hat.shape
    cached_shape(cached_array(gamma, "gamma", "layernorm_forward"), "gamma",
                 "layernorm_forward", (d,))
    cached_shape(cached_array(inv_std, "inv_std", "layernorm_forward"), "inv_std",
                 "layernorm_forward", (n, 1))
    return x_hat, gamma, inv_std


# ------------------------------------------------------------------------------- batchnorm
def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of batch normalisation.

    In ``"train"`` mode the batch mean and (biased) variance normalise ``x`` and update the
    running averages kept in ``bn_param``::

        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var  = momentum * running_var  + (1 - momentum) * sample_var

    In ``"test"`` mode the running averages normalise ``x``.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
        Scale and shift.
    bn_param : dict
        ``mode`` ("train" or "test", required), ``eps`` (default 1e-5), ``momentum``
        (in [0, 1), default 0.9), ``running_mean`` and ``running_var`` (shape (D,), the
        variances non-negative; zeros of the layer's dtype when missing; written back on every
        train-mode call).

    Returns
    -------
    out : ndarray, shape (N, D)
    cache : tuple
        ``(x_hat, gamma, inv_std, train)`` for :func:`batchnorm_backward` and
        :func:`batchnorm_backward_alt`.
    """
    bn_param = check_param_dict(bn_param, "bn_param")
    mode = get_mode(bn_param, "bn_param")
    eps = get_eps(bn_param, "bn_param")
    momentum = get_momentum(bn_param, "bn_param")
    if mode == "train":
        out, x_hat, mean, var, inv_std = kernels.batchnorm_forward_train(x, gamma, beta, eps)
        gamma = np.asarray(gamma)  # the cache keeps the caller's gamma, as CS231n's does
        running_mean, running_var = blend_running_stats(
            *get_running_stats(bn_param, "bn_param", x_hat.shape[1], x_hat.dtype), mean, var,
            momentum)
    else:
        x, gamma, beta = _check_inputs(x, gamma, beta)
        # Compute in the layer's dtype (x, gamma, beta promoted, as in train mode): float64
        # running averages (e.g. loaded or set by hand) must not turn a float32 model's
        # output into float64.
        dtype = np.result_type(x, gamma, beta)
        running_mean, running_var = get_running_stats(bn_param, "bn_param", x.shape[1], dtype)
        inv_std = 1 / np.sqrt(running_var.astype(dtype, copy=False) + dtype.type(eps))
        x_hat = (x - running_mean.astype(dtype, copy=False)) * inv_std
        out = x_hat * gamma
        out += beta

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, (x_hat, gamma, inv_std, mode == "train")


def batchnorm_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of batch normalisation, node by node through the computational graph.

    The forward graph is ``mu = mean(x)``, ``xmu = x - mu``, ``var = mean(xmu**2)``,
    ``std = sqrt(var + eps)``, ``ivar = 1 / std``, ``x_hat = xmu * ivar``,
    ``out = gamma * x_hat + beta``; each step below back-propagates through one node.
    (``xmu`` is recovered from the cache as ``x_hat * std``.)

    Parameters
    ----------
    dout : ndarray, shape (N, D)
    cache : tuple
        From :func:`batchnorm_forward`.

    Returns
    -------
    dx : ndarray, shape (N, D)
    dgamma, dbeta : ndarray, shape (D,)
    """
    x_hat, gamma, ivar, train = _bn_cache(cache)
    _check_dout_shape(dout, x_hat)
    dout = check_array(dout, "dout", ndim=2, finite=False)
    n = x_hat.shape[0]
    dbeta = dout.sum(axis=0)  # out = y + beta
    dgamma = np.sum(dout * x_hat, axis=0)  # y = gamma * x_hat
    dx_hat = dout * gamma
    if not train:  # test mode: x_hat = (x - running_mean) * ivar is affine in x
        return dx_hat * ivar, dgamma, dbeta
    std = 1 / ivar
    xmu = x_hat * std
    divar = np.sum(dx_hat * xmu, axis=0)  # x_hat = xmu * ivar
    dxmu = dx_hat * ivar
    dstd = -divar / (std * std)  # ivar = 1 / std
    dvar = 0.5 * dstd / std  # std = sqrt(var + eps)
    dxmu += (2 / n) * xmu * dvar  # var = mean(xmu ** 2)
    dmu = -np.sum(dxmu, axis=0)  # xmu = x - mu
    dx = dxmu
    dx += dmu / n  # mu = mean(x)
    return dx, dgamma, dbeta


def batchnorm_backward_alt(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of batch normalisation from the simplified closed form.

    With ``g = dout * gamma``::

        dx = inv_std / N * (N * g - sum(g) - x_hat * sum(g * x_hat))

    (sums over the batch axis); same inputs and outputs as :func:`batchnorm_backward`.

    Parameters
    ----------
    dout : ndarray, shape (N, D)
    cache : tuple
        From :func:`batchnorm_forward`.

    Returns
    -------
    dx : ndarray, shape (N, D)
    dgamma, dbeta : ndarray, shape (D,)
    """
    x_hat, gamma, inv_std, train = _bn_cache(cache)
    _check_dout_shape(dout, x_hat)
    if not train:
        dout = check_array(dout, "dout", ndim=2, finite=False)
        dbeta = dout.sum(axis=0)
        dgamma = np.einsum("ij,ij->j", dout, x_hat)
        return dout * (gamma * inv_std), dgamma, dbeta
    return kernels.batchnorm_backward_closed_form(dout, x_hat, gamma, inv_std)


# ------------------------------------------------------------------------------- layernorm
def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of layer normalisation: each example normalised over its D features.

    Same in train and test mode (no running averages).

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
    ln_param : dict
        ``eps`` (default 1e-5); other keys (such as ``mode``) are ignored.

    Returns
    -------
    out : ndarray, shape (N, D)
    cache : tuple
        ``(x_hat, gamma, inv_std)`` with ``inv_std`` of shape (N, 1).
    """
    ln_param = check_param_dict(ln_param, "ln_param")
    eps = get_eps(ln_param, "ln_param")
    out, x_hat, inv_std = kernels.layernorm_forward(x, gamma, beta, eps)
    return out, (x_hat, np.asarray(gamma), inv_std)


def layernorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of layer normalisation (batch norm's closed form along the feature axis).

    Parameters
    ----------
    dout : ndarray, shape (N, D)
    cache : tuple
        From :func:`layernorm_forward`.

    Returns
    -------
    dx : ndarray, shape (N, D)
    dgamma, dbeta : ndarray, shape (D,)
    """
    x_hat, gamma, inv_std = _ln_cache(cache)
    _check_dout_shape(dout, x_hat)
    return kernels.layernorm_backward(dout, x_hat, gamma, inv_std)
