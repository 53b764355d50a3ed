"""``fastnn bench cnn [--compare] [--quick]``: one training step of ThreeLayerConvNet.

The issue's target: one step (forward, backward, Adam update of every parameter) of CS231n's
``ThreeLayerConvNet`` with its defaults (3x32x32 input, 32 filters 7x7, hidden 100, 10 classes),
batch 64, float32, takes at most the time of the same network in PyTorch on the CPU
(``torch.optim.Adam``, ``torch.set_num_threads(fastnn.get_num_threads())``), measured side by
side (fastnn and torch steps alternate, so machine noise hits both alike).

A third row runs the fastnn step with BLAS limited to one thread (threadpoolctl): when it is
much faster than the default row, BLAS threads and the OpenMP kernels fight over the cores.

Also: the share of a training step that data augmentation costs: the default ``--augment``
pipeline (``flip,crop4``) and a heavier one on a batch of 64 CIFAR-sized images, against one
Adam step of the CIFAR ConvNet ``conv32-bn-relu-pool,conv64-bn-relu-pool,fc128-relu-dropout0.5,
fc10``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from fastnn.bench import BenchRow, register_suite, time_call

BATCH = 64
LEARNING_RATE = 1e-3
CIFAR_ARCH = "conv32-bn-relu-pool,conv64-bn-relu-pool,fc128-relu-dropout0.5,fc10"
AUGMENTATIONS = ("flip,crop4", "flip,crop4,cutout8,jitter0.1")


def problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A float32 minibatch (64, 3, 32, 32) and its labels."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((BATCH, 3, 32, 32)).astype(np.float32),
            rng.integers(0, 10, BATCH))


def fastnn_step(model_factory: Callable[[], object] | None = None,
                seed: int = 0) -> Callable[[], float]:
    """A closure running one fastnn training step (loss, gradients, in-place Adam) per call."""
    from fastnn import optim
    from fastnn.classifiers import ThreeLayerConvNet

    np.random.seed(seed)
    model = ThreeLayerConvNet() if model_factory is None else model_factory()
    X, y = problem(seed)
    configs = {k: {"learning_rate": LEARNING_RATE} for k in model.params}

    def step() -> float:
        loss, grads = model.loss(X, y)
        for k, w in model.params.items():
            optim.adam(w, grads[k], configs[k], out=w)
        return loss

    return step


def torch_step(seed: int = 0) -> Callable[[], float]:
    """The same network, minibatch and optimiser in PyTorch: one step per call."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 7, padding=3), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 16 * 16, 100), torch.nn.ReLU(),
        torch.nn.Linear(100, 10))
    opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    X, y = problem(seed)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(X_t), y_t)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def _alternating(steps: dict[str, Callable[[], object]], rounds: int,
                 inner: int) -> dict[str, float]:
    """Median seconds per call of each step, timed in alternation (warm-up call first)."""
    for step in steps.values():
        step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(inner):
                step()
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: statistics.median(s) for name, s in samples.items()}


def augmentation_share(quick: bool = False) -> list[BenchRow]:
    """Rows: augmentation of one CIFAR batch vs one Adam step of the CIFAR ConvNet."""
    from fastnn.classifiers import ConvNet
    from fastnn.data.augment import Augmenter

    X, _ = problem()
    repeat = 1 if quick else 5
    step_s = time_call(fastnn_step(lambda: ConvNet(CIFAR_ARCH, seed=0)), repeat=repeat,
                       min_time=0.0 if quick else 0.2)
    shape = f"{BATCH}x3x32x32 float32"
    rows = [BenchRow("CIFAR ConvNet train step", shape, CIFAR_ARCH, step_s)]
    for spec in AUGMENTATIONS:
        aug = Augmenter(spec, seed=0)
        seconds = time_call(lambda aug=aug: aug(X), repeat=repeat)
        rows.append(BenchRow("augment batch", shape,
                             f"{spec} ({100 * seconds / (seconds + step_s):.1f}% of a step)",
                             seconds))
    return rows


@register_suite("cnn")
def cnn_suite(compare: bool = False, quick: bool = False) -> list[BenchRow]:
    """ThreeLayerConvNet training step (vs torch with ``compare``) and augmentation share."""
    steps: dict[str, Callable[[], object]] = {"fastnn (loss+grads+Adam)": fastnn_step()}
    if compare:
        try:
            steps["torch (forward+backward+Adam)"] = torch_step()
        except ImportError:
            pass
    rounds, inner = (1, 1) if quick else (7, 3)
    times = _alternating(steps, rounds, inner)
    shape = f"ThreeLayerConvNet defaults, batch {BATCH}, float32"
    rows = [BenchRow("train step", shape, name, seconds) for name, seconds in times.items()]
    if len(times) == 2:
        ours, theirs = times.values()
        print(f"fastnn / torch ThreeLayerConvNet step: {ours / theirs:.2f}x")
    try:  # the same step with single-threaded BLAS: shows OpenMP/BLAS thread contention
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        with threadpool_limits(1, user_api="blas"):
            single = _alternating({"fastnn, BLAS on 1 thread": fastnn_step()}, rounds, inner)
        rows.extend(BenchRow("train step", shape, name, seconds)
                    for name, seconds in single.items())
    rows.extend(augmentation_share(quick))
    return rows
