"""``fastnn bench distances``: pairwise L2/L1 distances and k-NN prediction.

Shapes follow the CS231n k-NN exercise: 500 test images against 5,000 training images of
3,072 raw CIFAR-10 pixels, float32. The naive two-loop version runs on a smaller shape
(20 x 500) so the looped / one-loop / vectorized / compiled ladder is visible in one table.
With ``--compare``: ``torch.cdist`` (p=2, p=1), ``scipy.spatial.distance.cdist``,
``sklearn.metrics.pairwise_distances`` and ``KNeighborsClassifier(algorithm="brute")``,
each with the same thread count as fastnn.

GFLOP/s counts 2*m*n*d for L2 (the matrix product) and 3*m*n*d for L1 (subtract, absolute
value, add) so the two can be compared with the machine's GEMM ceiling.
"""

from __future__ import annotations

import numpy as np

from fastnn._config import get_num_threads
from fastnn.bench import BenchRow, register_suite, time_call

SHAPE_FULL = (500, 5000, 3072)
SHAPE_QUICK = (200, 2000, 3072)
SHAPE_LADDER = (20, 500, 3072)


def _data(m: int, n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Integer pixel values like CIFAR-10, stored as float32.
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (m, d)).astype(np.float32)
    Y = rng.integers(0, 256, (n, d)).astype(np.float32)
    y = rng.integers(0, 10, n)
    return X, Y, y


def _timer(quick: bool):
    """time_call for fast calls; slow peers (seconds per call) are timed with fewer runs."""

    def timed(func) -> float:
        import time

        start = time.perf_counter()
        func()
        first = time.perf_counter() - start
        if first > 1.0:  # warm enough; one more run, median of two
            start = time.perf_counter()
            func()
            return float(np.median([first, time.perf_counter() - start]))
        return time_call(func, repeat=3 if quick else 5, min_time=0.2 if quick else 0.5)

    return timed


def _label(m: int, n: int, d: int) -> str:
    return f"{m}x{d} vs {n}x{d}"


@register_suite("distances")
def distances_suite(compare: bool = False, quick: bool = False) -> list[BenchRow]:
    """Rows: L2 and L1 pairwise distances (ladder and full shape), k-NN predict k=10."""
    from fastnn.classifiers import KNearestNeighbor
    from fastnn.kernels import pairwise_distances

    timed = _timer(quick)
    threads = get_num_threads()
    rows: list[BenchRow] = []

    # 1. the ladder: naive -> one_loop -> vectorized -> compiled, on a small shape
    m, n, d = SHAPE_LADDER
    X, Y, _ = _data(m, n, d)
    for metric, flops in (("l2", 2.0 * m * n * d), ("l1", 3.0 * m * n * d)):
        for impl in ("naive", "one_loop", "vectorized", "compiled"):
            t = timed(lambda impl=impl, metric=metric: pairwise_distances(X, Y, metric, impl=impl))
            rows.append(BenchRow(f"{metric} distances", _label(m, n, d), impl, t, flops))

    # 2. the exercise's shape: vectorized (L2 only: the L1 broadcast would need m*n*d floats)
    m, n, d = SHAPE_QUICK if quick else SHAPE_FULL
    X, Y, y = _data(m, n, d)
    shape = _label(m, n, d)
    peers = _peers(compare, threads)
    for metric, flops in (("l2", 2.0 * m * n * d), ("l1", 3.0 * m * n * d)):
        impls = ("vectorized", "compiled") if metric == "l2" else ("compiled",)
        for impl in impls:
            t = timed(lambda impl=impl, metric=metric: pairwise_distances(X, Y, metric, impl=impl))
            name = "numpy no-loops" if impl == "vectorized" else impl
            rows.append(BenchRow(f"{metric} distances", shape, name, t, flops))
        for name, func in peers.get(metric, []):
            rows.append(BenchRow(f"{metric} distances", shape, name, timed(lambda f=func: f(X, Y)),
                                 flops))

    # 3. k-NN prediction, k = 10
    for metric in ("l2", "l1"):
        clf = KNearestNeighbor(metric).fit(Y, y)
        op = f"knn predict k=10 {metric}"
        rows.append(BenchRow(op, shape, "compiled", timed(lambda c=clf: c.predict(X, k=10))))
        for name, func in peers.get(f"knn-{metric}", []):
            rows.append(BenchRow(op, shape, name, timed(lambda f=func: f(Y, y, X))))
    return rows


def _peers(compare: bool, threads: int) -> dict[str, list]:
    """Optional peer implementations that are installed, keyed by metric."""
    peers: dict[str, list] = {"l2": [], "l1": [], "knn-l2": [], "knn-l1": []}
    if not compare:
        return peers
    try:
        import torch

        torch.set_num_threads(threads)

        def cdist(p):
            return lambda X, Y: torch.cdist(torch.from_numpy(X), torch.from_numpy(Y), p=p).numpy()

        peers["l2"].append(("torch.cdist(p=2)", cdist(2.0)))
        peers["l1"].append(("torch.cdist(p=1)", cdist(1.0)))
    except ImportError:
        pass
    try:
        from scipy.spatial.distance import cdist as scipy_cdist

        peers["l2"].append(("scipy cdist euclidean", lambda X, Y: scipy_cdist(X, Y, "euclidean")))
        peers["l1"].append(("scipy cdist cityblock", lambda X, Y: scipy_cdist(X, Y, "cityblock")))
    except ImportError:
        pass
    try:
        from sklearn.metrics import pairwise_distances as sk_pairwise
        from sklearn.neighbors import KNeighborsClassifier

        peers["l2"].append(
            ("sklearn pairwise_distances", lambda X, Y: sk_pairwise(X, Y, metric="euclidean"))
        )
        peers["l1"].append(
            ("sklearn pairwise_distances", lambda X, Y: sk_pairwise(X, Y, metric="manhattan"))
        )
        for metric, sk_metric in (("l2", "euclidean"), ("l1", "manhattan")):
            def knn(Y, y, X, sk_metric=sk_metric):
                clf = KNeighborsClassifier(
                    n_neighbors=10, algorithm="brute", metric=sk_metric, n_jobs=threads
                )
                return clf.fit(Y, y).predict(X)

            peers[f"knn-{metric}"].append((f"sklearn brute n_jobs={threads}", knn))
    except ImportError:
        pass
    return peers
