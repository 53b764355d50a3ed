"""``fastnn train fc`` and ``fastnn evaluate``: train a fully-connected net with the Solver.

Pipeline: load the data set -> take a validation split from the training images -> flatten,
scale pixels to [0, 1] and subtract the mean image of the training split (fitted on the training
split only; stored in the model file so ``evaluate`` applies the same transform) -> Solver ->
per-epoch table, ``model.npz`` (best model + preprocessing), a Solver checkpoint
(``checkpoint_epoch_N.npz``, the latest kept), ``history.json`` and ``training.png`` (the
runner every ``fastnn train MODEL`` shares, :mod:`fastnn.cli._training`).

Examples::

    fastnn train fc --dataset sample --epochs 2
    fastnn train fc --dataset fashion-mnist --hidden 512,256 --normalization batchnorm \\
        --dropout 0.8 --update-rule adam --lr 2e-3 --lr-schedule cosine --epochs 20 --out run
    fastnn evaluate run/model.npz --dataset fashion-mnist
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from fastnn.cli._options import (
    add_data_options,
    add_progress_option,
    limit_blas_threads,
    split_validation,
)
from fastnn.cli._training import (
    add_training_options,
    images_to_model_layout,
    run_training,
    weight_scale,
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


def _load(args: argparse.Namespace) -> dict[str, Any]:
    from fastnn.data import load_dataset

    return load_dataset(args.dataset, root=args.data_dir)


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
    from fastnn.classifiers import FullyConnectedNet
    from fastnn.metrics import model_accuracy
    from fastnn.preprocessing import ScaleAndCenter

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
    run_training(
        args, model, {"X_train": X_tr, "y_train": y_tr, "X_val": X_val, "y_val": y_val},
        metadata={**prep.to_metadata(), "dataset": args.dataset,
                  "class_names": list(data["class_names"])},
        describe=f"data: {args.dataset}, train {X_tr.shape[0]}, val {X_val.shape[0]}, "
                 f"test {X_test.shape[0]}",
        evaluate_test=lambda best: {"test accuracy": model_accuracy(best, X_test,
                                                                    data["y_test"])},
        started=started,
    )
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
    X = images_to_model_layout(prep.transform(X, dtype), meta)
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
    fc.add_argument("--weight-scale", type=weight_scale, default="he",
                    help="std of initial weights, or he/xavier")
    fc.add_argument("--reg", type=float, default=0.0, help="L2 regularisation strength")
    add_training_options(fc)
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
