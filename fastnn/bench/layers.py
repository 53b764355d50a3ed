"""``fastnn bench layers``: batch-norm backward (graph vs closed form), the fused normalisation
kernels and the ReLU kernels against their NumPy twins, and where the time of a training step of the 784-256-128-10
ReLU net goes (batch 128, float32).

The step split times each layer function on the activations of one real forward pass, so the
rows add up to (about) one ``FullyConnectedNet.loss`` call, which is timed as well.
``--compare`` adds PyTorch: autograd through ``F.batch_norm`` and the same MLP's forward+backward.
"""

from __future__ import annotations

import numpy as np

from fastnn.bench import BenchRow, register_suite, time_call
from fastnn.classifiers.fc_net import FullyConnectedNet
from fastnn.kernels import available_impls, get_impl, get_operation
from fastnn.layers import (
    affine_backward,
    affine_backward_params,
    affine_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
)

MLP_DIMS = (784, 256, 128, 10)
MLP_BATCH = 128


# ------------------------------------------------------------------- normalisation layers
def _batchnorm_rows(compare: bool, quick: bool) -> list[BenchRow]:
    """Graph vs closed-form batch-norm backward (the closed form in NumPy and compiled), and the
    fused normalisation kernels against their NumPy twins."""
    shapes = [(128, 256)] if quick else [(128, 256), (256, 1024), (1024, 4096)]
    repeat = 3 if quick else 5
    rows = []
    for dtype in (np.float32, np.float64):
        for n, d in shapes:
            rng = np.random.default_rng(0)
            x = (rng.standard_normal((n, d)) * 3 + 1).astype(dtype)
            gamma = rng.standard_normal(d).astype(dtype)
            beta = rng.standard_normal(d).astype(dtype)
            dout = rng.standard_normal((n, d)).astype(dtype)
            shape = f"{n}x{d} {np.dtype(dtype).name}"
            rows.extend(_backward_rows(x, gamma, beta, dout, shape, repeat))
            if compare:
                rows.extend(_torch_batchnorm_rows(x, gamma, beta, dout, shape, repeat))
            if dtype == np.float32:
                small = n * d <= 1 << 15
                rows.extend(_kernel_rows(x, gamma, beta, dout, shape, repeat, naive=small))
    return rows


def _backward_rows(x, gamma, beta, dout, shape, repeat) -> list[BenchRow]:
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    x_hat, _, inv_std, _ = cache
    closed_numpy = get_impl("batchnorm_backward_closed_form", "vectorized")
    default = get_operation("batchnorm_backward_closed_form").default
    calls = (
        ("graph: batchnorm_backward", lambda: batchnorm_backward(dout, cache)),
        ("closed form, numpy", lambda: closed_numpy(dout, x_hat, gamma, inv_std)),
        (f"closed form: batchnorm_backward_alt ({default})",
         lambda: batchnorm_backward_alt(dout, cache)),
    )
    return [BenchRow("batchnorm backward", shape, label, time_call(call, repeat=repeat))
            for label, call in calls]


def _kernel_rows(x, gamma, beta, dout, shape, repeat, naive) -> list[BenchRow]:
    bn_forward = get_impl("batchnorm_forward_train", "vectorized")
    _, x_hat, _, _, inv_std = bn_forward(x, gamma, beta, 1e-5)
    _, ln_hat, ln_inv = get_impl("layernorm_forward", "vectorized")(x, gamma, beta, 1e-5)
    calls = {
        "batchnorm_forward_train": (x, gamma, beta, 1e-5),
        "batchnorm_backward_closed_form": (dout, x_hat, gamma, inv_std),
        "layernorm_forward": (x, gamma, beta, 1e-5),
        "layernorm_backward": (dout, ln_hat, gamma, ln_inv),
    }
    rows = []
    for op, args in calls.items():
        for impl in available_impls(op):
            if impl == "naive" and not naive:
                continue  # Python loops: only on the smallest shape
            f = get_impl(op, impl)
            rows.append(BenchRow(f"kernel {op}", shape, impl,
                                 time_call(lambda f=f, a=args: f(*a), repeat=repeat)))
    return rows


def _torch_batchnorm_rows(x, gamma, beta, dout, shape, repeat) -> list[BenchRow]:
    try:
        import torch
    except ImportError:
        return []
    xt = torch.from_numpy(x).requires_grad_(True)
    gt = torch.from_numpy(gamma).requires_grad_(True)
    bt = torch.from_numpy(beta).requires_grad_(True)
    out = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5)
    dt = torch.from_numpy(dout)

    def backward():
        return torch.autograd.grad(out, (xt, gt, bt), dt, retain_graph=True)

    return [BenchRow("batchnorm backward", shape, "torch autograd",
                     time_call(backward, repeat=repeat))]


# ---------------------------------------------------------------------------- MLP split
def mlp_step_split(repeat: int = 5) -> dict[str, float]:
    """Seconds per training step of the 784-256-128-10 ReLU net (batch 128, float32), by layer
    type, plus ``"total (model.loss)"`` for the whole forward+backward call."""
    np.random.seed(0)
    model = FullyConnectedNet(list(MLP_DIMS[1:-1]), input_dim=MLP_DIMS[0],
                              num_classes=MLP_DIMS[-1], weight_scale="he", dtype=np.float32)
    rng = np.random.default_rng(0)
    X = rng.random((MLP_BATCH, MLP_DIMS[0]), dtype=np.float32)
    y = rng.integers(0, MLP_DIMS[-1], MLP_BATCH)
    p = model.params

    # one real pass, keeping every layer's input, output and cache
    h, fc_caches, relu_caches, pre = X, [], [], []
    for i in (1, 2):
        a, fc = affine_forward(h, p[f"W{i}"], p[f"b{i}"])
        h, rc = relu_forward(a)
        pre.append((h, p[f"W{i}"], p[f"b{i}"]))
        fc_caches.append(fc)
        relu_caches.append(rc)
    scores, fc3 = affine_forward(h, p["W3"], p["b3"])
    _, dscores = softmax_loss(scores, y)
    dh2, _, _ = affine_backward(dscores, fc3)
    da2 = relu_backward(dh2, relu_caches[1])
    dh1, _, _ = affine_backward(da2, fc_caches[1])
    da1 = relu_backward(dh1, relu_caches[0])
    a1, _ = affine_forward(X, p["W1"], p["b1"])
    a2, _ = affine_forward(pre[0][0], p["W2"], p["b2"])

    def t(f):
        return time_call(f, repeat=repeat)

    return {
        "affine forward (3 layers)": t(lambda: affine_forward(X, p["W1"], p["b1"]))
        + t(lambda: affine_forward(pre[0][0], p["W2"], p["b2"]))
        + t(lambda: affine_forward(pre[1][0], p["W3"], p["b3"])),
        "relu forward (2 layers)": t(lambda: relu_forward(a1)) + t(lambda: relu_forward(a2)),
        "softmax loss": t(lambda: softmax_loss(scores, y)),
        "affine backward (3 layers, no dx for layer 1)": t(lambda: affine_backward(dscores, fc3))
        + t(lambda: affine_backward(da2, fc_caches[1]))
        + t(lambda: affine_backward_params(da1, fc_caches[0])),
        "relu backward (2 layers)": t(lambda: relu_backward(dh2, relu_caches[1]))
        + t(lambda: relu_backward(dh1, relu_caches[0])),
        "total (model.loss)": t(lambda: model.loss(X, y)),
    }


def _mlp_rows(compare: bool, quick: bool) -> list[BenchRow]:
    repeat = 3 if quick else 7
    split = mlp_step_split(repeat)
    total = split["total (model.loss)"]
    shape = f"{'-'.join(map(str, MLP_DIMS))} N={MLP_BATCH} float32"
    rows = []
    for part, seconds in split.items():
        label = "numpy" if part.startswith("total") else f"numpy ({100 * seconds / total:.0f}%)"
        rows.append(BenchRow(f"mlp step: {part}", shape, label, seconds))
    if compare:
        rows.extend(_torch_mlp_rows(shape, repeat))
    return rows


def _torch_mlp_rows(shape: str, repeat: int) -> list[BenchRow]:
    try:
        import torch
    except ImportError:
        return []
    torch.manual_seed(0)
    d0, d1, d2, d3 = MLP_DIMS
    net = torch.nn.Sequential(torch.nn.Linear(d0, d1), torch.nn.ReLU(), torch.nn.Linear(d1, d2),
                              torch.nn.ReLU(), torch.nn.Linear(d2, d3))
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.random((MLP_BATCH, d0), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, d3, MLP_BATCH))

    def step():
        net.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(X), y).backward()

    return [BenchRow("mlp step: total (model.loss)", shape, "torch forward+backward",
                     time_call(step, repeat=repeat))]


# ----------------------------------------------------------------------------------- ReLU
def _relu_rows(compare: bool, quick: bool) -> list[BenchRow]:
    """ReLU forward and backward on the first conv activations of the Fashion-MNIST ConvNet
    (batch 128, 32 channels of 28x28, float32): NumPy twin vs compiled, and torch with
    ``--compare``."""
    shape = (128, 32, 28, 28)
    repeat = 3 if quick else 10
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    label = "x".join(map(str, shape)) + " float32"
    rows = []
    for op, args in (("relu_forward", (x,)), ("relu_backward", (dout, x))):
        for impl in available_impls(op):
            if impl == "naive":
                continue  # a Python loop over 3.2M elements
            f = get_impl(op, impl)
            rows.append(BenchRow(f"kernel {op}", label, impl,
                                 time_call(lambda f=f, a=args: f(*a), repeat=repeat)))
    if compare:
        try:
            import torch
        except ImportError:
            return rows
        xt, dt = torch.from_numpy(x), torch.from_numpy(dout)
        rows.append(BenchRow("kernel relu_forward", label, "torch.relu",
                             time_call(lambda: torch.relu(xt), repeat=repeat)))
        rows.append(BenchRow("kernel relu_backward", label, "torch threshold_backward",
                             time_call(lambda: torch.ops.aten.threshold_backward(dt, xt, 0.0),
                                       repeat=repeat)))
    return rows


@register_suite("layers")
def suite(compare: bool = False, quick: bool = False) -> list[BenchRow]:
    """Batch-norm backward (graph vs closed form), ReLU kernels and the MLP step's time
    split."""
    return (_batchnorm_rows(compare, quick) + _relu_rows(compare, quick)
            + _mlp_rows(compare, quick))
