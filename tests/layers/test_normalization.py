"""Batch and layer normalisation: statistics, running averages, gradients, dtypes, bad input."""

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient_array, rel_error
from fastnn.layers import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)

BN_BACKWARDS = [batchnorm_backward, batchnorm_backward_alt]


def _gamma_beta(rng, d):
    return rng.standard_normal(d) + 1.0, rng.standard_normal(d)


def test_batchnorm_train_output_has_beta_mean_and_gamma_std(rng):
    x = 50 + 10 * rng.standard_normal((200, 3)) @ rng.standard_normal((3, 3))
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([11.0, 12.0, 13.0])
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=0), gamma, rtol=1e-6)


def test_batchnorm_matches_cs231n_formulas_and_running_averages(rng):
    x = rng.standard_normal((9, 4)) * 3 + 1
    gamma, beta = _gamma_beta(rng, 4)
    rm0, rv0 = rng.standard_normal(4), rng.random(4) + 0.5
    bn_param = {"mode": "train", "momentum": 0.8, "running_mean": rm0, "running_var": rv0}
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    mean, var = x.mean(axis=0), x.var(axis=0)
    np.testing.assert_allclose(out, gamma * (x - mean) / np.sqrt(var + 1e-5) + beta, rtol=1e-12,
                               atol=1e-13)
    np.testing.assert_allclose(bn_param["running_mean"], 0.8 * rm0 + 0.2 * mean, rtol=1e-14)
    np.testing.assert_allclose(bn_param["running_var"], 0.8 * rv0 + 0.2 * var, rtol=1e-14)

    bn_param["mode"] = "test"
    rm, rv = bn_param["running_mean"].copy(), bn_param["running_var"].copy()
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(out, gamma * (x - rm) / np.sqrt(rv + 1e-5) + beta, rtol=1e-12)
    np.testing.assert_array_equal(bn_param["running_mean"], rm)  # test mode leaves them alone


def test_batchnorm_defaults_create_running_stats_with_momentum_09(rng):
    x = rng.standard_normal((6, 3))
    bn_param = {"mode": "train"}
    batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(bn_param["running_var"], 0.1 * x.var(axis=0), rtol=1e-14)


def test_batchnorm_test_mode_converges_to_population_statistics(rng):
    # the notebook check: after many train steps, test-mode outputs are ~normalised
    w = rng.standard_normal((5, 3))
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(3), np.zeros(3)
    for _ in range(100):
        batchnorm_forward(rng.standard_normal((200, 5)) @ w + 4, gamma, beta, bn_param)
    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(rng.standard_normal((2000, 5)) @ w + 4, gamma, beta, bn_param)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=0.15)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=0.15)


@pytest.mark.parametrize("backward", BN_BACKWARDS)
@pytest.mark.parametrize("shape", [(3, 1), (4, 5), (10, 3), (33, 7)])
def test_batchnorm_backward_matches_numerical_gradient(rng, backward, shape):
    x = rng.standard_normal(shape) * 2 + 3
    gamma, beta = _gamma_beta(rng, shape[1])
    dout = rng.standard_normal(shape)

    def f(_):
        return batchnorm_forward(x, gamma, beta, {"mode": "train"})[0]

    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, dgamma, dbeta = backward(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(f, x, dout)) < 1e-6
    assert rel_error(dgamma, eval_numerical_gradient_array(f, gamma, dout)) < 1e-6
    assert rel_error(dbeta, eval_numerical_gradient_array(f, beta, dout)) < 1e-6


@pytest.mark.parametrize("backward", BN_BACKWARDS)
def test_batchnorm_batch_of_one_has_zero_input_gradient(rng, backward):
    # a single example normalises to 0 whatever x is, so dx must vanish
    x = rng.standard_normal((1, 4))
    gamma, beta = _gamma_beta(rng, 4)
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out, np.broadcast_to(beta, (1, 4)), atol=1e-12)
    dout = rng.standard_normal((1, 4))
    dx, dgamma, dbeta = backward(dout, cache)
    np.testing.assert_allclose(dx, 0, atol=1e-12)
    np.testing.assert_allclose(dgamma, 0, atol=1e-12)
    np.testing.assert_allclose(dbeta, dout[0], rtol=1e-15)


@pytest.mark.parametrize("backward", BN_BACKWARDS)
def test_batchnorm_test_mode_backward(rng, backward):
    x = rng.standard_normal((5, 4))
    gamma, beta = _gamma_beta(rng, 4)
    bn_param = {"mode": "test", "running_mean": rng.standard_normal(4),
                "running_var": rng.random(4) + 0.5}
    dout = rng.standard_normal((5, 4))

    def f(_):
        return batchnorm_forward(x, gamma, beta, bn_param)[0]

    _, cache = batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = backward(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(f, x, dout)) < 1e-7
    assert rel_error(dgamma, eval_numerical_gradient_array(f, gamma, dout)) < 1e-7
    assert rel_error(dbeta, eval_numerical_gradient_array(f, beta, dout)) < 1e-7


@pytest.mark.parametrize("shape", [(1, 3), (2, 2), (7, 5), (128, 64), (3, 200)])
def test_batchnorm_backward_alt_equals_graph_version(rng, shape):
    x = rng.standard_normal(shape) * 5 - 2
    gamma, beta = _gamma_beta(rng, shape[1])
    dout = rng.standard_normal(shape)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    for a, b in zip(batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backward", BN_BACKWARDS)
def test_batchnorm_float32_stays_float32(rng, backward):
    x = rng.standard_normal((16, 8)) * 3 + 1
    gamma, beta = _gamma_beta(rng, 8)
    dout = rng.standard_normal((16, 8))
    p64, p32 = {"mode": "train"}, {"mode": "train", "momentum": np.float64(0.9),
                                    "eps": np.float64(1e-5)}
    out64, cache64 = batchnorm_forward(x, gamma, beta, p64)
    f32 = [a.astype(np.float32) for a in (x, gamma, beta)]
    out32, cache32 = batchnorm_forward(*f32, p32)
    assert out32.dtype == np.float32
    assert p32["running_mean"].dtype == np.float32 and p32["running_var"].dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-5)
    for g32, g64 in zip(backward(dout.astype(np.float32), cache32), backward(dout, cache64)):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


def test_batchnorm_bad_params():
    x, g, b = np.zeros((3, 2)), np.ones(2), np.zeros(2)
    with pytest.raises(ValueError, match="bn_param must contain the key 'mode'"):
        batchnorm_forward(x, g, b, {})
    with pytest.raises(ValueError, match=r"bn_param\['mode'\] must be 'train' or 'test'"):
        batchnorm_forward(x, g, b, {"mode": "eval"})
    with pytest.raises(TypeError, match="bn_param must be a dict"):
        batchnorm_forward(x, g, b, None)
    with pytest.raises(ValueError, match="gamma must have shape"):
        batchnorm_forward(x, np.ones(3), b, {"mode": "train"})
    with pytest.raises(ValueError, match="beta must have shape"):
        batchnorm_forward(x, g, np.ones(3), {"mode": "train"})
    with pytest.raises(ValueError, match=r"bn_param\['running_mean'\] must have shape"):
        batchnorm_forward(x, g, b, {"mode": "test", "running_mean": np.zeros(5)})
    with pytest.raises(ValueError, match="eps"):
        batchnorm_forward(x, g, b, {"mode": "train", "eps": -1.0})
    with pytest.raises(ValueError, match="x must be a 2-D array"):
        batchnorm_forward(np.zeros((3, 2, 2)), g, b, {"mode": "train"})


# ------------------------------------------------------------------------------- layernorm
def test_layernorm_normalises_each_example(rng):
    x = rng.standard_normal((4, 50)) * np.array([[1], [5], [0.1], [30]]) + 7
    out, _ = layernorm_forward(x, np.ones(50), np.zeros(50), {})
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=1), 1, rtol=1e-3)
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    gamma, beta = _gamma_beta(rng, 50)
    out, _ = layernorm_forward(x, gamma, beta, {"eps": 1e-3, "mode": "test"})
    np.testing.assert_allclose(out, gamma * (x - mean) / np.sqrt(var + 1e-3) + beta, rtol=1e-12,
                               atol=1e-13)


@pytest.mark.parametrize("shape", [(1, 6), (2, 3), (4, 5), (9, 17)])
def test_layernorm_backward_matches_numerical_gradient(rng, shape):
    x = rng.standard_normal(shape) * 2 + 3
    gamma, beta = _gamma_beta(rng, shape[1])
    dout = rng.standard_normal(shape)

    def f(_):
        return layernorm_forward(x, gamma, beta, {})[0]

    _, cache = layernorm_forward(x, gamma, beta, {})
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(f, x, dout)) < 1e-6
    assert rel_error(dgamma, eval_numerical_gradient_array(f, gamma, dout)) < 1e-6
    assert rel_error(dbeta, eval_numerical_gradient_array(f, beta, dout)) < 1e-6


def test_layernorm_float32_stays_float32(rng):
    x = rng.standard_normal((6, 10))
    gamma, beta = _gamma_beta(rng, 10)
    dout = rng.standard_normal((6, 10))
    out64, cache64 = layernorm_forward(x, gamma, beta, {})
    out32, cache32 = layernorm_forward(*(a.astype(np.float32) for a in (x, gamma, beta)),
                                       {"eps": np.float64(1e-5)})
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-5)
    for g32, g64 in zip(layernorm_backward(dout.astype(np.float32), cache32),
                        layernorm_backward(dout, cache64)):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


def test_layernorm_bad_params():
    with pytest.raises(TypeError, match="ln_param must be a dict"):
        layernorm_forward(np.zeros((2, 3)), np.ones(3), np.zeros(3), "train")
    with pytest.raises(ValueError, match="gamma must have shape"):
        layernorm_forward(np.zeros((2, 3)), np.ones(2), np.zeros(3), {})


@pytest.mark.parametrize("backward", BN_BACKWARDS)
def test_batchnorm_test_mode_float64_running_stats_keep_float32(rng, backward):
    # running averages in float64 (loaded from a file, set by hand) with a float32 layer
    x = rng.standard_normal((6, 4)).astype(np.float32)
    gamma = rng.standard_normal(4).astype(np.float32)
    beta = rng.standard_normal(4).astype(np.float32)
    mean, var = rng.standard_normal(4), rng.random(4) + 0.5
    bn_param = {"mode": "test", "running_mean": mean, "running_var": var}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    assert out.dtype == np.float32
    expected = (x - mean) / np.sqrt(var + 1e-5) * gamma + beta
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    dx, dgamma, dbeta = backward(np.ones_like(out), cache)
    assert dx.dtype == dgamma.dtype == dbeta.dtype == np.float32
    assert bn_param["running_mean"] is mean  # the caller's state is not rewritten


# ------------------------------------------------------------------------------- issue 7
@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5, float("nan")])
def test_batchnorm_momentum_outside_0_1_is_refused(momentum):
    x, g, b = np.ones((3, 2)), np.ones(2), np.zeros(2)
    for mode in ("train", "test"):
        param = {"mode": mode, "momentum": momentum}
        with pytest.raises(ValueError, match=r"bn_param\['momentum'\]"):
            batchnorm_forward(x, g, b, param)
        assert "running_mean" not in param  # nothing written


def test_batchnorm_momentum_zero_is_allowed(rng):
    x = rng.standard_normal((5, 3))
    param = {"mode": "train", "momentum": 0.0}
    batchnorm_forward(x, np.ones(3), np.zeros(3), param)
    np.testing.assert_allclose(param["running_var"], x.var(axis=0), rtol=1e-14)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_negative_running_variance_is_refused(rng, mode):
    x = rng.standard_normal((4, 3))
    param = {"mode": mode, "running_mean": np.zeros(3), "running_var": np.array([1.0, -0.5, 2.0])}
    with pytest.raises(ValueError, match=r"bn_param\['running_var'\] must hold non-negative"):
        batchnorm_forward(x, np.ones(3), np.zeros(3), param)


def test_layernorm_keeps_gamma_given_as_list_in_cache(rng):
    x = rng.standard_normal((3, 2))
    out, cache = layernorm_forward(x, [1.0, 2.0], [0.0, 0.0], {})
    dx, dgamma, dbeta = layernorm_backward(np.ones_like(out), cache)
    assert dx.shape == (3, 2) and dgamma.shape == (2,) and dbeta.shape == (2,)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_zero_eps_is_refused_naming_the_param_key(mode):
    x = np.ones((3, 2))  # a constant feature: var = 0, so eps = 0 would divide by zero
    with pytest.raises(ValueError, match=r"bn_param\['eps'\] must be > 0"):
        batchnorm_forward(x, np.ones(2), np.zeros(2), {"mode": mode, "eps": 0.0})
    with pytest.raises(ValueError, match=r"ln_param\['eps'\] must be > 0"):
        layernorm_forward(x, np.ones(2), np.zeros(2), {"eps": 0})


@pytest.mark.parametrize("backward", [*BN_BACKWARDS, "layernorm"])
def test_backward_with_a_ragged_dout_names_dout(rng, backward):
    x = rng.standard_normal((2, 3))
    gamma, beta = _gamma_beta(rng, 3)
    if backward == "layernorm":
        _, cache = layernorm_forward(x, gamma, beta, {})
        backward = layernorm_backward
    else:
        _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    with pytest.raises(ValueError, match="^dout must be an array of the forward output's shape"):
        backward([[1.0, 2.0, 3.0], [1.0, 2.0]], cache)
    # a (regular) nested list is valid and gives the array's result
    dout = rng.standard_normal((2, 3))
    for got, want in zip(backward(dout.tolist(), cache), backward(dout, cache), strict=True):
        np.testing.assert_allclose(got, want)
