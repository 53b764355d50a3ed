"""train_validation_split: the one seeded hold-out split of the package."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.model_selection import train_validation_split


def test_split_partitions_the_examples_in_order():
    X = np.arange(40).reshape(20, 2)
    y = np.arange(20)
    X_tr, y_tr, X_val, y_val = train_validation_split(X, y, 5, seed=3)
    assert X_tr.shape == (15, 2) and X_val.shape == (5, 2)
    assert sorted(np.concatenate([y_tr, y_val]).tolist()) == list(range(20))
    assert np.all(np.diff(y_tr) > 0) and np.all(np.diff(y_val) > 0)  # original order kept
    np.testing.assert_array_equal(X_tr[:, 0] // 2, y_tr)  # rows stay with their labels


def test_fraction_seed_and_generator():
    X = np.zeros((100, 3, 2))  # images work too: only the first axis is split
    y = np.arange(100)
    _, _, _, y_val = train_validation_split(X, y, 0.25, seed=7)
    assert y_val.shape == (25,)
    _, _, _, again = train_validation_split(X, y, 0.25, seed=7)
    np.testing.assert_array_equal(y_val, again)
    # a Generator is used (and advanced) as given: same draw as default_rng(seed)
    rng = np.random.default_rng(7)
    _, _, _, from_rng = train_validation_split(X, y, 0.25, seed=rng)
    np.testing.assert_array_equal(y_val, from_rng)
    assert rng.bit_generator.state != np.random.default_rng(7).bit_generator.state
    # tiny fractions still validate on one example
    assert train_validation_split(X, y, 0.001, seed=0)[3].shape == (1,)


@pytest.mark.parametrize(
    ("size", "error", "match"),
    [
        (20, ValueError, r"validation_size must leave training examples: .* \(at most 19\)"),
        (0, ValueError, "validation_size must be >= 1"),
        (1.0, ValueError, "validation_size must be < 1"),
        (0.0, ValueError, "validation_size must be > 0"),
        (True, TypeError, "validation_size must be an integer, got bool"),
        ("10%", TypeError, "validation_size must be a fraction"),
    ],
)
def test_bad_validation_size(size, error, match):
    with pytest.raises(error, match=match):
        train_validation_split(np.zeros((20, 2)), np.zeros(20), size)


def test_mismatched_lengths_name_y():
    with pytest.raises(ValueError, match="y must have 20 entries"):
        train_validation_split(np.zeros((20, 2)), np.zeros(19), 5)


@pytest.mark.parametrize("seed,exc", [(-1, ValueError), (2.5, TypeError), (True, TypeError),
                                      ("3", TypeError)])
def test_bad_seed_names_seed(seed, exc):
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    with pytest.raises(exc, match=r"\bseed\b"):
        train_validation_split(X, y, 3, seed=seed)
