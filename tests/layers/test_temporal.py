"""Word embedding, temporal affine and temporal softmax loss: CS231n notebook values, numerical
gradients, torch cross-entropy as an oracle, and bad input."""

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from fastnn.layers import (
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)


def test_word_embedding_forward_matches_the_notebook():
    N, T, V, D = 2, 4, 5, 3
    x = np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]])
    W = np.linspace(0, 1, num=V * D).reshape(V, D)
    out, _ = word_embedding_forward(x, W)
    expected = np.asarray([
        [[0., 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429],
         [0.21428571, 0.28571429, 0.35714286], [0.42857143, 0.5, 0.57142857]],
        [[0.42857143, 0.5, 0.57142857], [0.21428571, 0.28571429, 0.35714286],
         [0., 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429]]])
    assert out.shape == (N, T, D) and rel_error(out, expected) < 1e-7


@pytest.mark.parametrize("shape", [(50, 3, 5, 6), (1, 1, 1, 1), (4, 7, 30, 2)])
def test_word_embedding_backward_equals_add_at_and_numerical_gradient(rng, shape):
    n, t, v, d = shape
    x = rng.integers(0, v, (n, t))
    W = rng.standard_normal((v, d))
    dout = rng.standard_normal((n, t, d))
    _, cache = word_embedding_forward(x, W)
    dW = word_embedding_backward(dout, cache)
    expected = np.zeros_like(W)
    np.add.at(expected, x, dout)
    np.testing.assert_allclose(dW, expected, rtol=1e-12, atol=1e-13)
    numeric = eval_numerical_gradient_array(lambda w: word_embedding_forward(x, w)[0], W, dout)
    assert rel_error(dW, numeric) < 1e-7


def test_word_embedding_keeps_float32_and_accepts_integral_floats(rng):
    W = rng.standard_normal((4, 3)).astype(np.float32)
    out, cache = word_embedding_forward([[0.0, 3.0]], W)
    assert out.dtype == np.float32
    assert word_embedding_backward(np.ones_like(out), cache).dtype == np.float32


def test_temporal_affine_matches_numerical_gradients(rng):
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    out, cache = temporal_affine_forward(x, w, b)
    np.testing.assert_allclose(out, np.einsum("ntd,dm->ntm", x, w) + b, rtol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = temporal_affine_backward(dout, cache)
    for arg, grad in ((x, dx), (w, dw), (b, db)):
        numeric = eval_numerical_gradient_array(lambda _: temporal_affine_forward(x, w, b)[0],
                                                arg, dout)
        assert rel_error(grad, numeric) < 1e-7


def test_temporal_softmax_loss_sanity_values_from_the_notebook(rng):
    def loss(n, t, v, p):
        x = 0.001 * rng.standard_normal((n, t, v))
        y = rng.integers(0, v, (n, t))
        mask = rng.random((n, t)) <= p
        return temporal_softmax_loss(x, y, mask)[0]

    assert abs(loss(100, 1, 10, 1.0) - np.log(10)) < 0.01          # about 2.3
    assert abs(loss(100, 10, 10, 1.0) - 10 * np.log(10)) < 0.05    # about 23
    assert abs(loss(5000, 10, 10, 0.1) - np.log(10)) < 0.1          # about 2.3


def test_temporal_softmax_loss_gradient_and_mask(rng):
    n, t, v = 7, 8, 9
    x = rng.standard_normal((n, t, v))
    y = rng.integers(0, v, (n, t))
    mask = rng.random((n, t)) > 0.5
    loss, dx = temporal_softmax_loss(x, y, mask)
    numeric = eval_numerical_gradient(lambda z: temporal_softmax_loss(z, y, mask)[0], x,
                                      verbose=False)
    assert rel_error(dx, numeric) < 1e-7
    assert np.all(dx[~mask] == 0)
    # masked steps do not count; the sum is divided by N, not by the number of kept steps
    log_p = x - np.log(np.exp(x).sum(axis=2, keepdims=True))
    picked = np.take_along_axis(log_p, y[..., None], axis=2)[..., 0]
    assert loss == pytest.approx(-picked[mask].sum() / n, rel=1e-12)


def test_temporal_softmax_loss_matches_torch_cross_entropy(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 6)) * 5
    y = rng.integers(0, 6, (3, 4))
    mask = np.ones((3, 4), dtype=bool)
    mask[0, 2:] = False
    loss, dx = temporal_softmax_loss(x, y, mask)
    xt = torch.from_numpy(x).requires_grad_(True)
    per_step = torch.nn.functional.cross_entropy(xt.reshape(-1, 6), torch.from_numpy(y).reshape(-1),
                                                 reduction="none")
    theirs = (per_step * torch.from_numpy(mask.reshape(-1))).sum() / 3
    theirs.backward()
    assert loss == pytest.approx(theirs.item(), rel=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_temporal_softmax_loss_is_stable_for_huge_scores():
    x = np.array([[[1e4, -1e4, 0.0]]])
    loss, dx = temporal_softmax_loss(x, np.array([[1]]), np.array([[True]]))
    assert loss == pytest.approx(2e4) and np.isfinite(dx).all()


# ------------------------------------------------------------------------------- bad input
def test_bad_ids_and_shapes_name_the_argument(rng):
    W = rng.standard_normal((5, 3))
    with pytest.raises(ValueError, match="x must hold word ids"):
        word_embedding_forward([[0, 5]], W)
    with pytest.raises(ValueError, match="x must hold word ids"):
        word_embedding_forward([[-1, 0]], W)
    with pytest.raises(ValueError, match="x must hold integers"):
        word_embedding_forward([[0.5, 1]], W)
    with pytest.raises(ValueError, match="x must be a 2-D"):
        word_embedding_forward([0, 1], W)
    _, cache = word_embedding_forward([[0, 1]], W)
    with pytest.raises(ValueError, match="dout"):
        word_embedding_backward(np.ones((1, 2, 4)), cache)
    with pytest.raises((TypeError, ValueError), match="cache"):
        word_embedding_backward(np.ones((1, 2, 3)), (None, W))
    with pytest.raises(ValueError, match="w must have shape"):
        temporal_affine_forward(np.ones((1, 2, 3)), np.ones((4, 2)), np.ones(2))
    with pytest.raises(ValueError, match="b must have shape"):
        temporal_affine_forward(np.ones((1, 2, 3)), np.ones((3, 2)), np.ones(3))
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="y must hold class ids"):
        temporal_softmax_loss(x, np.full((2, 3), 4), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="y must have shape"):
        temporal_softmax_loss(x, np.zeros((2, 2), int), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="mask must have shape"):
        temporal_softmax_loss(x, np.zeros((2, 3), int), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="mask must hold booleans"):
        temporal_softmax_loss(x, np.zeros((2, 3), int), np.full((2, 3), 0.5))
