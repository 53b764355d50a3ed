"""svm_loss and softmax_loss: loop references, numerical gradients, stability, bad labels."""

import math

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient, rel_error
from fastnn.layers import softmax_loss, svm_loss


def _svm_loops(x, y):
    n, c = x.shape
    loss = 0.0
    for i in range(n):
        for j in range(c):
            if j != y[i]:
                loss += max(0.0, x[i, j] - x[i, y[i]] + 1.0)
    return loss / n


def _softmax_loops(x, y):
    n = x.shape[0]
    loss = 0.0
    for i in range(n):
        row = [float(v) for v in x[i]]
        m = max(row)
        log_sum = m + math.log(sum(math.exp(v - m) for v in row))
        loss += log_sum - row[y[i]]
    return loss / n


@pytest.mark.parametrize(("loss_fn", "reference"), [(svm_loss, _svm_loops),
                                                    (softmax_loss, _softmax_loops)])
@pytest.mark.parametrize(("n", "c"), [(1, 2), (1, 10), (7, 3), (20, 10)])
def test_loss_matches_loops_and_numerical_gradient(rng, loss_fn, reference, n, c):
    x = rng.standard_normal((n, c))
    y = rng.integers(0, c, size=n)
    loss, dx = loss_fn(x, y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(reference(x, y), rel=1e-12)
    dx_num = eval_numerical_gradient(lambda x: loss_fn(x, y)[0], x, verbose=False)
    assert dx.shape == x.shape
    assert rel_error(dx, dx_num) < 1e-7


def test_cs231n_sanity_values():
    # the notebook's check: tiny random scores give svm ~ C - 1 = 9, softmax ~ log(10) = 2.3
    rs = np.random.RandomState(231)
    x = 0.001 * rs.randn(50, 10)
    y = rs.randint(10, size=50)
    assert svm_loss(x, y)[0] == pytest.approx(9.0, abs=0.01)
    assert softmax_loss(x, y)[0] == pytest.approx(math.log(10), abs=0.01)


def test_softmax_is_stable_for_huge_scores():
    x = np.array([[1e4, 0.0, -1e4], [-5e3, 5e3, 5e3]])
    y = np.array([1, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dx = softmax_loss(x, y)
    assert loss == pytest.approx((1e4 + (math.log(2)) ) / 2, rel=1e-12)
    assert np.all(np.isfinite(dx))
    np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=1e-15)


@pytest.mark.parametrize("loss_fn", [svm_loss, softmax_loss])
def test_float32_preserved(rng, loss_fn):
    x = rng.standard_normal((16, 10))
    y = rng.integers(0, 10, size=16)
    loss64, dx64 = loss_fn(x, y)
    loss32, dx32 = loss_fn(x.astype(np.float32), y)
    assert dx32.dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("loss_fn", [svm_loss, softmax_loss])
def test_bad_labels_are_clear_errors(loss_fn):
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"y must be class indices in \[0, 4\)"):
        loss_fn(x, [0, 1, 4])
    with pytest.raises(ValueError, match="y must be non-negative"):
        loss_fn(x, [0, -1, 2])
    with pytest.raises(ValueError, match="x has 3 rows but y has 2 labels"):
        loss_fn(x, [0, 1])
    with pytest.raises(ValueError, match="y must hold integers"):
        loss_fn(x, [0.5, 1, 2])
    with pytest.raises(ValueError, match="x must be a 2-D array"):
        loss_fn(np.zeros(4), [0])


@pytest.mark.parametrize("loss_fn", [svm_loss, softmax_loss])
def test_length_mismatch_names_x_and_y(loss_fn):
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="x has 2 rows but y has 1 labels"):
        loss_fn(x, [0])
    with pytest.raises(ValueError, match="x has 1 rows but y has 2 labels"):
        loss_fn(x[:1], [0, 1])
    # lists and non-contiguous scores are valid input with the same result
    scores = np.arange(12.0).reshape(3, 4)[:, ::2] / 7
    loss, dx = loss_fn(scores, np.array([0, 1, 1]))
    loss_list, dx_list = loss_fn(scores.tolist(), [0, 1, 1])
    assert loss_list == loss
    np.testing.assert_array_equal(dx_list, dx)
