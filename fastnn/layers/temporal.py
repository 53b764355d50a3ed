"""Layers over (N, T, ...) sequences (CS231n ``rnn_layers.py``): word embedding, a temporal
affine layer and a temporal softmax loss with a mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_array
from fastnn.layers._cache import cached_array, cached_shape, unpack_cache

__all__ = [
    "temporal_affine_backward",
    "temporal_affine_forward",
    "temporal_softmax_loss",
    "word_embedding_backward",
    "word_embedding_forward",
]


def _check_ids(ids: Any, name: str, num_classes: int, what: str) -> np.ndarray:
    """Integer (N, T) ids in [0, num_classes)."""
    ids = check_array(ids, name, ndim=2, dtype="int", allow_empty=True)
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise ValueError(f"{name} must hold {what} in [0, {num_classes}); got {bad}")
    return ids


# ------------------------------------------------------------------------- word embedding
def word_embedding_forward(x: Any, W: Any) -> tuple[np.ndarray, tuple]:
    """Look up the vector of every word: ``out[n, t] = W[x[n, t]]``.

    Parameters
    ----------
    x : array_like of int, shape (N, T)
        Word ids in ``[0, V)``.
    W : ndarray, shape (V, D)
        Word vectors.

    Returns
    -------
    out : ndarray, shape (N, T, D)
    cache : tuple
        ``(x, W)``.
    """
    W = check_array(W, "W", ndim=2, finite=False)
    x = _check_ids(x, "x", W.shape[0], "word ids (rows of W)")
    return W[x], (x, W)


def word_embedding_backward(dout: Any, cache: tuple) -> np.ndarray:
    """Gradient of the embedding matrix: ``dW[v] = sum of dout[n, t] over x[n, t] == v``.

    Equivalent to ``np.add.at(dW, x, dout)``, computed by sorting the ids once and summing each
    run of equal ids with ``np.add.reduceat`` (``np.add.at`` is unbuffered and many times slower).

    Parameters
    ----------
    dout : ndarray, shape (N, T, D)
    cache : tuple
        From :func:`word_embedding_forward`.

    Returns
    -------
    dW : ndarray, shape (V, D)
    """
    x, W = unpack_cache(cache, "word_embedding_forward", ("x", "W"))
    x = cached_array(x, "x", "word_embedding_forward", ndim=2)
    W = cached_array(W, "W", "word_embedding_forward", ndim=2)
    if x.dtype.kind not in "iu" or (x.size and (x.min() < 0 or x.max() >= W.shape[0])):
        raise ValueError("cache must come from word_embedding_forward: its x must hold integer "
                         f"ids in [0, {W.shape[0]})")
    dout = check_array(dout, "dout", finite=False, allow_empty=True)
    if dout.shape != (*x.shape, W.shape[1]):
        raise ValueError(f"dout must have the forward output's shape {(*x.shape, W.shape[1])}; "
                         f"got {dout.shape}")
    dtype = np.result_type(dout, W)
    dW = np.zeros(W.shape, dtype=dtype)
    ids = x.reshape(-1)
    if ids.size == 0:
        return dW
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    rows = dout.reshape(-1, W.shape[1])[order]
    dW[sorted_ids[starts]] = np.add.reduceat(rows, starts, axis=0)
    return dW


# ------------------------------------------------------------------------ temporal affine
def temporal_affine_forward(x: Any, w: Any, b: Any) -> tuple[np.ndarray, tuple]:
    """The same affine map at every time step: ``out[n, t] = x[n, t] @ w + b``.

    Parameters
    ----------
    x : ndarray, shape (N, T, D)
    w : ndarray, shape (D, M)
    b : ndarray, shape (M,)

    Returns
    -------
    out : ndarray, shape (N, T, M)
    cache : tuple
        ``(x, w, b, out)`` as in CS231n.
    """
    x = check_array(x, "x", ndim=3, finite=False)
    w = check_array(w, "w", ndim=2, finite=False)
    b = check_array(b, "b", ndim=1, finite=False)
    n, t, d = x.shape
    if w.shape[0] != d:
        raise ValueError(f"w must have shape ({d}, M) to match x of shape {x.shape}, got {w.shape}")
    if b.shape != (w.shape[1],):
        raise ValueError(f"b must have shape ({w.shape[1]},) to match w, got {b.shape}")
    out = (x.reshape(n * t, d) @ w).reshape(n, t, -1) + b
    return out, (x, w, b, out)


def temporal_affine_backward(dout: Any, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`temporal_affine_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, T, M)
    cache : tuple
        From :func:`temporal_affine_forward`.

    Returns
    -------
    dx : ndarray, shape (N, T, D)
    dw : ndarray, shape (D, M)
    db : ndarray, shape (M,)
    """
    forward = "temporal_affine_forward"
    x, w, b, _ = unpack_cache(cache, forward, ("x", "w", "b", "out"))
    x, w = cached_array(x, "x", forward, ndim=3), cached_array(w, "w", forward, ndim=2)
    cached_array(b, "b", forward, ndim=1)
    n, t, d = x.shape
    cached_shape(w, "w", forward, (d, w.shape[1]))
    dout = check_array(dout, "dout", finite=False)
    if dout.shape != (n, t, w.shape[1]):
        raise ValueError(f"dout must have the forward output's shape {(n, t, w.shape[1])}; got "
                         f"{dout.shape}")
    flat = dout.reshape(n * t, -1)
    dx = (flat @ w.T).reshape(n, t, d)
    dw = x.reshape(n * t, d).T @ flat
    return dx, dw, flat.sum(axis=0)


# ------------------------------------------------------------------- temporal softmax loss
def temporal_softmax_loss(x: Any, y: Any, mask: Any, verbose: bool = False
                          ) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy at every time step, summed over the unmasked steps, divided by N.

    Parameters
    ----------
    x : ndarray, shape (N, T, V)
        Scores.
    y : array_like of int, shape (N, T)
        Target ids in ``[0, V)``.
    mask : array_like of bool, shape (N, T)
        Which steps count (False for ``<NULL>`` padding).
    verbose : bool
        Print the shape of ``dx`` (as CS231n's version does).

    Returns
    -------
    loss : float
    dx : ndarray, shape (N, T, V)
    """
    x = check_array(x, "x", ndim=3, finite=False)
    n, t, v = x.shape
    y = _check_ids(y, "y", v, "class ids (the last axis of x)")
    if y.shape != (n, t):
        raise ValueError(f"y must have shape {(n, t)} to match x of shape {x.shape}, got {y.shape}")
    mask = check_array(mask, "mask", ndim=2, dtype=None, allow_empty=True)
    if mask.shape != (n, t):
        raise ValueError(f"mask must have shape {(n, t)} to match x of shape {x.shape}, got "
                         f"{mask.shape}")
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "iuf" or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"mask must hold booleans (or 0/1), got dtype {mask.dtype}")
        mask = mask.astype(bool)
    flat = x.reshape(n * t, v)
    shifted = flat - flat.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_norm
    rows = np.arange(n * t)
    keep = mask.reshape(-1)
    loss = -float(np.sum(log_probs[rows[keep], y.reshape(-1)[keep]])) / n
    dx = np.exp(log_probs)
    dx[rows, y.reshape(-1)] -= 1
    dx *= keep[:, None] / np.asarray(n, dtype=dx.dtype)
    if verbose:
        print("dx_flat:", dx.shape)
    return loss, dx.reshape(n, t, v)
