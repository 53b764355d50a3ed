"""The loaders on the real data under FASTNN_DATA (CI: ../shared/data); skipped when unset."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from fastnn.data import (
    DATASETS,
    find_dataset,
    get_CIFAR10_data,
    load_CIFAR10,
    load_dataset,
    load_mnist,
    load_sample,
)
from fastnn.data.registry import file_digest

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def fashion(data_dir):
    return load_dataset("fashion-mnist", data_dir)


def test_fashion_mnist_full(fashion):
    assert fashion["X_train"].shape == (60000, 28, 28, 1)
    assert fashion["X_test"].shape == (10000, 28, 28, 1)
    assert fashion["X_train"].dtype == np.float32 and fashion["y_train"].dtype == np.int64
    assert np.bincount(fashion["y_train"]).tolist() == [6000] * 10
    assert np.bincount(fashion["y_test"]).tolist() == [1000] * 10
    assert fashion["X_train"].min() == 0 and fashion["X_train"].max() == 255
    assert fashion["y_train"][:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]


def test_fashion_mnist_sha256_matches_registry(data_dir):
    folder = find_dataset("fashion-mnist", data_dir)
    for spec in DATASETS["fashion-mnist"].files:
        assert file_digest(folder / spec.name) == spec.sha256[0], spec.name
        raw = gzip.decompress((folder / spec.name).read_bytes())

        assert hashlib.sha256(raw).hexdigest() == spec.raw_sha256[0], spec.raw_name


def test_samples_are_cut_from_the_real_data(fashion, samples_dir):
    """The packaged sample is the first 200/50 images per class; the test sample first-N."""
    sample = load_sample()
    for split, per_class in (("train", 200), ("test", 50)):
        y = fashion[f"y_{split}"]
        idx = np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)]))
        np.testing.assert_array_equal(sample[f"X_{split}"], fashion[f"X_{split}"][idx])
        np.testing.assert_array_equal(sample[f"y_{split}"], y[idx])
    X, y = load_mnist(samples_dir / "fashion-mnist", "train", flatten=False)
    np.testing.assert_array_equal(X, fashion["X_train"][:300, :, :, 0])
    np.testing.assert_array_equal(y, fashion["y_train"][:300])


def test_cifar_subset(data_dir, samples_dir):
    folder = find_dataset("cifar10", data_dir)
    Xtr, ytr, Xte, yte = load_CIFAR10(folder)
    assert Xtr.shape == (5000, 32, 32, 3) and Xte.shape == (1000, 32, 32, 3)
    assert ytr.shape == (5000,) and yte.shape == (1000,)
    assert ytr[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert yte[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert np.bincount(ytr, minlength=10).min() > 400  # every class present
    # The committed sample is the first 20 images of each batch.
    Xs, ys, Xst, yst = load_CIFAR10(samples_dir / "cifar-10-batches-py")
    np.testing.assert_array_equal(Xs[:20], Xtr[:20])
    np.testing.assert_array_equal(Xs[20:40], Xtr[1000:1020])
    np.testing.assert_array_equal(ys[20:40], ytr[1000:1020])
    np.testing.assert_array_equal(Xst, Xte[:20])
    np.testing.assert_array_equal(yst, yte[:20])
    d = load_dataset("cifar10", data_dir)
    assert d["X_train"].shape == (5000, 32, 32, 3) and d["X_train"].dtype == np.float32
    np.testing.assert_array_equal(d["X_train"], Xtr)


def test_get_cifar10_data_real(data_dir):
    root = find_dataset("cifar10", data_dir)
    d = get_CIFAR10_data(num_training=4000, num_validation=1000, num_test=1000, root=root)
    assert d["X_train"].shape == (4000, 3, 32, 32)
    assert d["X_val"].shape == (1000, 3, 32, 32)
    assert d["X_test"].shape == (1000, 3, 32, 32)
    assert d["y_train"].shape == (4000,) and d["y_val"].shape == (1000,)
    np.testing.assert_allclose(d["X_train"].mean(axis=0), 0, atol=1e-9)
    Xtr, ytr, Xte, _ = load_CIFAR10(root)
    mean = Xtr[:4000].mean(axis=0)
    np.testing.assert_allclose(d["X_val"], (Xtr[4000:] - mean).transpose(0, 3, 1, 2), atol=1e-12)
    np.testing.assert_allclose(d["X_test"], (Xte - mean).transpose(0, 3, 1, 2), atol=1e-12)
    np.testing.assert_array_equal(d["y_val"], ytr[4000:])
    with pytest.raises(ValueError, match="num_training=49000 exceeds the 5000 training images"):
        get_CIFAR10_data(root=root)
    with pytest.raises(ValueError, match="num_validation=1001 is too large"):
        get_CIFAR10_data(num_training=4000, num_validation=1001, root=root)
