"""pytest-benchmark: batch-norm backward (graph vs closed form), the fused normalisation kernels
vs their NumPy twins, and one training step of the 784-256-128-10 ReLU net by layer type.

Run: ``python -m pytest benchmarks/test_bench_layers.py --benchmark-only``. The issue asks the
closed-form ``batchnorm_backward_alt`` to be faster than the graph ``batchnorm_backward``:
compare the means within each group (timing is never asserted: shared machines are too noisy).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.classifiers import FullyConnectedNet
from fastnn.kernels import available_impls, get_impl
from fastnn.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
)

BN_SHAPES = [(128, 256), (256, 1024)]


def _bn_problem(shape, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    gamma = rng.standard_normal(shape[1]).astype(dtype)
    beta = rng.standard_normal(shape[1]).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dout


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", BN_SHAPES, ids=[f"{n}x{d}" for n, d in BN_SHAPES])
@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt],
                         ids=["graph", "alt"])
def test_batchnorm_backward(benchmark, backward, shape, dtype):
    x, gamma, beta, dout = _bn_problem(shape, dtype)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    benchmark.group = f"batchnorm backward {shape[0]}x{shape[1]} {np.dtype(dtype).name}"
    dx, dgamma, dbeta = benchmark(backward, dout, cache)
    assert dx.dtype == dtype and dgamma.shape == dbeta.shape == (shape[1],)


KERNEL_CASES = [(op, impl) for op in ("batchnorm_forward_train", "batchnorm_backward_closed_form",
                                      "layernorm_forward", "layernorm_backward")
                for impl in ("vectorized", "compiled") if impl in available_impls(op)]


@pytest.mark.parametrize(("op", "impl"), KERNEL_CASES, ids=[f"{o}-{i}" for o, i in KERNEL_CASES])
def test_norm_kernel(benchmark, op, impl):
    x, gamma, beta, dout = _bn_problem((256, 1024), np.float32)
    if op.startswith("batchnorm"):
        _, x_hat, _, _, inv_std = get_impl("batchnorm_forward_train", "vectorized")(
            x, gamma, beta, 1e-5)
    else:
        _, x_hat, inv_std = get_impl("layernorm_forward", "vectorized")(x, gamma, beta, 1e-5)
    args = (x, gamma, beta, 1e-5) if op.endswith(("forward", "train")) else (
        dout, x_hat, gamma, inv_std)
    benchmark.group = f"{op} 256x1024 float32"
    result = benchmark(get_impl(op, impl), *args)
    assert result[0].shape == (256, 1024) and result[0].dtype == np.float32


@pytest.fixture(scope="module")
def mlp():
    np.random.seed(0)
    model = FullyConnectedNet([256, 128], input_dim=784, num_classes=10, weight_scale="he")
    rng = np.random.default_rng(0)
    X = rng.random((128, 784), dtype=np.float32)
    y = rng.integers(0, 10, 128)
    return model, X, y


def test_mlp_step(benchmark, mlp):
    model, X, y = mlp
    benchmark.group = "mlp 784-256-128-10 step, N=128 float32"
    loss, grads = benchmark(model.loss, X, y)
    assert np.isfinite(loss) and grads["W1"].dtype == np.float32


@pytest.mark.parametrize("part", ["affine_forward", "affine_backward", "relu_forward",
                                  "relu_backward", "softmax_loss"])
def test_mlp_layer_types(benchmark, mlp, part):
    """The first hidden layer's ops (the largest) and the loss, one by one."""
    model, X, y = mlp
    a, fc_cache = affine_forward(X, model.params["W1"], model.params["b1"])
    h, relu_cache = relu_forward(a)
    scores = affine_forward(np.zeros((128, 128), np.float32), model.params["W3"],
                            model.params["b3"])[0]
    dh = np.ones_like(h)
    calls = {
        "affine_forward": (affine_forward, (X, model.params["W1"], model.params["b1"])),
        "affine_backward": (affine_backward, (dh, fc_cache)),
        "relu_forward": (relu_forward, (a,)),
        "relu_backward": (relu_backward, (dh, relu_cache)),
        "softmax_loss": (softmax_loss, (scores, y)),
    }
    func, args = calls[part]
    benchmark.group = "mlp layer types (784->256 layer, N=128 float32)"
    assert benchmark(func, *args) is not None
