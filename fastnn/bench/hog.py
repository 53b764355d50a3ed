"""``fastnn bench hog``: HOG features, looped vs NumPy twin vs compiled.

The issue's reference: 1,000 32x32 RGB images (CIFAR-10 size, CS231n's 8-pixel cells, 144
features), where the compiled kernel should be at least 10x faster than the NumPy twin with
identical results. Also Fashion-MNIST-shaped batches (28x28x1, 4-pixel cells, 441 features) and,
when the real data is found (FASTNN_DATA), all 70,000 Fashion-MNIST images. The naive loops are
timed on a few images only (they take about a second per 50 images). ``--compare`` adds
CS231n's own ``hog_feature`` (SciPy's ``uniform_filter``) looped over the images.
"""

from __future__ import annotations

import numpy as np

from fastnn._config import get_num_threads
from fastnn.bench import BenchRow, register_suite, time_call
from fastnn.bench._reference import cs231n_hog_feature
from fastnn.kernels import available_impls
from fastnn.kernels.hog import hog_descriptors


def _images(n: int, shape: tuple[int, ...], dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(n, *shape)).astype(dtype)


def _time_impls(images, ppc, label, repeat, impls, rows):
    """Time ``hog_descriptors`` (validation included, as users call it) for each impl."""
    threads = get_num_threads()
    results = {}
    for impl in impls:
        seconds = time_call(
            lambda i=impl: hog_descriptors(images, ppc, 9, impl=i, num_threads=threads),
            repeat=repeat,
        )
        rows.append(BenchRow("hog", label, impl, seconds))
        results[impl] = hog_descriptors(images, ppc, 9, impl=impl)
    return results


def _cs231n_row(images, label, repeat) -> list[BenchRow]:
    try:
        import scipy.ndimage  # noqa: F401  (the reference needs it)
    except ImportError:
        return []

    seconds = time_call(lambda: [cs231n_hog_feature(im) for im in images], repeat=repeat, min_time=0.0)
    return [BenchRow("hog", label, "CS231n hog_feature loop (scipy)", seconds)]


@register_suite("hog")
def suite(compare: bool = False, quick: bool = False) -> list[BenchRow]:
    """HOG over 1,000 32x32 RGB images and Fashion-MNIST-shaped batches."""
    repeat = 3 if quick else 5
    fast_impls = [impl for impl in available_impls("hog") if impl != "naive"]
    rows: list[BenchRow] = []

    n = 200 if quick else 1000
    for dtype in (np.float64, np.float32):
        images = _images(n, (32, 32, 3), dtype)
        label = f"{n}x32x32x3 {np.dtype(dtype).name}, 8px cells"
        results = _time_impls(images, 8, label, repeat, fast_impls, rows)
        if "compiled" in results and "vectorized" in results:
            diff = np.abs(
                results["compiled"].astype(np.float64) - results["vectorized"].astype(np.float64)
            ).max()
            print(f"hog {label}: max |compiled - vectorized| = {diff:.3g}")
        if compare and dtype == np.float64:
            rows.extend(_cs231n_row(images, label, 3 if quick else 1))

    few = _images(10, (32, 32, 3), np.float64)
    _time_impls(few, 8, "10x32x32x3 float64, 8px cells", 1, ["naive", *fast_impls], rows)

    m = 2000 if quick else 10000
    fmnist = _images(m, (28, 28, 1), np.float32, seed=1)
    _time_impls(fmnist, 4, f"{m}x28x28x1 float32, 4px cells", repeat, fast_impls, rows)

    if not quick:
        rows.extend(_full_fashion_mnist_rows())
    return rows


def _full_fashion_mnist_rows() -> list[BenchRow]:
    """All 70,000 real Fashion-MNIST images through ``hog_features`` (when the data is found)."""
    from fastnn.data import DatasetError, load_dataset
    from fastnn.features import hog_features

    try:
        data = load_dataset("fashion-mnist")
    except (DatasetError, OSError, ValueError):
        return []
    images = np.concatenate([data["X_train"], data["X_test"]])
    rows = []
    for ppc in (4, 7):
        seconds = time_call(lambda p=ppc: hog_features(images, p), repeat=3, min_time=0.0)
        rows.append(
            BenchRow("hog_features", f"Fashion-MNIST {len(images)}x28x28x1, {ppc}px cells",
                     "compiled", seconds)
        )
    return rows
