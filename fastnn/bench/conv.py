"""``fastnn bench conv``: convolution forward+backward (including dx), float32.

Three shapes of issue 8: x (64, 3, 32, 32) with w (32, 3, 7, 7), pad 3 (a first layer: few
input channels, a big kernel), x (64, 64, 16, 16) with w (64, 64, 3, 3), pad 1 (a middle layer)
and x (64, 32, 14, 14) with w (64, 32, 3, 3), pad 1 (the Fashion-MNIST ConvNet's second
layer), all stride 1. Rows: the compiled kernels (``impl=None``: the direct kernel for the 7x7
first layer, Winograd F(4x4, 3x3) for the 3x3 ones), where the direct kernel runs the same with
``conv.DIRECT`` off, for the 3x3 shapes with ``conv.WINOGRAD`` off (the im2col path), the NumPy
twin (CS231n's fancy-index im2col + one product + ``np.add.at`` col2im), with ``--compare``
PyTorch (autograd through ``F.conv2d``), and "numpy float32 GEMM": the three matrix products
a convolution of that shape is made of (forward, dw, dx: the same FLOPs), measured in the same
run, as the BLAS ceiling. Every row shows GFLOP/s of the convolution's
``6 * N * F * H' * W' * C * HH * WW`` flops (direct-convolution flops, also for Winograd).
"""

from __future__ import annotations

import numpy as np

from fastnn.bench import BenchRow, limit_peer_threads, register_suite, time_call
from fastnn.kernels import conv

#: (x shape, w shape, pad) of the benchmarked convolutions (stride 1)
SHAPES = (((64, 3, 32, 32), (32, 3, 7, 7), 3), ((64, 64, 16, 16), (64, 64, 3, 3), 1),
          ((64, 32, 14, 14), (64, 32, 3, 3), 1))


def conv_problem(x_shape: tuple[int, ...], w_shape: tuple[int, ...], pad: int,
                 dtype: type = np.float32) -> tuple[np.ndarray, ...]:
    """Seeded x, w, b and an upstream gradient dout of the output's shape."""
    rng = np.random.default_rng(0)
    # drawn in the target dtype: no float64 temporaries (conv_memory.py measures peak memory)
    x = rng.standard_normal(x_shape, dtype=dtype)
    w = rng.standard_normal(w_shape, dtype=dtype) * dtype(0.1)
    b = rng.standard_normal(w_shape[0], dtype=dtype)
    out_h = x_shape[2] + 2 * pad - w_shape[2] + 1
    out_w = x_shape[3] + 2 * pad - w_shape[3] + 1
    dout = rng.standard_normal((x_shape[0], w_shape[0], out_h, out_w), dtype=dtype)
    return x, w, b, dout


def conv_flops(x_shape: tuple[int, ...], w_shape: tuple[int, ...], pad: int) -> float:
    """Flops of forward + dw + dx: three products of 2 * N * F * H' * W' * C * HH * WW."""
    n, c, h, w = x_shape
    f, _, hh, ww = w_shape
    return 6.0 * n * f * (h + 2 * pad - hh + 1) * (w + 2 * pad - ww + 1) * c * hh * ww


def fastnn_step(impl: str | None, x, w, b, dout, pad: int):
    """forward + backward (with dx) through ``fastnn.kernels.conv`` with ``impl``."""

    def step():
        conv.conv_forward(x, w, b, 1, pad, impl=impl)
        return conv.conv_backward(dout, x, w, 1, pad, impl=impl)

    return step


def switched_off_step(switch: str, x, w, b, dout, pad: int):
    """:func:`fastnn_step` of the compiled kernels with ``conv.<switch>`` (``"WINOGRAD"`` or
    ``"DIRECT"``) set to False."""
    inner = fastnn_step(None, x, w, b, dout, pad)

    def step():
        saved = getattr(conv, switch)
        setattr(conv, switch, False)
        try:
            return inner()
        finally:
            setattr(conv, switch, saved)

    return step


def im2col_step(x, w, b, dout, pad: int):
    """:func:`fastnn_step` of the compiled kernels with Winograd switched off."""
    return switched_off_step("WINOGRAD", x, w, b, dout, pad)


def uses_direct(x, w, pad: int) -> bool:
    """Whether some pass of this convolution runs on the direct kernel (conv.DIRECT_CHANNELS)."""
    g = conv.CONV_FORWARD.check("compiled", x, w, np.zeros(w.shape[0], x.dtype), 1, pad)[-1]
    return any(conv._direct_pass(x, g, kind, w.shape[0]) for kind in ("forward", "dw", "dx"))


def gemm_step(x, w, dout):
    """The three float32 products of the same shapes: (F, K) @ (K, M), (F, M) @ (M, K) and
    (K, F) @ (F, M) with K = C*HH*WW and M = N*H'*W'."""
    f, k, m = w.shape[0], w[0].size, dout.size // w.shape[0]
    rng = np.random.default_rng(1)
    a = rng.standard_normal((f, k)).astype(x.dtype)
    cols = rng.standard_normal((k, m)).astype(x.dtype)
    g = rng.standard_normal((f, m)).astype(x.dtype)
    out, dw, dcols = np.empty((f, m), x.dtype), np.empty((f, k), x.dtype), np.empty((k, m), x.dtype)

    def step():
        np.matmul(a, cols, out=out)
        np.matmul(g, cols.T, out=dw)
        np.matmul(a.T, g, out=dcols)

    return step


def torch_step(x, w, b, dout, pad: int):
    """PyTorch autograd forward + backward through ``F.conv2d`` (None without torch)."""
    try:
        import torch
    except ImportError:
        return None
    xt = torch.from_numpy(x).requires_grad_(True)
    wt = torch.from_numpy(w).requires_grad_(True)
    bt = torch.from_numpy(b).requires_grad_(True)
    dt = torch.from_numpy(dout)

    def step():
        out = torch.nn.functional.conv2d(xt, wt, bt, stride=1, padding=pad)
        return torch.autograd.grad(out, (xt, wt, bt), dt)

    return step


@register_suite("conv")
def suite(compare: bool = False, quick: bool = False) -> list[BenchRow]:
    """Convolution forward+backward incl. dx: compiled, NumPy twin, GEMM ceiling (+ torch)."""
    limit_peer_threads()
    repeat = 3 if quick else 7
    rows = []
    for x_shape, w_shape, pad in SHAPES:
        if quick:
            x_shape = (8, *x_shape[1:])
        x, w, b, dout = conv_problem(x_shape, w_shape, pad)
        flops = conv_flops(x_shape, w_shape, pad)
        label = f"x{x_shape} w{w_shape} pad {pad} float32"
        calls = [("compiled (impl=None)", fastnn_step(None, x, w, b, dout, pad))]
        if uses_direct(x, w, pad):
            calls.append(("compiled without direct (DIRECT off)",
                          switched_off_step("DIRECT", x, w, b, dout, pad)))
        if w_shape[2:] == (3, 3):
            calls.append(("compiled im2col (WINOGRAD off)", im2col_step(x, w, b, dout, pad)))
        calls.append(("vectorized (numpy twin)", fastnn_step("vectorized", x, w, b, dout, pad)))
        if compare:
            step = torch_step(x, w, b, dout, pad)
            if step is not None:
                calls.append(("torch autograd F.conv2d", step))
        calls.append(("numpy float32 GEMM (same flops)", gemm_step(x, w, dout)))
        for name, call in calls:
            rows.append(BenchRow("conv forward+backward", label, name,
                                 time_call(call, repeat=repeat), flops))
    return rows
