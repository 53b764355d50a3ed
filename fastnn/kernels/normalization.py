"""Normalisation kernels behind ``fastnn.layers``: batch norm and layer norm, forward (train
mode) and closed-form backward, three implementations each.

- ``"naive"``: plain Python loops over the formulas, the readable specification;
- ``"vectorized"``: NumPy, one array operation per step of the formula;
- ``"compiled"``: ``fastnn._ext._normalization`` (Cython + OpenMP), two or three fused streaming
  passes (threads over chunks of rows) instead of NumPy's six to ten passes with temporaries.

Signatures (all arrays of one float dtype; ``x``, ``dout``, ``x_hat`` (N, D); ``gamma`` (D,)):

- ``batchnorm_forward_train(x, gamma, beta, eps) -> out, x_hat, mean, var, inv_std`` with
  ``mean``, ``var`` (biased), ``inv_std = 1 / sqrt(var + eps)`` of shape (D,);
- ``batchnorm_backward_closed_form(dout, x_hat, gamma, inv_std) -> dx, dgamma, dbeta``;
- ``layernorm_forward(x, gamma, beta, eps) -> out, x_hat, inv_std`` with ``inv_std`` (N, 1);
- ``layernorm_backward(dout, x_hat, gamma, inv_std) -> dx, dgamma, dbeta``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from fastnn._validation import check_array, check_float
from fastnn.kernels._operation import Operation, load_extension, threads_for

__all__ = [
    "batchnorm_backward_closed_form",
    "batchnorm_forward_train",
    "layernorm_backward",
    "layernorm_forward",
]

_ext = load_extension("_normalization")
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _threads(size: int) -> int:
    # about 16 floating-point operations per element over the two or three passes
    return threads_for(16.0 * size)


# ------------------------------------------------------------------------------- validation
def _common(arrays: dict[str, object]) -> list[np.ndarray]:
    """Check every array, then bring them to one float dtype (NumPy's promotion of the inputs)
    and C order, so compiled code can index them blindly."""
    values = list(arrays.values())
    dtype = getattr(values[0], "dtype", None)
    if dtype in _FLOAT_DTYPES and all(
        type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous and a.size
        for a in values
    ):  # the common case (what the layers pass): nothing to convert
        return values
    checked = [check_array(arr, name, finite=False) for name, arr in arrays.items()]
    dtype = np.result_type(*checked)
    return [np.ascontiguousarray(a, dtype=dtype) for a in checked]


def _check_2d(name: str, a: np.ndarray) -> tuple[int, int]:
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N, D), got {a.ndim}-D shape {a.shape}")
    return a.shape


def _check_vector(name: str, a: np.ndarray, length: int, ref_name: str, ref: np.ndarray) -> None:
    if a.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},) to match {ref_name} of shape "
                         f"{ref.shape}, got {a.shape}")


def _check_forward(impl: str, x, gamma, beta, eps=1e-5):
    """x (N, D), gamma and beta (D,), eps > 0."""
    x, gamma, beta = _common({"x": x, "gamma": gamma, "beta": beta})
    _, d = _check_2d("x", x)
    _check_vector("gamma", gamma, d, "x", x)
    _check_vector("beta", beta, d, "x", x)
    return x, gamma, beta, check_float(eps, "eps", minimum=0.0, min_inclusive=False)


def _check_backward(dout, x_hat, gamma, inv_std):
    dout, x_hat, gamma, inv_std = _common(
        {"dout": dout, "x_hat": x_hat, "gamma": gamma, "inv_std": inv_std})
    _check_2d("dout", dout)
    if x_hat.shape != dout.shape:
        raise ValueError(f"x_hat must have the shape of dout {dout.shape}, got {x_hat.shape}")
    _check_vector("gamma", gamma, dout.shape[1], "dout", dout)
    return dout, x_hat, gamma, inv_std


def _check_bn_backward(impl: str, dout, x_hat, gamma, inv_std):
    """dout and x_hat (N, D), gamma and inv_std (D,)."""
    dout, x_hat, gamma, inv_std = _check_backward(dout, x_hat, gamma, inv_std)
    _check_vector("inv_std", inv_std, dout.shape[1], "dout", dout)
    return dout, x_hat, gamma, inv_std


def _check_ln_backward(impl: str, dout, x_hat, gamma, inv_std):
    """dout and x_hat (N, D), gamma (D,), inv_std (N, 1)."""
    dout, x_hat, gamma, inv_std = _check_backward(dout, x_hat, gamma, inv_std)
    if inv_std.shape != (dout.shape[0], 1):
        raise ValueError(f"inv_std must have shape ({dout.shape[0]}, 1) to match dout of shape "
                         f"{dout.shape}, got {inv_std.shape}")
    return dout, x_hat, gamma, inv_std


BATCHNORM_FORWARD = Operation("batchnorm_forward_train", _check_forward)
BATCHNORM_BACKWARD = Operation("batchnorm_backward_closed_form", _check_bn_backward)
LAYERNORM_FORWARD = Operation("layernorm_forward", _check_forward)
LAYERNORM_BACKWARD = Operation("layernorm_backward", _check_ln_backward)


# ---------------------------------------------------------------- batch norm, forward (train)
@BATCHNORM_FORWARD.register("naive")
def _bn_forward_naive(x, gamma, beta, eps):
    n, d = x.shape
    out, x_hat = np.empty_like(x), np.empty_like(x)
    mean, var, inv_std = (np.empty(d, dtype=x.dtype) for _ in range(3))
    for j in range(d):
        m = sum(float(x[i, j]) for i in range(n)) / n
        v = sum((float(x[i, j]) - m) ** 2 for i in range(n)) / n
        s = 1.0 / math.sqrt(v + eps)
        mean[j], var[j], inv_std[j] = m, v, s
        for i in range(n):
            x_hat[i, j] = (float(x[i, j]) - m) * s
            out[i, j] = gamma[j] * x_hat[i, j] + beta[j]
    return out, x_hat, mean, var, inv_std


@BATCHNORM_FORWARD.register("vectorized")
def _bn_forward_vectorized(x, gamma, beta, eps):
    mean = x.mean(axis=0)
    x_hat = x - mean
    var = np.einsum("ij,ij->j", x_hat, x_hat) / x.shape[0]
    inv_std = 1 / np.sqrt(var + eps)
    x_hat *= inv_std
    out = x_hat * gamma
    out += beta
    return out, x_hat, mean, var, inv_std


@BATCHNORM_FORWARD.register("compiled", available=_ext is not None)
def _bn_forward_compiled(x, gamma, beta, eps):
    d = x.shape[1]
    out, x_hat = np.empty_like(x), np.empty_like(x)
    mean, var, inv_std = (np.empty(d, dtype=x.dtype) for _ in range(3))
    _ext.batchnorm_forward_train(x, gamma, beta, eps, x_hat, out, mean, var, inv_std,
                                 _threads(x.size))
    return out, x_hat, mean, var, inv_std


# ------------------------------------------------------------------ batch norm, backward
@BATCHNORM_BACKWARD.register("naive")
def _bn_backward_naive(dout, x_hat, gamma, inv_std):
    n, d = dout.shape
    dx = np.empty_like(dout)
    dgamma, dbeta = np.empty(d, dtype=dout.dtype), np.empty(d, dtype=dout.dtype)
    for j in range(d):
        sum_g = sum(float(dout[i, j]) for i in range(n))
        sum_gx = sum(float(dout[i, j]) * float(x_hat[i, j]) for i in range(n))
        dbeta[j], dgamma[j] = sum_g, sum_gx
        for i in range(n):
            dx[i, j] = gamma[j] * inv_std[j] / n * (
                n * dout[i, j] - sum_g - x_hat[i, j] * sum_gx)
    return dx, dgamma, dbeta


@BATCHNORM_BACKWARD.register("vectorized")
def _bn_backward_vectorized(dout, x_hat, gamma, inv_std):
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.einsum("ij,ij->j", dout, x_hat)
    # sum(dout * gamma) = gamma * dbeta and sum(dout * gamma * x_hat) = gamma * dgamma: reuse
    # them and fold the per-feature factors into (D,) vectors, three passes over (N, D)
    dx = dout - (dbeta / n)
    dx -= x_hat * (dgamma / n)
    dx *= gamma * inv_std
    return dx, dgamma, dbeta


@BATCHNORM_BACKWARD.register("compiled", available=_ext is not None)
def _bn_backward_compiled(dout, x_hat, gamma, inv_std):
    d = dout.shape[1]
    dx = np.empty_like(dout)
    dgamma, dbeta = np.empty(d, dtype=dout.dtype), np.empty(d, dtype=dout.dtype)
    _ext.batchnorm_backward(dout, x_hat, gamma, inv_std, dx, dgamma, dbeta, _threads(dout.size))
    return dx, dgamma, dbeta


# --------------------------------------------------------------------- layer norm, forward
@LAYERNORM_FORWARD.register("naive")
def _ln_forward_naive(x, gamma, beta, eps):
    n, d = x.shape
    out, x_hat = np.empty_like(x), np.empty_like(x)
    inv_std = np.empty((n, 1), dtype=x.dtype)
    for i in range(n):
        m = sum(float(v) for v in x[i]) / d
        var = sum((float(v) - m) ** 2 for v in x[i]) / d
        s = 1.0 / math.sqrt(var + eps)
        inv_std[i, 0] = s
        for j in range(d):
            x_hat[i, j] = (float(x[i, j]) - m) * s
            out[i, j] = gamma[j] * x_hat[i, j] + beta[j]
    return out, x_hat, inv_std


@LAYERNORM_FORWARD.register("vectorized")
def _ln_forward_vectorized(x, gamma, beta, eps):
    x_hat = x - x.mean(axis=1, keepdims=True)
    var = np.einsum("ij,ij->i", x_hat, x_hat)[:, None] / x.shape[1]
    inv_std = 1 / np.sqrt(var + eps)
    x_hat *= inv_std
    out = x_hat * gamma
    out += beta
    return out, x_hat, inv_std


@LAYERNORM_FORWARD.register("compiled", available=_ext is not None)
def _ln_forward_compiled(x, gamma, beta, eps):
    n = x.shape[0]
    out, x_hat = np.empty_like(x), np.empty_like(x)
    inv_std = np.empty(n, dtype=x.dtype)
    _ext.layernorm_forward(x, gamma, beta, eps, x_hat, out, inv_std, _threads(x.size))
    return out, x_hat, inv_std[:, None]


# -------------------------------------------------------------------- layer norm, backward
@LAYERNORM_BACKWARD.register("naive")
def _ln_backward_naive(dout, x_hat, gamma, inv_std):
    n, d = dout.shape
    dx = np.empty_like(dout)
    for i in range(n):
        g = [float(dout[i, j]) * float(gamma[j]) for j in range(d)]
        mean_g = sum(g) / d
        mean_gx = sum(g[j] * float(x_hat[i, j]) for j in range(d)) / d
        for j in range(d):
            dx[i, j] = inv_std[i, 0] * (g[j] - mean_g - x_hat[i, j] * mean_gx)
    dbeta = np.array([sum(float(dout[i, j]) for i in range(n)) for j in range(d)],
                     dtype=dout.dtype)
    dgamma = np.array([sum(float(dout[i, j]) * float(x_hat[i, j]) for i in range(n))
                       for j in range(d)], dtype=dout.dtype)
    return dx, dgamma, dbeta


@LAYERNORM_BACKWARD.register("vectorized")
def _ln_backward_vectorized(dout, x_hat, gamma, inv_std):
    d = x_hat.shape[1]
    dbeta = dout.sum(axis=0)
    dgamma = np.einsum("ij,ij->j", dout, x_hat)
    g = dout * gamma
    mean_g = g.mean(axis=1, keepdims=True)
    mean_gx = np.einsum("ij,ij->i", g, x_hat)[:, None] / d
    dx = g - mean_g
    dx -= x_hat * mean_gx
    dx *= inv_std
    return dx, dgamma, dbeta


@LAYERNORM_BACKWARD.register("compiled", available=_ext is not None)
def _ln_backward_compiled(dout, x_hat, gamma, inv_std):
    d = dout.shape[1]
    dx = np.empty_like(dout)
    dgamma, dbeta = np.empty(d, dtype=dout.dtype), np.empty(d, dtype=dout.dtype)
    _ext.layernorm_backward(dout, x_hat, gamma, np.ascontiguousarray(inv_std.reshape(-1)), dx,
                            dgamma, dbeta, _threads(dout.size))
    return dx, dgamma, dbeta


# ------------------------------------------------------------------------ public entries
def batchnorm_forward_train(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = 1e-5,
                            impl: str | None = None) -> tuple[np.ndarray, ...]:
    """Batch norm in train mode: ``out, x_hat, mean, var, inv_std`` (see the module doc)."""
    return BATCHNORM_FORWARD(x, gamma, beta, eps, impl=impl)


def batchnorm_backward_closed_form(
    dout: ArrayLike, x_hat: ArrayLike, gamma: ArrayLike, inv_std: ArrayLike,
    impl: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form batch-norm backward: ``dx, dgamma, dbeta`` (see the module doc)."""
    return BATCHNORM_BACKWARD(dout, x_hat, gamma, inv_std, impl=impl)


def layernorm_forward(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = 1e-5,
                      impl: str | None = None) -> tuple[np.ndarray, ...]:
    """Layer norm: ``out, x_hat, inv_std`` with ``inv_std`` of shape (N, 1)."""
    return LAYERNORM_FORWARD(x, gamma, beta, eps, impl=impl)


def layernorm_backward(
    dout: ArrayLike, x_hat: ArrayLike, gamma: ArrayLike, inv_std: ArrayLike,
    impl: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer-norm backward: ``dx, dgamma, dbeta``; ``inv_std`` of shape (N, 1)."""
    return LAYERNORM_BACKWARD(dout, x_hat, gamma, inv_std, impl=impl)
