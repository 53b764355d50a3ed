"""Inverted dropout: ``p`` is the probability of KEEPING a unit (the CS231n convention)."""

from __future__ import annotations

import numpy as np

from fastnn._validation import check_array, check_float, check_int
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

    Parameters
    ----------
    x : ndarray, any shape
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
    if seed is None:
        uniform = np.random.rand(*x.shape)
    else:
        seed = check_int(seed, "dropout_param['seed']", minimum=0, maximum=2**32 - 1)
        uniform = np.random.RandomState(seed).rand(*x.shape)
    mask = (uniform < p).astype(x.dtype)
    mask /= p
    return x * mask, (mask, True)


def dropout_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward pass of inverted dropout: ``dx = dout * mask`` in train mode, ``dout`` in test."""
    mask, train = cache
    dout = check_array(dout, "dout", finite=False)
    if not train:
        return dout
    if dout.shape != mask.shape:
        raise ValueError(f"dout must have the forward output's shape {mask.shape}; got {dout.shape}")
    return dout * mask
