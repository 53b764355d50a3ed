"""The shared runner of the ``fastnn train MODEL`` commands.

Every model family (``fc`` in :mod:`fastnn.cli.train`, ``cnn`` in :mod:`fastnn.cli.cnn`, the
recurrent models in their own module) builds its data and model, then calls
:func:`run_training`, which owns everything they have in common:

- the optimiser, schedule and run options (:func:`add_training_options`);
- the Solver (or a subclass of it, ``solver_class``), resume from ``--resume``;
- the per-epoch table (``epoch``, ``loss``, the Solver's epoch scores, ``lr``, ``seconds``),
  printed as each evaluation ends, keeping only the newest checkpoint in ``--out``;
- the outputs ``model.npz`` (best model + metadata), ``history.json``, ``training.png``
  (matplotlib optional) and the test scores of the caller's ``evaluate_test``.

Image models also share :func:`images_to_model_layout`: ``fastnn evaluate`` calls it to give a
saved model its input layout (flat rows, or (N, C, H, W) when the metadata says ``"layout":
"nchw"``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fastnn import optim
from fastnn.cli._options import (
    add_progress_option,
    non_negative_float,
    positive_float,
    positive_int,
)

__all__ = [
    "add_training_options",
    "images_to_model_layout",
    "make_lr_schedule",
    "run_training",
    "weight_scale",
]


def weight_scale(text: str) -> float | str:
    """argparse type of ``--weight-scale``: ``he``, ``xavier`` or a finite number > 0."""
    if text in ("he", "xavier"):
        return text
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a finite number > 0, 'he' or 'xavier'; got {text!r}"
        ) from None


def add_training_options(parser: argparse.ArgumentParser, *, epochs: int = 10,
                         batch_size: int = 128, lr: float = 1e-3, num_train_samples: int = 5000,
                         val_size: bool = True) -> None:
    """Add the optimiser, schedule and run options every ``fastnn train MODEL`` has.

    ``--dtype --epochs --batch-size --update-rule --lr --momentum --lr-schedule --warmup-epochs
    --step-epochs --gamma --lr-decay --grad-clip --early-stopping [--val-size]
    --num-train-samples --seed --out --resume --progress/--no-progress``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    epochs, batch_size, lr, num_train_samples : int, int, float, int
        The defaults of those options.
    val_size : bool
        Whether to add ``--val-size`` (a hold-out taken from the training images).
    """
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--epochs", type=positive_int, default=epochs)
    parser.add_argument("--batch-size", type=positive_int, default=batch_size)
    parser.add_argument("--update-rule", default="adam", choices=tuple(optim.UPDATE_RULES))
    parser.add_argument("--lr", type=positive_float, default=lr, help="base learning rate")
    parser.add_argument("--momentum", type=float, default=None,
                        help="momentum for sgd_momentum/nesterov_momentum (default 0.9)")
    parser.add_argument("--lr-schedule", default="constant", choices=optim.SCHEDULES)
    parser.add_argument("--warmup-epochs", type=non_negative_float, default=0.0,
                        help="linear warm-up length in epochs (composes with any schedule)")
    parser.add_argument("--step-epochs", type=positive_float, default=None,
                        help="step schedule: decay every this many epochs")
    parser.add_argument("--gamma", type=positive_float, default=0.1,
                        help="step schedule: decay factor")
    parser.add_argument("--lr-decay", type=positive_float, default=1.0,
                        help="multiply the learning rate by this after every epoch (CS231n)")
    parser.add_argument("--grad-clip", type=positive_float, default=None,
                        help="clip the global grad norm")
    parser.add_argument("--early-stopping", type=positive_int, default=None, metavar="PATIENCE",
                        help="stop after this many epochs without a better validation score")
    if val_size:
        parser.add_argument("--val-size", type=positive_int, default=None,
                            help="validation images taken from the training split "
                            "(default min(5000, N/10))")
    parser.add_argument("--num-train-samples", type=positive_int, default=num_train_samples,
                        help="training examples used to estimate training accuracy each epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="fastnn-run", help="output folder (default fastnn-run)")
    parser.add_argument("--resume", default=None, metavar="CHECKPOINT",
                        help="continue from a Solver checkpoint of the same command")
    add_progress_option(parser)


def make_lr_schedule(args: argparse.Namespace, per_epoch: int) -> Callable[[int], float] | None:
    """The learning-rate schedule of the parsed options (None: constant, no warm-up).

    Parameters
    ----------
    args : argparse.Namespace
        Options of :func:`add_training_options`.
    per_epoch : int
        Parameter updates per epoch.

    Returns
    -------
    callable or None
        ``schedule(step) -> multiplier``.
    """
    if args.lr_schedule == "constant" and args.warmup_epochs <= 0:
        return None
    return optim.make_schedule(
        args.lr_schedule, total_steps=max(1, args.epochs * per_epoch),
        steps_per_epoch=per_epoch, warmup_steps=round(args.warmup_epochs * per_epoch),
        step_epochs=args.step_epochs, gamma=args.gamma)


def images_to_model_layout(X: np.ndarray, metadata: Mapping[str, Any]) -> np.ndarray:
    """Preprocessed flat rows (N, D) in the layout the model was trained on.

    Parameters
    ----------
    X : ndarray of shape (N, D)
        The output of the stored preprocessing.
    metadata : mapping
        The model file's metadata: ``layout`` ``"nchw"`` turns the rows back into images of
        ``input_shape`` (H, W, C) and then (N, C, H, W); otherwise (``"flat"`` or absent) the
        rows are returned as they are.

    Returns
    -------
    ndarray
    """
    layout = metadata.get("layout", "flat")
    if layout == "flat":
        return X
    if layout != "nchw":
        raise ValueError(f"metadata 'layout' must be 'flat' or 'nchw', got {layout!r}")
    H, W, C = (int(d) for d in metadata["input_shape"])
    return np.ascontiguousarray(X.reshape(X.shape[0], H, W, C).transpose(0, 3, 1, 2))


class _EpochTable:
    """Prints one row per evaluation (the header with the first) and keeps only the newest
    Solver checkpoint in ``out`` (each holds params, best params and the optimiser state)."""

    def __init__(self, out: Path):
        self.out = out
        self.solver: Any = None
        self.columns: list[str] | None = None

    def __call__(self, row: Mapping[str, Any]) -> None:
        if self.columns is None:
            self.columns = [k for k in row if k not in ("epoch", "loss", "lr", "seconds",
                                                        "iteration")]
            print(f"{'epoch':>5} {'loss':>8} "
                  + " ".join(f"{c:>{max(9, len(c))}}" for c in self.columns)
                  + f" {'lr':>9} {'seconds':>8}", flush=True)
        print(f"{row['epoch']:>5} {row['loss']:>8.4f} "
              + " ".join(f"{row.get(c, float('nan')):>{max(9, len(c))}.4f}"
                         for c in self.columns)
              + f" {row['lr']:>9.2e} {row['seconds']:>8.2f}", flush=True)
        for old in self.out.glob("checkpoint_epoch_*.npz"):
            if str(old) != self.solver.last_checkpoint:
                old.unlink()


def _plot(history: list[dict], loss_history: list[float], path: Path) -> bool:
    """Training loss per iteration and every epoch score per epoch (False: no matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(np.arange(1, len(loss_history) + 1), loss_history, lw=0.5, alpha=0.6,
                 label="minibatch")
    its = [r["iteration"] for r in history[1:]]
    ax_loss.plot(its, [r["loss"] for r in history[1:]], "o-", label="epoch mean")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("training loss")
    if all(v > 0 for v in loss_history):
        ax_loss.set_yscale("log")
    ax_loss.legend()
    epochs = [r["epoch"] for r in history]
    scores = [k for k in (history[0] if history else {})
              if k not in ("epoch", "iteration", "loss", "lr", "seconds")]
    for key in scores:
        ax_score.plot(epochs, [r.get(key, np.nan) for r in history], "o-",
                      label=key.replace("_acc", "").replace("_", " "))
    ax_score.set_xlabel("epoch")
    ax_score.set_ylabel("accuracy" if all(k.endswith("_acc") for k in scores) else "score")
    ax_score.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def run_training(
    args: argparse.Namespace,
    model: Any,
    data: Mapping[str, Any],
    *,
    metadata: Mapping[str, Any],
    describe: str,
    evaluate_test: Callable[[Any], Mapping[str, float]] | None = None,
    solver_class: type | None = None,
    solver_kwargs: Mapping[str, Any] | None = None,
    started: float | None = None,
) -> Any:
    """Train ``model`` with the Solver as every ``fastnn train MODEL`` does; write the outputs.

    Parameters
    ----------
    args : argparse.Namespace
        Options of :func:`add_training_options`.
    model : object
        The model (Solver protocol), already built.
    data : mapping
        The Solver's ``data`` (``X_train``, ``y_train``, ``X_val``, ``y_val`` for the default
        Solver; whatever ``solver_class._check_data`` takes otherwise).
    metadata : mapping
        Stored in ``model.npz`` and in every checkpoint (e.g. the preprocessing, ``dataset``,
        ``class_names``).
    describe : str
        One line about the data, printed before the table (threads and optimiser appended).
    evaluate_test : callable or None
        ``evaluate_test(best_model) -> {"test accuracy": 0.91, ...}``, printed in the last line
        and stored in ``history.json``.
    solver_class : type or None
        A :class:`fastnn.solver.Solver` subclass (default the Solver).
    solver_kwargs : mapping or None
        Extra Solver keyword arguments (e.g. ``augment``); they override the defaults here.
    started : float or None
        ``time.perf_counter()`` when the command started (for the total time).

    Returns
    -------
    Solver
        The trained Solver (its ``model`` holds the best parameters).
    """
    import fastnn
    from fastnn.serialization import save_model
    from fastnn.solver import Solver

    started = time.perf_counter() if started is None else started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = _EpochTable(out)
    optim_config = {"learning_rate": args.lr}
    if args.momentum is not None:
        optim_config["momentum"] = args.momentum
    kwargs = {
        "update_rule": args.update_rule, "optim_config": optim_config,
        "lr_decay": args.lr_decay, "batch_size": args.batch_size, "num_epochs": args.epochs,
        "num_train_samples": args.num_train_samples, "checkpoint_name": str(out / "checkpoint"),
        "verbose": False, "grad_clip": args.grad_clip, "early_stopping": args.early_stopping,
        "seed": args.seed, "shuffle": True, "progress": args.progress, "epoch_callback": table,
        **(solver_kwargs or {}),
    }
    solver = (solver_class or Solver)(model, data, **kwargs)
    # the schedule needs the Solver's own count of updates per epoch
    schedule = make_lr_schedule(args, solver._iterations_per_epoch())
    solver.lr_schedule = schedule
    table.solver = solver
    meta = dict(metadata)
    solver.metadata = meta
    print(f"fastnn {fastnn.__version__}: {model!r}")
    print(f"{describe}; threads {fastnn.get_num_threads()}; {args.update_rule} lr {args.lr:g}, "
          f"schedule {schedule!r}")
    train_start = time.perf_counter()
    if args.resume:
        solver.resume(args.resume)
    else:
        solver.train()
    train_seconds = time.perf_counter() - train_start
    if solver.stop_reason:
        print(solver.stop_reason)

    model_path = save_model(out / "model.npz", model, metadata=meta)
    test_scores = dict(evaluate_test(model)) if evaluate_test is not None else {}
    (out / "history.json").write_text(json.dumps(
        {"history": solver.history, "loss_history": solver.loss_history,
         "best_val_acc": solver.best_val_acc, "selection_metric": solver.selection_metric,
         "best_score": solver.best_score, "stop_reason": solver.stop_reason,
         "train_seconds": train_seconds, "test": test_scores}, indent=1))
    plotted = _plot(solver.history, solver.loss_history, out / "training.png")
    best = solver.best_score if solver.best_score is not None else float("nan")
    print(f"best {solver.selection_metric} {best:.4f}; "
          + "".join(f"{name} {value:.4f}; " for name, value in test_scores.items())
          + f"training {train_seconds:.1f} s, total {time.perf_counter() - started:.1f} s")
    print(f"saved {model_path}, {solver.last_checkpoint}, {out / 'history.json'}"
          + (f", {out / 'training.png'}" if plotted else " (no plot: matplotlib not installed)"))
    return solver
