"""Element-wise activations: reference values, numerical gradients, dtypes, stability."""

import math

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient_array, rel_error
from fastnn.layers import (
    elu_backward,
    elu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)


def _scalar_reference(name, v, alpha):
    """Plain-Python definitions of each activation (the readable specification)."""
    if name == "relu":
        return max(v, 0.0)
    if name == "leaky_relu":
        return v if v > 0 else alpha * v
    if name == "sigmoid":
        return 1 / (1 + math.exp(-v))
    if name == "tanh":
        return math.tanh(v)
    return v if v > 0 else alpha * (math.exp(v) - 1)  # elu


# name, forward (x -> (out, cache)), backward, alpha for the reference
CASES = [
    ("relu", relu_forward, relu_backward, None),
    ("leaky_relu", leaky_relu_forward, leaky_relu_backward, 0.01),
    ("leaky_relu", lambda x: leaky_relu_forward(x, alpha=0.3), leaky_relu_backward, 0.3),
    ("leaky_relu", lambda x: leaky_relu_forward(x, alpha=1.7), leaky_relu_backward, 1.7),
    ("leaky_relu", lambda x: leaky_relu_forward(x, alpha=-0.2), leaky_relu_backward, -0.2),
    ("sigmoid", sigmoid_forward, sigmoid_backward, None),
    ("tanh", tanh_forward, tanh_backward, None),
    ("elu", elu_forward, elu_backward, 1.0),
    ("elu", lambda x: elu_forward(x, alpha=0.4), elu_backward, 0.4),
]
IDS = [f"{c[0]}-{c[3]}" for c in CASES]


@pytest.mark.parametrize(("name", "forward", "backward", "alpha"), CASES, ids=IDS)
def test_forward_matches_scalar_definition(rng, name, forward, backward, alpha):
    x = rng.standard_normal((4, 5)) * 2
    out, _ = forward(x)
    expected = np.vectorize(lambda v: _scalar_reference(name, v, alpha))(x)
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(("name", "forward", "backward", "alpha"), CASES, ids=IDS)
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (6, 7), (2, 3, 5)])
def test_backward_matches_numerical_gradient(rng, name, forward, backward, alpha, shape):
    x = rng.standard_normal(shape)
    # keep clear of the kink at 0 (where the derivative is one-sided)
    x[np.abs(x) < 1e-3] = 0.5
    dout = rng.standard_normal(shape)
    _, cache = forward(x)
    dx = backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x)[0], x, dout)
    assert dx.shape == x.shape
    assert rel_error(dx, dx_num) < 1e-7


@pytest.mark.parametrize(("name", "forward", "backward", "alpha"), CASES, ids=IDS)
def test_float32_in_float32_out(rng, name, forward, backward, alpha):
    x = rng.standard_normal((8, 6))
    dout = rng.standard_normal((8, 6))
    out64, cache64 = forward(x)
    dx64 = backward(dout, cache64)
    out32, cache32 = forward(x.astype(np.float32))
    dx32 = backward(dout.astype(np.float32), cache32)
    assert out32.dtype == np.float32 and dx32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-5, atol=1e-6)


def test_relu_cs231n_reference_output():
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out, _ = relu_forward(x)
    correct_out = np.array([[0.0, 0.0, 0.0, 0.0],
                            [0.0, 0.0, 0.04545455, 0.13636364],
                            [0.22727273, 0.31818182, 0.40909091, 0.5]])
    assert rel_error(out, correct_out) < 5e-8


def test_relu_gradient_is_zero_at_and_below_zero():
    x = np.array([[-1.0, 0.0, 2.0]])
    _, cache = relu_forward(x)
    np.testing.assert_array_equal(relu_backward(np.ones((1, 3)), cache), [[0.0, 0.0, 1.0]])


def test_relu_forward_does_not_modify_input(rng):
    x = rng.standard_normal((3, 4))
    before = x.copy()
    relu_forward(x)
    np.testing.assert_array_equal(x, before)


def test_sigmoid_is_stable_for_large_magnitudes():
    x = np.array([-1000.0, -745.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s64 = sigmoid(x)
        s32 = sigmoid(x.astype(np.float32))
    assert s32.dtype == np.float32
    assert s64[0] == 0.0 and s64[-1] == 1.0 and s64[4] == 0.5
    # tiny results keep full relative precision (1 - sigmoid(-x) would not)
    assert s64[2] == pytest.approx(math.exp(-100), rel=1e-14)
    assert s64[3] == pytest.approx(1 / (1 + math.exp(30)), rel=1e-14)
    assert float(s32[3]) == pytest.approx(1 / (1 + math.exp(30)), rel=1e-6)
    assert np.all(np.isfinite(s32)) and np.all((s32 >= 0) & (s32 <= 1))


def test_sigmoid_accepts_lists_and_scalars():
    np.testing.assert_allclose(sigmoid([0.0, 2.0]), [0.5, 1 / (1 + math.exp(-2))], rtol=1e-15)
    assert float(sigmoid(0.0)) == 0.5


def test_dout_shape_mismatch_and_bad_alpha(rng):
    x = rng.standard_normal((3, 4))
    _, cache = relu_forward(x)
    with pytest.raises(ValueError, match="dout must have"):
        relu_backward(np.ones((4, 3)), cache)
    with pytest.raises(ValueError, match="alpha"):
        elu_forward(x, alpha=-1.0)
    with pytest.raises(TypeError, match="alpha"):
        leaky_relu_forward(x, alpha="big")


def test_relu_cache_is_the_input_like_cs231n(rng):
    x = rng.standard_normal((3, 4))
    _, cache = relu_forward(x)
    assert cache is x


@pytest.mark.parametrize(("name", "forward", "backward", "alpha"), CASES, ids=IDS)
def test_editing_out_in_place_does_not_corrupt_backward(rng, name, forward, backward, alpha):
    # out, cache = relu_forward(x); out -= 5 made relu_backward return all zeros
    x = rng.standard_normal((5, 6))
    dout = rng.standard_normal((5, 6))
    out, cache = forward(x)
    expected = backward(dout, forward(x)[1])
    out -= 5.0
    out *= -3.0
    np.testing.assert_array_equal(backward(dout, cache), expected)


def test_elu_backward_rejects_an_integer_cache_naming_cache():
    with pytest.raises(TypeError, match="^cache must come from elu_forward: its out must be a "
                                        "floating-point array"):
        elu_backward(np.ones((2, 3)), (np.ones((2, 3), dtype=np.int64), 1.0))
