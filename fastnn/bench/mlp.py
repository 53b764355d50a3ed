"""``fastnn bench mlp [--compare] [--quick]``: one training epoch of a 784-256-128-10 ReLU net.

The issue's speed target: one epoch of Fashion-MNIST (60,000 images, float32, batch 128, Adam,
every example once in a random order) with fastnn's Solver takes at most the time of the same
network, batch size and optimiser in PyTorch on the CPU, both on ``fastnn.get_num_threads()``
threads. The two epochs are run alternately (fastnn, torch, fastnn, torch, ...) so machine noise
hits both alike; the medians are reported. Also reported:

- where fastnn's epoch goes: forward+backward time per layer type and the optimiser, measured in
  place over one epoch of minibatches;
- the Adam step on the largest parameter (784x256): NumPy rule vs fused compiled kernel
  (and ``torch.optim.Adam`` with ``--compare``).

Data: Fashion-MNIST from the data directory when present, else random data of the same shape
(the row says which).
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections import defaultdict

import numpy as np

from fastnn.bench import BenchRow, register_suite, time_call

HIDDEN = (256, 128)
BATCH = 128
LEARNING_RATE = 1e-3


def make_data(quick: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """Flattened, scaled, centred float32 training images and labels, and their source name."""
    try:
        from fastnn.data import load_dataset

        data = load_dataset("fashion-mnist")
        X = data["X_train"].reshape(len(data["X_train"]), -1)
        y = data["y_train"]
        source = "fashion-mnist"
    except (OSError, ValueError):
        rng = np.random.default_rng(0)
        X = rng.integers(0, 256, (60000, 784)).astype(np.float32)
        y = rng.integers(0, 10, 60000)
        source = "synthetic"
    if quick:
        X, y = X[:6000], y[:6000]
    X = X.astype(np.float32) / np.float32(255)
    X -= X.mean(axis=0)
    return np.ascontiguousarray(X), y.astype(np.int64), source


def _fastnn_solver(X: np.ndarray, y: np.ndarray, seed: int = 0):
    from fastnn.classifiers import FullyConnectedNet
    from fastnn.solver import Solver

    np.random.seed(seed)
    model = FullyConnectedNet(list(HIDDEN), input_dim=X.shape[1], num_classes=10,
                              weight_scale="he", dtype=np.float32)
    # validation/accuracy checks shrunk to one batch: the epoch is the 468 training steps
    data = {"X_train": X, "y_train": y, "X_val": X[:BATCH], "y_val": y[:BATCH]}
    return Solver(model, data, update_rule="adam", optim_config={"learning_rate": LEARNING_RATE},
                  batch_size=BATCH, num_epochs=1, shuffle=True, num_train_samples=BATCH,
                  verbose=False, progress=False, seed=seed)


def fastnn_epoch(X: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """Seconds for one epoch of ``Solver.train()`` (model built outside the timing)."""
    solver = _fastnn_solver(X, y, seed)
    start = time.perf_counter()
    solver.train()
    return time.perf_counter() - start


def torch_epoch(X: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """Seconds for one epoch of the same network in PyTorch (model built outside the timing)."""
    import torch

    torch.manual_seed(seed)
    layers, dims = [], [X.shape[1], *HIDDEN]
    for fan_in, fan_out in itertools.pairwise(dims):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(dims[-1], 10))
    opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    start = time.perf_counter()
    order = torch.randperm(X.shape[0])
    for i in range(X.shape[0] // BATCH):
        idx = order[i * BATCH:(i + 1) * BATCH]
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(X_t[idx]), y_t[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def epoch_time_split(X: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Seconds per layer type over one epoch of the same network, timed call by call.

    Mirrors ``FullyConnectedNet.loss`` for a ReLU net without normalisation (affine -> relu ->
    ... -> affine -> softmax) and the Solver's in-place Adam step.
    """
    from fastnn import optim
    from fastnn.layers import (
        affine_backward,
        affine_forward,
        relu_backward,
        relu_forward,
        softmax_loss,
    )

    try:
        from fastnn.layers import affine_backward_params
    except ImportError:  # pragma: no cover - older layers module
        affine_backward_params = None
    solver = _fastnn_solver(X, y, seed)
    params = solver.model.params
    configs = {k: {"learning_rate": LEARNING_RATE} for k in params}
    n_layers = len(HIDDEN) + 1
    spent: dict[str, float] = defaultdict(float)
    clock = time.perf_counter
    order = np.random.RandomState(seed).permutation(X.shape[0])
    for i in range(X.shape[0] // BATCH):
        t0 = clock()
        idx = order[i * BATCH:(i + 1) * BATCH]
        h, yb = X[idx], y[idx]
        t1 = clock()
        spent["minibatch gather"] += t1 - t0
        caches = []
        for layer in range(1, n_layers + 1):
            t0 = clock()
            h, cache = affine_forward(h, params[f"W{layer}"], params[f"b{layer}"])
            t1 = clock()
            spent["affine forward"] += t1 - t0
            relu_cache = None
            if layer < n_layers:
                h, relu_cache = relu_forward(h)
                spent["relu forward"] += clock() - t1
            caches.append((cache, relu_cache))
        t0 = clock()
        _, dh = softmax_loss(h, yb)
        spent["softmax loss (fwd+bwd)"] += clock() - t0
        grads = {}
        for layer in range(n_layers, 0, -1):
            cache, relu_cache = caches[layer - 1]
            t0 = clock()
            if relu_cache is not None:
                dh = relu_backward(dh, relu_cache)
            t1 = clock()
            spent["relu backward"] += t1 - t0
            if layer == 1 and affine_backward_params is not None:
                grads["W1"], grads["b1"] = affine_backward_params(dh, cache)
            else:
                dh, grads[f"W{layer}"], grads[f"b{layer}"] = affine_backward(dh, cache)
            spent["affine backward"] += clock() - t1
        t0 = clock()
        for k, w in params.items():
            optim.adam(w, grads[k], configs[k], out=w)
        spent["adam update"] += clock() - t0
    return dict(spent)


def _adam_rows(compare: bool, quick: bool) -> list[BenchRow]:
    from fastnn import optim
    from fastnn.kernels import available_impls
    from fastnn.kernels import optim as kernels

    rng = np.random.default_rng(0)
    shape = (784, 256)
    w = rng.standard_normal(shape).astype(np.float32)
    dw = rng.standard_normal(shape).astype(np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    label = "784x256 float32"
    repeat = 3 if quick else 5
    rows = []
    config: dict = {}
    rows.append(BenchRow("adam step", label, "numpy rule (functional, CS231n)",
                         time_call(lambda: optim.adam(w, dw, config), repeat=repeat)))
    for impl in available_impls("adam_update"):
        if impl == "naive":
            continue  # a Python loop over 200k elements: ~0.3 s, the readable reference only
        rows.append(BenchRow("adam step", label, f"{impl} (in place)", time_call(
            lambda impl=impl: kernels.adam_update(w, dw, m, v, 1e-3, 0.9, 0.999, 1e-8, 3,
                                                  impl=impl), repeat=repeat)))
    if "compiled" in available_impls("adam_update"):
        # does OpenMP pay off at this size? force the thread count the wrapper would not use
        from fastnn._config import get_num_threads
        from fastnn._ext import _optim

        flat = [a.reshape(-1) for a in (w, dw, m, v)]
        threads = get_num_threads()
        rows.append(BenchRow("adam step", label, f"compiled, forced {threads} OpenMP threads",
                             time_call(lambda: _optim.adam_update(*flat, 1e-3, 0.9, 0.999, 1e-8,
                                                                  3, threads), repeat=repeat)))
    if compare:
        try:
            import torch
        except ImportError:
            return rows
        p = torch.nn.Parameter(torch.from_numpy(w.copy()))
        p.grad = torch.from_numpy(dw.copy())
        opt = torch.optim.Adam([p], lr=1e-3)
        rows.append(BenchRow("adam step", label, "torch.optim.Adam",
                             time_call(opt.step, repeat=repeat)))
    return rows


@register_suite("mlp")
def mlp_suite(compare: bool = False, quick: bool = False) -> list[BenchRow]:
    X, y, source = make_data(quick)
    shape = f"784-256-128-10 N={X.shape[0]} ({source})"
    rounds = 2 if quick else 3
    have_torch = False
    if compare:
        try:
            import torch  # noqa: F401

            have_torch = True
        except ImportError:
            pass
    fastnn_epoch(X[: BATCH * 20], y[: BATCH * 20])  # warm-up: imports, BLAS threads, caches
    if have_torch:
        torch_epoch(X[: BATCH * 20], y[: BATCH * 20])
    times: dict[str, list[float]] = defaultdict(list)
    for r in range(rounds):
        times["fastnn Solver"].append(fastnn_epoch(X, y, seed=r))
        if have_torch:
            times["torch"].append(torch_epoch(X, y, seed=r))
    rows = [BenchRow("train epoch (Adam, batch 128)", shape, name, statistics.median(ts))
            for name, ts in times.items()]
    if have_torch:
        ratio = statistics.median(times["fastnn Solver"]) / statistics.median(times["torch"])
        each = ", ".join(f"{a / b:.2f}" for a, b in zip(times["fastnn Solver"], times["torch"]))
        print(f"fastnn / torch epoch time: {ratio:.2f}x (median; per round {each})")
    split = epoch_time_split(X, y)
    total = sum(split.values())
    for name, seconds in sorted(split.items(), key=lambda kv: -kv[1]):
        rows.append(BenchRow(f"epoch split: {name}", f"{100 * seconds / total:.0f}% of "
                             f"{total:.2f} s", "fastnn", seconds))
    rows.extend(_adam_rows(compare, quick))
    return rows
