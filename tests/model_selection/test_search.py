"""Random and grid hyperparameter search on a validation split."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastnn.classifiers import LinearSVM, Softmax
from fastnn.model_selection import (
    LogUniform,
    Uniform,
    grid_search,
    hyperparameter_search,
    random_search,
)


def _blobs(rng, n=500, d=6, c=3):
    centers = rng.standard_normal((c, d)) * 3.0
    y = rng.integers(0, c, n)
    X = centers[y] + rng.standard_normal((n, d))
    return np.hstack([X, np.ones((n, 1))]).astype(np.float32), y


FAST = {"num_iters": 60, "batch_size": 50}


def test_random_search_samples_log_uniformly_and_sorts(rng):
    X, y = _blobs(rng)
    space = {"learning_rate": (1e-6, 1e-1), "reg": (1e-6, 1e-1)}
    result = random_search(Softmax, space, X, y, num_trials=12, train_kwargs=FAST, seed=0)
    assert result.method == "random"
    assert len(result.results) == 12
    val = [r["val_acc"] for r in result.results]
    assert val == sorted(val, reverse=True)
    assert result.best_val_acc == val[0] == max(val)
    assert result.best_params == result.results[0]["params"]
    for r in result.results:
        assert 1e-6 <= r["params"]["learning_rate"] <= 1e-1
        assert 0.0 <= r["train_acc"] <= 1.0 and r["time_s"] >= 0.0
    # the best model is a trained model of the best trial; tiny rates learn nothing here
    assert result.best_val_acc > 0.9
    assert isinstance(result.best_model, Softmax) and result.best_model.W is not None
    table = result.table()
    assert table.splitlines()[0].split() == [
        "learning_rate",
        "reg",
        "train_acc",
        "val_acc",
        "final_loss",
        "time_s",
    ]
    assert len(table.splitlines()) == 14  # header, rule, 12 rows


def test_log_uniform_sampling_is_uniform_in_log_space():
    rng = np.random.default_rng(0)
    dist = LogUniform(1e-6, 1e-2)
    logs = np.log10([dist.sample(rng) for _ in range(4000)])
    assert logs.min() >= -6 and logs.max() <= -2
    hist, _ = np.histogram(logs, bins=4, range=(-6, -2))  # one bin per decade
    assert np.all(np.abs(hist - 1000) < 120)
    np.testing.assert_allclose(dist.grid(5), [1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
    assert Uniform(0.0, 1.0).grid(3) == [0.0, 0.5, 1.0]


def test_search_is_reproducible_with_a_seed(rng):
    X, y = _blobs(rng)
    space = {"learning_rate": (1e-4, 1e-1), "reg": (1e-6, 1e-1)}
    a = random_search(LinearSVM, space, X, y, num_trials=4, train_kwargs=FAST, seed=7)
    b = random_search(LinearSVM, space, X, y, num_trials=4, train_kwargs=FAST, seed=7)
    assert [r["params"] for r in a.results] == [r["params"] for r in b.results]
    assert [r["val_acc"] for r in a.results] == [r["val_acc"] for r in b.results]
    np.testing.assert_array_equal(a.best_model.W, b.best_model.W)


def test_grid_search_tries_every_combination(rng):
    X, y = _blobs(rng)
    space = {"learning_rate": [1e-7, 1e-2], "reg": LogUniform(1e-5, 1e-3)}
    result = grid_search(Softmax, space, X, y, points_per_range=3, train_kwargs=FAST, seed=0)
    assert result.method == "grid"
    combos = {(r["params"]["learning_rate"], round(r["params"]["reg"], 12)) for r in result.results}
    assert combos == {(lr, reg) for lr in (1e-7, 1e-2) for reg in (1e-5, 1e-4, 1e-3)}
    assert result.best_params["learning_rate"] == 1e-2


def test_default_method_is_random_and_constructor_params_are_routed(rng):
    X, y = _blobs(rng)
    result = hyperparameter_search(
        Softmax,
        {"learning_rate": (1e-3, 1e-1), "regularization": ["l1", "elasticnet"]},
        X,
        y,
        num_trials=3,
        train_kwargs=FAST,
        seed=1,
    )
    assert result.method == "random"
    assert result.best_model.regularization == result.best_params["regularization"]
    assert {r["params"]["regularization"] for r in result.results} <= {"l1", "elasticnet"}


def test_explicit_validation_set_and_factory(rng):
    X, y = _blobs(rng)
    X_val, y_val = X[:100], y[:100]
    result = random_search(
        lambda: LinearSVM(seed=0),
        {"learning_rate": [1e-2]},
        X[100:],
        y[100:],
        X_val=X_val,
        y_val=y_val,
        num_trials=1,
        train_kwargs=FAST,
    )
    assert result.best_val_acc == pytest.approx(np.mean(result.best_model.predict(X_val) == y_val))


def test_diverging_trials_are_reported_not_raised(rng):
    X, y = _blobs(rng)
    X = X * 1e18  # any step size explodes
    with np.errstate(all="raise"):  # the search silences its own overflow warnings
        result = grid_search(Softmax, {"learning_rate": [1e3]}, X, y, train_kwargs=FAST, seed=0)
    assert not math.isfinite(result.results[0]["final_loss"])


def test_bad_input(rng):
    X, y = _blobs(rng, n=50)
    with pytest.raises(ValueError, match="space must name at least one hyperparameter"):
        random_search(Softmax, {}, X, y)
    with pytest.raises(ValueError, match="space must name at least one hyperparameter"):
        grid_search(Softmax, {}, X, y)
    with pytest.raises(ValueError, match=r"space\['reg'\] must hold at least one value"):
        grid_search(Softmax, {"reg": []}, X, y)
    with pytest.raises(ValueError, match=r"space\['reg'\]: LogUniform needs low < high"):
        random_search(Softmax, {"reg": (1e-2, 1e-4)}, X, y)
    with pytest.raises(ValueError, match=r"space\['reg'\] must be a \(low, high\) range"):
        random_search(Softmax, {"reg": (1e-4, 1e-3, 1e-2)}, X, y)
    with pytest.raises(TypeError, match="space must be a dict"):
        random_search(Softmax, [("reg", 1.0)], X, y)
    with pytest.raises(ValueError, match="neither an argument of Softmax.train nor"):
        random_search(Softmax, {"dropout": [0.5]}, X, y)
    with pytest.raises(ValueError, match="num_trials must be >= 1"):
        random_search(Softmax, {"reg": [0.1]}, X, y, num_trials=0)
    with pytest.raises(ValueError, match="validation_size must leave training examples"):
        random_search(Softmax, {"reg": [0.1]}, X, y, validation_size=50)
    with pytest.raises(ValueError, match="X_val and y_val must be given together"):
        random_search(Softmax, {"reg": [0.1]}, X, y, X_val=X)
    with pytest.raises(ValueError, match="train_kwargs and space both set"):
        random_search(Softmax, {"reg": [0.1]}, X, y, train_kwargs={"reg": 0.2})
    with pytest.raises(ValueError, match="method must be one of"):
        hyperparameter_search(Softmax, {"reg": [0.1]}, X, y, method="bayes")
    for bad in (0, -3):
        with pytest.raises(ValueError, match="max_train_eval must be >= 1"):
            random_search(Softmax, {"reg": [0.1]}, X, y, max_train_eval=bad)
    with pytest.raises(TypeError, match="max_train_eval"):
        random_search(Softmax, {"reg": [0.1]}, X, y, max_train_eval=2.5)
    # errors from training itself surface unchanged (here: an empty minibatch)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        random_search(Softmax, {"reg": [0.1]}, X, y, train_kwargs={"batch_size": 0})


def test_verbose_prints_trials_and_show_progress_draws_the_bar(rng, capsys):
    X, y = _blobs(rng, n=100)
    random_search(Softmax, {"reg": [0.1]}, X, y, num_trials=2, train_kwargs=FAST, seed=0,
                  verbose=True, show_progress=False)
    out = capsys.readouterr()
    assert out.out.count("trial ") == 2 and "random search" not in out.err
    random_search(Softmax, {"reg": [0.1]}, X, y, num_trials=2, train_kwargs=FAST, seed=0,
                  show_progress=True)
    out = capsys.readouterr()
    assert out.out == "" and "random search" in out.err


def test_split_is_the_shared_seeded_one(rng):
    """The search's own split is train_validation_split with the search's generator."""
    from fastnn.model_selection import train_validation_split

    X, y = _blobs(rng, n=80)
    result = random_search(Softmax, {"reg": [0.1]}, X, y, num_trials=1, train_kwargs=FAST,
                           seed=5, validation_size=12)
    _, _, X_val, y_val = train_validation_split(X, y, 12, seed=np.random.default_rng(5))
    expected = float(np.mean(result.best_model.predict(X_val) == y_val))
    assert result.best_val_acc == expected
