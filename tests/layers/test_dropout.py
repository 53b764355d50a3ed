"""Inverted dropout: keep-probability semantics, CS231n-identical masks, gradients, bad input."""

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient_array, rel_error
from fastnn.layers import dropout_backward, dropout_forward


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_train_mode_keeps_fraction_p_and_preserves_mean(rng, p):
    x = rng.standard_normal((500, 500)) + 10
    out, _ = dropout_forward(x, {"mode": "train", "p": p, "seed": 123})
    assert np.mean(out == 0) == pytest.approx(1 - p, abs=0.01)
    assert out.mean() == pytest.approx(x.mean(), rel=0.01)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / p, rtol=1e-15)


def test_test_mode_is_identity(rng):
    x = rng.standard_normal((4, 5))
    out, cache = dropout_forward(x, {"mode": "test", "p": 0.3})
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(x, cache), x)


def test_keep_probability_one_is_identity_in_train_mode(rng):
    x = rng.standard_normal((4, 5))
    out, _ = dropout_forward(x, {"mode": "train", "p": 1.0})
    np.testing.assert_array_equal(out, x)


def test_seeded_mask_is_cs231n_mask_and_leaves_global_state_alone(rng):
    x = rng.standard_normal((6, 7))
    np.random.seed(5)
    state = np.random.get_state()[1].copy()
    out1, _ = dropout_forward(x, {"mode": "train", "p": 0.6, "seed": 42})
    out2, _ = dropout_forward(x, {"mode": "train", "p": 0.6, "seed": 42})
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    np.random.seed(42)  # what CS231n's dropout_forward does with a seed
    expected = x * ((np.random.rand(*x.shape) < 0.6) / 0.6)
    np.testing.assert_array_equal(out1, expected)


def test_unseeded_mask_uses_global_random_state(rng):
    x = rng.standard_normal((3, 8))
    np.random.seed(7)
    out, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    np.random.seed(7)
    np.testing.assert_array_equal(out, x * ((np.random.rand(3, 8) < 0.5) / 0.5))


@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (10, 10), (2, 3, 4)])
def test_backward_matches_numerical_gradient(rng, shape):
    x = rng.standard_normal(shape) + 10
    dout = rng.standard_normal(shape)
    param = {"mode": "train", "p": 0.2, "seed": 123}
    _, cache = dropout_forward(x, param)
    dx = dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda x: dropout_forward(x, param)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-7


def test_float32_preserved(rng):
    x = rng.standard_normal((5, 6)).astype(np.float32)
    out, cache = dropout_forward(x, {"mode": "train", "p": np.float64(0.5), "seed": 1})
    assert out.dtype == np.float32
    assert dropout_backward(np.ones((5, 6), np.float32), cache).dtype == np.float32


def test_bad_params():
    x = np.ones((2, 2))
    for p in (0, 0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"dropout_param\['p'\]"):
            dropout_forward(x, {"mode": "train", "p": p})
    with pytest.raises(ValueError, match="must contain the key 'p'"):
        dropout_forward(x, {"mode": "train"})
    with pytest.raises(ValueError, match="must contain the key 'mode'"):
        dropout_forward(x, {"p": 0.5})
    with pytest.raises(ValueError, match=r"dropout_param\['mode'\] must be"):
        dropout_forward(x, {"mode": "predict", "p": 0.5})
    with pytest.raises(ValueError, match=r"dropout_param\['seed'\]"):
        dropout_forward(x, {"mode": "train", "p": 0.5, "seed": -3})
    _, cache = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 0})
    with pytest.raises(ValueError, match="dout must have"):
        dropout_backward(np.ones((3, 2)), cache)


@pytest.mark.parametrize("seed", [None, 3])
def test_zero_dimensional_input_is_one_unit(seed):
    """CS231n's formula on a scalar: the unit is kept (scaled by 1/p) or dropped, out is 0-d."""
    param = {"mode": "train", "p": 0.5, **({"seed": seed} if seed is not None else {})}
    np.random.seed(11)
    outs = {float(dropout_forward(np.array(2.0), param)[0]) for _ in range(40)}
    assert outs == {0.0, 4.0} if seed is None else len(outs) == 1
    out, cache = dropout_forward(np.array(2.0, dtype=np.float32), {**param, "seed": 3})
    assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float32
    np.random.seed(3)
    keep = np.random.rand() < 0.5  # CS231n: np.random.seed(seed); mask = (rand(*()) < p) / p
    assert float(out) == (4.0 if keep else 0.0)
    dx = dropout_backward(np.array(1.0, dtype=np.float32), cache)
    assert isinstance(dx, np.ndarray) and dx.shape == () and float(dx) == (2.0 if keep else 0.0)
    out, cache = dropout_forward(np.array(2.0), {"mode": "test", "p": 0.5})
    assert out.shape == () and float(out) == 2.0
    assert float(dropout_backward(np.array(1.0), cache)) == 1.0
