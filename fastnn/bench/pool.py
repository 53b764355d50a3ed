"""``fastnn bench pool``: max pooling (2x2 stride 2 and 3x3 stride 2) and average pooling (2x2
stride 2), forward+backward on (64, 32, 32, 32) float32 activations: the compiled kernels, their
NumPy twins (the reshape trick, strided windows for overlapping ones) and, with ``--compare``,
PyTorch autograd through ``F.max_pool2d`` / ``F.avg_pool2d`` with
``torch.set_num_threads(fastnn.get_num_threads())``.

3x3 stride-2 windows do not tile 32 pixels ((32 - 3) / 2 + 1 is not whole, and CS231n's rule
refuses it), so that case runs on 33 x 33 maps. Each row times one forward and one backward pass,
as a training step runs them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fastnn.bench import BenchRow, limit_peer_threads, register_suite, time_call
from fastnn.kernels import available_impls, get_impl

SHAPE = (64, 32, 32, 32)
QUICK_SHAPE = (16, 16, 16, 16)
#: (name, kind, pool_height, pool_width, stride, extra pixels so that the windows fit)
CASES = (
    ("max pool 2x2 s2", "max", 2, 2, 2, 0),
    ("max pool 3x3 s2", "max", 3, 3, 2, 1),
    ("avg pool 2x2 s2", "avg", 2, 2, 2, 0),
)


def problem(shape: tuple[int, int, int, int], extra: int = 0, dtype=np.float32, seed: int = 0):
    """``x`` of ``shape`` grown by ``extra`` pixels in H and W."""
    n, c, h, w = shape
    return np.random.default_rng(seed).standard_normal((n, c, h + extra, w + extra)).astype(dtype)


def kernel_step(kind: str, impl: str, x: np.ndarray, ph: int, pw: int, stride: int):
    """Forward+backward of one implementation of the max (``kind="max"``) or average pooling
    kernels; the upstream gradient is the forward output itself (any array of its shape)."""
    if kind == "max":
        out, argmax = get_impl("max_pool_forward", impl)(x, ph, pw, stride)
        return get_impl("max_pool_backward", impl)(out, argmax, x.shape)
    out = get_impl("avg_pool_forward", impl)(x, ph, pw, stride)
    return get_impl("avg_pool_backward", impl)(out, x.shape, ph, pw, stride)


def torch_step(kind: str, x: np.ndarray, ph: int, pw: int,
               stride: int) -> Callable[[], object] | None:
    """A callable running PyTorch's forward+backward (autograd) of the same problem, or None
    when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    limit_peer_threads()
    xt = torch.from_numpy(x).requires_grad_(True)
    pool = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d

    def step():
        out = pool(xt, (ph, pw), stride)
        return torch.autograd.grad(out, xt, out.detach())

    return step


@register_suite("pool")
def suite(compare: bool = False, quick: bool = False) -> list[BenchRow]:
    """Max and average pooling forward+backward, float32."""
    shape = QUICK_SHAPE if quick else SHAPE
    repeat = 3 if quick else 9
    rows = []
    for name, kind, ph, pw, stride, extra in CASES:
        x = problem(shape, extra)
        label = "x".join(map(str, x.shape)) + " float32"
        for impl in available_impls(f"{kind}_pool_forward"):
            if impl == "naive":
                continue  # Python loops over 2M values: minutes per call
            rows.append(BenchRow(f"{name} fwd+bwd", label, impl,
                                 time_call(lambda k=kind, i=impl, a=x, win=(ph, pw, stride):
                                           kernel_step(k, i, a, *win), repeat=repeat)))
        if compare:
            step = torch_step(kind, x, ph, pw, stride)
            if step is not None:
                rows.append(BenchRow(f"{name} fwd+bwd", label, "torch autograd",
                                     time_call(step, repeat=repeat)))
    return rows
