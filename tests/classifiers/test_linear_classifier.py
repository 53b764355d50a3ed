"""LinearClassifier / LinearSVM / Softmax: training, prediction, penalties, dtype, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.classifiers import (
    LinearClassifier,
    LinearSVM,
    Softmax,
    softmax_loss_vectorized,
    svm_loss_vectorized,
)
from fastnn.gradient_check import eval_numerical_gradient, rel_error

MODELS = (LinearSVM, Softmax)


def _blobs(rng, n=600, d=5, c=3, dtype=np.float32):
    """Linearly separable-ish Gaussian blobs with a bias column."""
    centers = rng.standard_normal((c, d)) * 4.0
    y = rng.integers(0, c, n)
    X = centers[y] + rng.standard_normal((n, d))
    X = np.hstack([X, np.ones((n, 1))]).astype(dtype)
    return X, y


def test_default_constructible_and_no_weights_before_training():
    for cls in (LinearClassifier, *MODELS):
        clf = cls()
        assert clf.W is None
    with pytest.raises(ValueError, match="call train"):
        Softmax().predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="call train"):
        LinearSVM().loss(np.zeros((2, 3)), [0, 1], 0.0)


@pytest.mark.parametrize("cls", MODELS)
def test_training_learns_blobs_and_loss_decreases(rng, cls):
    X, y = _blobs(rng)
    clf = cls(seed=0)
    history = clf.train(X, y, learning_rate=1e-2, reg=1e-4, num_iters=300, batch_size=50)
    assert len(history) == 300
    assert np.mean(history[-20:]) < 0.5 * np.mean(history[:5])
    assert clf.W.shape == (6, 3) and clf.W.dtype == np.float32
    pred = clf.predict(X)
    assert pred.shape == (600,) and pred.dtype.kind == "i"
    assert np.mean(pred == y) > 0.95
    assert clf.score(X, y) == pytest.approx(np.mean(pred == y))


@pytest.mark.parametrize("cls", MODELS)
def test_seed_makes_training_deterministic(rng, cls):
    X, y = _blobs(rng)
    a, b, c = cls(seed=3), cls(seed=3), cls(seed=4)
    ha = a.train(X, y, num_iters=50, batch_size=32)
    hb = b.train(X, y, num_iters=50, batch_size=32)
    c.train(X, y, num_iters=50, batch_size=32)
    assert ha == hb
    np.testing.assert_array_equal(a.W, b.W)
    assert not np.array_equal(a.W, c.W)


@pytest.mark.parametrize("cls", MODELS)
def test_one_sgd_step_is_w_minus_lr_grad(rng, cls):
    X, y = _blobs(rng, n=40, dtype=np.float64)
    clf = cls(seed=0)
    clf.train(X, y, num_iters=1, batch_size=40, learning_rate=1e-9)  # creates W, barely moves it
    W0 = clf.W.copy()
    # Replay the classifier's generator state to know which minibatch the next step samples.
    state = clf._rng.bit_generator.state
    replay = np.random.default_rng()
    replay.bit_generator.state = state
    batch = replay.integers(0, 40, size=40)
    loss, grad = clf.loss(X[batch], y[batch], 0.01)
    history = clf.train(X, y, num_iters=1, batch_size=40, learning_rate=0.5, reg=0.01)
    assert history[0] == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(clf.W, W0 - 0.5 * grad, rtol=1e-12, atol=1e-15)


def test_loss_method_matches_free_functions(rng):
    X, y = _blobs(rng, n=30, dtype=np.float64)
    for cls, f in ((LinearSVM, svm_loss_vectorized), (Softmax, softmax_loss_vectorized)):
        clf = cls(seed=1)
        clf.train(X, y, num_iters=5, batch_size=10)
        loss, grad = clf.loss(X, y, 0.2)
        loss_f, grad_f = f(clf.W, X, y, 0.2)
        assert loss == pytest.approx(loss_f, rel=1e-12)
        np.testing.assert_allclose(grad, grad_f, rtol=1e-12, atol=1e-15)


def test_base_class_accepts_a_data_loss(rng):
    X, y = _blobs(rng, n=100, dtype=np.float64)
    clf = LinearClassifier(seed=0, data_loss=softmax_loss_vectorized)
    clf.train(X, y, num_iters=20, batch_size=20)
    ref = Softmax(seed=0)
    ref.train(X, y, num_iters=20, batch_size=20)
    np.testing.assert_allclose(clf.W, ref.W, rtol=1e-12)
    with pytest.raises(NotImplementedError, match="data_loss"):
        LinearClassifier().train(X, y, num_iters=1, batch_size=1)


@pytest.mark.parametrize("regularization", ["l1", "elasticnet"])
@pytest.mark.parametrize("cls", MODELS)
def test_l1_and_elasticnet_gradients(rng, cls, regularization):
    X, y = _blobs(rng, n=20, dtype=np.float64)
    clf = cls(regularization=regularization, l1_ratio=0.3, seed=0)
    clf.train(X, y, num_iters=3, batch_size=5)
    clf.W += 0.1 * rng.standard_normal(clf.W.shape)  # keep |w| away from 0 where |.| has a kink
    loss, grad = clf.loss(X, y, 0.7)
    data_loss = (svm_loss_vectorized if cls is LinearSVM else softmax_loss_vectorized)(
        clf.W, X, y, 0.0
    )[0]
    l1 = np.abs(clf.W).sum()
    l2 = (clf.W**2).sum()
    expected = 0.7 * l1 if regularization == "l1" else 0.7 * (0.3 * l1 + 0.7 * l2)
    assert loss - data_loss == pytest.approx(expected, rel=1e-10)

    def f(w):
        saved = clf.W
        clf.W = w
        try:
            return clf.loss(X, y, 0.7)[0]
        finally:
            clf.W = saved

    num = eval_numerical_gradient(f, clf.W.copy(), verbose=False)
    assert rel_error(num, grad) < 1e-6


def test_l1_gives_sparser_weights_than_l2(rng):
    X, y = _blobs(rng, n=400, d=30)
    w = {}
    for reg_kind in ("l2", "l1"):
        clf = Softmax(regularization=reg_kind, seed=0)
        clf.train(X, y, learning_rate=1e-2, reg=5e-2, num_iters=400, batch_size=100)
        w[reg_kind] = np.mean(np.abs(clf.W) < 1e-3)
    assert w["l1"] > w["l2"] + 0.2


def test_float64_data_trains_in_float64_and_momentum_decay_work(rng):
    X, y = _blobs(rng, dtype=np.float64)
    clf = Softmax(seed=0)
    history = clf.train(
        X, y, learning_rate=1e-2, num_iters=200, batch_size=50, momentum=0.9, lr_decay=0.9
    )
    assert clf.W.dtype == np.float64
    assert history[-1] < history[0]
    assert clf.score(X, y) > 0.95


def test_training_continues_from_existing_weights(rng):
    X, y = _blobs(rng)
    clf = LinearSVM(seed=0)
    clf.train(X, y, num_iters=10, batch_size=20)
    W_first = clf.W.copy()
    clf.train(X, y, num_iters=10, batch_size=20)
    assert clf.W.shape == W_first.shape and not np.array_equal(W_first, clf.W)


@pytest.mark.parametrize("cls", MODELS)
def test_bad_input(rng, cls):
    X, y = _blobs(rng, n=30)
    clf = cls(seed=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        clf.train(X, y, batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be at most the number of training"):
        clf.train(X, y, batch_size=31)
    with pytest.raises(ValueError, match="reg must be >= 0"):
        clf.train(X, y, reg=-1.0, batch_size=10)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        clf.train(X, y, learning_rate=0.0, batch_size=10)
    X_nan = X.copy()
    X_nan[4, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        clf.train(X_nan, y, batch_size=10)
    with pytest.raises(ValueError, match="X has 30 rows but y has 29 labels"):
        clf.train(X, y[:-1], batch_size=10)
    with pytest.raises(ValueError, match="y must be non-negative"):
        clf.train(X, np.full(30, -1), batch_size=10)
    with pytest.raises(ValueError, match="X must be a 2-D"):
        clf.train(X[:, 0], y, batch_size=10)
    with pytest.raises(ValueError, match="regularization must be one of"):
        cls(regularization="l3")
    with pytest.raises(ValueError, match="l1_ratio must be <= 1"):
        cls(l1_ratio=1.5)
    clf.train(X, y, num_iters=2, batch_size=10, num_classes=3)
    with pytest.raises(ValueError, match=r"y must be class indices in \[0, 3\)"):
        clf.train(X, np.full(30, 3), batch_size=10)
    with pytest.raises(ValueError, match=r"X must have W.shape\[0\] = 6 columns"):
        clf.train(X[:, :4], y, batch_size=10)
    with pytest.raises(ValueError, match=r"X must have W.shape\[0\] = 6 columns"):
        clf.predict(X[:, :4])
    with pytest.raises(ValueError, match=r"X_batch must have W.shape\[0\] = 6 columns"):
        clf.loss(X[:, :4], y, 0.0)
    with pytest.raises(ValueError, match=r"y_batch must be class indices in \[0, 3\)"):
        clf.loss(X, np.full(30, 5), 0.0)


@pytest.mark.parametrize("cls", MODELS)
def test_loss_errors_name_the_cs231n_arguments(rng, cls):
    X, y = _blobs(rng, n=30)
    clf = cls(seed=0)
    clf.train(X, y, num_iters=1, batch_size=10, num_classes=3)
    with pytest.raises(TypeError, match="X_batch"):
        clf.loss(None, y, 0.0)
    with pytest.raises(ValueError, match="X_batch contains NaN"):
        clf.loss(np.full_like(X, np.nan), y, 0.0)
    with pytest.raises(ValueError, match="X_batch must be a 2-D"):
        clf.loss(X[None], y, 0.0)
    with pytest.raises(TypeError, match="y_batch"):
        clf.loss(X, None, 0.0)
    with pytest.raises(ValueError, match="y_batch must hold integers"):
        clf.loss(X, y + 0.5, 0.0)
    with pytest.raises(ValueError, match="X_batch has 30 rows but y_batch has 29 labels"):
        clf.loss(X, y[:-1], 0.0)
    with pytest.raises(ValueError, match="X_batch has 29 rows but y_batch has 30 labels"):
        clf.loss(X[:-1], y, 0.0)
    # lists and non-contiguous arrays give the same result as C-ordered arrays
    loss, dW = clf.loss(X, y, 0.1)
    loss_list, dW_list = clf.loss(X.tolist(), y.tolist(), 0.1)
    Xf = np.asfortranarray(X)
    loss_f, dW_f = clf.loss(Xf, y, 0.1)
    # (a list of float32 values becomes float64, hence the float32 tolerance)
    assert loss_list == pytest.approx(loss, rel=1e-5) and loss_f == pytest.approx(loss)
    np.testing.assert_allclose(dW_list, dW, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dW_f, dW)


@pytest.mark.parametrize("cls", MODELS)
def test_train_errors_name_x_and_y(rng, cls):
    X, y = _blobs(rng, n=30)
    with pytest.raises(ValueError, match="X has 31 rows but y has 30 labels"):
        cls(seed=0).train(np.vstack([X, X[:1]]), y, batch_size=10)
    y_huge = y.copy()
    y_huge[0] = 10**12
    clf = cls(seed=0)
    with pytest.raises(ValueError, match=r"^y \(maximum label 1000000000000\)"):
        clf.train(X, y_huge, batch_size=10)
    assert clf.W is None
    with pytest.raises(ValueError, match="num_classes=1000000000000"):
        clf.train(X, y, batch_size=10, num_classes=10**12)
    clf.train(X, y, num_iters=1, batch_size=10)
    with pytest.raises(ValueError, match="X has 30 rows but y has 29 labels"):
        clf.score(X, y[:-1])


@pytest.mark.parametrize("seed", [-1, 1.5, 2.0, float("nan"), "3", 1j, np.array(-3), True, False])
def test_seed_must_be_none_or_a_non_negative_int(seed):
    with pytest.raises((TypeError, ValueError), match="seed"):
        LinearClassifier(seed=seed)


def test_seed_accepts_numpy_ints():
    assert LinearClassifier(seed=np.int64(3)).seed == 3
    assert LinearClassifier(seed=None).seed is None


@pytest.mark.parametrize("cls", MODELS)
def test_global_seed_makes_unseeded_training_reproducible(rng, cls):
    X, y = _blobs(rng, n=100)
    runs = []
    for _ in range(2):
        np.random.seed(0)
        clf = cls()
        history = clf.train(X, y, num_iters=20, batch_size=16)
        runs.append((clf.W.copy(), history))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    np.random.seed(1)
    other = cls()
    other.train(X, y, num_iters=20, batch_size=16)
    assert not np.array_equal(other.W, runs[0][0])


@pytest.mark.parametrize("cls", MODELS)
def test_rejected_train_leaves_model_usable(rng, cls):
    X, y = _blobs(rng, n=60, c=3)
    clf = cls(seed=0)
    with pytest.raises(ValueError, match="y must be class indices"):
        clf.train(X, y, num_iters=2, batch_size=10, num_classes=2)
    assert clf.W is None
    clf.train(X, y, num_iters=2, batch_size=10)
    assert clf.W.shape == (X.shape[1], 3)
    assert clf.predict(X).shape == (60,)
