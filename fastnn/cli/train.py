"""``fastnn train fc`` and ``fastnn evaluate``: train a fully-connected net with the Solver.

Pipeline: load the data set -> take a validation split from the training images -> flatten,
scale pixels to [0, 1] and subtract the mean image of the training split (fitted on the training
split only; stored in the model file so ``evaluate`` applies the same transform) -> Solver ->
per-epoch table, ``model.npz`` (best model + preprocessing), a Solver checkpoint
(``checkpoint_epoch_N.npz``, the latest kept), ``history.json`` and ``training.png``.

Examples::

    fastnn train fc --dataset sample --epochs 2
    fastnn train fc --dataset fashion-mnist --hidden 512,256 --normalization batchnorm \\
        --dropout 0.8 --update-rule adam --lr 2e-3 --lr-schedule cosine --epochs 20 --out run
    fastnn evaluate run/model.npz --dataset fashion-mnist
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from fastnn import optim
from fastnn.cli._options import (
    add_data_options,
    add_progress_option,
    limit_blas_threads,
    non_negative_float,
    positive_float,
    positive_int,
    split_validation,
)

#: Raw 0..255 pixels are scaled to [0, 1] before the mean image is subtracted.
PIXEL_SCALE = 1.0 / 255.0


def _hidden_dims(text: str) -> list[int]:
    """argparse type of ``--hidden``: comma-separated layer sizes, each >= 1."""
    try:
        dims = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        dims = []
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive integers, got {text!r}"
        )
    return dims


def _weight_scale(text: str) -> float | str:
    """argparse type of ``--weight-scale``: ``he``, ``xavier`` or a finite number > 0."""
    if text in ("he", "xavier"):
        return text
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a finite number > 0, 'he' or 'xavier'; got {text!r}"
        ) from None


def _load(args: argparse.Namespace) -> dict[str, Any]:
    from fastnn.data import load_dataset

    return load_dataset(args.dataset, root=args.data_dir)


def _plot(history: list[dict], loss_history: list[float], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(np.arange(1, len(loss_history) + 1), loss_history, lw=0.5, alpha=0.6,
                 label="minibatch")
    its = [r["iteration"] for r in history[1:]]
    ax_loss.plot(its, [r["loss"] for r in history[1:]], "o-", label="epoch mean")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    epochs = [r["epoch"] for r in history]
    ax_acc.plot(epochs, [r["train_acc"] for r in history], "o-", label="train")
    ax_acc.plot(epochs, [r["val_acc"] for r in history], "o-", label="val")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- commands


def run_train_fc(args: argparse.Namespace) -> int:
    """Train a FullyConnectedNet with the Solver; write the model, checkpoint and history.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn train fc`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    import fastnn
    from fastnn.classifiers import FullyConnectedNet
    from fastnn.metrics import model_accuracy
    from fastnn.preprocessing import ScaleAndCenter
    from fastnn.serialization import save_model
    from fastnn.solver import Solver

    limit_blas_threads()
    dtype = np.dtype(args.dtype).type
    started = time.perf_counter()
    data = _load(args)
    X_tr, y_tr, X_val, y_val = split_validation(
        data["X_train"], data["y_train"], args.val_size, args.seed
    )
    # pixel scale and mean image from the training split only; stored with the model
    prep = ScaleAndCenter(PIXEL_SCALE).fit(X_tr)
    X_tr, X_val, X_test = (prep.transform(X, dtype) for X in (X_tr, X_val, data["X_test"]))
    num_classes = len(data["class_names"])

    np.random.seed(args.seed)  # weights (and unseeded dropout) draw from the global state
    model = FullyConnectedNet(
        args.hidden, input_dim=X_tr.shape[1], num_classes=num_classes,
        dropout_keep_ratio=args.dropout,
        normalization=None if args.normalization == "none" else args.normalization,
        reg=args.reg, weight_scale=args.weight_scale, dtype=dtype, activation=args.activation,
    )
    per_epoch = max(X_tr.shape[0] // args.batch_size, 1)
    schedule = None
    if args.lr_schedule != "constant" or args.warmup_epochs > 0:
        schedule = optim.make_schedule(
            args.lr_schedule, total_steps=max(1, args.epochs * per_epoch),
            steps_per_epoch=per_epoch, warmup_steps=round(args.warmup_epochs * per_epoch),
            step_epochs=args.step_epochs, gamma=args.gamma)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    header = f"{'epoch':>5} {'loss':>8} {'train_acc':>9} {'val_acc':>8} {'lr':>9} {'seconds':>8}"

    def print_row(row: dict) -> None:
        print(f"{row['epoch']:>5} {row['loss']:>8.4f} {row['train_acc']:>9.4f} "
              f"{row['val_acc']:>8.4f} {row['lr']:>9.2e} {row['seconds']:>8.2f}", flush=True)
        # keep only the newest Solver checkpoint (each holds params, best params and Adam state)
        for old in out.glob("checkpoint_epoch_*.npz"):
            if str(old) != solver.last_checkpoint:
                old.unlink()

    optim_config = {"learning_rate": args.lr}
    if args.momentum is not None:
        optim_config["momentum"] = args.momentum
    solver = Solver(
        model, {"X_train": X_tr, "y_train": y_tr, "X_val": X_val, "y_val": y_val},
        update_rule=args.update_rule, optim_config=optim_config, lr_decay=args.lr_decay,
        batch_size=args.batch_size, num_epochs=args.epochs,
        num_train_samples=args.num_train_samples, checkpoint_name=str(out / "checkpoint"),
        verbose=False, lr_schedule=schedule, grad_clip=args.grad_clip,
        early_stopping=args.early_stopping, seed=args.seed, shuffle=True,
        progress=args.progress, epoch_callback=print_row,
    )
    meta = {**prep.to_metadata(), "dataset": args.dataset, "class_names": list(data["class_names"])}
    solver.metadata = meta
    print(f"fastnn {fastnn.__version__}: {model!r}")
    print(f"data: {args.dataset}, train {X_tr.shape[0]}, val {X_val.shape[0]}, "
          f"test {X_test.shape[0]}; threads {fastnn.get_num_threads()}; "
          f"{args.update_rule} lr {args.lr:g}, schedule {schedule!r}")
    print(header)
    train_start = time.perf_counter()
    if args.resume:
        solver.resume(args.resume)
    else:
        solver.train()
    train_seconds = time.perf_counter() - train_start
    if solver.stop_reason:
        print(solver.stop_reason)

    model_path = save_model(out / "model.npz", model, metadata=meta)
    (out / "history.json").write_text(json.dumps(
        {"history": solver.history, "loss_history": solver.loss_history,
         "best_val_acc": solver.best_val_acc, "stop_reason": solver.stop_reason,
         "train_seconds": train_seconds}, indent=1))
    plotted = _plot(solver.history, solver.loss_history, out / "training.png")
    test_acc = model_accuracy(model, X_test, data["y_test"])
    print(f"best val_acc {solver.best_val_acc:.4f}; test accuracy {test_acc:.4f}; "
          f"training {train_seconds:.1f} s, total {time.perf_counter() - started:.1f} s")
    print(f"saved {model_path}, {solver.last_checkpoint}, {out / 'history.json'}"
          + (f", {out / 'training.png'}" if plotted else " (no plot: matplotlib not installed)"))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Accuracy of a saved ``fastnn train`` model on a split of a data set.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn evaluate`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    from fastnn.metrics import model_accuracy
    from fastnn.preprocessing import ScaleAndCenter
    from fastnn.serialization import load_model

    limit_blas_threads()
    model, meta = load_model(args.checkpoint, with_metadata=True)
    try:
        prep = ScaleAndCenter.from_metadata(meta)
    except ValueError as exc:
        raise ValueError(f"{args.checkpoint}: {exc}") from None
    data = _load(args)
    X = data[f"X_{args.split}"]
    y = data[f"y_{args.split}"]
    if tuple(X.shape[1:]) != prep.input_shape_:
        raise ValueError(
            f"the model was trained on images of shape {prep.input_shape_}; {args.dataset} has "
            f"images of shape {tuple(X.shape[1:])}"
        )
    dtype = model.params[next(iter(model.params))].dtype.type
    X = prep.transform(X, dtype)
    trained_on = meta.get("dataset")
    if trained_on and trained_on != args.dataset:
        print(f"note: the model was trained on {trained_on}")
    start = time.perf_counter()
    acc = model_accuracy(model, X, y, show_progress=args.progress, desc="evaluate")
    print(f"{args.split} accuracy on {args.dataset}: {acc:.4f} ({X.shape[0]} images, "
          f"{time.perf_counter() - start:.2f} s)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` (with its ``fc`` model) and ``evaluate`` commands.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``ArgumentParser.add_subparsers``.
    """
    train = subparsers.add_parser("train", help="train a neural network with the Solver")
    models = train.add_subparsers(dest="model", metavar="MODEL", required=True)
    fc = models.add_parser("fc", help="fully-connected net (FullyConnectedNet)")
    add_data_options(fc)
    fc.add_argument("--hidden", type=_hidden_dims, default="256,128",
                    help="hidden layer sizes (default 256,128)")
    fc.add_argument("--normalization", default="none",
                    choices=("none", "batchnorm", "layernorm"))
    fc.add_argument("--dropout", type=float, default=1.0,
                    help="probability of KEEPING a unit (1 = no dropout)")
    fc.add_argument("--activation", default="relu",
                    choices=("relu", "leaky_relu", "tanh", "sigmoid", "elu"))
    fc.add_argument("--weight-scale", type=_weight_scale, default="he",
                    help="std of initial weights, or he/xavier")
    fc.add_argument("--reg", type=float, default=0.0, help="L2 regularisation strength")
    fc.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    fc.add_argument("--epochs", type=positive_int, default=10)
    fc.add_argument("--batch-size", type=positive_int, default=128)
    fc.add_argument("--update-rule", default="adam", choices=tuple(optim.UPDATE_RULES))
    fc.add_argument("--lr", type=positive_float, default=1e-3, help="base learning rate")
    fc.add_argument("--momentum", type=float, default=None,
                    help="momentum for sgd_momentum/nesterov_momentum (default 0.9)")
    fc.add_argument("--lr-schedule", default="constant", choices=optim.SCHEDULES)
    fc.add_argument("--warmup-epochs", type=non_negative_float, default=0.0,
                    help="linear warm-up length in epochs (composes with any schedule)")
    fc.add_argument("--step-epochs", type=positive_float, default=None,
                    help="step schedule: decay every this many epochs")
    fc.add_argument("--gamma", type=positive_float, default=0.1, help="step schedule: decay factor")
    fc.add_argument("--lr-decay", type=positive_float, default=1.0,
                    help="multiply the learning rate by this after every epoch (CS231n)")
    fc.add_argument("--grad-clip", type=positive_float, default=None,
                    help="clip the global grad norm")
    fc.add_argument("--early-stopping", type=positive_int, default=None, metavar="PATIENCE",
                    help="stop after this many epochs without a better val accuracy")
    fc.add_argument("--val-size", type=positive_int, default=None,
                    help="validation images taken from the training split "
                    "(default min(5000, N/10))")
    fc.add_argument("--num-train-samples", type=positive_int, default=5000,
                    help="training images used to estimate training accuracy each epoch")
    fc.add_argument("--seed", type=int, default=0)
    fc.add_argument("--out", default="fastnn-run", help="output folder (default fastnn-run)")
    fc.add_argument("--resume", default=None, metavar="CHECKPOINT",
                    help="continue from a Solver checkpoint of the same command")
    add_progress_option(fc)
    fc.set_defaults(func=run_train_fc)

    # other model families add ``fastnn train MODEL`` from their own modules of this package
    # through ``register_train(models)``, so adding one never touches this file
    import importlib
    import pkgutil

    import fastnn.cli

    for info in sorted(pkgutil.iter_modules(fastnn.cli.__path__), key=lambda m: m.name):
        if info.name != "train":
            module = importlib.import_module(f"fastnn.cli.{info.name}")
            register_train = getattr(module, "register_train", None)
            if register_train is not None:
                register_train(models)

    evaluate = subparsers.add_parser("evaluate", help="accuracy of a saved model on a data set")
    evaluate.add_argument("checkpoint", help="model.npz written by `fastnn train` (or a Solver "
                                             "checkpoint of it)")
    add_data_options(evaluate)
    evaluate.add_argument("--split", default="test", choices=("train", "test"))
    add_progress_option(evaluate)
    evaluate.set_defaults(func=run_evaluate)
