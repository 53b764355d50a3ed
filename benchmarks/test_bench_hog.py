"""pytest-benchmark: HOG, NumPy twin vs compiled (2 threads), plus the naive loops on a few images.

Run: ``python -m pytest benchmarks/test_bench_hog.py --benchmark-group-by=group``. The issue asks
the compiled kernel to be at least 10x faster than the NumPy twin over 1,000 32x32 images with
identical results: compare the two rows of group "hog 1000x32x32x3"; each benchmark also checks
its result against the twin (to 1e-6). Timing only: nothing here asserts speed.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn.kernels import available_impls
from fastnn.kernels.hog import hog_descriptors

FAST_IMPLS = [impl for impl in available_impls("hog") if impl != "naive"]
THREADS = min(2, fastnn.max_num_threads())


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    previous = fastnn.get_num_threads()
    fastnn.set_num_threads(THREADS)
    yield
    fastnn.set_num_threads(previous)


def _images(n, shape, dtype, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(n, *shape)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("impl", FAST_IMPLS)
def test_hog_cifar_size(benchmark, impl, dtype):
    images = _images(1000, (32, 32, 3), dtype)
    benchmark.group = f"hog 1000x32x32x3 {np.dtype(dtype).name}, 8px cells"
    out = benchmark(hog_descriptors, images, 8, 9, impl=impl, num_threads=THREADS)
    assert out.shape == (1000, 144)
    np.testing.assert_allclose(out, hog_descriptors(images, impl="vectorized"), rtol=1e-6, atol=0)


@pytest.mark.parametrize("impl", FAST_IMPLS)
def test_hog_fashion_mnist_size(benchmark, impl):
    images = _images(10000, (28, 28, 1), np.float32, seed=1)
    benchmark.group = "hog 10000x28x28x1 float32, 4px cells"
    out = benchmark(hog_descriptors, images, 4, 9, impl=impl, num_threads=THREADS)
    assert out.shape == (10000, 441)


@pytest.mark.parametrize("impl", available_impls("hog"))
def test_hog_few_images_all_impls(benchmark, impl):
    images = _images(10, (32, 32, 3), np.float64)
    benchmark.group = "hog 10x32x32x3 float64 (naive included)"
    out = benchmark.pedantic(
        hog_descriptors, args=(images, 8, 9), kwargs={"impl": impl}, rounds=3, iterations=1
    )
    np.testing.assert_allclose(out, hog_descriptors(images, impl="vectorized"), rtol=1e-12)
