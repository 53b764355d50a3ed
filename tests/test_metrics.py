"""fastnn.metrics: accuracy of labels and of models (predict-style and CS231n loss-style)."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.classifiers import FullyConnectedNet, KNearestNeighbor
from fastnn.metrics import accuracy, model_accuracy, predict_in_batches


def test_accuracy_counts_equal_labels():
    assert accuracy([0, 1, 2, 2], np.array([0, 1, 1, 2])) == 0.75
    assert accuracy(np.array([3]), [3]) == 1.0


@pytest.mark.parametrize(
    ("y_true", "y_pred", "error", "match"),
    [
        ([0, 1], [0], ValueError, "y_true has 2 rows but y_pred has 1 labels"),
        ([], [], ValueError, "y_true must not be empty"),
        ([0, -1], [0, 1], ValueError, "y_true must be non-negative class indices"),
        ([0, 1], [0.5, 1], ValueError, "y_pred must hold integers"),
        ([[0, 1]], [[0, 1]], ValueError, "y_true must be a 1-D array"),
    ],
)
def test_accuracy_bad_input(y_true, y_pred, error, match):
    with pytest.raises(error, match=match):
        accuracy(y_true, y_pred)


class _ScoresModel:
    """A CS231n-style model: loss(X) returns scores; records the batch sizes it saw."""

    def __init__(self, W):
        self.W = W
        self.batches = []

    def loss(self, X, y=None):
        self.batches.append(X.shape[0])
        return X @ self.W


def test_model_accuracy_of_a_scores_model_is_batched(rng):
    X = rng.standard_normal((25, 4))
    W = rng.standard_normal((4, 3))
    y = np.argmax(X @ W, axis=1)
    y[:5] = (y[:5] + 1) % 3  # five wrong labels
    model = _ScoresModel(W)
    assert model_accuracy(model, X, y, batch_size=10) == pytest.approx(20 / 25)
    assert model.batches == [10, 10, 5]


def test_model_accuracy_of_a_predict_model_passes_keywords(rng):
    X = rng.standard_normal((30, 5)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    knn = KNearestNeighbor().fit(X, y)
    # 1-NN on its own training data is perfect; k=30 votes the majority class everywhere
    assert model_accuracy(knn, X, y, batch_size=7, k=1) == 1.0
    majority = np.bincount(y).argmax()
    assert model_accuracy(knn, X, y, k=30) == pytest.approx(np.mean(y == majority))


def test_model_accuracy_matches_argmax_of_fc_net_scores(rng):
    X = rng.standard_normal((40, 6))
    y = rng.integers(0, 4, 40)
    net = FullyConnectedNet([8], input_dim=6, num_classes=4, dtype=np.float64)
    expected = np.mean(np.argmax(net.loss(X), axis=1) == y)
    assert model_accuracy(net, X, y, batch_size=16) == pytest.approx(expected)


def test_predict_in_batches_returns_every_label(rng):
    X = rng.standard_normal((11, 2))
    labels = predict_in_batches(_ScoresModel(np.eye(2)), X, batch_size=4)
    np.testing.assert_array_equal(labels, np.argmax(X, axis=1))
    assert labels.dtype == np.intp


def test_model_accuracy_bad_input(rng):
    X = rng.standard_normal((5, 2))
    model = _ScoresModel(np.eye(2))
    with pytest.raises(TypeError, match="model must have predict"):
        model_accuracy(object(), X, [0] * 5)
    with pytest.raises(ValueError, match="X has 5 rows but y has 4 labels"):
        model_accuracy(model, X, [0] * 4)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        model_accuracy(model, X, [0] * 5, batch_size=0)
    with pytest.raises(ValueError, match="X must not be empty"):
        model_accuracy(model, np.zeros((0, 2)), [])
    bad = _ScoresModel(np.eye(2)[:, :1].ravel())  # loss returns 1-D scores
    with pytest.raises(ValueError, match=r"model.loss\(X\) must return class scores"):
        model_accuracy(bad, X, [0] * 5)


def test_model_accuracy_progress_bar_is_labelled(rng, capsys):
    X = rng.standard_normal((6, 2))
    y = np.argmax(X, axis=1)
    assert model_accuracy(_ScoresModel(np.eye(2)), X, y, batch_size=2, show_progress=True,
                          desc="scoring") == 1.0
    assert "scoring" in capsys.readouterr().err


@pytest.mark.parametrize("n_true,n_pred", [(5, 4), (4, 5)])
def test_accuracy_length_mismatch_names_both_arguments(n_true, n_pred):
    with pytest.raises(ValueError, match=r"y_pred and y_true have different lengths"):
        accuracy(np.zeros(n_true, dtype=int), np.zeros(n_pred, dtype=int))


def test_model_accuracy_length_mismatch_names_X_and_y():
    model = KNearestNeighbor().fit(np.eye(3), [0, 1, 2])
    with pytest.raises(ValueError, match=r"y and X have different lengths"):
        model_accuracy(model, np.eye(3), [0, 1])


def test_accuracy_ragged_labels_are_a_value_error_naming_them():
    with pytest.raises(ValueError, match=r"\by_pred\b"):
        accuracy([0, 1], [[0], [1, 2]])
