"""Inverted dropout: ``p`` is the probability of KEEPING a unit (the CS231n convention)."""

from __future__ import annotations

import numpy as np

from fastnn._validation import check_array, check_float, check_int
from fastnn.layers._cache import cached_array, cached_flag, unpack_cache
from fastnn.layers._params import check_param_dict, get_mode

__all__ = ["dropout_backward", "dropout_forward"]


def dropout_forward(x: np.ndarray, dropout_param: dict) -> tuple[np.ndarray, tuple]:
    """Forward pass of inverted dropout.

    In ``"train"`` mode each unit is kept with probability ``p`` and scaled by ``1 / p`` (so the
    expected activation is unchanged and test mode needs no rescaling); in ``"test"`` mode
    ``out = x``.

    The mask is ``np.random.rand(*x.shape) < p``, drawn from ``np.random.RandomState(seed)``
    when ``seed`` is given (the same numbers CS231n's ``np.random.seed(seed)`` produces, without
    touching NumPy's global random state), else from NumPy's global random state.

    A 0-d ``x`` is one unit: kept (and scaled) or dropped like any element, and ``out`` is a
    0-d array, as CS231n's formula gives for a scalar.

    Parameters
    ----------
    x : ndarray, any shape (0-d included)
    dropout_param : dict
        ``mode`` ("train" or "test", required), ``p`` (keep probability in (0, 1], required),
        ``seed`` (optional int, makes the mask deterministic).

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : tuple
        ``(mask, train)``: the scaled mask (``x``'s dtype) in train mode, else ``None``.
    """
    x = check_array(x, "x", finite=False)
    dropout_param = check_param_dict(dropout_param, "dropout_param")
    mode = get_mode(dropout_param, "dropout_param")
    if "p" not in dropout_param:
        raise ValueError("dropout_param must contain the key 'p' (keep probability in (0, 1])")
    p = check_float(dropout_param["p"], "dropout_param['p']", minimum=0.0, min_inclusive=False,
                    maximum=1.0)
    if mode == "test":
        return x, (None, False)
    seed = dropout_param.get("seed")
    # random_sample(shape) draws the numbers rand(*shape) draws, but as an array for 0-d x too
    if seed is None:
        uniform = np.random.random_sample(x.shape)
    else:
        seed = check_int(seed, "dropout_param['seed']", minimum=0, maximum=2**32 - 1)
        uniform = np.random.RandomState(seed).random_sample(x.shape)
    mask = np.array(uniform < p, dtype=x.dtype)  # an array even when 0-d
    mask /= p
    return np.asarray(x * mask), (mask, True)


def dropout_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward pass of inverted dropout: ``dx = dout * mask`` in train mode, ``dout`` in test.

    Parameters
    ----------
    dout : ndarray, shape of ``x``
        Upstream gradient.
    cache : tuple
        ``(mask, train)`` from :func:`dropout_forward`.

    Returns
    -------
    dx : ndarray, shape of ``x``
    """
    mask, train = unpack_cache(cache, "dropout_forward", ("mask", "train"))
    train = cached_flag(train, "train", "dropout_forward")
    dout = check_array(dout, "dout", finite=False)
    if not train:
        if mask is not None:
            raise TypeError("cache must come from dropout_forward: a test-mode cache holds no "
                            f"mask; got a {type(mask).__name__}")
        return dout
    mask = cached_array(mask, "mask", "dropout_forward")
    if dout.shape != mask.shape:
        raise ValueError(f"dout must have the forward output's shape {mask.shape}; got {dout.shape}")
    return np.asarray(dout * mask)
