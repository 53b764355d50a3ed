"""Convolution layers: CS231n's reference numbers, naive and fast agree, numerical gradients,
need_dx, the (x, w, conv_param) cache and errors naming conv_param or cache."""

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient_array
from fastnn.layers import (
    conv_backward_fast,
    conv_backward_naive,
    conv_forward_fast,
    conv_forward_naive,
)

PAIRS = [(conv_forward_naive, conv_backward_naive), (conv_forward_fast, conv_backward_fast)]
IDS = ["naive", "fast"]


def _rel_error(a, b):
    return np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))


@pytest.mark.parametrize("forward", [conv_forward_naive, conv_forward_fast], ids=IDS)
def test_cs231n_reference_output(forward):
    """The numbers of CS231n's ConvolutionalNetworks notebook (stride 2, pad 1)."""
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = forward(x, w, b, {"stride": 2, "pad": 1})
    correct = np.array([[[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                         [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                         [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
                        [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                         [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                         [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]]])
    assert _rel_error(out, correct) < 1e-7


@pytest.mark.parametrize(("forward", "backward"), PAIRS, ids=IDS)
@pytest.mark.parametrize("conv_param", [{"stride": 1, "pad": 1}, {"stride": 2, "pad": 0},
                                        {"stride": 1, "pad": 2, "dilation": 2}])
def test_gradients_match_centred_differences(forward, backward, conv_param):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 5))
    w = rng.standard_normal((3, 3, 3, 3))
    b = rng.standard_normal(3)
    out, cache = forward(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = backward(dout, cache)
    for grad, arr in ((dx, x), (dw, w), (db, b)):
        num = eval_numerical_gradient_array(lambda _: forward(x, w, b, conv_param)[0], arr, dout)
        assert _rel_error(grad, num) < 1e-6  # elementwise: small entries lose digits


def test_naive_and_fast_agree_and_need_dx():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 7, 6))
    w = rng.standard_normal((4, 2, 3, 2))
    b = rng.standard_normal(4)
    param = {"stride": 2, "pad": 1}
    out_n, cache_n = conv_forward_naive(x, w, b, param)
    out_f, cache_f = conv_forward_fast(x, w, b, param)
    np.testing.assert_allclose(out_f, out_n, rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out_n.shape)
    for got, want in zip(conv_backward_fast(dout, cache_f), conv_backward_naive(dout, cache_n)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    dx, dw, db = conv_backward_fast(dout, cache_f, need_dx=False)
    assert dx is None and dw.shape == w.shape and db.shape == (4,)


def test_cache_holds_what_backward_needs():
    x = np.ones((1, 2, 4, 4), dtype=np.float32)
    w = np.ones((3, 2, 3, 3), dtype=np.float32)
    out, cache = conv_forward_fast(x, w, np.zeros(3, np.float32), {"stride": 1, "pad": 1})
    assert out.dtype == np.float32 and out.shape == (1, 3, 4, 4)
    cx, cw, param = cache
    assert cx is x and cw is w
    assert param == {"stride": 1, "pad": 1, "dilation": 1}


@pytest.mark.parametrize("forward", [conv_forward_naive, conv_forward_fast], ids=IDS)
@pytest.mark.parametrize(("param", "error", "match"), [
    ([1, 1], TypeError, "conv_param must be a dict"),
    ({"pad": 1}, ValueError, "conv_param must contain the key 'stride'"),
    ({"stride": 1}, ValueError, "conv_param must contain the key 'pad'"),
    ({"stride": 0, "pad": 1}, ValueError, r"conv_param\['stride'\] must be >= 1"),
    ({"stride": 1, "pad": -1}, ValueError, r"conv_param\['pad'\] must be >= 0"),
    ({"stride": 1, "pad": 1, "dilation": 0}, ValueError, r"conv_param\['dilation'\] must be"),
    ({"stride": 4, "pad": 1}, ValueError,
     (r"conv_param: \(H \+ 2\*pad - HH\) / stride \+ 1 = \(32 \+ 2\*1 - 4\) / 4 \+ 1 = 8.5 is "
     "not a whole number")),
])
def test_bad_conv_param_is_named(forward, param, error, match):
    x = np.zeros((1, 3, 32, 32))
    w = np.zeros((2, 3, 4, 4))
    with pytest.raises(error, match=match):
        forward(x, w, np.zeros(2), param)


def test_kernel_larger_than_padded_input_and_channel_mismatch():
    with pytest.raises(ValueError, match="conv_param: kernel larger than the padded input"):
        conv_forward_fast(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 5, 5)), np.zeros(1),
                          {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match="w must have the 3 input channels"):
        conv_forward_fast(np.zeros((1, 3, 5, 5)), np.zeros((1, 2, 3, 3)), np.zeros(1),
                          {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match="x must be a 4-D"):
        conv_forward_fast(np.zeros((3, 5, 5)), np.zeros((1, 3, 3, 3)), np.zeros(1),
                          {"stride": 1, "pad": 0})


@pytest.mark.parametrize(("forward", "backward"), PAIRS, ids=IDS)
def test_bad_cache_and_dout_are_named(forward, backward):
    x = np.ones((1, 2, 4, 4))
    w = np.ones((3, 2, 3, 3))
    out, cache = forward(x, w, np.zeros(3), {"stride": 1, "pad": 1})
    with pytest.raises(TypeError, match="cache must be the"):
        backward(out, None)
    with pytest.raises(ValueError, match="cache must be the"):
        backward(out, cache[:2])
    with pytest.raises(ValueError, match="cache must come from"):
        backward(out, (x[0], w, cache[2]))
    with pytest.raises(TypeError, match="conv_param must be a dict"):
        backward(out, (x, w, 3))
    with pytest.raises(ValueError, match="dout must have the shape"):
        backward(out[:, :2], cache)
