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

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from fastnn import optim

PIXEL_SCALE = 1.0 / 255.0


# --------------------------------------------------------------------------- preprocessing


def fit_preprocessing(X_train: np.ndarray) -> dict[str, Any]:
    """Statistics of the training split: pixel scale and mean image (flattened, float32)."""
    flat = X_train.reshape(X_train.shape[0], -1)
    mean = flat.mean(axis=0, dtype=np.float64) * PIXEL_SCALE
    return {"preprocessing": "scale_and_center", "pixel_scale": PIXEL_SCALE,
            "input_shape": list(X_train.shape[1:]), "mean": mean.astype(np.float32)}


def apply_preprocessing(X: np.ndarray, prep: dict[str, Any], dtype=np.float32) -> np.ndarray:
    """``X.reshape(N, -1) * pixel_scale - mean`` in ``dtype``, as stored by ``fit``."""
    if prep.get("preprocessing") != "scale_and_center" or "mean" not in prep:
        raise ValueError("the model file holds no preprocessing description (was it written by "
                         "`fastnn train`?)")
    flat = X.reshape(X.shape[0], -1)
    mean = np.asarray(prep["mean"])
    if flat.shape[1] != mean.shape[0]:
        raise ValueError(f"the data set's images have {flat.shape[1]} values each, the model was "
                         f"trained on {mean.shape[0]} (input shape {prep.get('input_shape')})")
    out = flat.astype(dtype) * dtype(prep["pixel_scale"])
    out -= mean.astype(dtype)
    return out


def _limit_blas_threads() -> None:
    import fastnn

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(fastnn.get_num_threads())


def _parse_hidden(text: str) -> list[int]:
    try:
        dims = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated positive integers, got {text!r}")
    if not dims or any(d < 1 for d in dims):
        raise ValueError(f"--hidden must be comma-separated positive integers, got {text!r}")
    return dims


def _parse_weight_scale(text: str) -> float | str:
    if text in ("he", "xavier"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--weight-scale must be a positive number, 'he' or 'xavier'; got {text!r}")
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"--weight-scale must be a positive number, got {text!r}")
    return value


def _load(args) -> dict[str, Any]:
    from fastnn.data import load_dataset

    return load_dataset(args.dataset, root=args.data_dir)


def _split(X, y, val_size: int | None, seed: int):
    n = X.shape[0]
    if val_size is None:
        val_size = min(5000, n // 10)
    if not 1 <= val_size < n:
        raise ValueError(f"--val-size must be between 1 and {n - 1} (training images), "
                         f"got {val_size}")
    order = np.random.RandomState(seed).permutation(n)
    val, train = order[:val_size], order[val_size:]
    return X[train], y[train], X[val], y[val]


def _accuracy(model, X, y, batch_size: int = 1000) -> float:
    correct = 0
    for start in range(0, X.shape[0], batch_size):
        scores = model.loss(X[start:start + batch_size])
        correct += int(np.sum(np.argmax(scores, axis=1) == y[start:start + batch_size]))
    return correct / X.shape[0]


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


def _check_fc_flags(args) -> None:
    """Reject bad numeric flags up front, naming the flag (not the internal argument)."""
    at_least_one = ("epochs", "batch_size", "num_train_samples", "val_size", "early_stopping")
    for name in at_least_one:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if not args.warmup_epochs >= 0:  # also rejects NaN
        raise ValueError(f"--warmup-epochs must be >= 0, got {args.warmup_epochs}")
    for name in ("lr", "lr_decay", "gamma", "step_epochs", "grad_clip"):
        value = getattr(args, name)
        if value is not None and not (value > 0 and np.isfinite(value)):
            raise ValueError(f"--{name.replace('_', '-')} must be a finite number > 0, got {value}")


def run_train_fc(args) -> int:
    import fastnn
    from fastnn.classifiers import FullyConnectedNet
    from fastnn.serialization import save_model
    from fastnn.solver import Solver

    _check_fc_flags(args)
    _limit_blas_threads()
    hidden = _parse_hidden(args.hidden)
    weight_scale = _parse_weight_scale(args.weight_scale)
    dtype = np.dtype(args.dtype).type
    started = time.perf_counter()
    data = _load(args)
    X_tr, y_tr, X_val, y_val = _split(data["X_train"], data["y_train"], args.val_size, args.seed)
    prep = fit_preprocessing(X_tr)
    X_tr = apply_preprocessing(X_tr, prep, dtype)
    X_val = apply_preprocessing(X_val, prep, dtype)
    X_test = apply_preprocessing(data["X_test"], prep, dtype)
    num_classes = len(data["class_names"])

    np.random.seed(args.seed)  # weights (and unseeded dropout) draw from the global state
    model = FullyConnectedNet(
        hidden, input_dim=X_tr.shape[1], num_classes=num_classes,
        dropout_keep_ratio=args.dropout,
        normalization=None if args.normalization == "none" else args.normalization,
        reg=args.reg, weight_scale=weight_scale, dtype=dtype, activation=args.activation,
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
    meta = {**prep, "dataset": args.dataset, "class_names": list(data["class_names"])}
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
    test_acc = _accuracy(model, X_test, data["y_test"])
    print(f"best val_acc {solver.best_val_acc:.4f}; test accuracy {test_acc:.4f}; "
          f"training {train_seconds:.1f} s, total {time.perf_counter() - started:.1f} s")
    print(f"saved {model_path}, {solver.last_checkpoint}, {out / 'history.json'}"
          + (f", {out / 'training.png'}" if plotted else " (no plot: matplotlib not installed)"))
    return 0


def run_evaluate(args) -> int:
    from fastnn.serialization import load_model

    _limit_blas_threads()
    model, meta = load_model(args.checkpoint, with_metadata=True)
    data = _load(args)
    X = data[f"X_{args.split}"]
    y = data[f"y_{args.split}"]
    dtype = model.params[next(iter(model.params))].dtype.type
    X = apply_preprocessing(X, meta, dtype)
    trained_on = meta.get("dataset")
    if trained_on and trained_on != args.dataset:
        print(f"note: the model was trained on {trained_on}")
    start = time.perf_counter()
    acc = _accuracy(model, X, y)
    print(f"{args.split} accuracy on {args.dataset}: {acc:.4f} ({X.shape[0]} images, "
          f"{time.perf_counter() - start:.2f} s)")
    return 0


def _add_data_args(parser) -> None:
    from fastnn.data import DATASET_NAMES

    parser.add_argument("--dataset", default="sample", choices=DATASET_NAMES,
                        help="data set (default: sample, shipped with fastnn)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the data (default: FASTNN_DATA or ~/.fastnn/data)")


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a neural network with the Solver")
    models = train.add_subparsers(dest="model", metavar="MODEL", required=True)
    fc = models.add_parser("fc", help="fully-connected net (FullyConnectedNet)")
    _add_data_args(fc)
    fc.add_argument("--hidden", default="256,128", help="hidden layer sizes (default 256,128)")
    fc.add_argument("--normalization", default="none",
                    choices=("none", "batchnorm", "layernorm"))
    fc.add_argument("--dropout", type=float, default=1.0,
                    help="probability of KEEPING a unit (1 = no dropout)")
    fc.add_argument("--activation", default="relu",
                    choices=("relu", "leaky_relu", "tanh", "sigmoid", "elu"))
    fc.add_argument("--weight-scale", default="he", help="std of initial weights, or he/xavier")
    fc.add_argument("--reg", type=float, default=0.0, help="L2 regularisation strength")
    fc.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    fc.add_argument("--epochs", type=int, default=10)
    fc.add_argument("--batch-size", type=int, default=128)
    fc.add_argument("--update-rule", default="adam", choices=tuple(optim.UPDATE_RULES))
    fc.add_argument("--lr", type=float, default=1e-3, help="base learning rate")
    fc.add_argument("--momentum", type=float, default=None,
                    help="momentum for sgd_momentum/nesterov_momentum (default 0.9)")
    fc.add_argument("--lr-schedule", default="constant", choices=optim.SCHEDULES)
    fc.add_argument("--warmup-epochs", type=float, default=0.0,
                    help="linear warm-up length in epochs (composes with any schedule)")
    fc.add_argument("--step-epochs", type=float, default=None,
                    help="step schedule: decay every this many epochs")
    fc.add_argument("--gamma", type=float, default=0.1, help="step schedule: decay factor")
    fc.add_argument("--lr-decay", type=float, default=1.0,
                    help="multiply the learning rate by this after every epoch (CS231n)")
    fc.add_argument("--grad-clip", type=float, default=None, help="clip the global grad norm")
    fc.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                    help="stop after this many epochs without a better val accuracy")
    fc.add_argument("--val-size", type=int, default=None,
                    help="validation images taken from the training split (default min(5000, N/10))")
    fc.add_argument("--num-train-samples", type=int, default=5000,
                    help="training images used to estimate training accuracy each epoch")
    fc.add_argument("--seed", type=int, default=0)
    fc.add_argument("--out", default="fastnn-run", help="output folder (default fastnn-run)")
    fc.add_argument("--resume", default=None, metavar="CHECKPOINT",
                    help="continue from a Solver checkpoint of the same command")
    fc.add_argument("--progress", action="store_true", default=None,
                    help="force a progress bar (default: when stderr is a terminal)")
    fc.set_defaults(func=run_train_fc)

    evaluate = subparsers.add_parser("evaluate", help="accuracy of a saved model on a data set")
    evaluate.add_argument("checkpoint", help="model.npz written by `fastnn train` (or a Solver "
                                             "checkpoint of it)")
    _add_data_args(evaluate)
    evaluate.add_argument("--split", default="test", choices=("train", "test"))
    evaluate.set_defaults(func=run_evaluate)
