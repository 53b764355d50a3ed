"""k-fold splits, generic cross-validation, and the k-NN fast path against the generic one."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.classifiers import KNearestNeighbor
from fastnn.model_selection import CVResult, cross_validate, cross_validate_knn, k_fold_split


@pytest.mark.parametrize("n,num_folds", [(10, 5), (11, 3), (7, 7), (2, 2)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_k_fold_split_partitions(n, num_folds, shuffle):
    splits = k_fold_split(n, num_folds, shuffle=shuffle, seed=0)
    assert len(splits) == num_folds
    all_val = np.concatenate([val for _, val in splits])
    assert sorted(all_val.tolist()) == list(range(n))  # every example validated exactly once
    sizes = [len(val) for _, val in splits]
    assert max(sizes) - min(sizes) <= 1
    for train, val in splits:
        assert len(np.intersect1d(train, val)) == 0
        assert len(train) + len(val) == n
    if not shuffle:
        assert splits[0][1].tolist() == list(range(sizes[0]))  # contiguous, like CS231n


def test_k_fold_split_seeded_shuffle_is_reproducible():
    a = k_fold_split(20, 4, shuffle=True, seed=3)
    b = k_fold_split(20, 4, shuffle=True, seed=3)
    for (ta, va), (tb, vb) in zip(a, b):
        np.testing.assert_array_equal(va, vb)
        np.testing.assert_array_equal(ta, tb)


def test_k_fold_split_bad_input():
    with pytest.raises(ValueError, match="num_folds must be >= 2"):
        k_fold_split(10, 1)
    with pytest.raises(ValueError, match="num_folds must be <= 10"):
        k_fold_split(10, 11)
    with pytest.raises(TypeError, match="num_folds must be an integer"):
        k_fold_split(10, 2.5)


@pytest.fixture
def data(rng):
    centers = rng.standard_normal((3, 6)) * 2
    y = rng.integers(0, 3, 120)
    return centers[y] + rng.standard_normal((120, 6)), y


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_knn_fast_path_equals_generic_cross_validation(data, metric):
    X, y = data
    ks = [1, 3, 5, 8, 20]

    def score(k, X_tr, y_tr, X_val, y_val):
        return KNearestNeighbor(metric).fit(X_tr, y_tr).score(X_val, y_val, k=k)

    generic = cross_validate(score, X, y, ks, num_folds=5, param_name="k")
    fast = cross_validate_knn(X, y, ks, num_folds=5, metric=metric)
    np.testing.assert_array_equal(fast.scores, generic.scores)
    assert fast.values == ks and fast.scores.shape == (5, 5)
    assert fast.best_value == generic.best_value
    assert 0.5 < fast.best_score <= 1


def test_cv_result_summary():
    res = CVResult("k", [1, 3, 5], np.array([[0.5, 0.7], [0.8, 0.8], [0.8, 0.6]]))
    np.testing.assert_allclose(res.mean, [0.6, 0.8, 0.7])
    np.testing.assert_allclose(res.std, [0.1, 0.0, 0.1])
    assert res.best_value == 3 and res.best_index == 1
    assert res.as_dict() == {1: [0.5, 0.7], 3: [0.8, 0.8], 5: [0.8, 0.6]}
    table = res.table()
    assert "mean" in table and "<- best" in table.splitlines()[2]
    # ties in the mean: the first listed value wins
    assert CVResult("k", [5, 1], np.array([[0.5], [0.5]])).best_value == 5


def test_generic_cross_validation_any_hyperparameter(data):
    X, y = data
    seen = []

    def score(shift, X_tr, y_tr, X_val, y_val):
        seen.append((shift, len(X_tr), len(X_val)))
        return shift  # a score that depends only on the value

    res = cross_validate(score, X, y, [0.1, 0.9, 0.5], num_folds=4, param_name="shift")
    assert res.best_value == 0.9
    assert len(seen) == 12 and {s[1] for s in seen} == {90} and {s[2] for s in seen} == {30}
    np.testing.assert_allclose(res.std, 0)


def test_cross_validation_bad_input(data):
    X, y = data
    with pytest.raises(ValueError, match="k_choices must not exceed the training part"):
        cross_validate_knn(X, y, [1, 97], num_folds=5)
    with pytest.raises(ValueError, match="k_choices entries must be >= 1"):
        cross_validate_knn(X, y, [0, 1])
    with pytest.raises(ValueError, match="metric must be one of"):
        cross_validate_knn(X, y, [1], metric="cosine")
    with pytest.raises(ValueError, match="X has 120 rows but y has 10 labels"):
        cross_validate_knn(X, y[:10], [1])
    with pytest.raises(ValueError, match="param_values must contain"):
        cross_validate(lambda *a: 0.0, X, y, [])


# --------------------------------------------------------------------------- bad input (fuzz)


def test_k_fold_split_huge_n_is_a_value_error_before_allocating():
    with pytest.raises(ValueError, match=r"\bn must be <="):
        k_fold_split(10**12, 3, shuffle=True, seed=0)


@pytest.mark.parametrize("seed,exc", [(-1, ValueError), (2.5, TypeError), (4.0, TypeError),
                                      (float("nan"), TypeError), (float("inf"), TypeError),
                                      ("4", TypeError), (True, TypeError), (4 + 1j, TypeError)])
def test_k_fold_split_bad_seed_names_seed(seed, exc):
    with pytest.raises(exc, match=r"\bseed\b"):
        k_fold_split(10, 3, shuffle=True, seed=seed)


def test_k_fold_split_seed_kinds_give_the_same_folds():
    ref = k_fold_split(10, 3, shuffle=True, seed=4)
    for seed in (np.int64(4), np.array(4), np.random.default_rng(4)):
        for (tr, va), (tr_ref, va_ref) in zip(k_fold_split(10, 3, shuffle=True, seed=seed), ref):
            np.testing.assert_array_equal(tr, tr_ref)
            np.testing.assert_array_equal(va, va_ref)


def test_cross_validate_knn_bad_input_names_the_argument(data):
    X, y = data
    with pytest.raises(ValueError, match=r"y and X have different lengths"):
        cross_validate_knn(X[:-1], y, k_choices=[1], num_folds=3)
    with pytest.raises(ValueError, match=r"y and X have different lengths"):
        cross_validate_knn(X[None], y, k_choices=[1], num_folds=3)
    for bad in (None, 3, "13"):
        with pytest.raises(TypeError, match=r"\bk_choices\b"):
            cross_validate_knn(X, y, k_choices=bad, num_folds=3)
    with pytest.raises(TypeError, match=r"\bparam_values\b"):
        cross_validate(lambda *a: 0.0, X, y, param_values=None, num_folds=3)
    # a k array works like the list
    np.testing.assert_array_equal(
        cross_validate_knn(X, y, k_choices=np.array([1, 3]), num_folds=3).scores,
        cross_validate_knn(X, y, k_choices=[1, 3], num_folds=3).scores)
