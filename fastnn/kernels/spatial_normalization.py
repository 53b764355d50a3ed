"""Spatial normalisation kernels behind ``fastnn.layers``: batch norm and group norm over
(N, C, H, W) images, forward (train mode) and closed-form backward, three implementations each.

- ``"naive"``: plain Python loops over the formulas, the readable specification;
- ``"vectorized"``: NumPy reductions over the axes in place (no transposing copies), sums in
  float64;
- ``"compiled"``: ``fastnn._ext._spatial_normalization`` (Cython + OpenMP), threads over
  channels (batch norm) or (n, group) blocks (group norm), sums in double.

Backward recomputes ``x_hat = (x - mean) * inv_std`` from ``x`` rather than reading a cached
``x_hat``: backward reads two arrays either way, and forward then writes one array instead of
two (the kernels are memory-bound, so that is the cheaper choice).

Signatures (arrays of one float dtype; ``x``, ``dout`` (N, C, H, W); ``gamma``, ``beta`` (C,)):

- ``spatial_batchnorm_forward_train(x, gamma, beta, eps) -> out, mean, var, inv_std`` with
  per-channel ``mean``, ``var`` (biased, over N*H*W) and ``inv_std = 1 / sqrt(var + eps)`` (C,);
- ``spatial_batchnorm_backward(dout, x, gamma, mean, inv_std) -> dx, dgamma, dbeta``;
- ``spatial_groupnorm_forward(x, gamma, beta, G, eps) -> out, mean, var, inv_std`` with
  statistics of shape (N, G), each over one group's C/G*H*W values;
- ``spatial_groupnorm_backward(dout, x, gamma, mean, inv_std) -> dx, dgamma, dbeta`` (G is
  ``mean.shape[1]``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from fastnn._validation import check_float, check_int
from fastnn.kernels._operation import Operation, load_extension, threads_for
from fastnn.kernels.normalization import _common

__all__ = [
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward_train",
    "spatial_groupnorm_backward",
    "spatial_groupnorm_forward",
]

_ext = load_extension("_spatial_normalization")


def _threads(size: int) -> int:
    # about 12 floating-point operations per element over the two or three passes
    return threads_for(12.0 * size)


# ------------------------------------------------------------------------------- validation
def _check_4d(name: str, a: np.ndarray) -> tuple[int, int, int, int]:
    if a.ndim != 4:
        raise ValueError(f"{name} must be a 4-D array (N, C, H, W), got {a.ndim}-D shape "
                         f"{a.shape}")
    return a.shape


def _check_shape(name: str, a: np.ndarray, shape: tuple, ref_name: str, ref: np.ndarray) -> None:
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape} to match {ref_name} of shape "
                         f"{ref.shape}, got {a.shape}")


def _check_groups(G, c: int) -> int:
    groups = check_int(G, "G", minimum=1)
    if c % groups:
        raise ValueError(f"G must divide the number of channels C={c}, got G={groups}")
    return groups


def _check_forward(x, gamma, beta, eps):
    x, gamma, beta = _common({"x": x, "gamma": gamma, "beta": beta})
    c = _check_4d("x", x)[1]
    _check_shape("gamma", gamma, (c,), "x", x)
    _check_shape("beta", beta, (c,), "x", x)
    return x, gamma, beta, check_float(eps, "eps", minimum=0.0, min_inclusive=False)


def _check_bn_forward(impl: str, x, gamma, beta, eps=1e-5):
    """x (N, C, H, W), gamma and beta (C,), eps > 0."""
    return _check_forward(x, gamma, beta, eps)


def _check_gn_forward(impl: str, x, gamma, beta, G, eps=1e-5):
    """x (N, C, H, W), gamma and beta (C,), G >= 1 dividing C, eps > 0."""
    x, gamma, beta, eps = _check_forward(x, gamma, beta, eps)
    return x, gamma, beta, _check_groups(G, x.shape[1]), eps


def _check_backward(impl: str, dout, x, gamma, mean, inv_std, stats_shape):
    dout, x, gamma, mean, inv_std = _common(
        {"dout": dout, "x": x, "gamma": gamma, "mean": mean, "inv_std": inv_std})
    n, c = _check_4d("dout", dout)[:2]
    _check_shape("x", x, dout.shape, "dout", dout)
    _check_shape("gamma", gamma, (c,), "dout", dout)
    shape = stats_shape(n, c, mean, inv_std)
    _check_shape("mean", mean, shape, "dout", dout)
    _check_shape("inv_std", inv_std, shape, "dout", dout)
    return dout, x, gamma, mean, inv_std


def _check_bn_backward(impl: str, dout, x, gamma, mean, inv_std):
    """dout and x (N, C, H, W), gamma, mean and inv_std (C,)."""
    return _check_backward(impl, dout, x, gamma, mean, inv_std, lambda n, c, m, s: (c,))


def _gn_stats_shape(n: int, c: int, mean: np.ndarray, inv_std: np.ndarray) -> tuple[int, int]:
    # G is read off the statistics: mean and inv_std must agree before either is trusted
    if mean.shape != inv_std.shape:
        raise ValueError(f"mean and inv_std must have the same shape (N, G); got mean "
                         f"{mean.shape} and inv_std {inv_std.shape}")
    if mean.ndim != 2 or mean.shape[0] != n or c % mean.shape[1]:
        raise ValueError(f"mean must have shape (N, G) = ({n}, G) with G dividing C={c} (from "
                         f"dout), got {mean.shape}")
    return mean.shape


def _check_gn_backward(impl: str, dout, x, gamma, mean, inv_std):
    """dout and x (N, C, H, W), gamma (C,), mean and inv_std (N, G) with G dividing C."""
    return _check_backward(impl, dout, x, gamma, mean, inv_std, _gn_stats_shape)


BATCHNORM_FORWARD = Operation("spatial_batchnorm_forward_train", _check_bn_forward)
BATCHNORM_BACKWARD = Operation("spatial_batchnorm_backward", _check_bn_backward)
GROUPNORM_FORWARD = Operation("spatial_groupnorm_forward", _check_gn_forward)
GROUPNORM_BACKWARD = Operation("spatial_groupnorm_backward", _check_gn_backward)


# --------------------------------------------------------------- batch norm, forward (train)
@BATCHNORM_FORWARD.register("naive")
def _bn_forward_naive(x, gamma, beta, eps):
    n, c, h, w = x.shape
    m = n * h * w
    out = np.empty_like(x)
    mean, var, inv_std = (np.empty(c, dtype=x.dtype) for _ in range(3))
    for ch in range(c):
        values = [float(x[i, ch, p, q]) for i in range(n) for p in range(h) for q in range(w)]
        mu = sum(values) / m
        v = sum((value - mu) ** 2 for value in values) / m
        r = 1.0 / math.sqrt(v + eps)
        mean[ch], var[ch], inv_std[ch] = mu, v, r
        for i in range(n):
            for p in range(h):
                for q in range(w):
                    out[i, ch, p, q] = gamma[ch] * ((float(x[i, ch, p, q]) - mu) * r) + beta[ch]
    return out, mean, var, inv_std


@BATCHNORM_FORWARD.register("vectorized")
def _bn_forward_vectorized(x, gamma, beta, eps):
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mean = x.sum(axis=(0, 2, 3), dtype=np.float64) / m
    centred = x - mean.astype(x.dtype)[:, None, None]
    var = np.einsum("ncij,ncij->c", centred, centred, dtype=np.float64) / m
    inv_std = 1 / np.sqrt(var + eps)
    centred *= (gamma * inv_std).astype(x.dtype)[:, None, None]
    centred += beta[:, None, None]
    return centred, mean.astype(x.dtype), var.astype(x.dtype), inv_std.astype(x.dtype)


@BATCHNORM_FORWARD.register("compiled", available=_ext is not None)
def _bn_forward_compiled(x, gamma, beta, eps):
    c = x.shape[1]
    out = np.empty_like(x)
    mean, var, inv_std = (np.empty(c, dtype=x.dtype) for _ in range(3))
    _ext.spatial_batchnorm_forward_train(x, gamma, beta, eps, out, mean, var, inv_std,
                                         _threads(x.size))
    return out, mean, var, inv_std


# ------------------------------------------------------------------------ batch norm, backward
@BATCHNORM_BACKWARD.register("naive")
def _bn_backward_naive(dout, x, gamma, mean, inv_std):
    n, c, h, w = dout.shape
    m = n * h * w
    dx = np.empty_like(dout)
    dgamma, dbeta = np.empty(c, dtype=dout.dtype), np.empty(c, dtype=dout.dtype)
    points = [(i, p, q) for i in range(n) for p in range(h) for q in range(w)]
    for ch in range(c):
        r = float(inv_std[ch])
        x_hat = {pt: (float(x[pt[0], ch, pt[1], pt[2]]) - float(mean[ch])) * r for pt in points}
        g = {pt: float(dout[pt[0], ch, pt[1], pt[2]]) for pt in points}
        sum_g = sum(g.values())
        sum_gx = sum(g[pt] * x_hat[pt] for pt in points)
        dbeta[ch], dgamma[ch] = sum_g, sum_gx
        for pt in points:
            dx[pt[0], ch, pt[1], pt[2]] = (
                float(gamma[ch]) * r * (g[pt] - sum_g / m - x_hat[pt] * sum_gx / m))
    return dx, dgamma, dbeta


@BATCHNORM_BACKWARD.register("vectorized")
def _bn_backward_vectorized(dout, x, gamma, mean, inv_std):
    m = dout.shape[0] * dout.shape[2] * dout.shape[3]
    x_hat = x - mean[:, None, None]
    x_hat *= inv_std[:, None, None]
    dbeta = dout.sum(axis=(0, 2, 3), dtype=np.float64)
    dgamma = np.einsum("ncij,ncij->c", dout, x_hat, dtype=np.float64)
    scale = (gamma * inv_std)[:, None, None]
    x_hat *= (dgamma / m).astype(dout.dtype)[:, None, None]
    dx = dout - (dbeta / m).astype(dout.dtype)[:, None, None]
    dx -= x_hat
    dx *= scale
    return dx, dgamma.astype(dout.dtype), dbeta.astype(dout.dtype)


@BATCHNORM_BACKWARD.register("compiled", available=_ext is not None)
def _bn_backward_compiled(dout, x, gamma, mean, inv_std):
    c = dout.shape[1]
    dx = np.empty_like(dout)
    dgamma, dbeta = np.empty(c, dtype=dout.dtype), np.empty(c, dtype=dout.dtype)
    _ext.spatial_batchnorm_backward(dout, x, gamma, mean, inv_std, dx, dgamma, dbeta,
                                    _threads(dout.size))
    return dx, dgamma, dbeta


# ------------------------------------------------------------------------ group norm, forward
@GROUPNORM_FORWARD.register("naive")
def _gn_forward_naive(x, gamma, beta, G, eps):
    n, c, h, w = x.shape
    cg = c // G
    out = np.empty_like(x)
    mean, var, inv_std = (np.empty((n, G), dtype=x.dtype) for _ in range(3))
    for i in range(n):
        for g in range(G):
            channels = range(g * cg, (g + 1) * cg)
            values = [float(x[i, ch, p, q]) for ch in channels for p in range(h) for q in range(w)]
            mu = sum(values) / len(values)
            v = sum((value - mu) ** 2 for value in values) / len(values)
            r = 1.0 / math.sqrt(v + eps)
            mean[i, g], var[i, g], inv_std[i, g] = mu, v, r
            for ch in channels:
                for p in range(h):
                    for q in range(w):
                        x_hat = (float(x[i, ch, p, q]) - mu) * r
                        out[i, ch, p, q] = gamma[ch] * x_hat + beta[ch]
    return out, mean, var, inv_std


def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, H, W) as (N, G, C/G*H*W): a view of the contiguous array (each block is one run)."""
    return a.reshape(a.shape[0], groups, -1)


@GROUPNORM_FORWARD.register("vectorized")
def _gn_forward_vectorized(x, gamma, beta, G, eps):
    xg = _grouped(x, G)
    mean = xg.sum(axis=2, dtype=np.float64) / xg.shape[2]
    centred = xg - mean.astype(x.dtype)[:, :, None]
    var = np.einsum("ngk,ngk->ng", centred, centred, dtype=np.float64) / xg.shape[2]
    inv_std = 1 / np.sqrt(var + eps)
    centred *= inv_std.astype(x.dtype)[:, :, None]
    out = centred.reshape(x.shape)
    out *= gamma[:, None, None]
    out += beta[:, None, None]
    return out, mean.astype(x.dtype), var.astype(x.dtype), inv_std.astype(x.dtype)


@GROUPNORM_FORWARD.register("compiled", available=_ext is not None)
def _gn_forward_compiled(x, gamma, beta, G, eps):
    out = np.empty_like(x)
    mean, var, inv_std = (np.empty((x.shape[0], G), dtype=x.dtype) for _ in range(3))
    _ext.spatial_groupnorm_forward(x, gamma, beta, eps, out, mean, var, inv_std,
                                   _threads(x.size))
    return out, mean, var, inv_std


# ----------------------------------------------------------------------- group norm, backward
@GROUPNORM_BACKWARD.register("naive")
def _gn_backward_naive(dout, x, gamma, mean, inv_std):
    n, c, h, w = dout.shape
    groups = mean.shape[1]
    cg = c // groups
    dx = np.empty_like(dout)
    sum_g, sum_gx = [0.0] * c, [0.0] * c
    for i in range(n):
        for g in range(groups):
            mu, r = float(mean[i, g]), float(inv_std[i, g])
            points = [(ch, p, q) for ch in range(g * cg, (g + 1) * cg)
                      for p in range(h) for q in range(w)]
            x_hat = {pt: (float(x[i][pt]) - mu) * r for pt in points}
            gx = {pt: float(dout[i][pt]) * float(gamma[pt[0]]) for pt in points}
            for pt in points:
                sum_g[pt[0]] += float(dout[i][pt])
                sum_gx[pt[0]] += float(dout[i][pt]) * x_hat[pt]
            mean_gx = sum(gx.values()) / len(points)
            mean_gxx = sum(gx[pt] * x_hat[pt] for pt in points) / len(points)
            for pt in points:
                dx[i][pt] = r * (gx[pt] - mean_gx - x_hat[pt] * mean_gxx)
    return dx, np.array(sum_gx, dtype=dout.dtype), np.array(sum_g, dtype=dout.dtype)


@GROUPNORM_BACKWARD.register("vectorized")
def _gn_backward_vectorized(dout, x, gamma, mean, inv_std):
    shape, groups = dout.shape, mean.shape[1]
    x_hat = _grouped(x, groups) - mean[:, :, None]
    x_hat *= inv_std[:, :, None]
    x_hat = x_hat.reshape(shape)
    dbeta = dout.sum(axis=(0, 2, 3), dtype=np.float64)
    dgamma = np.einsum("ncij,ncij->c", dout, x_hat, dtype=np.float64)
    gx = dout * gamma[:, None, None]
    gxg, xg = _grouped(gx, groups), _grouped(x_hat, groups)
    m = gxg.shape[2]
    mean_gx = gxg.sum(axis=2, dtype=np.float64) / m
    mean_gxx = np.einsum("ngk,ngk->ng", gxg, xg, dtype=np.float64) / m
    xg *= mean_gxx.astype(dout.dtype)[:, :, None]
    gxg -= mean_gx.astype(dout.dtype)[:, :, None]
    gxg -= xg
    gxg *= inv_std[:, :, None]
    return gx, dgamma.astype(dout.dtype), dbeta.astype(dout.dtype)


@GROUPNORM_BACKWARD.register("compiled", available=_ext is not None)
def _gn_backward_compiled(dout, x, gamma, mean, inv_std):
    c = dout.shape[1]
    dx = np.empty_like(dout)
    dgamma, dbeta = np.empty(c, dtype=dout.dtype), np.empty(c, dtype=dout.dtype)
    _ext.spatial_groupnorm_backward(dout, x, gamma, mean, inv_std, dx, dgamma, dbeta,
                                    _threads(dout.size))
    return dx, dgamma, dbeta


# ------------------------------------------------------------------------------ public entries
def spatial_batchnorm_forward_train(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike,
                                    eps: float = 1e-5,
                                    impl: str | None = None) -> tuple[np.ndarray, ...]:
    """Spatial batch norm in train mode (statistics of each channel over N, H and W).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    gamma, beta : array_like, shape (C,)
    eps : float
        Added to the variance inside the square root; > 0.
    impl : {"naive", "vectorized", "compiled"}, optional
        None: the best available.

    Returns
    -------
    out : ndarray, shape (N, C, H, W)
        ``gamma * (x - mean) * inv_std + beta``.
    mean, var, inv_std : ndarray, shape (C,)
        Batch mean, biased batch variance and ``1 / sqrt(var + eps)``.
    """
    return BATCHNORM_FORWARD(x, gamma, beta, eps, impl=impl)


def spatial_batchnorm_backward(
    dout: ArrayLike, x: ArrayLike, gamma: ArrayLike, mean: ArrayLike, inv_std: ArrayLike,
    impl: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form spatial batch-norm backward (train mode), ``x_hat`` recomputed from ``x``.

    Parameters
    ----------
    dout, x : array_like, shape (N, C, H, W)
        Upstream gradient and the forward input.
    gamma, mean, inv_std : array_like, shape (C,)
        The scale and the statistics :func:`spatial_batchnorm_forward_train` returned.
    impl : {"naive", "vectorized", "compiled"}, optional
        None: the best available.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dgamma, dbeta : ndarray, shape (C,)
    """
    return BATCHNORM_BACKWARD(dout, x, gamma, mean, inv_std, impl=impl)


def spatial_groupnorm_forward(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, G: int,
                              eps: float = 1e-5,
                              impl: str | None = None) -> tuple[np.ndarray, ...]:
    """Spatial group norm: each example's G groups of C/G channels normalised over the group's
    channels, H and W, then scaled and shifted per channel.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    gamma, beta : array_like, shape (C,)
    G : int
        Number of groups, >= 1 and dividing C.
    eps : float
        Added to the variance inside the square root; > 0.
    impl : {"naive", "vectorized", "compiled"}, optional
        None: the best available.

    Returns
    -------
    out : ndarray, shape (N, C, H, W)
    mean, var, inv_std : ndarray, shape (N, G)
        Per-(example, group) mean, biased variance and ``1 / sqrt(var + eps)``.
    """
    return GROUPNORM_FORWARD(x, gamma, beta, G, eps, impl=impl)


def spatial_groupnorm_backward(
    dout: ArrayLike, x: ArrayLike, gamma: ArrayLike, mean: ArrayLike, inv_std: ArrayLike,
    impl: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spatial group-norm backward, ``x_hat`` recomputed from ``x``; G is ``mean.shape[1]``.

    Parameters
    ----------
    dout, x : array_like, shape (N, C, H, W)
        Upstream gradient and the forward input.
    gamma : array_like, shape (C,)
    mean, inv_std : array_like, shape (N, G)
        The statistics :func:`spatial_groupnorm_forward` returned.
    impl : {"naive", "vectorized", "compiled"}, optional
        None: the best available.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dgamma, dbeta : ndarray, shape (C,)
    """
    return GROUPNORM_BACKWARD(dout, x, gamma, mean, inv_std, impl=impl)
