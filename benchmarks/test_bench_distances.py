"""pytest-benchmark: pairwise distances and k-NN prediction, fastnn vs its twins and peers.

Run: ``python -m pytest benchmarks/test_bench_distances.py --benchmark-group-by=group``.
Groups (float32, 2 threads):

* ``l2 ladder`` / ``l1 ladder`` (20 x 500 rows of 3,072): naive two loops, one loop, NumPy
  no-loops, compiled;
* ``l2 500x5000x3072`` / ``l1 500x5000x3072``: NumPy no-loops (L2), compiled, and the peers
  ``torch.cdist``, ``scipy.spatial.distance.cdist``, ``sklearn.metrics.pairwise_distances``;
* ``knn predict k=10 l2|l1 500x5000x3072``: KNearestNeighbor.predict vs
  ``KNeighborsClassifier(algorithm="brute", n_jobs=2)``.

With FASTNN_DATA set, ``knn predict fashion-mnist 1000 queries l1`` times the real task.
Every benchmark checks its result against the fastnn reference, so a fast wrong answer fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.classifiers import KNearestNeighbor
from fastnn.kernels import pairwise_distances

FULL = (500, 5000, 3072)
LADDER = (20, 500, 3072)
SLOW = {"rounds": 2, "iterations": 1, "warmup_rounds": 0}  # peers taking seconds per call


def _data(m, n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (m, d)).astype(np.float32)
    Y = rng.integers(0, 256, (n, d)).astype(np.float32)
    return X, Y, rng.integers(0, 10, n)


@pytest.fixture(scope="module")
def full():
    X, Y, y = _data(*FULL)
    ref = {m: pairwise_distances(X, Y, m) for m in ("l2", "l1")}
    return X, Y, y, ref


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("impl", ["naive", "one_loop", "vectorized", "compiled"])
def test_ladder(benchmark, impl, metric):
    X, Y, _ = _data(*LADDER)
    benchmark.group = f"{metric} ladder 20x500x3072"
    out = benchmark(pairwise_distances, X, Y, metric, impl=impl)
    np.testing.assert_allclose(out, pairwise_distances(X, Y, metric), rtol=1e-4)


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_compiled(benchmark, full, metric):
    X, Y, _, ref = full
    benchmark.group = f"{metric} 500x5000x3072"
    out = benchmark(pairwise_distances, X, Y, metric)
    np.testing.assert_array_equal(out, ref[metric])


def test_numpy_no_loops_l2(benchmark, full):
    X, Y, _, ref = full
    benchmark.group = "l2 500x5000x3072"
    out = benchmark(pairwise_distances, X, Y, "l2", impl="vectorized")
    np.testing.assert_allclose(out, ref["l2"], rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_torch_cdist(benchmark, full, peer, metric):
    torch = peer("torch")
    X, Y, _, ref = full
    benchmark.group = f"{metric} 500x5000x3072"
    tx, ty = torch.from_numpy(X), torch.from_numpy(Y)
    p = 2.0 if metric == "l2" else 1.0
    out = benchmark.pedantic(lambda: torch.cdist(tx, ty, p=p), **SLOW).numpy()
    np.testing.assert_allclose(out, ref[metric], rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_scipy_cdist(benchmark, full, peer, metric):
    distance = peer("scipy.spatial.distance")
    X, Y, _, ref = full
    benchmark.group = f"{metric} 500x5000x3072"
    name = "euclidean" if metric == "l2" else "cityblock"
    out = benchmark.pedantic(lambda: distance.cdist(X, Y, name), **SLOW)
    np.testing.assert_allclose(out, ref[metric], rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_sklearn_pairwise(benchmark, full, peer, metric):
    pairwise = peer("sklearn.metrics")
    X, Y, _, ref = full
    benchmark.group = f"{metric} 500x5000x3072"
    name = "euclidean" if metric == "l2" else "manhattan"
    out = benchmark.pedantic(lambda: pairwise.pairwise_distances(X, Y, metric=name), **SLOW)
    np.testing.assert_allclose(out, ref[metric], rtol=1e-3, atol=1e-1)


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_knn_predict_fastnn(benchmark, full, metric):
    X, Y, y, _ = full
    benchmark.group = f"knn predict k=10 {metric} 500x5000x3072"
    clf = KNearestNeighbor(metric).fit(Y, y)
    out = benchmark(clf.predict, X, 10)
    np.testing.assert_array_equal(out, clf.predict_labels(pairwise_distances(X, Y, metric), 10))


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_knn_predict_sklearn_brute(benchmark, full, peer, bench_threads, metric):
    neighbors = peer("sklearn.neighbors")
    X, Y, y, _ = full
    benchmark.group = f"knn predict k=10 {metric} 500x5000x3072"
    sk_metric = "euclidean" if metric == "l2" else "manhattan"
    clf = neighbors.KNeighborsClassifier(
        n_neighbors=10, algorithm="brute", metric=sk_metric, n_jobs=bench_threads
    ).fit(Y, y)
    out = benchmark.pedantic(clf.predict, args=(X,), **SLOW)
    np.testing.assert_array_equal(out, KNearestNeighbor(metric).fit(Y, y).predict(X, k=10))


@pytest.mark.parametrize("who", ["fastnn", "sklearn brute"])
def test_knn_fashion_mnist_1000_queries_l1(benchmark, real_data, peer, bench_threads, who):
    data = real_data("fashion-mnist")
    X_train = data["X_train"].reshape(len(data["X_train"]), -1)
    X_test = data["X_test"][:1000].reshape(1000, -1)
    benchmark.group = "knn predict fashion-mnist 1000 queries l1 k=5"
    if who == "fastnn":
        clf = KNearestNeighbor("l1").fit(X_train, data["y_train"])
        out = benchmark.pedantic(clf.predict, args=(X_test, 5), **SLOW)
    else:
        neighbors = peer("sklearn.neighbors")
        clf = neighbors.KNeighborsClassifier(
            n_neighbors=5, algorithm="brute", metric="manhattan", n_jobs=bench_threads
        ).fit(X_train, data["y_train"])
        out = benchmark.pedantic(clf.predict, args=(X_test,), rounds=1, iterations=1)
    assert np.mean(out == data["y_test"][:1000]) > 0.8
