"""``fastnn knn``: k-nearest-neighbour classification of raw pixels, with k-fold CV for k.

Examples::

    fastnn knn                                        # packaged Fashion-MNIST sample, L2, k=1
    fastnn knn --dataset cifar10 --num-train 5000 --num-test 500 --metric l1 --k 5
    fastnn knn --dataset cifar10 --cv 5 --k-choices 1,3,5,8,10,12,15,20,50,100
    fastnn knn --dataset fashion-mnist --metric both --cv 5 --cv-num-train 10000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastnn
from fastnn.cli._options import add_data_options, add_progress_option, positive_int

K_CHOICES_DEFAULT = "1,3,5,8,10,12,15,20,50,100"
# Queries per progress-bar step: large enough to keep every thread busy, small enough that the
# bar moves on long runs.
PREDICT_BATCH = 1000


def _parse_k_choices(text: str) -> list[int]:
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--k-choices must be comma-separated integers, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise ValueError(f"--k-choices must be positive integers, got {text!r}")
    return ks


def _take(X: np.ndarray, y: np.ndarray, n: int | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` examples (all when None); ``--name`` is already known to be >= 1."""
    if n is None:
        return X, y
    if n > X.shape[0]:
        raise ValueError(f"--{name} must be <= {X.shape[0]} for this data set, got {n}")
    return X[:n], y[:n]


def _seconds(s: float) -> str:
    return f"{s:.2f} s" if s >= 0.1 else f"{s * 1e3:.1f} ms"


def run(args: argparse.Namespace) -> int:
    """Load, optionally cross-validate k (and the metric), predict the test images, report.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn knn`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    from fastnn.classifiers import KNearestNeighbor
    from fastnn.data import load_dataset
    from fastnn.metrics import accuracy, predict_in_batches
    from fastnn.model_selection import cross_validate_knn

    metrics = ["l2", "l1"] if args.metric == "both" else [args.metric]
    if len(metrics) > 1 and not args.cv:
        raise ValueError("--metric both needs --cv to choose between L1 and L2")
    k_choices = _parse_k_choices(args.k_choices)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    data = load_dataset(args.dataset, args.data_dir)
    X_train, y_train = _take(data["X_train"], data["y_train"], args.num_train, "num-train")
    X_test, y_test = _take(data["X_test"], data["y_test"], args.num_test, "num-test")
    X_train = X_train.reshape(X_train.shape[0], -1)
    X_test = X_test.reshape(X_test.shape[0], -1)
    timings["load"] = time.perf_counter() - start
    print(
        f"data: {args.dataset}, {X_train.shape[0]} train / {X_test.shape[0]} test, "
        f"{X_train.shape[1]} features ({X_train.dtype}), threads={fastnn.get_num_threads()}"
    )

    k, metric = args.k, metrics[0]
    if args.cv:
        X_cv, y_cv = _take(X_train, y_train, args.cv_num_train, "cv-num-train")
        start = time.perf_counter()
        best = None
        for m in metrics:
            result = cross_validate_knn(
                X_cv, y_cv, k_choices, num_folds=args.cv, metric=m, show_progress=args.progress
            )
            print(f"\n{args.cv}-fold cross-validation, {m.upper()}, {X_cv.shape[0]} examples:")
            print(result.table())
            if best is None or result.best_score > best[0]:
                best = (result.best_score, result.best_value, m)
        timings["cross-validation"] = time.perf_counter() - start
        _, k, metric = best
        print(f"\nchosen: k={k}, metric={metric} (best mean validation accuracy {best[0]:.4f})")

    if k > X_train.shape[0]:
        raise ValueError(f"--k must be <= the number of training examples ({X_train.shape[0]})")
    clf = KNearestNeighbor(metric=metric).fit(X_train, y_train)
    start = time.perf_counter()
    y_pred = predict_in_batches(
        clf, X_test, batch_size=PREDICT_BATCH, show_progress=args.progress,
        desc=f"predict ({metric}, k={k})", k=k,
    )
    timings["predict"] = time.perf_counter() - start

    print(f"\ntest accuracy: {accuracy(y_test, y_pred):.4f} "
          f"({int(np.sum(y_pred == y_test))}/{len(y_test)}), k={k}, metric={metric}")
    rate = X_test.shape[0] / max(timings["predict"], 1e-9)
    print("timings: " + ", ".join(f"{name} {_seconds(t)}" for name, t in timings.items())
          + f" ({rate:,.0f} queries/s)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``knn`` command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``ArgumentParser.add_subparsers``.
    """
    parser = subparsers.add_parser(
        "knn",
        help="k-nearest-neighbour classification (with k-fold cross-validation of k)",
        description="Classify test images by a vote of their k nearest training images "
        "(raw pixels, L2 or L1 distance); optionally choose k by k-fold cross-validation.",
    )
    add_data_options(parser)
    parser.add_argument(
        "--metric", choices=["l2", "l1", "both"], default="l2",
        help="distance (both: let cross-validation pick; needs --cv)",
    )
    parser.add_argument(
        "--k", type=positive_int, default=1, help="neighbours that vote (default 1)"
    )
    parser.add_argument(
        "--num-train", type=positive_int, default=None, help="use the first N training images"
    )
    parser.add_argument(
        "--num-test", type=positive_int, default=None, help="use the first M test images"
    )
    parser.add_argument(
        "--cv", type=int, default=0, metavar="FOLDS",
        help="choose k (and the metric with --metric both) by FOLDS-fold cross-validation",
    )
    parser.add_argument(
        "--k-choices", default=K_CHOICES_DEFAULT, help=f"k values to cross-validate "
        f"(default {K_CHOICES_DEFAULT})",
    )
    parser.add_argument(
        "--cv-num-train", type=positive_int, default=None,
        help="cross-validate on the first N training images only (default: all of them)",
    )
    add_progress_option(parser)
    parser.set_defaults(func=run)

