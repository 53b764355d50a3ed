"""``fastnn bench cnn [--compare] [--quick]``: one training step of ThreeLayerConvNet.

The issue's target: one step (forward, backward, Adam update of every parameter) of CS231n's
``ThreeLayerConvNet`` with its defaults (3x32x32 input, 32 filters 7x7, hidden 100, 10 classes),
batch 64, float32, takes at most the time of the same network in PyTorch on the CPU
(``torch.optim.Adam``, ``torch.set_num_threads(fastnn.get_num_threads())``), measured side by
side (fastnn and torch steps alternate, so machine noise hits both alike).

A third row runs the fastnn step with BLAS limited to one thread (threadpoolctl): when it is
much faster than the default row, BLAS threads and the OpenMP kernels fight over the cores.

The same for the Fashion-MNIST ConvNet of the issue's time-to-accuracy comparison
(``benchmarks/fashion_cnn_vs_torch.py``): ``conv32-bn-relu-pool,conv64-bn-relu-pool,
fc128-relu-dropout0.5,fc10`` on (64, 1, 28, 28) (the batch of that script's recipe), Adam,
against the same ``nn.Sequential`` in PyTorch: the per-step ratio behind that script's seconds
per epoch, measured in one process with the steps interleaved.

Also: the share of a training step that data augmentation costs: the default ``--augment``
pipeline (``flip,crop4``) and a heavier one on a batch of 64 CIFAR-sized images, against one
Adam step of the CIFAR ConvNet ``conv32-bn-relu-pool,conv64-bn-relu-pool,fc128-relu-dropout0.5,
fc10``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fastnn.bench import BenchRow, register_suite, time_call, time_interleaved

BATCH = 64
LEARNING_RATE = 1e-3
CIFAR_ARCH = "conv32-bn-relu-pool,conv64-bn-relu-pool,fc128-relu-dropout0.5,fc10"
FASHION_ARCH = CIFAR_ARCH
FASHION_BATCH = 64  # the batch size of fashion_cnn_vs_torch.py's recipe
AUGMENTATIONS = ("flip,crop4", "flip,crop4,cutout8,jitter0.1")


def problem(seed: int = 0, shape: tuple[int, ...] = (BATCH, 3, 32, 32),
            ) -> tuple[np.ndarray, np.ndarray]:
    """A float32 minibatch (default (64, 3, 32, 32)) and its labels."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, shape[0]))


def fastnn_step(model_factory: Callable[[], object] | None = None, seed: int = 0,
                shape: tuple[int, ...] = (BATCH, 3, 32, 32)) -> Callable[[], float]:
    """A closure running one fastnn training step (loss, gradients, in-place Adam) per call."""
    from fastnn import optim
    from fastnn.classifiers import ThreeLayerConvNet

    np.random.seed(seed)
    model = ThreeLayerConvNet() if model_factory is None else model_factory()
    X, y = problem(seed, shape)
    configs = {k: {"learning_rate": LEARNING_RATE} for k in model.params}

    def step() -> float:
        loss, grads = model.loss(X, y)
        for k, w in model.params.items():
            optim.adam(w, grads[k], configs[k], out=w)
        return loss

    return step


def torch_step(seed: int = 0, fashion: bool = False) -> Callable[[], float]:
    """The same network (ThreeLayerConvNet, or with ``fashion`` the :data:`FASHION_ARCH`
    ConvNet on 1x28x28), minibatch and optimiser in PyTorch: one step per call."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    if fashion:
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, 10))
        X, y = problem(seed, (FASHION_BATCH, 1, 28, 28))
    else:
        net = nn.Sequential(
            nn.Conv2d(3, 32, 7, padding=3), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Flatten(), nn.Linear(32 * 16 * 16, 100), nn.ReLU(), nn.Linear(100, 10))
        X, y = problem(seed)
    opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(X_t), y_t)
        loss.backward()
        opt.step()
        return loss.item()

    return step


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
    """ThreeLayerConvNet and Fashion ConvNet training steps (vs torch with ``compare``) and
    the augmentation share."""
    from fastnn.classifiers import ConvNet

    fashion_shape = (FASHION_BATCH, 1, 28, 28)
    nets = {
        f"ThreeLayerConvNet defaults, batch {BATCH}, float32": (fastnn_step, False),
        f"Fashion ConvNet {FASHION_ARCH}, batch {FASHION_BATCH}, float32": (
            lambda: fastnn_step(lambda: ConvNet(FASHION_ARCH, input_dim=fashion_shape[1:],
                                                seed=0), shape=fashion_shape), True),
    }
    rows = []
    for shape, (make_step, fashion) in nets.items():
        steps: dict[str, Callable[[], object]] = {"fastnn (loss+grads+Adam)": make_step()}
        if compare:
            try:
                steps["torch (forward+backward+Adam)"] = torch_step(fashion=fashion)
            except ImportError:
                pass
        contexts: list = [None] * len(steps)
        try:  # the same step with single-threaded BLAS: shows OpenMP/BLAS thread contention
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            steps["fastnn, BLAS on 1 thread"] = steps["fastnn (loss+grads+Adam)"]
            contexts.append(lambda: threadpool_limits(1, user_api="blas"))
        times = time_interleaved(list(steps.values()), repeat=1 if quick else 15,
                                 min_time=0.0 if quick else 1.5, contexts=contexts)
        rows.extend(BenchRow("train step", shape, name, seconds)
                    for name, seconds in zip(steps, times, strict=True))
        if "torch (forward+backward+Adam)" in steps:
            print(f"fastnn / torch step, {shape}: {times[0] / times[1]:.2f}x")
    rows.extend(augmentation_share(quick))
    return rows
