"""What the real-data experiment scripts of ``benchmarks/`` share.

The scripts (``fashion_cnn_vs_torch.py``, ``transfer_learning.py``, ``cifar_augment.py``) train
ConvNets on real images through the library's public API; this module holds their common parts:

- :func:`announce`: print the exact command a run was started with;
- :func:`use_threads`: one thread count for fastnn's kernels and NumPy's BLAS;
- :func:`load_images`: a data set as (N, C, H, W) float32 images, pixels scaled to [0, 1] and the
  training mean image subtracted (:class:`fastnn.preprocessing.ScaleAndCenter`, what ``fastnn
  train`` does), optionally cut to the first ``limit`` images of each split for smoke runs;
- :func:`train_fastnn`: :class:`fastnn.solver.Solver` training that evaluates after every epoch
  *outside* the timed region, stops at a time budget, and leaves the model with the parameters of
  the last epoch;
- :class:`TrainingClock`, :func:`time_to_target`, :func:`print_row`, :func:`write_json`.

Timing rule (the same for fastnn and PyTorch, see ``_torch_convnet.train_torch``): "training
seconds" count minibatch selection, augmentation, forward, backward and the parameter update;
they exclude data loading, preprocessing, model construction and every per-epoch evaluation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# fastnn is imported inside the functions: a PyTorch run imports torch first (see
# fashion_cnn_vs_torch.py), and importing fastnn sets OMP_WAIT_POLICY for the process.

__all__ = [
    "EVAL_BATCH",
    "TABLE_HEADER",
    "TrainingClock",
    "accuracy_of",
    "announce",
    "load_images",
    "non_negative_float",
    "positive_float",
    "positive_int",
    "print_row",
    "seed_list",
    "stop_reason",
    "time_to_target",
    "train_fastnn",
    "use_threads",
    "write_json",
]

#: Images per forward pass when measuring accuracy (predictions do not depend on it).
EVAL_BATCH = 500


def announce(script: str | os.PathLike, argv: Sequence[str]) -> str:
    """Print and return the command line of this run, ready to paste into a shell.

    Parameters
    ----------
    script : path-like
        The script's file (``__file__``); shown relative to the repository root (the parent of
        ``benchmarks/``), where the commands are meant to be run.
    argv : sequence of str
        The script's arguments.

    Returns
    -------
    str
        ``[FASTNN_DATA=...] python benchmarks/<script> <arguments>``.
    """
    path = Path(script).resolve()
    shown = path.relative_to(path.parents[1]) if len(path.parents) > 1 else path
    prefix = ""
    if os.environ.get("FASTNN_DATA"):
        prefix = f"FASTNN_DATA={shlex.quote(os.environ['FASTNN_DATA'])} "
    command = prefix + shlex.join(["python", str(shown), *argv])
    print(f"command: {command}", flush=True)
    return command


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1.

    (The scripts parse their options before importing fastnn, so they cannot use
    ``fastnn.cli._options``: see the note on import order above.)
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def seed_list(text: str) -> list[int]:
    """argparse type: comma-separated integer seeds, e.g. ``0,1,2`` (at least one, no repeats)."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(
            f"must be distinct comma-separated integers such as 0,1,2, got {text!r}")
    return seeds


def use_threads(n: int) -> int:
    """Run fastnn's compiled kernels and NumPy's BLAS on ``n`` threads.

    Parameters
    ----------
    n : int
        Thread count (>= 1).

    Returns
    -------
    int
        The thread count fastnn now uses.
    """
    import fastnn

    fastnn.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it BLAS keeps its own default
        pass
    else:
        threadpool_limits(n)
    return fastnn.get_num_threads()


def load_images(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    limit: int | None = None,
    dtype: type = np.float32,
) -> dict[str, Any]:
    """Load a data set as preprocessed (N, C, H, W) images.

    Parameters
    ----------
    name : str
        A :func:`fastnn.data.load_dataset` name (``"fashion-mnist"``, ``"cifar10"``, ``"sample"``).
    root : path-like or None
        Data folder (default: ``$FASTNN_DATA``, then the library's search path).
    limit : int or None
        Keep only the first ``limit`` training and the first ``limit`` test images (smoke runs).
    dtype : type
        Output dtype of the images.

    Returns
    -------
    dict
        ``X_train``, ``X_test``: (N, C, H, W) ``dtype`` images, ``x * (1 / 255) - mean`` with the
        mean image of the (kept) training images; ``y_train``, ``y_test`` int64 labels;
        ``class_names``; ``input_dim`` (C, H, W).
    """
    from fastnn.data import load_dataset
    from fastnn.preprocessing import ScaleAndCenter

    data = load_dataset(name, root=root)
    X_train, y_train = data["X_train"], data["y_train"]
    X_test, y_test = data["X_test"], data["y_test"]
    if limit is not None:
        X_train, y_train = X_train[:limit], y_train[:limit]
        X_test, y_test = X_test[:limit], y_test[:limit]
    prep = ScaleAndCenter(1.0 / 255.0).fit(X_train)

    def to_nchw(X: np.ndarray) -> np.ndarray:
        # ScaleAndCenter flattens (N, H, W, C) examples; the conv layers read (N, C, H, W)
        flat = prep.transform(X, dtype)
        return np.ascontiguousarray(flat.reshape(X.shape).transpose(0, 3, 1, 2))

    X_train, X_test = to_nchw(X_train), to_nchw(X_test)
    return {
        "X_train": X_train,
        "y_train": np.asarray(y_train, dtype=np.int64),
        "X_test": X_test,
        "y_test": np.asarray(y_test, dtype=np.int64),
        "class_names": list(data["class_names"]),
        "input_dim": tuple(int(s) for s in X_train.shape[1:]),
    }


class TrainingClock:
    """A stopwatch that only runs while training runs (paused during evaluations)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started: float | None = None

    def resume(self) -> None:
        """Start (or continue) counting."""
        if self._started is None:
            self._started = time.perf_counter()

    def pause(self) -> float:
        """Stop counting; returns the seconds counted so far."""
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None
        return self.seconds


def accuracy_of(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Test-mode accuracy of a fastnn model on ``(X, y)``, :data:`EVAL_BATCH` images a call."""
    from fastnn.metrics import model_accuracy

    return float(model_accuracy(model, X, y, batch_size=EVAL_BATCH))


def print_row(side: str, row: dict[str, Any]) -> None:
    """One line of the per-epoch table: side, epoch, training seconds, loss, test accuracy, then
    any further entries of ``row`` as ``key=value``."""
    extra = "".join(f"  {k}={v:.4g}" if isinstance(v, float) else f"  {k}={v}"
                    for k, v in row.items() if k not in _TABLE_KEYS)
    print(f"{side:>8} {row['epoch']:>5} {row['train_seconds']:>10.1f} {row['loss']:>8.4f} "
          f"{row['test_acc']:>8.4f}{extra}", flush=True)


_TABLE_KEYS = ("epoch", "train_seconds", "loss", "test_acc")


#: Header matching :func:`print_row`.
TABLE_HEADER = f"{'side':>8} {'epoch':>5} {'train_s':>10} {'loss':>8} {'test_acc':>8}"


def train_fastnn(
    model: Any,
    X_train: np.ndarray,
    y_train: np.ndarray,
    evaluate: Callable[[Any], float],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    update_rule: str = "adam",
    lr_schedule: str | None = None,
    lr_decay: float = 1.0,
    seed: int = 0,
    augment: Callable[[np.ndarray], np.ndarray] | None = None,
    max_seconds: float | None = None,
    stop_at: float | None = None,
    row_extras: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    side: str = "fastnn",
    verbose: bool = True,
) -> dict[str, Any]:
    """Train with the Solver, evaluating after every epoch outside the timed region.

    The Solver visits the training set once per epoch in a fresh random order (``shuffle=True``,
    ``N // batch_size`` minibatches). Its own validation check is reduced to one training image
    (``X_val``) and ``num_train_samples=1``, so it costs nothing measurable: the accuracy that
    matters is ``evaluate(model)``, called at every epoch end while the clock is paused.

    Parameters
    ----------
    model : object
        A Solver-compatible fastnn model.
    X_train, y_train : ndarray
        Training images (N, ...) and labels (N,).
    evaluate : callable
        ``evaluate(model) -> accuracy`` (for example on the test images).
    epochs, batch_size : int
        Epoch count and minibatch size.
    learning_rate : float
        Base learning rate of ``update_rule``.
    update_rule : str
        A :mod:`fastnn.optim` rule name.
    lr_schedule : str or None
        A :data:`fastnn.optim.SCHEDULES` name built over the whole planned run, or None.
    lr_decay : float
        Per-epoch learning-rate factor (CS231n).
    seed : int
        The Solver's seed (minibatch order).
    augment : callable or None
        The Solver's ``augment`` (applied to every training minibatch).
    max_seconds : float or None
        Time budget: training stops at the first epoch end after this many training seconds.
    stop_at : float or None
        Training stops at the first epoch end whose ``evaluate`` result is at least this.
    row_extras : callable or None
        ``row_extras(row) -> dict`` merged into every epoch row; it receives the row so far
        (called with the clock paused).
    side : str
        Label of the table rows.
    verbose : bool
        Print a table row per epoch.

    Returns
    -------
    dict
        ``rows``: one dict per epoch (``epoch``, ``train_seconds`` cumulative, ``loss`` mean
        training loss of the epoch, ``test_acc`` = ``evaluate(model)``, and ``row_extras(row)``);
        ``train_seconds`` in all; ``stopped``: why training ended before ``epochs`` (None if it
        did not). The model keeps the parameters (and batch-norm averages) of the last epoch.
    """
    from fastnn.serialization import get_model_state, set_model_state
    from fastnn.solver import Solver

    clock = TrainingClock()
    rows: list[dict[str, Any]] = []
    last: dict[str, Any] = {}

    def on_row(row: dict[str, Any]) -> None:
        clock.pause()
        if row["epoch"] > (rows[-1]["epoch"] if rows else 0):  # an epoch end, not iteration 1
            entry = {"epoch": int(row["epoch"]), "train_seconds": clock.seconds,
                     "loss": float(row["loss"]), "test_acc": float(evaluate(model))}
            if row_extras is not None:
                entry.update(row_extras(entry))
            rows.append(entry)
            if verbose:
                print_row(side, entry)
            last["params"] = {k: v.copy() for k, v in model.params.items()}
            last["state"] = get_model_state(model)
            reason = stop_reason(entry, max_seconds, stop_at)
            if reason is not None and row["epoch"] < epochs:
                solver.stop_reason = reason
        clock.resume()

    kwargs: dict[str, Any] = {
        "update_rule": update_rule,
        "optim_config": {"learning_rate": learning_rate},
        "lr_decay": lr_decay,
        "batch_size": batch_size,
        "num_epochs": epochs,
        "num_train_samples": 1,
        "verbose": False,
        "progress": False,
        "lr_schedule": None if lr_schedule in (None, "constant") else lr_schedule,
        "seed": seed,
        "shuffle": True,
        "epoch_callback": on_row,
    }
    if augment is not None:
        kwargs["augment"] = augment
    data = {"X_train": X_train, "y_train": y_train, "X_val": X_train[:1], "y_val": y_train[:1]}
    solver = Solver(model, data, **kwargs)
    clock.resume()
    solver.train()
    clock.pause()
    if last:
        # the Solver restores its "best" epoch by the one-image check; keep the last epoch instead
        model.params = last["params"]
        set_model_state(model, last["state"])
    return {"rows": rows, "train_seconds": clock.seconds, "stopped": solver.stop_reason}


def stop_reason(row: dict[str, Any], max_seconds: float | None,
                stop_at: float | None) -> str | None:
    """Why training stops after the epoch of ``row`` (None: it goes on).

    Parameters
    ----------
    row : dict
        The epoch's row (``epoch``, cumulative ``train_seconds``, ``test_acc``).
    max_seconds : float or None
        Training-time budget.
    stop_at : float or None
        Accuracy at which training stops.

    Returns
    -------
    str or None
        The reason, for the run's ``stopped`` entry.
    """
    if stop_at is not None and row["test_acc"] >= stop_at:
        return f"stopped at epoch {row['epoch']}: test accuracy {row['test_acc']:.4f} >= {stop_at}"
    if max_seconds is not None and row["train_seconds"] >= max_seconds:
        return f"time budget of {max_seconds:.0f} training seconds used after epoch {row['epoch']}"
    return None


def time_to_target(rows: Sequence[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The first epoch row whose ``test_acc`` reaches ``target``, or None.

    Parameters
    ----------
    rows : sequence of dict
        Per-epoch rows (``epoch``, ``train_seconds``, ``test_acc``).
    target : float
        Accuracy to reach.

    Returns
    -------
    dict or None
        ``{"epoch", "train_seconds", "test_acc"}`` of that row.
    """
    for row in rows:
        if row["test_acc"] >= target:
            return {k: row[k] for k in ("epoch", "train_seconds", "test_acc")}
    return None


def _plain(value: Any) -> Any:
    """JSON form of NumPy scalars/arrays and non-finite floats (null)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def write_json(path: str | os.PathLike | None, results: dict[str, Any]) -> None:
    """Write ``results`` as indented JSON to ``path`` (nothing when ``path`` is None)."""
    if path is None:
        return

    def convert(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {str(k): convert(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [convert(v) for v in obj]
        return _plain(obj)

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(convert(results), indent=1) + "\n")
    print(f"results written to {out}", flush=True)
