"""The looped and NumPy twins of the convolution operations (:mod:`fastnn.kernels.conv`).

``*_naive``: plain loops over the definition, the readable specification (the convolution loops
are CS231n's ``conv_forward_naive``/``conv_backward_naive``: one window product per output).
``*_vectorized``: CS231n's ``im2col_indices`` (fancy indexing of the padded batch),
``col2im_indices`` (``np.add.at``) and ``conv_forward_im2col`` (one matrix product).
Every function takes the arguments its operation's check returns (a :class:`Geometry` ``g``).
"""

from __future__ import annotations

import numpy as np

from fastnn.kernels._conv_geometry import Geometry

__all__ = [
    "col2im_naive",
    "col2im_vectorized",
    "conv_backward_naive",
    "conv_backward_vectorized",
    "conv_forward_naive",
    "conv_forward_vectorized",
    "im2col_naive",
    "im2col_vectorized",
]


# -------------------------------------------------------------------------------- looped
def im2col_naive(x: np.ndarray, g: Geometry) -> np.ndarray:
    n, c, h, w = x.shape
    cols = np.zeros((g.rows, g.positions * n), dtype=x.dtype)
    for img in range(n):
        for ch in range(c):
            for i in range(g.fh):
                for j in range(g.fw):
                    row = (ch * g.fh + i) * g.fw + j
                    for oh in range(g.out_h):
                        hh = oh * g.stride - g.pad + i * g.dilation
                        for ow in range(g.out_w):
                            ww = ow * g.stride - g.pad + j * g.dilation
                            if 0 <= hh < h and 0 <= ww < w:
                                cols[row, (oh * g.out_w + ow) * n + img] = x[img, ch, hh, ww]
    return cols


def col2im_naive(cols: np.ndarray, x_shape: tuple[int, ...], g: Geometry) -> np.ndarray:
    n, c, h, w = x_shape
    x = np.zeros(x_shape, dtype=cols.dtype)
    for img in range(n):
        for ch in range(c):
            for i in range(g.fh):
                for j in range(g.fw):
                    row = (ch * g.fh + i) * g.fw + j
                    for oh in range(g.out_h):
                        hh = oh * g.stride - g.pad + i * g.dilation
                        for ow in range(g.out_w):
                            ww = ow * g.stride - g.pad + j * g.dilation
                            if 0 <= hh < h and 0 <= ww < w:
                                x[img, ch, hh, ww] += cols[row, (oh * g.out_w + ow) * n + img]
    return x


def _pad(x: np.ndarray, p: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="constant")


def _window(g: Geometry, oh: int, ow: int) -> tuple[slice, slice]:
    """Rows and columns of the padded input that output (oh, ow) reads (dilated taps)."""
    h0, w0 = oh * g.stride, ow * g.stride
    return (slice(h0, h0 + g.dilation * (g.fh - 1) + 1, g.dilation),
            slice(w0, w0 + g.dilation * (g.fw - 1) + 1, g.dilation))


def conv_forward_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray, g: Geometry) -> np.ndarray:
    n, f = x.shape[0], w.shape[0]
    x_pad = _pad(x, g.pad)
    out = np.empty((n, f, g.out_h, g.out_w), dtype=x.dtype)
    for i in range(n):
        for k in range(f):
            for oh in range(g.out_h):
                for ow in range(g.out_w):
                    rows, cols = _window(g, oh, ow)
                    out[i, k, oh, ow] = np.sum(x_pad[i, :, rows, cols] * w[k]) + b[k]
    return out


def conv_backward_naive(dout: np.ndarray, x: np.ndarray, w: np.ndarray, g: Geometry,
                        need_dx: bool) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    n, _, h, wd = x.shape
    f = w.shape[0]
    x_pad = _pad(x, g.pad)
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for i in range(n):
        for k in range(f):
            for oh in range(g.out_h):
                for ow in range(g.out_w):
                    rows, cols = _window(g, oh, ow)
                    dw[k] += x_pad[i, :, rows, cols] * dout[i, k, oh, ow]
                    dx_pad[i, :, rows, cols] += w[k] * dout[i, k, oh, ow]
    dx = dx_pad[:, :, g.pad:g.pad + h, g.pad:g.pad + wd].copy() if need_dx else None
    return dx, dw, db


# -------------------------------------------------------------------------------- NumPy
def _indices(c: int, g: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CS231n's get_im2col_indices, with dilation: channel, row and column of the padded input
    for every (row of cols, output position)."""
    i0 = np.tile(np.repeat(np.arange(g.fh) * g.dilation, g.fw), c)
    i1 = g.stride * np.repeat(np.arange(g.out_h), g.out_w)
    j0 = np.tile(np.arange(g.fw) * g.dilation, g.fh * c)
    j1 = g.stride * np.tile(np.arange(g.out_w), g.out_h)
    k = np.repeat(np.arange(c), g.fh * g.fw)[:, None]
    return k, i0[:, None] + i1[None, :], j0[:, None] + j1[None, :]


def im2col_vectorized(x: np.ndarray, g: Geometry) -> np.ndarray:
    k, i, j = _indices(x.shape[1], g)
    cols = _pad(x, g.pad)[:, k, i, j]                      # (N, rows, positions)
    return cols.transpose(1, 2, 0).reshape(g.rows, -1)


def col2im_vectorized(cols: np.ndarray, x_shape: tuple[int, ...], g: Geometry) -> np.ndarray:
    n, c, h, w = x_shape
    x_pad = np.zeros((n, c, h + 2 * g.pad, w + 2 * g.pad), dtype=cols.dtype)
    k, i, j = _indices(c, g)
    per_image = cols.reshape(g.rows, g.positions, n).transpose(2, 0, 1)
    np.add.at(x_pad, (slice(None), k, i, j), per_image)
    return x_pad[:, :, g.pad:g.pad + h, g.pad:g.pad + w].copy()


def conv_forward_vectorized(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                            g: Geometry) -> np.ndarray:
    n, f = x.shape[0], w.shape[0]
    cols = im2col_vectorized(x, g)
    res = w.reshape(f, -1) @ cols + b[:, None]
    return res.reshape(f, g.out_h, g.out_w, n).transpose(3, 0, 1, 2)


def conv_backward_vectorized(dout: np.ndarray, x: np.ndarray, w: np.ndarray, g: Geometry,
                             need_dx: bool) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    f = w.shape[0]
    cols = im2col_vectorized(x, g)
    dout_r = dout.transpose(1, 2, 3, 0).reshape(f, -1)
    dw = (dout_r @ cols.T).reshape(w.shape)
    db = dout.sum(axis=(0, 2, 3))
    dx = col2im_vectorized(w.reshape(f, -1).T @ dout_r, x.shape, g) if need_dx else None
    return dx, dw, db
