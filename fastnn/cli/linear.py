"""``fastnn linear``: train a linear SVM or softmax classifier on a data set and report accuracy.

Pipeline (every statistic fitted on the training split only):
load -> features (raw pixels, HOG, HSV colour histogram) -> standardise -> bias column ->
optional random/grid search of learning rate and regularisation on a validation split taken from
the training images -> minibatch SGD -> train/val/test accuracy and time.

Examples::

    fastnn linear --dataset sample --loss softmax
    fastnn linear --dataset fashion-mnist --loss svm --search random --trials 20
    fastnn linear --dataset fashion-mnist --loss svm --features hog --search random
    fastnn linear --dataset cifar10 --loss softmax --features hog,color --save-templates t.png
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastnn.cli._options import (
    add_data_options,
    add_progress_option,
    limit_blas_threads,
    positive_float,
    positive_int,
    split_validation,
)


def _feature_list(text: str) -> list[str]:
    """argparse type of ``--features``: a comma list of distinct feature kinds."""
    from fastnn.features import FEATURE_KINDS  # lazily: parsing must not load the kernels

    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [name for name in names if name not in FEATURE_KINDS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"must be a comma list of {', '.join(FEATURE_KINDS)}; got {text!r}"
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"lists a feature twice: {text!r}")
    return names


@dataclass
class _Split:
    """Feature matrices (standardised, with the bias column) of the three splits."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _check_flags(args: argparse.Namespace) -> None:
    """Flag combinations and optional dependencies, refused before any work."""
    if args.save_templates and args.features != ["pixels"]:
        raise ValueError("--save-templates needs --features pixels (templates are images)")
    if args.num_train is not None and args.num_train < 2:
        raise ValueError(
            f"--num-train must be >= 2 (training and validation), got {args.num_train}"
        )
    if args.save_templates or args.save_loss:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError(
                "--save-templates/--save-loss need matplotlib, which is not installed "
                '(pip install "fastnn[plot]")'
            ) from None
    if args.compare_sklearn:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise ValueError(
                "--compare-sklearn needs scikit-learn, which is not installed"
            ) from None


def _load(args: argparse.Namespace) -> dict[str, Any]:
    """The data set, cut to ``--num-train`` training images."""
    from fastnn.data import load_dataset

    data = load_dataset(args.dataset, args.data_dir)
    if args.num_train is not None:
        data["X_train"] = data["X_train"][: args.num_train]
        data["y_train"] = data["y_train"][: args.num_train]
    return data


def _features(args: argparse.Namespace, data: dict[str, Any]) -> _Split:
    """Features of every split, the validation hold-out, standardisation and the bias column
    (statistics from the training split only); prints one summary line."""
    from fastnn.features import build_features
    from fastnn.preprocessing import StandardScaler, add_bias_column

    images = data["X_train"]
    if "color" in args.features and images.shape[-1] != 3:
        raise ValueError(
            "--features color needs RGB images (N, H, W, 3); this data set has images of shape "
            f"{images.shape[1:]} (use pixels or hog)"
        )
    hog_cell = args.hog_cell or (4 if images.shape[1] <= 28 else 8)
    options = {"pixels_per_cell": hog_cell, "show_progress": args.progress}
    start = time.perf_counter()
    F_all = build_features(images, args.features, **options)
    F_test = build_features(data["X_test"], args.features, **options)
    feature_time = time.perf_counter() - start
    F_train, y_train, F_val, y_val = split_validation(
        F_all, data["y_train"], args.val_size, args.seed
    )
    scaler = StandardScaler().fit(F_train)
    X_train, X_val, X_test = (
        add_bias_column(scaler.transform(F)) for F in (F_train, F_val, F_test)
    )
    split = _Split(X_train, y_train, X_val, y_val, X_test, data["y_test"])
    hog_note = f" (HOG {hog_cell}px cells)" if "hog" in args.features else ""
    print(
        f"{args.dataset}: {split.X_train.shape[0]} train / {split.X_val.shape[0]} val / "
        f"{split.X_test.shape[0]} test, features {'+'.join(args.features)}{hog_note}: "
        f"{split.X_train.shape[1] - 1} + bias, {feature_time:.1f} s"
    )
    return split


def _model_factory(args: argparse.Namespace):
    """A zero-argument factory of fresh, identically seeded classifiers."""
    from fastnn.classifiers import LinearSVM, Softmax

    cls = LinearSVM if args.loss == "svm" else Softmax

    def make_model():
        return cls(regularization=args.regularization, l1_ratio=args.l1_ratio, seed=args.seed)

    return make_model


def _search(
    args: argparse.Namespace, split: _Split, make_model, train_kwargs: dict[str, Any]
) -> tuple[float, float, float]:
    """``(learning_rate, reg, seconds)``: the flags, or the best of a random/grid search."""
    from fastnn.model_selection import LogUniform, grid_search, random_search

    if args.search == "none":
        return args.learning_rate, args.reg, 0.0
    ranges = {"learning_rate": tuple(args.lr_range), "reg": tuple(args.reg_range)}
    common = {
        "X_val": split.X_val, "y_val": split.y_val, "train_kwargs": train_kwargs,
        "seed": args.seed, "verbose": args.verbose, "show_progress": args.progress,
    }
    start = time.perf_counter()
    if args.search == "random":
        result = random_search(
            make_model, ranges, split.X_train, split.y_train, num_trials=args.trials, **common
        )
    else:
        space = {name: LogUniform(*bounds) for name, bounds in ranges.items()}
        result = grid_search(
            make_model, space, split.X_train, split.y_train,
            points_per_range=args.grid_points, **common,
        )
    seconds = time.perf_counter() - start
    print(f"\n{args.search} search, {len(result.results)} trials, {seconds:.1f} s:")
    print(result.table(max_rows=10))
    learning_rate, reg = result.best_params["learning_rate"], result.best_params["reg"]
    print(f"best: learning_rate={learning_rate:.3g} reg={reg:.3g}\n")
    return learning_rate, reg, seconds


def _fit(make_model, split: _Split, learning_rate: float, reg: float, train_kwargs):
    """Train the chosen setting (same seed: reproduces the best trial exactly), timed alone."""
    model = make_model()
    start = time.perf_counter()
    loss_history = model.train(
        split.X_train, split.y_train, learning_rate=learning_rate, reg=reg, **train_kwargs
    )
    return model, loss_history, time.perf_counter() - start


def _report(args, data, split, model, loss_history, times, learning_rate, reg) -> None:
    """Accuracies and times; the scikit-learn comparison and the pictures when asked."""
    from fastnn.metrics import model_accuracy

    train_time, search_time = times
    name = "LinearSVM" if args.loss == "svm" else "Softmax"
    accuracies = "  ".join(
        f"{part} acc {model_accuracy(model, X, y):.4f}"
        for part, X, y in (("train", split.X_train, split.y_train),
                           ("val", split.X_val, split.y_val),
                           ("test", split.X_test, split.y_test))
    )
    print(
        f"fastnn {name} (lr={learning_rate:.3g}, reg={reg:.3g}, {args.regularization}, "
        f"{args.num_iters} iters x {args.batch_size}): {accuracies}  "
        f"train time {train_time:.2f} s"
        + (f" (+ search {search_time:.1f} s)" if search_time else "")
    )
    if args.compare_sklearn:
        _compare_sklearn(split.X_train[:, :-1], split.y_train, split.X_val[:, :-1], split.y_val,
                         split.X_test[:, :-1], data)
    if args.save_templates:
        from fastnn.visualize import plot_weight_templates

        plot_weight_templates(model.W, data["X_train"].shape[1:],
                              class_names=data["class_names"], path=args.save_templates)
        print(f"weight templates saved to {args.save_templates}")
    if args.save_loss:
        from fastnn.visualize import plot_loss_history

        plot_loss_history(loss_history, path=args.save_loss, title=f"{name} training loss",
                          smooth=50)
        print(f"loss history saved to {args.save_loss}")


def run(args: argparse.Namespace) -> int:
    """load -> features -> search -> fit -> report.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn linear`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    _check_flags(args)
    limit_blas_threads()
    data = _load(args)
    split = _features(args, data)
    make_model = _model_factory(args)
    train_kwargs = {
        "num_iters": args.num_iters, "batch_size": args.batch_size, "momentum": args.momentum,
        "lr_decay": args.lr_decay, "num_classes": len(data["class_names"]),
    }
    learning_rate, reg, search_time = _search(args, split, make_model, train_kwargs)
    model, loss_history, train_time = _fit(make_model, split, learning_rate, reg, train_kwargs)
    _report(args, data, split, model, loss_history, (train_time, search_time), learning_rate, reg)
    return 0


def _compare_sklearn(X_train, y_train, X_val, y_val, X_test, data) -> None:
    """scikit-learn's multinomial LogisticRegression (lbfgs) on the very same features."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    # lbfgs' softmax is multinomial for multiclass problems (the only choice in recent versions).
    clf = LogisticRegression(solver="lbfgs", max_iter=1000)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X_train, y_train)
    elapsed = time.perf_counter() - start
    converged = not any("converge" in str(w.message).lower() for w in caught)
    print(
        f"scikit-learn LogisticRegression (multinomial, lbfgs, C=1, max_iter=1000"
        f"{'' if converged else ', NOT converged'}): "
        f"train acc {clf.score(X_train, y_train):.4f}  val acc {clf.score(X_val, y_val):.4f}  "
        f"test acc {clf.score(X_test, data['y_test']):.4f}  train time {elapsed:.2f} s"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``linear`` command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``ArgumentParser.add_subparsers``.
    """
    parser = subparsers.add_parser(
        "linear",
        help="train a linear SVM / softmax classifier (optionally on HOG/colour features)",
        description="Train a linear classifier with minibatch SGD and report train/val/test "
        "accuracy and time. Features are standardised with training statistics and get a "
        "bias column (the bias trick).",
    )
    add_data_options(parser)
    parser.add_argument("--loss", default="softmax", choices=("svm", "softmax"))
    parser.add_argument(
        "--features",
        type=_feature_list,
        default="pixels",
        help="comma list of pixels, hog, color (color needs RGB, e.g. cifar10); default pixels",
    )
    parser.add_argument(
        "--hog-cell",
        type=positive_int,
        default=None,
        help="HOG pixels per cell (default 4 for 28x28 images, else 8)",
    )
    parser.add_argument(
        "--search",
        default="none",
        choices=("none", "random", "grid"),
        help="hyperparameter search over --lr-range/--reg-range (random is the recommended method)",
    )
    parser.add_argument(
        "--trials", type=positive_int, default=10, help="random-search trials (default 10)"
    )
    parser.add_argument(
        "--grid-points", type=positive_int, default=3, help="grid points per range"
    )
    parser.add_argument(
        "--lr-range", type=float, nargs=2, default=(1e-3, 1e-1), metavar=("LO", "HI")
    )
    parser.add_argument(
        "--reg-range", type=float, nargs=2, default=(1e-6, 1e-2), metavar=("LO", "HI")
    )
    parser.add_argument(
        "--learning-rate", type=positive_float, default=1e-2, help="without --search"
    )
    parser.add_argument("--reg", type=float, default=1e-4, help="without --search")
    parser.add_argument("--regularization", default="l2", choices=("l2", "l1", "elasticnet"))
    parser.add_argument("--l1-ratio", type=float, default=0.5, help="elastic-net L1 share")
    parser.add_argument("--num-iters", type=positive_int, default=3000)
    parser.add_argument("--batch-size", type=positive_int, default=200)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument(
        "--lr-decay", type=float, default=0.9, help="learning-rate factor per epoch"
    )
    parser.add_argument(
        "--val-size",
        type=positive_int,
        default=None,
        help="validation images taken from the training set (default: 10%% of them, at most 5000)",
    )
    parser.add_argument(
        "--num-train",
        type=positive_int,
        default=None,
        help="use only the first N training images (quick runs)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--compare-sklearn",
        action="store_true",
        help="also fit scikit-learn's multinomial LogisticRegression (lbfgs)",
    )
    parser.add_argument(
        "--save-templates",
        metavar="PNG",
        default=None,
        help="save the learned weight templates (needs matplotlib)",
    )
    parser.add_argument(
        "--save-loss",
        metavar="PNG",
        default=None,
        help="save the loss-history plot (needs matplotlib)",
    )
    add_progress_option(parser)
    parser.add_argument("--verbose", action="store_true", help="print one line per search trial")
    parser.set_defaults(func=run)
