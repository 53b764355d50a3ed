"""pytest-benchmark: one ThreeLayerConvNet training step (defaults, batch 64, float32, Adam),
fastnn vs PyTorch, and the augmentation of one CIFAR-sized batch.

Run: ``python -m pytest benchmarks/test_bench_cnn.py --benchmark-group-by=group`` (2 threads
each). Timing only: nothing here asserts speed (``fastnn bench cnn --compare`` prints the ratio).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn.bench import limit_peer_threads
from fastnn.bench.cnn import AUGMENTATIONS, fastnn_step, problem, torch_step


@pytest.fixture(scope="module", autouse=True)
def _threads():
    fastnn.set_num_threads(2)
    limit_peer_threads(2)


@pytest.mark.benchmark(group="three-layer-convnet-step")
def test_step_fastnn(benchmark):
    loss = benchmark.pedantic(fastnn_step(), rounds=5, iterations=1, warmup_rounds=1)
    assert np.isfinite(loss)


@pytest.mark.benchmark(group="three-layer-convnet-step")
def test_step_torch(benchmark):
    pytest.importorskip("torch")
    loss = benchmark.pedantic(torch_step(), rounds=5, iterations=1, warmup_rounds=1)
    assert np.isfinite(loss)


@pytest.mark.benchmark(group="augment-64x3x32x32")
@pytest.mark.parametrize("spec", AUGMENTATIONS)
def test_augment_batch(benchmark, spec):
    from fastnn.data.augment import Augmenter

    X, _ = problem()
    out = benchmark(Augmenter(spec, seed=0), X)
    assert out.shape == X.shape
