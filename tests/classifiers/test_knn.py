"""KNearestNeighbor: the CS231n interface, its extensions, and real-data agreement with
scikit-learn's brute-force classifier."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.classifiers import KNearestNeighbor
from fastnn.classifiers.knn import vote

K_CHOICES = [1, 3, 5, 8, 10, 12, 15, 20, 50, 100]


@pytest.fixture
def blobs(rng):
    centers = rng.standard_normal((4, 10)) * 3
    y = rng.integers(0, 4, 300)
    X = centers[y] + rng.standard_normal((300, 10))
    return X[:240], y[:240], X[240:], y[240:]


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_distance_methods_agree(blobs, metric):
    X, y, Xt, _ = blobs
    clf = KNearestNeighbor(metric=metric)
    clf.train(X, y)
    d2 = clf.compute_distances_two_loops(Xt)
    d1 = clf.compute_distances_one_loop(Xt)
    d0 = clf.compute_distances_no_loops(Xt)
    assert d2.shape == (60, 240)
    np.testing.assert_allclose(d1, d2, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(d0, d2, rtol=1e-10, atol=1e-8)
    if metric == "l2":
        np.testing.assert_allclose(d2[3, 7], np.sqrt(np.sum((Xt[3] - X[7]) ** 2)))
    else:
        np.testing.assert_allclose(d2[3, 7], np.sum(np.abs(Xt[3] - X[7])))


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("k", [1, 3, 8, 240])
def test_predict_paths_identical(blobs, metric, k):
    X, y, Xt, yt = blobs
    clf = KNearestNeighbor(metric).fit(X, y)
    expected = clf.predict_labels(clf.compute_distances_no_loops(Xt), k=k)
    for num_loops in (0, 1, 2):
        np.testing.assert_array_equal(clf.predict(Xt, k=k, num_loops=num_loops), expected)
    assert clf.predict(Xt, k=k).dtype.kind == "i"
    if k == 3:
        assert clf.score(Xt, yt, k=3) > 0.9  # well-separated blobs


def test_predict_labels_ties_go_to_smaller_label():
    clf = KNearestNeighbor().fit(np.zeros((4, 1)), [3, 1, 1, 3])
    # k=4: two votes each for labels 1 and 3 -> 1
    assert clf.predict_labels(np.array([[0.1, 0.2, 0.3, 0.4]]), k=4).tolist() == [1]
    # k=2: nearest two are labels 3 and 1 -> 1
    assert clf.predict_labels(np.array([[0.1, 0.2, 0.3, 0.4]]), k=2).tolist() == [1]
    # equal distances: the earlier training point wins the k=1 vote
    assert clf.predict_labels(np.array([[0.5, 0.5, 0.5, 0.5]]), k=1).tolist() == [3]
    np.testing.assert_array_equal(vote(np.array([[2, 0, 2, 0], [5, 5, 1, 1]])), [0, 1])


def test_predict_with_duplicate_training_points_matches_predict_labels(rng):
    X = rng.integers(0, 3, (100, 2)).astype(np.float64)  # many exact distance ties
    y = rng.integers(0, 5, 100)
    Xt = rng.integers(0, 3, (40, 2)).astype(np.float64)
    for metric in ("l2", "l1"):
        clf = KNearestNeighbor(metric).fit(X, y)
        for k in (1, 4, 9):
            np.testing.assert_array_equal(
                clf.predict(Xt, k=k), clf.predict_labels(clf.compute_distances_two_loops(Xt), k)
            )


def test_image_shaped_input_and_float32(rng):
    X = rng.random((50, 4, 4, 3)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    clf = KNearestNeighbor().fit(X, y)
    assert clf.X_train.shape == (50, 48)
    assert clf.predict(X[:5], k=1).tolist() == y[:5].tolist()
    dist, idx = clf.kneighbors(X[:5], k=2)
    assert idx[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert dist.dtype == np.float32


def test_bad_input(rng, blobs):
    X, y, Xt, _ = blobs
    with pytest.raises(ValueError, match="metric must be one of"):
        KNearestNeighbor(metric="cosine")
    clf = KNearestNeighbor()
    with pytest.raises(RuntimeError, match="not trained"):
        clf.predict(Xt)
    with pytest.raises(ValueError, match="X has 240 rows but y has 10 labels"):
        clf.train(X, y[:10])
    with pytest.raises(ValueError, match="X contains NaN"):
        clf.train(np.full((3, 2), np.nan), [0, 1, 0])
    clf.train(X, y)
    with pytest.raises(ValueError, match="k must be >= 1"):
        clf.predict(Xt, k=0)
    with pytest.raises(ValueError, match="k must be <= the number of training examples"):
        clf.predict(Xt, k=241)
    with pytest.raises(ValueError, match="num_loops must be <= 2"):
        clf.predict(Xt, num_loops=3)
    with pytest.raises(ValueError, match="X must have 10 features"):
        clf.predict(Xt[:, :5])
    with pytest.raises(ValueError, match="X must be a 2-D"):
        clf.predict(Xt[0])
    bad = Xt.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(bad)
    with pytest.raises(ValueError, match="dists must have one column per training point"):
        clf.predict_labels(np.zeros((2, 5)))
    # Fortran-ordered and integer inputs give the same answers as C-ordered floats
    Xi = np.round(X * 10).astype(np.int64)
    ref = KNearestNeighbor().fit(Xi.astype(np.float64), y).predict(Xi[:20].astype(float), k=3)
    got = KNearestNeighbor().fit(np.asfortranarray(Xi), y).predict(np.asfortranarray(Xi[:20]), 3)
    np.testing.assert_array_equal(got, ref)


# ----------------------------------------------------------------------------------------------
# real data (FASTNN_DATA)


@pytest.fixture(scope="module")
def cifar_subset(data_dir):
    from fastnn.data import load_dataset

    data = load_dataset("cifar10", data_dir)
    X_train = data["X_train"][:5000].reshape(5000, -1)
    X_test = data["X_test"][:500].reshape(500, -1)
    return X_train, data["y_train"][:5000], X_test, data["y_test"][:500]


def test_cifar_l2_k1_accuracy(cifar_subset):
    X_train, y_train, X_test, y_test = cifar_subset
    clf = KNearestNeighbor().fit(X_train, y_train)
    assert clf.score(X_test, y_test, k=1) == 0.244


@pytest.mark.heavy
@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_cifar_identical_to_sklearn_brute(cifar_subset, metric):
    neighbors = pytest.importorskip("sklearn.neighbors")
    X_train, y_train, X_test, _ = cifar_subset
    clf = KNearestNeighbor(metric).fit(X_train, y_train)
    sk_metric = {"l2": "euclidean", "l1": "manhattan"}[metric]
    # scikit-learn's L1 brute force is slow (~12 s per predict here): for L1 its predict runs for
    # k = 1 and 5, and its sorted 100-neighbour lists, voted like its predict does (mode, ties to
    # the smaller label), cover every k.  For L2 its predict runs for every k.
    direct = K_CHOICES if metric == "l2" else [1, 5]
    for k in direct:
        sk = neighbors.KNeighborsClassifier(
            n_neighbors=k, algorithm="brute", metric=sk_metric, n_jobs=2
        ).fit(X_train, y_train)
        np.testing.assert_array_equal(clf.predict(X_test, k=k), sk.predict(X_test), f"k={k}")
    if metric == "l1":
        sk = neighbors.NearestNeighbors(algorithm="brute", metric=sk_metric, n_jobs=2)
        _, sk_idx = sk.fit(X_train).kneighbors(X_test, n_neighbors=max(K_CHOICES))
        for k in K_CHOICES:
            np.testing.assert_array_equal(
                clf.predict(X_test, k=k), vote(y_train[sk_idx[:, :k]]), f"k={k}"
            )


# ----------------------------------------------------------------------------------------------
# review fixes


@pytest.mark.parametrize("k", [1, 2, 5, 8])
def test_vote_by_sorting_equals_dense_vote(rng, k):
    from fastnn.classifiers.knn import _vote_by_sorting

    labels = rng.integers(0, 7, size=(300, k))
    np.testing.assert_array_equal(_vote_by_sorting(labels), vote(labels))


def test_huge_label_values_vote_in_bounded_memory():
    # a dense count table would need 8 TiB for label 2**40
    clf = KNearestNeighbor().fit(np.array([[0.0], [1.0], [5.0]]), [2**40, 3, 2**40])
    np.testing.assert_array_equal(clf.predict(np.array([[0.1], [4.0]]), k=1), [2**40, 2**40])
    np.testing.assert_array_equal(clf.predict(np.array([[0.6]]), k=2), [3])  # tie -> smaller


def test_score_before_training_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not trained"):
        KNearestNeighbor().score(np.zeros((2, 2)), [0, 1])


def test_length_mismatch_names_x_and_y():
    X = np.arange(12.0).reshape(4, 3)
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="X has 1 rows but y has 4 labels"):
        KNearestNeighbor().train(X[None], y)
    with pytest.raises(ValueError, match="X has 5 rows but y has 4 labels"):
        KNearestNeighbor().fit(np.vstack([X, X[:1]]), y)
    knn = KNearestNeighbor().fit(X.tolist(), y.tolist())
    with pytest.raises(ValueError, match="X has 2 rows but y has 4 labels"):
        knn.score(X[:2], y)
    assert knn.score(np.asfortranarray(X), y) == 1.0
