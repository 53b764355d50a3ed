"""Convolution kernels behind ``fastnn.layers``: im2col/col2im and conv forward/backward.

Three implementations of each operation:

- ``"naive"``: plain loops over the definition (CS231n's ``conv_forward_naive`` numbers);
- ``"vectorized"``: CS231n's NumPy version: fancy-index ``im2col`` of the whole batch, one
  matrix product, ``np.add.at`` for ``col2im``;
- ``"compiled"``: ``fastnn._ext._conv`` (Cython + OpenMP) im2col/col2im of a *chunk* of images
  into a fixed workspace and one matrix product per chunk, so memory does not grow with the
  batch. The products go through :mod:`fastnn.kernels._gemm`: in float32 the compiled AVX-512
  kernel (one parallel region per product, output rows split between threads) wherever the
  product's width (images of the chunk times output positions, or F for the weight gradient,
  computed transposed) is a multiple of 32, ``np.matmul(..., out=)`` (BLAS) otherwise. A 1x1
  kernel with stride 1 and no padding is a product per image with no im2col at all. In float32
  with the AVX-512 product (:data:`PER_IMAGE`), each image instead runs whole on one thread
  (``_conv.conv_forward_images`` / ``conv_dw_images`` / ``conv_dx_images``: its im2col, its
  product, its col2im; forward and dx images go to the threads as they finish, dw's in a fixed
  share per thread so its sum repeats bit for bit): no product split by rows between threads
  (F = 32 rows made 16-row halves) and the columns stay in the thread's cache.

Direct: a float32 convolution with stride 1, dilation 1 and few input channels for its kernel
size (:data:`DIRECT_CHANNELS`: a first layer, 1x1 kernels) runs, where the CPU has
AVX-512F and :data:`DIRECT` is True (tests switch it off), on ``fastnn._ext._conv_direct``:
each image's channels copied once into a zero-padded buffer, every output (forward) or
filter-gradient term (dw, with db in the same pass over dout) summed straight from it, 16
output columns per vector; no im2col, whose columns are C*fh*fw times the image. The input
gradient of a square kernel is the same forward pass of dout with the filters flipped and
transposed (C filters of F channels). It takes precedence over Winograd and im2col where it
applies, per pass.

Winograd: a float32 3x3 convolution with stride 1, dilation 1 and pad <= 2 runs, where the
AVX-512 product is available and :data:`WINOGRAD` is True (tests switch it off), on
``fastnn._ext._winograd`` instead: Lavin & Gray's F(4x4, 3x3), 36 products of (K, C) by
(C, tiles) per chunk of images in place of the 9-times-longer im2col product, so 2.25 instead
of 9 multiply-adds per output and channel. The input gradient is the same forward pass of
``dout`` with the filters flipped and transposed (padding ``2 - pad``), the filter gradient
sums ``V @ Z`` per Winograd coefficient over the chunks. The filter gradient wins down to one
input channel, the forward pass from three (:data:`WINOGRAD_MIN_CHANNELS`). Its float32 error is ~20 times that of the direct sum (the
transforms scale values by up to 8 and 1/24), relative ~1e-5 on unit-scale data; float64 stays
on im2col.

Geometry (``x`` (N, C, H, W), ``w`` (F, C, HH, WW), ``b`` (F,)): the output is (N, F, H', W')
with ``H' = (H + 2*pad - dilation*(HH - 1) - 1) / stride + 1`` (likewise W'), which must be a
whole number >= 1. ``im2col`` returns CS231n's ``im2col_indices`` layout: (C*fh*fw, H'*W'*N),
row ``c*fh*fw + i*fw + j``, column ``(oh*W' + ow)*N + n``; ``col2im`` is its adjoint.

Signatures:

- ``im2col(x, field_height, field_width, padding, stride, dilation=1) -> cols``;
- ``col2im(cols, x_shape, field_height, field_width, padding, stride, dilation=1) -> x``;
- ``conv_forward(x, w, b, stride=1, pad=0, dilation=1) -> out``;
- ``conv_backward(dout, x, w, stride=1, pad=0, dilation=1, need_dx=True) -> dx | None, dw, db``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from fastnn.kernels import _conv_twins as twins
from fastnn.kernels import _gemm
from fastnn.kernels._conv_geometry import (
    Geometry,
    check_col2im,
    check_conv_backward,
    check_conv_forward,
    check_im2col,
)
from fastnn.kernels._operation import Operation, load_extension, threads_for

__all__ = ["DIRECT", "WINOGRAD", "WORKSPACE_BYTES", "col2im", "conv_backward", "conv_forward",
           "im2col"]

_ext = load_extension("_conv")
_wino = load_extension("_winograd")
_direct = load_extension("_conv_direct")

#: Run eligible float32 3x3 stride-1 convolutions on Winograd F(4x4, 3x3) (tests set False)
WINOGRAD = True
#: Fewest input channels for Winograd, per pass: "forward" (C; also the input gradient, a
#: forward pass of dout with K input channels) and "dw" (the filter gradient, C). Measured on 2
#: threads, Winograd vs the per-image im2col path: forward x (128, 1, 28, 28), w (32, 1, 3, 3)
#: 0.75 vs 0.37 ms, C = 2 (batch 64) 0.37 vs 0.28, C = 3 (64, 3, 32, 32) 0.52 vs 0.59, C = 4
#: 0.43 vs 0.46; dw wins from one channel: 1.28 vs 1.43 ms at C = 1, 0.95 vs 1.18 at C = 3
WINOGRAD_MIN_CHANNELS = {"forward": 3, "dw": 1}
#: Bytes of the Winograd transform buffers per chunk of images and thread (36 coefficients per
#: tile and channel, input and output channels together): 2-4 MB ran x (64, 64, 16, 16) 3x3
#: forward+backward in 5.0-5.3 ms on 2 threads, 0.5 MB in 8.9 ms, 8 MB in 5.9 ms
WINOGRAD_BYTES = 4 << 20

#: Bytes of the per-chunk im2col workspace of the compiled convolution (and as much again for
#: the column gradient). Columns written by im2col are read back by the product while still in
#: cache: single-thread CPU time of forward+backward (batch 64, float32) fell by a third for
#: the 7x7 first layer and a fifth for 3x3 64->64 going from 24 MB to 2-4 MB chunks, and the
#: products stay large enough (thousands of columns) for BLAS and its threads.
WORKSPACE_BYTES = 4 << 20

IM2COL = Operation("im2col", check_im2col)
COL2IM = Operation("col2im", check_col2im)
CONV_FORWARD = Operation("conv_forward", check_conv_forward)
CONV_BACKWARD = Operation("conv_backward", check_conv_backward)

for _op, _name in ((IM2COL, "im2col"), (COL2IM, "col2im"), (CONV_FORWARD, "conv_forward"),
                   (CONV_BACKWARD, "conv_backward")):
    _op.register("naive")(getattr(twins, f"{_name}_naive"))
    _op.register("vectorized")(getattr(twins, f"{_name}_vectorized"))


#: Elements an im2col/col2im thread must get: about 0.1 ms of copying, far more than waking a
#: thread costs. (With the default 1e6 a 4 MB chunk would run on one thread while the products
#: around it use every thread, and the copies would not scale.)
COPY_ELEMENTS_PER_THREAD = 1e5


def _copy_threads(elements: int) -> int:
    return threads_for(float(elements), COPY_ELEMENTS_PER_THREAD)


# ------------------------------------------------------------------------ compiled im2col
@IM2COL.register("compiled", available=_ext is not None)
def _im2col_compiled(x: np.ndarray, g: Geometry) -> np.ndarray:
    n = x.shape[0]
    cols = np.empty((g.rows, g.positions * n), dtype=x.dtype)
    _ext.im2col(x, cols, 0, n, g.fh, g.fw, g.pad, g.stride, g.dilation, g.out_h, g.out_w, 1, n,
                _copy_threads(cols.size))
    return cols


@COL2IM.register("compiled", available=_ext is not None)
def _col2im_compiled(cols: np.ndarray, x_shape: tuple[int, ...], g: Geometry) -> np.ndarray:
    n = x_shape[0]
    x = np.empty(x_shape, dtype=cols.dtype)
    _ext.col2im(cols, x, 0, n, g.fh, g.fw, g.pad, g.stride, g.dilation, g.out_h, g.out_w, 1, n,
                _copy_threads(cols.size))
    return x


# ------------------------------------------------------------------- compiled convolution
def _is_gemm(g: Geometry) -> bool:
    """A 1x1 kernel with stride 1 and no padding: out[n] = W @ x[n], no im2col needed."""
    return g.fh == 1 and g.fw == 1 and g.stride == 1 and g.pad == 0


def _chunk(n: int, g: Geometry, itemsize: int) -> int:
    """Images per chunk: as many as fit in :data:`WORKSPACE_BYTES` (at least one), rounded
    down, where that leaves at least one step, to a count whose columns (images times output
    positions) are a whole number of the compiled product's 32-column tiles: all chunks but
    perhaps the last then run on it even when H'*W' is odd."""
    fit = max(1, min(n, WORKSPACE_BYTES // (g.rows * g.positions * itemsize)))
    step = _gemm.COLUMNS // math.gcd(g.positions, _gemm.COLUMNS)
    return fit if fit >= n or fit < step else fit // step * step


def _im2col_chunk(x: np.ndarray, buf: np.ndarray, n0: int, n1: int, g: Geometry) -> np.ndarray:
    """Images n0 .. n1-1 as a C-contiguous (C*HH*WW, (n1-n0)*H'*W') view of ``buf``, columns
    image-major (each image's H'*W' positions contiguous). For a 1x1 kernel with stride 1 and
    no padding that is the chunk with its first two axes swapped."""
    m = (n1 - n0) * g.positions
    cols = buf[: g.rows * m].reshape(g.rows, m)
    if _is_gemm(g):
        np.copyto(cols.reshape(g.rows, n1 - n0, g.positions),
                  x[n0:n1].reshape(n1 - n0, g.rows, g.positions).transpose(1, 0, 2))
    else:
        _ext.im2col(x, cols, n0, n1, g.fh, g.fw, g.pad, g.stride, g.dilation, g.out_h,
                    g.out_w, g.positions, 1, _copy_threads(cols.size))
    return cols


# ---------------------------------------------------------------------------- Winograd
def _winograd(x: np.ndarray, g: Geometry, channels: int, kind: str) -> bool:
    """Whether a ``kind`` pass ("forward" or "dw", see :data:`WINOGRAD_MIN_CHANNELS`) whose
    input has ``channels`` channels runs on Winograd F(4x4, 3x3)."""
    return (WINOGRAD and _wino is not None and _wino.AVAILABLE and _gemm.AVAILABLE
            and x.dtype == np.float32 and g.fh == 3 and g.fw == 3 and g.stride == 1
            and g.dilation == 1 and g.pad <= _wino.MAX_PAD
            and channels >= WINOGRAD_MIN_CHANNELS[kind])


def _winograd_chunk(n: int, threads: int, out_h: int, out_w: int, c_in: int, c_out: int) -> int:
    """Images per chunk: at most as many as have their transformed input and output (36 floats
    per tile and channel) in :data:`WINOGRAD_BYTES` (at least one), and the chunks (each whole
    on one thread) a multiple of ``threads`` in number and as equal as can be."""
    tiles = -(-out_h // 4) * -(-out_w // 4)
    fit = max(1, WINOGRAD_BYTES // (36 * 4 * tiles * (c_in + c_out)))
    chunks = -(-n // fit)
    chunks = -(-chunks // threads) * threads
    return max(1, -(-n // chunks))


def _winograd_threads(n: int, c_in: int, c_out: int, g: Geometry) -> int:
    return threads_for(2.0 * n * c_in * c_out * 9 * g.positions)


def _winograd_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int,
                      g: Geometry) -> np.ndarray:
    n, c, f = x.shape[0], x.shape[1], w.shape[0]
    out_h, out_w = x.shape[2] + 2 * pad - 2, x.shape[3] + 2 * pad - 2
    out = np.empty((n, f, out_h, out_w), dtype=np.float32)
    threads = _winograd_threads(n, c, f, g)
    _wino.forward(x, w, b, out, pad, _winograd_chunk(n, threads, out_h, out_w, c, f), threads)
    return out


# ---------------------------------------------------------------- direct (few channels)
#: Run eligible float32 stride-1 convolutions with few input channels on the direct kernel
#: (``fastnn._ext._conv_direct``: no im2col, vectors along the output width; tests set False)
DIRECT = True
#: Where the direct kernel runs, per pass: (least area, most area, least C, most C) entries, a
#: pass running direct when its kernel area fh*fw and input channels C fall in one of them
#: ("dx": the input gradient, a direct forward pass of dout with the flipped, transposed
#: filters; square kernels with pad <= k - 1 and at most :data:`DIRECT_DX_MAX_FILTERS`
#: filters only). Measured in one process, interleaved, each pass forced direct vs
#: conv.DIRECT off (Winograd or per-image im2col; 1x1: a product per image; dx: the full
#: backward minus the dw-only one), 1 thread, median CPU ms of 30, batch 64 (128 where shown),
#: 32 filters, float32, load average 3.4 (another job on both cores). Direct vs today:
#: 3x3 C=1 (128, 28x28) fwd 0.79 vs 1.10, dw 0.77 vs 2.42, dx 1.49 vs 2.16; C=2 0.54 vs
#: 0.73, 0.57 vs 1.13, 0.62 vs 1.25; C=3 (32x32) 0.79 vs 1.69, 0.92 vs 1.75, 0.81 vs 1.58;
#: C=4 0.77 vs 1.37, 0.92 vs 1.22, 0.76 vs 1.14; C=8 (16x16) 0.38 vs 0.40, 0.58 vs 0.50,
#: 0.38 vs 0.53; C=16 (14x14) 0.67 vs 0.63, 1.03 vs 0.68, 0.66 vs 0.66. 5x5 C=1 0.57 vs
#: 0.88, 0.71 vs 1.61, 1.18 vs 0.70; C=2 0.98 vs 1.44, 1.31 vs 2.20, 1.31 vs 1.21; C=3 1.65
#: vs 2.63, 2.37 vs 4.17, 1.98 vs 3.32; C=4 2.05 vs 3.49, 2.95 vs 4.45, 2.15 vs 4.07. 7x7
#: C=1 0.96 vs 1.41, 1.33 vs 2.29, 2.22 vs 1.16; C=3 2.81 vs 4.46, 3.73 vs 5.89, 3.24 vs
#: 4.89; C=4 3.75 vs 6.32, 5.33 vs 7.40, 3.83 vs 7.92. 1x1 fwd, dw: C=3 0.43 vs 1.32, 0.39 vs
#: 2.52; C=4 0.38 vs 0.64, 0.31 vs 1.32; C=16 (16x16) 0.20 vs 0.29, 0.21 vs 0.36; C=32 (64
#: filters) 0.56 vs 0.69, 0.70 vs 1.45; C=64 0.57 vs 0.65, 0.74 vs 0.82 (1x1 dx, an earlier
#: run: C=1 0.26 vs 0.14, C=3 0.60 vs 0.49). Areas between the measured ones (1, 9, 25, 49)
#: take the neighbouring entry; more channels and larger kernels were not measured.
DIRECT_CHANNELS = {
    "forward": ((1, 1, 1, 64), (2, 9, 1, 8), (10, 49, 1, 4)),
    "dw": ((1, 1, 1, 64), (2, 49, 1, 4)),
    "dx": ((2, 9, 1, 8), (10, 49, 3, 4)),
}
#: Most filters for the direct input gradient (its input has F channels, each a padded plane
#: in the thread's buffer; measured up to 64)
DIRECT_DX_MAX_FILTERS = 64


def _direct_pass(x: np.ndarray, g: Geometry, kind: str, filters: int = 0) -> bool:
    """Whether a ``kind`` pass ("forward", "dw" or "dx"; ``filters``: F, for "dx") runs on the
    direct kernel: float32, stride 1, dilation 1, an entry of :data:`DIRECT_CHANNELS`."""
    if not (DIRECT and _direct is not None and _direct.AVAILABLE and x.dtype == np.float32
            and g.stride == 1 and g.dilation == 1):
        return False
    if kind == "dx" and (g.fh != g.fw or g.pad > g.fh - 1 or filters > DIRECT_DX_MAX_FILTERS):
        return False
    area, c = g.fh * g.fw, x.shape[1]
    return any(lo_area <= area <= hi_area and lo_c <= c <= hi_c
               for lo_area, hi_area, lo_c, hi_c in DIRECT_CHANNELS[kind])


def _direct_dx(dout: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...],
               g: Geometry) -> np.ndarray:
    """The input gradient of a stride-1 convolution with a square kernel: the direct forward
    pass of dout with the filters flipped and transposed, padding fh - 1 - pad."""
    n, f = dout.shape[0], dout.shape[1]
    w_t = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    dx = np.empty(x_shape, dtype=np.float32)
    _direct.forward(dout, w_t, np.zeros(x_shape[1], np.float32), dx, g.fh - 1 - g.pad,
                    _direct_threads(n, f, g))
    return dx


def _direct_threads(n: int, f: int, g: Geometry) -> int:
    return threads_for(2.0 * n * f * g.rows * g.positions)


# ------------------------------------------------- float32: one image per thread (im2col)
#: Most bytes of one image's columns (C*HH*WW by H'*W') for the per-image float32 path
IMAGE_BYTES = 8 << 20
#: Use the per-image float32 path where it applies (tests set False to reach the chunks)
PER_IMAGE = True


def _per_image(x: np.ndarray, g: Geometry) -> bool:
    """float32 on the AVX-512 product, not a 1x1 product, one image's columns within
    :data:`IMAGE_BYTES`: each image whole on one thread (im2col, product, bias) instead of
    chunks whose product is split by rows between the threads (F = 32 rows made two 16-row
    halves, a third of them on an inefficient 4-row tile)."""
    return (PER_IMAGE and _gemm.AVAILABLE and getattr(_ext, "SGEMM_AVAILABLE", False)
            and x.dtype == np.float32 and not _is_gemm(g)
            and g.rows * -(-g.positions // 32) * 32 * 4 <= IMAGE_BYTES)


def _image_threads(n: int, f: int, g: Geometry) -> int:
    return threads_for(2.0 * n * f * g.rows * g.positions)


@CONV_FORWARD.register("compiled", available=_ext is not None)
def _conv_forward_compiled(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                           g: Geometry) -> np.ndarray:
    n, f, p = x.shape[0], w.shape[0], g.positions
    if _direct_pass(x, g, "forward"):
        out = np.empty((n, f, g.out_h, g.out_w), dtype=np.float32)
        _direct.forward(x, w, b, out, g.pad, _direct_threads(n, f, g))
        return out
    if _winograd(x, g, x.shape[1], "forward"):
        return _winograd_forward(x, w, b, g.pad, g)
    if _per_image(x, g):
        out = np.empty((n, f, g.out_h, g.out_w), dtype=x.dtype)
        _ext.conv_forward_images(x, w.reshape(f, g.rows), b, out, g.fh, g.fw, g.pad, g.stride,
                                 g.dilation, _image_threads(n, f, g))
        return out
    out = np.empty((n, f, g.out_h, g.out_w), dtype=x.dtype)
    out3 = out.reshape(n, f, p)
    w2 = w.reshape(f, g.rows)
    if _is_gemm(g):
        x3 = x.reshape(n, g.rows, p)
        if _gemm.fits(w2, x3[0], out3[0]):
            _gemm.products([(w2, x3[i], out3[i]) for i in range(n)])
        else:
            np.matmul(w2, x3, out=out3)
        out3 += b[:, None]
        return out
    chunk = _chunk(n, g, x.itemsize)
    cols_buf = np.empty(g.rows * p * chunk, dtype=x.dtype)
    res_buf = np.empty(f * p * chunk, dtype=x.dtype)
    for n0 in range(0, n, chunk):
        n1 = min(n, n0 + chunk)
        cols = _im2col_chunk(x, cols_buf, n0, n1, g)
        res = res_buf[: f * cols.shape[1]].reshape(f, cols.shape[1])
        _gemm.product(w2, cols, res)
        # (F, B, P) -> (B, F, P) plus the bias, in one pass
        np.add(res.reshape(f, n1 - n0, p).transpose(1, 0, 2), b[:, None], out=out3[n0:n1])
    return out


def _gemm_dx(dout3: np.ndarray, w2: np.ndarray, dx3: np.ndarray) -> None:
    """A 1x1 kernel's input gradient: dx[n] = W.T @ dout[n] per image."""
    if _gemm.fits(w2.T, dout3[0], dx3[0]):
        _gemm.products([(w2.T, dout3[i], dx3[i]) for i in range(dout3.shape[0])])
    else:
        np.matmul(w2.T, dout3, out=dx3)


@CONV_BACKWARD.register("compiled", available=_ext is not None)
def _conv_backward_compiled(dout: np.ndarray, x: np.ndarray, w: np.ndarray, g: Geometry,
                            need_dx: bool) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    n, f, p = x.shape[0], w.shape[0], g.positions
    if need_dx and _direct_pass(x, g, "dx", f):
        _, dw, db = _conv_backward_compiled(dout, x, w, g, False)
        return _direct_dx(dout, w, x.shape, g), dw, db
    if _direct_pass(x, g, "dw") and (not need_dx or _per_image(x, g) or _is_gemm(g)):
        # dw and db in one pass over dout, no im2col; dx (not needed by a first layer) as below
        dw, db = np.empty_like(w), np.empty(f, dtype=np.float32)
        _direct.backward_weights(dout, x, dw, db, g.pad, _direct_threads(n, f, g))
        dx = None
        if need_dx and _is_gemm(g):
            dx = np.empty_like(x)
            _gemm_dx(dout.reshape(n, f, p), w.reshape(f, g.rows), dx.reshape(n, g.rows, p))
        elif need_dx and _winograd(x, g, f, "forward"):
            w_t = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
            dx = _winograd_forward(dout, w_t, np.zeros(x.shape[1], np.float32), 2 - g.pad, g)
        elif need_dx:
            dx = np.empty_like(x)
            _ext.conv_dx_images(dout, w.reshape(f, g.rows), dx, g.fh, g.fw, g.pad, g.stride,
                                g.dilation, _image_threads(n, f, g))
        return dx, dw, db
    dout3 = dout.reshape(n, f, p)
    db = dout3.sum(axis=(0, 2))
    if _winograd(x, g, x.shape[1], "dw") and (not need_dx or _winograd(x, g, f, "forward")):
        c, dw = x.shape[1], np.empty_like(w)
        threads = _winograd_threads(n, c, f, g)
        _wino.backward_weights(dout, x, dw, g.pad,
                               _winograd_chunk(n, threads, g.out_h, g.out_w, c, f), threads)
        dx = None
        if need_dx:
            # the input gradient: correlation of dout with the flipped, transposed filters
            w_t = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
            dx = _winograd_forward(dout, w_t, np.zeros(c, np.float32), 2 - g.pad, g)
        return dx, dw, db
    w2 = w.reshape(f, g.rows)
    if _per_image(x, g):
        threads = _image_threads(n, f, g)
        dw_t = np.empty((g.rows, f), dtype=x.dtype)
        _ext.conv_dw_images(dout, x, dw_t, g.fh, g.fw, g.pad, g.stride, g.dilation, threads)
        dw = np.ascontiguousarray(dw_t.T).reshape(w.shape)
        dx = None
        if need_dx:
            dx = np.empty_like(x)
            _ext.conv_dx_images(dout, w2, dx, g.fh, g.fw, g.pad, g.stride, g.dilation, threads)
        return dx, dw, db
    dx = np.empty_like(x) if need_dx else None
    # dx by column gradients and col2im per chunk; a 1x1 kernel's dx[n] is W.T @ dout[n]
    scatter_dx = need_dx and not _is_gemm(g)
    if need_dx and not scatter_dx:
        _gemm_dx(dout3, w2, dx.reshape(n, g.rows, p))
    chunk = _chunk(n, g, x.itemsize)
    cols_buf = np.empty(g.rows * p * chunk, dtype=x.dtype)
    dt_buf = np.empty(f * p * chunk, dtype=x.dtype)
    dcols_buf = np.empty(g.rows * p * chunk, dtype=x.dtype) if scatter_dx else None
    # dw on the compiled product is dw.T += cols @ dout_chunk.T, accumulated in place: its
    # right operand (B*P, F) is then contiguous, F wide (dw = dt @ cols.T would need cols
    # transposed); elsewhere dw += dt @ cols.T on BLAS
    dw_t = _gemm.fits(w2.T, np.empty((1, f), x.dtype))
    dw_acc = np.zeros((g.rows, f) if dw_t else (f, g.rows), dtype=x.dtype)
    part = None if dw_t else np.empty_like(dw_acc)
    dtt_buf = np.empty(f * p * chunk, dtype=x.dtype) if dw_t else None
    for n0 in range(0, n, chunk):
        n1 = min(n, n0 + chunk)
        cols = _im2col_chunk(x, cols_buf, n0, n1, g)
        m = cols.shape[1]
        if scatter_dx or not dw_t:
            # dout of the chunk as (F, B*P), matching the column order of cols
            dt = dt_buf[: f * m].reshape(f, m)
            np.copyto(dt.reshape(f, n1 - n0, p), dout3[n0:n1].transpose(1, 0, 2))
        if dw_t:
            dtt = dtt_buf[: m * f].reshape(m, f)
            np.copyto(dtt.reshape(n1 - n0, p, f), dout3[n0:n1].transpose(0, 2, 1))
            _gemm.product(cols, dtt, dw_acc, accumulate=True)
        else:
            np.matmul(dt, cols.T, out=part)
            dw_acc += part
        if scatter_dx:
            dcols = dcols_buf[: g.rows * m].reshape(g.rows, m)
            _gemm.product(w2.T, dt, dcols)
            _ext.col2im(dcols, dx, n0, n1, g.fh, g.fw, g.pad, g.stride, g.dilation, g.out_h,
                        g.out_w, p, 1, _copy_threads(dcols.size))
    dw2 = dw_acc.T if dw_t else dw_acc
    return dx, np.ascontiguousarray(dw2).reshape(w.shape), db


# ------------------------------------------------------------------------ public entries
def im2col(x: ArrayLike, field_height: int, field_width: int, padding: int, stride: int,
           dilation: int = 1, impl: str | None = None) -> np.ndarray:
    """Receptive fields of a batch as columns (CS231n's ``im2col_indices`` layout).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        Images.
    field_height, field_width : int
        Kernel size (>= 1).
    padding : int
        Zero padding on every side (>= 0).
    stride, dilation : int
        Step between windows and between kernel taps (>= 1).
    impl : {"naive", "vectorized", "compiled"}, optional
        Implementation (None: the best available).

    Returns
    -------
    ndarray, shape (C*field_height*field_width, H'*W'*N)
        Row ``c*fh*fw + i*fw + j``, column ``(oh*W' + ow)*N + n``.
    """
    return IM2COL(x, field_height, field_width, padding, stride, dilation, impl=impl)


def col2im(cols: ArrayLike, x_shape: tuple[int, int, int, int], field_height: int,
           field_width: int, padding: int, stride: int, dilation: int = 1,
           impl: str | None = None) -> np.ndarray:
    """Adjoint of :func:`im2col`: column entries summed back into an (N, C, H, W) array.

    Parameters
    ----------
    cols : array_like, shape (C*field_height*field_width, H'*W'*N)
        Columns in :func:`im2col`'s layout.
    x_shape : tuple of 4 ints
        Shape (N, C, H, W) of the image batch.
    field_height, field_width, padding, stride, dilation, impl
        As for :func:`im2col`.

    Returns
    -------
    ndarray, shape ``x_shape``
        Overlapping contributions added up; padding contributions dropped.
    """
    return COL2IM(cols, x_shape, field_height, field_width, padding, stride, dilation,
                  impl=impl)


def conv_forward(x: ArrayLike, w: ArrayLike, b: ArrayLike, stride: int = 1, pad: int = 0,
                 dilation: int = 1, impl: str | None = None) -> np.ndarray:
    """Convolution (cross-correlation) forward pass.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        Input.
    w : array_like, shape (F, C, HH, WW)
        Filters.
    b : array_like, shape (F,)
        Biases.
    stride, dilation : int
        >= 1.
    pad : int
        Zero padding on every side, >= 0.
    impl : {"naive", "vectorized", "compiled"}, optional
        Implementation (None: the best available).

    Returns
    -------
    ndarray, shape (N, F, H', W')
        ``out[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j] *
        x_pad[n, c, oh*stride + i*dilation, ow*stride + j*dilation]``.
    """
    return CONV_FORWARD(x, w, b, stride, pad, dilation, impl=impl)


def conv_backward(dout: ArrayLike, x: ArrayLike, w: ArrayLike, stride: int = 1, pad: int = 0,
                  dilation: int = 1, need_dx: bool = True, impl: str | None = None,
                  ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_forward`.

    Parameters
    ----------
    dout : array_like, shape (N, F, H', W')
        Upstream gradient.
    x, w, stride, pad, dilation
        The forward call's arguments.
    need_dx : bool
        False skips the input gradient (a first layer never needs it) and returns None for it.
    impl : {"naive", "vectorized", "compiled"}, optional
        Implementation (None: the best available).

    Returns
    -------
    dx : ndarray of shape (N, C, H, W), or None
    dw : ndarray of shape (F, C, HH, WW)
    db : ndarray of shape (F,)
    """
    return CONV_BACKWARD(dout, x, w, stride, pad, dilation, need_dx, impl=impl)
