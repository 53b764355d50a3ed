"""``fastnn bench spatial_norm``: spatial batch norm and group norm (G=8), forward+backward on
(64, 32, 32, 32) float32 activations: the layer functions (compiled kernels when built), the
NumPy twins of the kernels, and with ``--compare`` PyTorch autograd through ``F.batch_norm`` /
``F.group_norm`` with ``torch.set_num_threads(fastnn.get_num_threads())``.

Each row times one forward and one backward pass, as a training step runs them.
"""

from __future__ import annotations

import numpy as np

from fastnn.bench import BenchRow, limit_peer_threads, register_suite, time_call
from fastnn.kernels import available_impls, get_impl
from fastnn.layers import (
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

SHAPE = (64, 32, 32, 32)
QUICK_SHAPE = (16, 16, 16, 16)
GROUPS = 8
EPS = 1e-5


def problem(shape: tuple[int, int, int, int], dtype=np.float32, seed: int = 0):
    """``x, gamma, beta, dout`` of a spatial-norm benchmark (gamma and beta of shape (C,))."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    gamma = rng.standard_normal(shape[1]).astype(dtype)
    beta = rng.standard_normal(shape[1]).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dout


def batchnorm_step(x, gamma, beta, dout):
    """One train-mode spatial batch-norm forward and backward through the layer functions."""
    _, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    return spatial_batchnorm_backward(dout, cache)


def groupnorm_step(x, gamma, beta, dout, groups: int = GROUPS):
    """One spatial group-norm forward and backward through the layer functions."""
    c = x.shape[1]
    _, cache = spatial_groupnorm_forward(x, gamma.reshape(1, c, 1, 1), beta.reshape(1, c, 1, 1),
                                         groups, {})
    return spatial_groupnorm_backward(dout, cache)


def kernel_step(op: str, impl: str, x, gamma, beta, dout, groups: int = GROUPS):
    """Forward+backward of one implementation of the batch-norm (``op="batchnorm"``) or
    group-norm (``op="groupnorm"``) kernels."""
    if op == "batchnorm":
        forward = get_impl("spatial_batchnorm_forward_train", impl)
        backward = get_impl("spatial_batchnorm_backward", impl)
        _, mean, _, inv_std = forward(x, gamma, beta, EPS)
    else:
        forward = get_impl("spatial_groupnorm_forward", impl)
        backward = get_impl("spatial_groupnorm_backward", impl)
        _, mean, _, inv_std = forward(x, gamma, beta, groups, EPS)
    return backward(dout, x, gamma, mean, inv_std)


def torch_step(op: str, x, gamma, beta, dout, groups: int = GROUPS):
    """A callable running PyTorch's forward+backward (autograd) of the same problem, or None
    when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    limit_peer_threads()
    xt = torch.from_numpy(x).requires_grad_(True)
    gt = torch.from_numpy(gamma).requires_grad_(True)
    bt = torch.from_numpy(beta).requires_grad_(True)
    dt = torch.from_numpy(dout)
    F = torch.nn.functional

    def step():
        if op == "batchnorm":
            out = F.batch_norm(xt, None, None, gt, bt, training=True, eps=EPS)
        else:
            out = F.group_norm(xt, groups, gt, bt, eps=EPS)
        return torch.autograd.grad(out, (xt, gt, bt), dt)

    return step


@register_suite("spatial_norm")
def suite(compare: bool = False, quick: bool = False) -> list[BenchRow]:
    """Spatial batch norm and group norm forward+backward, float32."""
    shape = QUICK_SHAPE if quick else SHAPE
    repeat = 3 if quick else 7
    x, gamma, beta, dout = problem(shape)
    label = "x".join(map(str, shape)) + " float32"
    rows = []
    for op, layer_step in (("batchnorm", batchnorm_step), ("groupnorm", groupnorm_step)):
        name = f"spatial {op} fwd+bwd" + (f" G={GROUPS}" if op == "groupnorm" else "")
        rows.append(BenchRow(name, label, "fastnn layer",
                             time_call(lambda s=layer_step: s(x, gamma, beta, dout),
                                       repeat=repeat)))
        for impl in available_impls(f"spatial_{op}_backward"):
            if impl == "naive":
                continue  # Python loops over 2M values: minutes per call
            rows.append(BenchRow(name, label, f"kernels, {impl}",
                                 time_call(lambda o=op, i=impl: kernel_step(
                                     o, i, x, gamma, beta, dout), repeat=repeat)))
        if compare:
            step = torch_step(op, x, gamma, beta, dout)
            if step is not None:
                rows.append(BenchRow(name, label, "torch autograd", time_call(step,
                                                                              repeat=repeat)))
    return rows
