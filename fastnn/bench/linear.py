"""``fastnn bench linear``: looped vs vectorized linear losses (loss + gradient), and training.

The issue's reference shape is CS231n's dev set, 500 x 3073 (CIFAR-10 pixels plus the bias
column) with 10 classes, in float64 as the assignment uses; float32 rows show the dtype the
classifiers train in. ``--compare`` adds PyTorch (autograd through ``X @ W`` and the same loss)
and a training row against scikit-learn's ``LogisticRegression``.
"""

from __future__ import annotations

import time

import numpy as np

from fastnn.bench import BenchRow, register_suite, time_call
from fastnn.kernels import available_impls, get_impl

#: kernel operation -> the CS231n name shown in the table
OPS = {"linear_svm_loss": "svm_loss", "linear_softmax_loss": "softmax_loss"}


def _problem(n: int, d: int, c: int, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(dtype)
    W = (rng.standard_normal((d, c)) * 1e-4).astype(dtype)
    y = rng.integers(0, c, n)
    return W, X, y


def _torch_rows(op: str, W, X, y, reg: float, shape: str, repeat: int) -> list[BenchRow]:
    try:
        import torch
    except ImportError:
        return []
    Wt = torch.from_numpy(W.copy()).requires_grad_(True)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)

    def step():
        Wt.grad = None
        scores = Xt @ Wt
        if op == "linear_softmax_loss":
            loss = torch.nn.functional.cross_entropy(scores, yt)
        else:
            correct = scores.gather(1, yt[:, None])
            margins = (scores - correct + 1.0).clamp(min=0)
            loss = (margins.sum() - X.shape[0]) / X.shape[0]  # drop the j = y_i terms (each 1)
        loss = loss + reg * (Wt * Wt).sum()
        loss.backward()
        return Wt.grad

    return [BenchRow(OPS[op], shape, "torch autograd", time_call(step, repeat=repeat))]


@register_suite("linear")
def suite(compare: bool = False, quick: bool = False) -> list[BenchRow]:
    """Naive vs vectorized ``svm_loss``/``softmax_loss`` on 500 x 3073 (or 100 x 3073 quick)."""
    n, d, c = (100 if quick else 500), 3073, 10
    repeat = 3 if quick else 5
    rows: list[BenchRow] = []
    for dtype in (np.float64, np.float32):
        W, X, y = _problem(n, d, c, dtype)
        shape = f"{n}x{d}, C={c}, {np.dtype(dtype).name}"
        flops = 4.0 * n * d * c  # two GEMM-shaped products, X @ W and X^T @ dscores
        for op, label in OPS.items():
            for impl in available_impls(op):
                if impl == "naive" and dtype == np.float32:
                    continue  # the loops cost the same in either dtype; float64 is the reference
                f = get_impl(op, impl)
                seconds = time_call(lambda f=f, W=W, X=X, y=y: f(W, X, y, 0.5), repeat=repeat)
                rows.append(BenchRow(label, shape, impl, seconds, flops))
            if compare:
                rows.extend(_torch_rows(op, W, X, y, 0.5, shape, repeat))
    if compare:
        rows.extend(_training_rows(quick))
    return rows


def _training_rows(quick: bool) -> list[BenchRow]:
    """Softmax training (fastnn SGD) vs scikit-learn LogisticRegression on the same data."""
    from fastnn.classifiers import Softmax

    rng = np.random.default_rng(0)
    n, d, c = (2000 if quick else 10000), 785, 10
    centers = rng.standard_normal((c, d)).astype(np.float32)
    y = rng.integers(0, c, n)
    X = (centers[y] + 3.0 * rng.standard_normal((n, d))).astype(np.float32)
    shape = f"train {n}x{d}, C={c}, float32"
    rows = []
    start = time.perf_counter()
    Softmax(seed=0).train(
        X, y, learning_rate=1e-2, reg=1e-4, num_iters=1000, batch_size=200, momentum=0.9
    )
    rows.append(
        BenchRow("softmax_train", shape, "fastnn SGD 1000x200", time.perf_counter() - start)
    )
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return rows
    start = time.perf_counter()
    LogisticRegression(max_iter=200).fit(X, y)
    rows.append(BenchRow("softmax_train", shape, "sklearn lbfgs", time.perf_counter() - start))
    return rows
