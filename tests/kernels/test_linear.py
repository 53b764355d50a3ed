"""Linear SVM and softmax losses: naive vs vectorized, numerical gradients, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.classifiers import (
    softmax_loss_naive,
    softmax_loss_vectorized,
    svm_loss_naive,
    svm_loss_vectorized,
)
from fastnn.gradient_check import eval_numerical_gradient, grad_check_sparse, rel_error
from fastnn.kernels import available_impls, get_impl

OPS = ("linear_svm_loss", "linear_softmax_loss")


def _problem(rng, n, d, c, dtype=np.float64, scale=1.0):
    X = (rng.standard_normal((n, d)) * scale).astype(dtype)
    W = (rng.standard_normal((d, c)) * 0.01).astype(dtype)
    y = rng.integers(0, c, size=n)
    return W, X, y


def test_registry_lists_both_impls():
    for op in OPS:
        assert available_impls(op) == ("naive", "vectorized")
    # the CS231n names are the registered implementations behind the same validation
    rng = np.random.default_rng(3)
    W, X, y = _problem(rng, 6, 5, 3)
    for op, impl, public in [("linear_svm_loss", "naive", svm_loss_naive),
                             ("linear_svm_loss", "vectorized", svm_loss_vectorized),
                             ("linear_softmax_loss", "naive", softmax_loss_naive),
                             ("linear_softmax_loss", "vectorized", softmax_loss_vectorized)]:
        loss, dW = get_impl(op, impl)(W, X, y, 0.1)
        loss_public, dW_public = public(W, X, y, 0.1)
        assert loss == loss_public
        np.testing.assert_array_equal(dW, dW_public)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape", [(1, 1, 2), (7, 5, 3), (50, 33, 10), (129, 17, 4)])
@pytest.mark.parametrize("reg", [0.0, 0.37])
def test_naive_and_vectorized_agree_float64(rng, op, shape, reg):
    n, d, c = shape
    W, X, y = _problem(rng, n, d, c, scale=3.0)
    naive = get_impl(op, "naive")
    vectorized = get_impl(op, "vectorized")
    loss_n, grad_n = naive(W, X, y, reg)
    loss_v, grad_v = vectorized(W, X, y, reg)
    assert abs(loss_n - loss_v) / max(abs(loss_n), 1e-300) < 1e-10
    # elementwise relative error, but near-zero entries compared on the gradient's own scale
    scale = np.abs(grad_n).max()
    assert np.max(np.abs(grad_n - grad_v)) / scale < 1e-10
    assert grad_v.shape == W.shape and grad_v.dtype == np.float64


@pytest.mark.parametrize("op", OPS)
def test_noncontiguous_and_list_inputs(rng, op):
    W, X, y = _problem(rng, 20, 12, 5)
    X_strided = np.asfortranarray(np.repeat(X, 2, axis=1))[:, ::2]
    assert not X_strided.flags.c_contiguous
    f = get_impl(op, "vectorized")
    loss_a, grad_a = f(W, X, y, 0.1)
    loss_b, grad_b = f(W, X_strided, list(y), 0.1)
    assert rel_error(loss_a, loss_b) < 1e-12
    assert rel_error(grad_a, grad_b) < 1e-12


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("impl", ["naive", "vectorized"])
def test_float32_stays_float32_and_matches_float64(rng, op, impl):
    W, X, y = _problem(rng, 40, 30, 6)
    f = get_impl(op, impl)
    loss64, grad64 = f(W, X, y, 0.05)
    loss32, grad32 = f(W.astype(np.float32), X.astype(np.float32), y, 0.05)
    assert grad32.dtype == np.float32
    assert abs(loss32 - loss64) / loss64 < 1e-5
    assert np.max(np.abs(grad32 - grad64)) / np.abs(grad64).max() < 1e-4


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("impl", ["naive", "vectorized"])
def test_full_numerical_gradient(rng, op, impl):
    # Small scores keep every hinge well away from its kink, so the numerical gradient is exact.
    W, X, y = _problem(rng, 10, 8, 4)
    f = get_impl(op, impl)
    _, grad = f(W, X, y, 0.3)
    num = eval_numerical_gradient(lambda w: f(w, X, y, 0.3)[0], W, verbose=False)
    assert rel_error(num, grad) < 1e-7


def test_softmax_loss_of_uniform_scores_is_log_c(rng):
    W = np.zeros((6, 10))
    X = rng.standard_normal((30, 6))
    y = rng.integers(0, 10, 30)
    for f in (softmax_loss_naive, softmax_loss_vectorized):
        assert f(W, X, y, 0.0)[0] == pytest.approx(np.log(10), rel=1e-12)


def test_svm_loss_of_zero_weights_is_c_minus_one(rng):
    W = np.zeros((6, 10))
    X = rng.standard_normal((30, 6))
    y = rng.integers(0, 10, 30)
    for f in (svm_loss_naive, svm_loss_vectorized):
        assert f(W, X, y, 0.0)[0] == pytest.approx(9.0, rel=1e-12)


def test_softmax_is_stable_for_huge_scores():
    # Without the max-shift exp(1000) overflows to inf and the loss becomes NaN.
    W = np.eye(3) * 1000.0
    X = np.eye(3)
    y = np.array([0, 1, 0])
    for f in (softmax_loss_naive, softmax_loss_vectorized):
        loss, grad = f(W, X, y, 0.0)
        assert np.isfinite(loss) and np.all(np.isfinite(grad))
        assert loss == pytest.approx(1000.0 / 3, rel=1e-12)


def test_regularization_term_is_reg_sum_w_squared(rng):
    W, X, y = _problem(rng, 9, 5, 3)
    for op in OPS:
        for impl in available_impls(op):
            f = get_impl(op, impl)
            l0, g0 = f(W, X, y, 0.0)
            l1, g1 = f(W, X, y, 2.5)
            assert l1 - l0 == pytest.approx(2.5 * np.sum(W * W), rel=1e-10)
            np.testing.assert_allclose(g1 - g0, 5.0 * W, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("impl", ["naive", "vectorized"])
def test_bad_input(rng, op, impl):
    f = get_impl(op, impl)
    W, X, y = _problem(rng, 6, 4, 3)
    with pytest.raises(ValueError, match=r"y must be class indices in \[0, 3\)"):
        f(W, X, np.array([0, 1, 2, 3, 0, 1]), 0.1)
    with pytest.raises(ValueError, match="y must be non-negative"):
        f(W, X, np.array([0, 1, 2, -1, 0, 1]), 0.1)
    with pytest.raises(ValueError, match=r"X has 6 rows but y has 5 labels"):
        f(W, X, y[:5], 0.1)
    with pytest.raises(ValueError, match=r"X must have W.shape\[0\] = 4 columns"):
        f(W, X[:, :3], y, 0.1)
    with pytest.raises(ValueError, match="W must be a 2-D"):
        f(W[:, 0], X, y, 0.1)
    X_nan = X.copy()
    X_nan[2, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        f(W, X_nan, y, 0.1)
    X_inf = X.copy()
    X_inf[0, 0] = -np.inf
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        f(W, X_inf, y, 0.1)
    with pytest.raises(ValueError, match="reg must be >= 0"):
        f(W, X, y, -1e-3)
    with pytest.raises(TypeError, match="reg must be a real number"):
        f(W, X, y, "0.1")
    with pytest.raises(ValueError, match="y must hold integers"):
        f(W, X, y + 0.5, 0.1)


@pytest.mark.data
@pytest.mark.parametrize("op", OPS)
def test_grad_check_sparse_on_cifar10_dev_set(data_dir, op, capsys):
    """Analytic gradients vs centered differences on the real CIFAR-10 subset (CS231n recipe)."""
    import pickle

    path = data_dir / "cifar10-subset" / "cifar-10-batches-py" / "data_batch_1"
    with open(path, "rb") as fh:
        batch = pickle.load(fh, encoding="latin1")
    images = np.asarray(batch["data"], dtype=np.float64)[:500]  # dev set: 500 real images
    labels = np.asarray(batch["labels"], dtype=np.int64)[:500]
    # CS231n preprocessing: mean subtraction, then the bias trick (a constant-1 column).
    X_dev = images - images.mean(axis=0)
    X_dev = np.hstack([X_dev, np.ones((X_dev.shape[0], 1))])
    assert X_dev.shape == (500, 3073)
    W = np.random.default_rng(0).standard_normal((3073, 10)) * 1e-4
    for impl in available_impls(op):
        f = get_impl(op, impl)
        for reg in (0.0, 5e1):
            _, grad = f(W, X_dev, labels, reg)
            errors = grad_check_sparse(
                lambda w, f=f, reg=reg: f(w, X_dev, labels, reg)[0], W, grad, num_checks=10, seed=1
            )
            # The SVM loss has kinks: an entry whose numerical step crosses one may disagree,
            # as CS231n warns; all entries must agree except at most one such crossing.
            tol = 1e-5 if op == "linear_softmax_loss" else 1e-4
            assert np.sum(errors > tol) <= (0 if op == "linear_softmax_loss" else 1), errors
    assert "relative error" in capsys.readouterr().out
