"""Spatial batch norm and group norm layers: CS231n's numbers (spatial batch norm is vanilla
batch norm over the N*H*W rows of each channel), running averages, test mode, numerical
gradients in float64, PyTorch as an independent oracle, dtypes, caches and bad input."""

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient_array, rel_error
from fastnn.layers import (
    batchnorm_backward,
    batchnorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)


def _problem(rng, shape, dtype=np.float64):
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    gamma = (rng.standard_normal(c) + 1).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dout


def _rows(a):
    """(N, C, H, W) -> (N*H*W, C): CS231n's transpose-reshape."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _groupnorm_reference(x, gamma, beta, groups, eps=1e-5):
    """CS231n's group norm forward in NumPy."""
    xg = x.reshape(x.shape[0], groups, -1)
    x_hat = (xg - xg.mean(axis=2, keepdims=True)) / np.sqrt(xg.var(axis=2, keepdims=True) + eps)
    return gamma * x_hat.reshape(x.shape) + beta


# ------------------------------------------------------------------------ spatial batch norm
def test_spatial_batchnorm_is_vanilla_batchnorm_over_rows(rng):
    x, gamma, beta, dout = _problem(rng, (3, 4, 5, 6))
    rm0, rv0 = rng.standard_normal(4), rng.random(4) + 0.5
    sp = {"mode": "train", "momentum": 0.8, "running_mean": rm0, "running_var": rv0}
    vp = dict(sp)
    out, cache = spatial_batchnorm_forward(x, gamma, beta, sp)
    ref, ref_cache = batchnorm_forward(_rows(x), gamma, beta, vp)
    assert rel_error(_rows(out), ref) < 1e-12
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    rdx, rdgamma, rdbeta = batchnorm_backward(_rows(dout), ref_cache)
    assert rel_error(_rows(dx), rdx) < 1e-10
    assert rel_error(dgamma, rdgamma) < 1e-12 and rel_error(dbeta, rdbeta) < 1e-12
    for key in ("running_mean", "running_var"):
        np.testing.assert_allclose(sp[key], vp[key], rtol=1e-13)
    np.testing.assert_allclose(sp["running_var"], 0.8 * rv0 + 0.2 * x.var(axis=(0, 2, 3)),
                               rtol=1e-13)


def test_spatial_batchnorm_train_output_statistics(rng):
    x = 5 + 4 * rng.standard_normal((2, 3, 4, 5))
    gamma, beta = np.array([3.0, 4.0, 5.0]), np.array([0.0, -1.0, 6.0])
    out, _ = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), gamma, rtol=1e-5)


def test_spatial_batchnorm_test_mode_uses_running_averages(rng):
    x, gamma, beta, dout = _problem(rng, (2, 3, 4, 4))
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    bn_param = {"mode": "test", "running_mean": rm.copy(), "running_var": rv.copy()}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    c = (slice(None), None, None)
    expected = gamma[c] * (x - rm[c]) / np.sqrt(rv[c] + 1e-5) + beta[c]
    assert rel_error(out, expected) < 1e-12
    np.testing.assert_array_equal(bn_param["running_mean"], rm)  # test mode never updates
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    assert rel_error(dx, dout * (gamma / np.sqrt(rv + 1e-5))[c]) < 1e-12
    x_hat = (x - rm[c]) / np.sqrt(rv[c] + 1e-5)
    assert rel_error(dgamma, (dout * x_hat).sum(axis=(0, 2, 3))) < 1e-12
    assert rel_error(dbeta, dout.sum(axis=(0, 2, 3))) < 1e-12


def test_spatial_batchnorm_running_averages_converge(rng):
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(2), np.zeros(2)
    for _ in range(60):
        x = rng.standard_normal((8, 2, 3, 3)) * np.array([2.0, 0.5])[:, None, None] + 3
        spatial_batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], [3, 3], atol=0.3)
    np.testing.assert_allclose(bn_param["running_var"], [4, 0.25], rtol=0.3)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_spatial_batchnorm_numerical_gradients(rng, mode):
    x, gamma, beta, dout = _problem(rng, (2, 3, 4, 3))
    bn_param = {"mode": mode, "running_mean": rng.standard_normal(3),
                "running_var": rng.random(3) + 0.5}

    def f(_):
        return spatial_batchnorm_forward(x, gamma, beta, dict(bn_param))[0]

    dx, dgamma, dbeta = spatial_batchnorm_backward(
        dout, spatial_batchnorm_forward(x, gamma, beta, dict(bn_param))[1])
    assert rel_error(dx, eval_numerical_gradient_array(f, x, dout)) < 1e-7
    assert rel_error(dgamma, eval_numerical_gradient_array(f, gamma, dout)) < 1e-7
    assert rel_error(dbeta, eval_numerical_gradient_array(f, beta, dout)) < 1e-7


def test_spatial_batchnorm_float32_stays_float32(rng):
    x, gamma, beta, dout = _problem(rng, (2, 3, 4, 4), np.float32)
    for mode in ("train", "test"):
        bn_param = {"mode": mode, "running_mean": np.zeros(3), "running_var": np.ones(3)}
        out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
        grads = spatial_batchnorm_backward(dout, cache)
        assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads), mode
    ref, _ = spatial_batchnorm_forward(x.astype(np.float64), gamma.astype(np.float64),
                                       beta.astype(np.float64), {"mode": "train"})
    np.testing.assert_allclose(spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})[0],
                               ref, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------ spatial group norm
@pytest.mark.parametrize(("shape", "groups"), [((2, 6, 3, 4), 2), ((1, 4, 2, 2), 4),
                                               ((3, 5, 1, 3), 1)])
def test_spatial_groupnorm_matches_cs231n(rng, shape, groups):
    x, gamma, beta, _ = _problem(rng, shape)
    c = shape[1]
    g4, b4 = gamma.reshape(1, c, 1, 1), beta.reshape(1, c, 1, 1)
    out, cache = spatial_groupnorm_forward(x, g4, b4, groups, {})
    assert rel_error(out, _groupnorm_reference(x, g4, b4, groups)) < 1e-12
    assert cache[2].shape == (shape[0], groups)


def test_spatial_groupnorm_numerical_gradients(rng):
    x, gamma, beta, dout = _problem(rng, (2, 6, 3, 2))
    g4, b4 = gamma.reshape(1, 6, 1, 1), beta.reshape(1, 6, 1, 1)
    gn_param = {"eps": 1e-5}

    def f(_):
        return spatial_groupnorm_forward(x, g4, b4, 3, gn_param)[0]

    dx, dgamma, dbeta = spatial_groupnorm_backward(
        dout, spatial_groupnorm_forward(x, g4, b4, 3, gn_param)[1])
    assert dgamma.shape == dbeta.shape == (1, 6, 1, 1)
    assert rel_error(dx, eval_numerical_gradient_array(f, x, dout)) < 1e-7
    assert rel_error(dgamma, eval_numerical_gradient_array(f, g4, dout)) < 1e-7
    assert rel_error(dbeta, eval_numerical_gradient_array(f, b4, dout)) < 1e-7


def test_spatial_groupnorm_float32_and_eps(rng):
    x, gamma, beta, dout = _problem(rng, (2, 4, 3, 3), np.float32)
    g4, b4 = gamma.reshape(1, 4, 1, 1), beta.reshape(1, 4, 1, 1)
    out, cache = spatial_groupnorm_forward(x, g4, b4, 2, {"mode": "test", "eps": 1e-3})
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in spatial_groupnorm_backward(dout, cache))
    ref = _groupnorm_reference(x.astype(np.float64), g4, b4, 2, eps=1e-3)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------ PyTorch oracle
def test_spatial_batchnorm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, gamma, beta, dout = _problem(rng, (4, 3, 5, 6))
    rm0, rv0 = rng.standard_normal(3), rng.random(3) + 0.5
    bn_param = {"mode": "train", "momentum": 0.9, "running_mean": rm0.copy(),
                "running_var": rv0.copy()}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)

    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rmt, rvt = torch.tensor(rm0), torch.tensor(rv0)
    # torch's momentum is the weight of the batch statistic: ours 0.9 is torch's 0.1
    ot = torch.nn.functional.batch_norm(xt, rmt, rvt, gt, bt, training=True, momentum=0.1,
                                        eps=1e-5)
    ot.backward(torch.tensor(dout))
    assert rel_error(out, ot.detach().numpy()) < 1e-12
    assert rel_error(dx, xt.grad.numpy()) < 1e-10
    assert rel_error(dgamma, gt.grad.numpy()) < 1e-12
    assert rel_error(dbeta, bt.grad.numpy()) < 1e-12
    np.testing.assert_allclose(bn_param["running_mean"], rmt.numpy(), rtol=1e-13)
    # ... and torch blends in the unbiased variance (M / (M - 1) times ours), M = N*H*W
    m = x.shape[0] * x.shape[2] * x.shape[3]
    batch_var = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(bn_param["running_var"], 0.9 * rv0 + 0.1 * batch_var, rtol=1e-13)
    np.testing.assert_allclose(rvt.numpy(), 0.9 * rv0 + 0.1 * batch_var * m / (m - 1),
                               rtol=1e-13)


def test_spatial_groupnorm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, gamma, beta, dout = _problem(rng, (3, 6, 4, 5))
    g4, b4 = gamma.reshape(1, 6, 1, 1), beta.reshape(1, 6, 1, 1)
    out, cache = spatial_groupnorm_forward(x, g4, b4, 3, {"eps": 1e-5})
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    ot = torch.nn.functional.group_norm(xt, 3, gt, bt, eps=1e-5)
    ot.backward(torch.tensor(dout))
    assert rel_error(out, ot.detach().numpy()) < 1e-12
    assert rel_error(dx, xt.grad.numpy()) < 1e-10
    assert rel_error(dgamma.ravel(), gt.grad.numpy()) < 1e-12
    assert rel_error(dbeta.ravel(), bt.grad.numpy()) < 1e-12


# ------------------------------------------------------------------------ bad input
def test_spatial_batchnorm_bad_input(rng):
    x, gamma, beta, dout = _problem(rng, (2, 3, 2, 2))
    with pytest.raises(ValueError, match="x must be a 4-D array"):
        spatial_batchnorm_forward(x[0], gamma, beta, {"mode": "train"})
    for mode in ("train", "test"):
        with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
            spatial_batchnorm_forward(x, gamma[:2], beta, {"mode": mode})
        with pytest.raises(ValueError, match=r"beta must have shape \(3,\)"):
            spatial_batchnorm_forward(x, gamma, beta.reshape(1, 3, 1, 1), {"mode": mode})
    with pytest.raises(ValueError, match=r"bn_param\['eps'\] must be > 0"):
        spatial_batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": 0.0})
    with pytest.raises(ValueError, match=r"bn_param must contain the key 'mode'"):
        spatial_batchnorm_forward(x, gamma, beta, {})
    with pytest.raises(ValueError, match=r"bn_param\['momentum'\]"):
        spatial_batchnorm_forward(x, gamma, beta, {"mode": "train", "momentum": 1.0})
    with pytest.raises(ValueError, match=r"bn_param\['running_var'\] must have shape \(3,\)"):
        spatial_batchnorm_forward(x, gamma, beta, {"mode": "test", "running_var": np.ones(2)})
    with pytest.raises(TypeError, match="bn_param must be a dict"):
        spatial_batchnorm_forward(x, gamma, beta, "train")
    _, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    with pytest.raises(ValueError, match="dout must have the forward output's shape"):
        spatial_batchnorm_backward(dout[:1], cache)
    with pytest.raises(ValueError, match="cache must be the .* spatial_batchnorm_forward"):
        spatial_batchnorm_backward(dout, cache[:3])
    with pytest.raises(ValueError, match="its gamma must have shape"):
        spatial_batchnorm_backward(dout, (cache[0], gamma[:2], *cache[2:]))


def test_spatial_groupnorm_bad_input(rng):
    x, gamma, beta, dout = _problem(rng, (2, 4, 2, 2))
    g4, b4 = gamma.reshape(1, 4, 1, 1), beta.reshape(1, 4, 1, 1)
    with pytest.raises(ValueError, match="G must divide the number of channels C=4, got G=3"):
        spatial_groupnorm_forward(x, g4, b4, 3, {})
    with pytest.raises(ValueError, match="G must be >= 1"):
        spatial_groupnorm_forward(x, g4, b4, 0, {})
    with pytest.raises(ValueError, match=r"gamma must have shape \(1, 4, 1, 1\)"):
        spatial_groupnorm_forward(x, gamma, b4, 2, {})
    with pytest.raises(ValueError, match=r"beta must have shape \(1, 4, 1, 1\)"):
        spatial_groupnorm_forward(x, g4, beta[:2].reshape(1, 2, 1, 1), 2, {})
    with pytest.raises(ValueError, match="x must be a 4-D array"):
        spatial_groupnorm_forward(x.reshape(2, 4, 4), g4, b4, 2, {})
    with pytest.raises(ValueError, match=r"gn_param\['eps'\] must be > 0"):
        spatial_groupnorm_forward(x, g4, b4, 2, {"eps": -1.0})
    with pytest.raises(TypeError, match="gn_param must be a dict"):
        spatial_groupnorm_forward(x, g4, b4, 2, None)
    _, cache = spatial_groupnorm_forward(x, g4, b4, 2, {})
    with pytest.raises(ValueError, match="dout must have the forward output's shape"):
        spatial_groupnorm_backward(dout[..., :1], cache)
    with pytest.raises(ValueError, match="its inv_std must have shape"):
        spatial_groupnorm_backward(dout, (*cache[:3], cache[3][:, :1]))
    with pytest.raises(TypeError, match="cache must be the"):
        spatial_groupnorm_backward(dout, None)
