"""Pooling layers: the CS231n numbers (max pooling as the assignment's looped reference), naive
and fast layers agree, backward passes match centred numerical gradients in float64, torch
agrees (forward and autograd backward), and bad pool_param / cache / dout are clear errors."""

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient_array, rel_error
from fastnn.layers import (
    avg_pool_backward_fast,
    avg_pool_backward_naive,
    avg_pool_forward_fast,
    avg_pool_forward_naive,
    global_avg_pool_backward,
    global_avg_pool_forward,
    max_pool_backward_fast,
    max_pool_backward_naive,
    max_pool_forward_fast,
    max_pool_forward_naive,
)

MAX_PAIRS = [(max_pool_forward_naive, max_pool_backward_naive),
             (max_pool_forward_fast, max_pool_backward_fast)]
AVG_PAIRS = [(avg_pool_forward_naive, avg_pool_backward_naive),
             (avg_pool_forward_fast, avg_pool_backward_fast)]
PARAMS = [{"pool_height": 2, "pool_width": 2, "stride": 2},
          {"pool_height": 3, "pool_width": 3, "stride": 2},
          {"pool_height": 2, "pool_width": 3, "stride": 1}]


def _param_id(p):
    return f"{p['pool_height']}x{p['pool_width']}s{p['stride']}"


def _cs231n_max_pool(x, pool_param):
    """CS231n's looped max pool forward/backward (argmax of each window: the first maximum)."""
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n, c, h, w = x.shape
    ho, wo = 1 + (h - ph) // s, 1 + (w - pw) // s
    out = np.zeros((n, c, ho, wo))
    where = {}
    for i in range(n):
        for k in range(c):
            for r in range(ho):
                for q in range(wo):
                    window = x[i, k, r * s:r * s + ph, q * s:q * s + pw]
                    out[i, k, r, q] = np.max(window)
                    a, b = np.unravel_index(np.argmax(window), window.shape)
                    where[i, k, r, q] = (r * s + a, q * s + b)

    def backward(dout):
        dx = np.zeros_like(x)
        for (i, k, r, q), (a, b) in where.items():
            dx[i, k, a, b] += dout[i, k, r, q]
        return dx

    return out, backward


def _x(shape, seed=0):
    # distinct values (a permutation) keep the max away from ties for the numerical gradient
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape) * 4 - 2


@pytest.mark.parametrize("pool_param", PARAMS, ids=_param_id)
@pytest.mark.parametrize(("forward", "backward"), MAX_PAIRS, ids=["naive", "fast"])
def test_max_pool_matches_cs231n(forward, backward, pool_param):
    x = np.round(np.random.default_rng(1).standard_normal((2, 3, 7, 9)) * 2) / 2  # with ties
    if pool_param["stride"] == 2 and pool_param["pool_height"] == 2:
        x = x[:, :, :6, :8]
    out, cache = forward(x, pool_param)
    ref_out, ref_backward = _cs231n_max_pool(x, pool_param)
    np.testing.assert_array_equal(out, ref_out)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    np.testing.assert_allclose(backward(dout, cache), ref_backward(dout), rtol=1e-12,
                               atol=1e-12)


def test_cs231n_notebook_numbers():
    """The assignment's max_pool_forward_naive check: x = linspace(-0.3, 0.4) (2, 3, 4, 4)."""
    x = np.linspace(-0.3, 0.4, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    out, _ = max_pool_forward_naive(x, {"pool_width": 2, "pool_height": 2, "stride": 2})
    correct = np.array([[[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                         [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                         [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
                        [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                         [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                         [[0.32631579, 0.34105263], [0.38526316, 0.4]]]])
    assert rel_error(out, correct) < 1e-7


@pytest.mark.parametrize("pool_param", PARAMS, ids=_param_id)
@pytest.mark.parametrize(("forward", "backward"), MAX_PAIRS + AVG_PAIRS,
                         ids=["max-naive", "max-fast", "avg-naive", "avg-fast"])
def test_numerical_gradients(forward, backward, pool_param):
    x = _x((2, 2, 7, 8) if pool_param["stride"] == 1 else (2, 2, 7, 9))
    if pool_param["pool_height"] == 2 and pool_param["stride"] == 2:
        x = _x((2, 2, 6, 8))
    out, cache = forward(x, pool_param)
    dout = np.random.default_rng(3).standard_normal(out.shape)
    dx_num = eval_numerical_gradient_array(lambda v: forward(v, pool_param)[0], x, dout)
    assert rel_error(backward(dout, cache), dx_num) < 1e-8


def test_global_avg_pool_numerical_gradient():
    x = _x((3, 4, 5, 3))
    out, cache = global_avg_pool_forward(x)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, x.mean(axis=(2, 3)), rtol=1e-12, atol=1e-12)
    dout = np.random.default_rng(4).standard_normal(out.shape)
    dx_num = eval_numerical_gradient_array(lambda v: global_avg_pool_forward(v)[0], x, dout)
    assert rel_error(global_avg_pool_backward(dout, cache), dx_num) < 1e-8


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_naive_and_fast_agree_and_keep_the_dtype(dtype):
    x = np.random.default_rng(5).standard_normal((3, 2, 9, 11)).astype(dtype)
    p = {"pool_height": 3, "pool_width": 3, "stride": 2}
    for (f_naive, b_naive), (f_fast, b_fast) in (MAX_PAIRS, AVG_PAIRS):
        out_n, cache_n = f_naive(x, p)
        out_f, cache_f = f_fast(x, p)
        dout = np.ones_like(out_n)
        tol = 1e-12 if dtype == np.float64 else 1e-6
        assert out_n.dtype == out_f.dtype == dtype
        np.testing.assert_allclose(out_f, out_n, rtol=tol, atol=tol)
        dx_n, dx_f = b_naive(dout, cache_n), b_fast(dout, cache_f)
        assert dx_n.dtype == dx_f.dtype == dtype and dx_f.shape == x.shape
        np.testing.assert_allclose(dx_f, dx_n, rtol=tol, atol=tol)


def test_torch_oracle_layers():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3, 9, 9))
    p = {"pool_height": 3, "pool_width": 3, "stride": 2}
    for forward, backward, torch_pool in (
        (max_pool_forward_fast, max_pool_backward_fast, F.max_pool2d),
        (avg_pool_forward_fast, avg_pool_backward_fast, F.avg_pool2d),
    ):
        xt = torch.from_numpy(x).requires_grad_(True)
        out_t = torch_pool(xt, 3, 2)
        out, cache = forward(x, p)
        dout = rng.standard_normal(out.shape)
        out_t.backward(torch.from_numpy(dout))
        np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(backward(dout, cache), xt.grad.numpy(), rtol=1e-12,
                                   atol=1e-12)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("forward", [max_pool_forward_naive, max_pool_forward_fast,
                                     avg_pool_forward_naive, avg_pool_forward_fast])
def test_bad_pool_param(forward):
    x = np.ones((1, 1, 5, 5))
    with pytest.raises(TypeError, match="pool_param must be a dict"):
        forward(x, [2, 2, 2])
    with pytest.raises(ValueError, match="pool_param must contain .* missing 'stride'"):
        forward(x, {"pool_height": 2, "pool_width": 2})
    with pytest.raises(ValueError, match=r"pool_param\['stride'\] must be >= 1"):
        forward(x, {"pool_height": 1, "pool_width": 1, "stride": 0})
    with pytest.raises(TypeError, match=r"pool_param\['pool_width'\] must be an integer"):
        forward(x, {"pool_height": 1, "pool_width": 1.5, "stride": 1})
    with pytest.raises(ValueError, match=r"pool_height=2 and stride=2 .* height H=5 of x"):
        forward(x, {"pool_height": 2, "pool_width": 1, "stride": 2})
    with pytest.raises(ValueError, match="pool_width=6 is larger than the input width W=5"):
        forward(x, {"pool_height": 1, "pool_width": 6, "stride": 1})
    with pytest.raises(ValueError, match="x must be a 4-D array"):
        forward(np.ones((5, 5)), {"pool_height": 1, "pool_width": 1, "stride": 1})


@pytest.mark.parametrize(("forward", "backward"), MAX_PAIRS + AVG_PAIRS,
                         ids=["max-naive", "max-fast", "avg-naive", "avg-fast"])
def test_bad_cache_and_dout(forward, backward):
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 4))
    p = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = forward(x, p)
    with pytest.raises(TypeError, match="cache must be the"):
        backward(out, None)
    with pytest.raises(ValueError, match="cache must be the"):
        backward(out, cache[:-1])
    with pytest.raises(ValueError, match="dout must"):
        backward(out[:, :, :1], cache)
    broken = list(cache)
    broken[-1] = {"pool_height": 2}
    with pytest.raises(ValueError, match="cache must come from"):
        backward(out, tuple(broken))
    broken = list(cache)
    broken[-2] = (2, 3, 4)
    with pytest.raises(TypeError, match="cache must come from .* x_shape"):
        backward(out, tuple(broken))


@pytest.mark.parametrize(("forward", "backward"), MAX_PAIRS, ids=["naive", "fast"])
def test_corrupt_argmax_in_the_cache(forward, backward):
    x = np.random.default_rng(8).standard_normal((2, 3, 4, 4))
    out, (argmax, x_shape, p) = forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    bad = argmax.copy()
    bad[1, 2, 0, 1] = 16
    with pytest.raises(ValueError, match=r"cache must come from .*argmax must hold indices"):
        backward(out, (bad, x_shape, p))
    with pytest.raises(ValueError, match="cache must come from .* disagree on N and C"):
        backward(out, (argmax, (2, 4, 4, 4), p))
    with pytest.raises(TypeError, match="cache must come from .* argmax"):
        backward(out, ("argmax", x_shape, p))


def test_global_avg_pool_bad_input():
    with pytest.raises(ValueError, match="x must be a 4-D array"):
        global_avg_pool_forward(np.ones((2, 3)))
    out, cache = global_avg_pool_forward(np.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\)"):
        global_avg_pool_backward(np.ones((3, 2)), cache)
    with pytest.raises(TypeError, match="cache must come from global_avg_pool_forward"):
        global_avg_pool_backward(out, ((2, 3),))
