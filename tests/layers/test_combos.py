"""Sandwich layers equal their parts and pass numerical gradient checks."""

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient_array, rel_error
from fastnn.layers import (
    affine_bn_relu_backward,
    affine_bn_relu_forward,
    affine_forward,
    affine_ln_relu_backward,
    affine_ln_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
    batchnorm_forward,
    layernorm_forward,
    relu_forward,
)


def _inputs(rng, n=5, shape=(2, 3), m=6):
    x = rng.standard_normal((n, *shape))
    w = rng.standard_normal((int(np.prod(shape)), m))
    b = rng.standard_normal(m)
    gamma = rng.standard_normal(m) + 1
    beta = rng.standard_normal(m)
    dout = rng.standard_normal((n, m))
    return x, w, b, gamma, beta, dout


def test_affine_relu_equals_parts_and_gradients(rng):
    x, w, b, _, _, dout = _inputs(rng)
    out, cache = affine_relu_forward(x, w, b)
    np.testing.assert_array_equal(out, relu_forward(affine_forward(x, w, b)[0])[0])
    dx, dw, db = affine_relu_backward(dout, cache)
    for arg, grad in ((x, dx), (w, dw), (b, db)):
        num = eval_numerical_gradient_array(lambda _: affine_relu_forward(x, w, b)[0], arg, dout)
        assert rel_error(grad, num) < 1e-7


# batch norm of a single example is constant (covered in test_normalization), so no ("bn", 1)
@pytest.mark.parametrize(("norm", "n"), [("bn", 4), ("bn", 9), ("ln", 1), ("ln", 4), ("ln", 9)])
def test_affine_norm_relu_equals_parts_and_gradients(rng, norm, n):
    x, w, b, gamma, beta, dout = _inputs(rng, n=n)
    forward, backward, parts = {
        "bn": (affine_bn_relu_forward, affine_bn_relu_backward, batchnorm_forward),
        "ln": (affine_ln_relu_forward, affine_ln_relu_backward, layernorm_forward),
    }[norm]

    def f(_):
        return forward(x, w, b, gamma, beta, {"mode": "train"})[0]

    out, cache = forward(x, w, b, gamma, beta, {"mode": "train"})
    a = affine_forward(x, w, b)[0]
    expected = relu_forward(parts(a, gamma, beta, {"mode": "train"})[0])[0]
    np.testing.assert_array_equal(out, expected)
    grads = backward(dout, cache)
    for name, arg, grad in zip(("x", "w", "b", "gamma", "beta"), (x, w, b, gamma, beta), grads):
        assert grad.shape == arg.shape
        num = eval_numerical_gradient_array(f, arg, dout)
        if norm == "bn" and name == "b":
            # batch norm subtracts the batch mean, so a bias before it has no effect at all:
            # both gradients are round-off around 0 and a relative error is meaningless
            np.testing.assert_allclose(grad, 0, atol=1e-12)
            np.testing.assert_allclose(num, 0, atol=1e-9)
        else:
            assert rel_error(grad, num) < 1e-6, name
