"""Convolutional sandwich layers: equal to their parts, numerical gradients in float64,
need_dx=False, torch as an oracle, and bad caches named."""

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient_array, rel_error
from fastnn.layers import (
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_forward_fast,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
    max_pool_forward_fast,
    relu_forward,
    spatial_batchnorm_forward,
)

CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _inputs(rng, n=2, c=3, hw=(4, 6), f=3, k=3):
    x = rng.standard_normal((n, c, *hw))
    w = rng.standard_normal((f, c, k, k))
    b = rng.standard_normal(f)
    gamma = rng.standard_normal(f) + 1
    beta = rng.standard_normal(f)
    return x, w, b, gamma, beta


def _check_grads(forward, backward_grads, args, dout, names):
    for name, grad in zip(names, backward_grads):
        num = eval_numerical_gradient_array(lambda _: forward()[0], args[name], dout)
        # the bias before batch norm has a zero gradient: compare it absolutely
        assert rel_error(grad, num) < 1e-7 or np.abs(grad - num).max() < 1e-9, name


def test_conv_relu_equals_parts_and_gradients(rng):
    x, w, b, _, _ = _inputs(rng)
    out, cache = conv_relu_forward(x, w, b, CONV)
    np.testing.assert_array_equal(out, relu_forward(conv_forward_fast(x, w, b, CONV)[0])[0])
    dout = rng.standard_normal(out.shape)
    grads = conv_relu_backward(dout, cache)
    _check_grads(lambda: conv_relu_forward(x, w, b, CONV), grads, {"x": x, "w": w, "b": b},
                 dout, ("x", "w", "b"))
    dx, dw, db = conv_relu_backward(dout, cache, need_dx=False)
    assert dx is None
    np.testing.assert_allclose(dw, grads[1], rtol=1e-12)
    np.testing.assert_allclose(db, grads[2], rtol=1e-12)


def test_conv_bn_relu_equals_parts_and_gradients(rng):
    x, w, b, gamma, beta = _inputs(rng, n=3)
    out, cache = conv_bn_relu_forward(x, w, b, gamma, beta, CONV, {"mode": "train"})
    a = conv_forward_fast(x, w, b, CONV)[0]
    ref = relu_forward(spatial_batchnorm_forward(a, gamma, beta, {"mode": "train"})[0])[0]
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    grads = conv_bn_relu_backward(dout, cache)
    args = {"x": x, "w": w, "b": b, "gamma": gamma, "beta": beta}
    _check_grads(lambda: conv_bn_relu_forward(x, w, b, gamma, beta, CONV, {"mode": "train"}),
                 grads, args, dout, ("x", "w", "b", "gamma", "beta"))
    assert conv_bn_relu_backward(dout, cache, need_dx=False)[0] is None


def test_conv_relu_pool_equals_parts_and_gradients(rng):
    x, w, b, _, _ = _inputs(rng)
    out, cache = conv_relu_pool_forward(x, w, b, CONV, POOL)
    a = relu_forward(conv_forward_fast(x, w, b, CONV)[0])[0]
    np.testing.assert_array_equal(out, max_pool_forward_fast(a, POOL)[0])
    assert out.shape == (2, 3, 2, 3)
    dout = rng.standard_normal(out.shape)
    grads = conv_relu_pool_backward(dout, cache)
    _check_grads(lambda: conv_relu_pool_forward(x, w, b, CONV, POOL), grads,
                 {"x": x, "w": w, "b": b}, dout, ("x", "w", "b"))
    assert conv_relu_pool_backward(dout, cache, need_dx=False)[0] is None


def test_float32_keeps_its_dtype(rng):
    x, w, b, gamma, beta = (a.astype(np.float32) for a in _inputs(rng))
    out, cache = conv_bn_relu_forward(x, w, b, gamma, beta, CONV, {"mode": "train"})
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in conv_bn_relu_backward(np.ones_like(out), cache))


def test_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, w, b, _, _ = _inputs(rng, n=2, c=2, hw=(6, 6), f=4)
    out, cache = conv_relu_pool_forward(x, w, b, CONV, POOL)
    dout = rng.standard_normal(out.shape)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.max_pool2d(
        torch.relu(torch.nn.functional.conv2d(tx, tw, tb, padding=1)), 2, 2)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in zip(conv_relu_pool_backward(dout, cache), (tx, tw, tb)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(("backward", "forward", "field"), [
    (conv_relu_backward, "conv_relu_forward", "conv_cache"),
    (conv_bn_relu_backward, "conv_bn_relu_forward", "conv_cache"),
    (conv_relu_pool_backward, "conv_relu_pool_forward", "conv_cache"),
])
def test_bad_cache_names_the_part(backward, forward, field):
    with pytest.raises((TypeError, ValueError), match="cache"):
        backward(np.ones((1, 1, 1, 1)), None)
    n_parts = 2 if forward == "conv_relu_forward" else 3
    bad = ("not a tuple", *([np.ones(1)] * (n_parts - 1)))
    with pytest.raises(TypeError, match=f"{forward}.*{field}"):
        backward(np.ones((1, 1, 1, 1)), bad)
