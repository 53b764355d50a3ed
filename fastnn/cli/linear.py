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

import time

import numpy as np

FEATURES = ("pixels", "hog", "color")


def _limit_blas_threads(n: int) -> None:
    """Use fastnn's one thread setting for NumPy's BLAS too, when threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(n)


def _parse_features(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(
            f"--features must name at least one of {', '.join(FEATURES)}; got {text!r}"
        )
    for name in names:
        if name not in FEATURES:
            raise ValueError(
                f"--features must be a comma list of {', '.join(FEATURES)}; got {name!r}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"--features lists a feature twice: {text!r}")
    return names


def compute_features(
    images: np.ndarray, names: list[str], hog_cell: int, verbose: bool = False
) -> np.ndarray:
    """Concatenate the requested features of a batch of (N, H, W, C) images, float32 (N, F)."""
    parts = []
    for name in names:
        if name == "pixels":
            parts.append(images.reshape(images.shape[0], -1).astype(np.float32))
        elif name == "hog":
            from fastnn.features import hog_features
            from fastnn.kernels.hog import best_hog_impl

            # compiled when the extension is built, else the NumPy twin (same numbers)
            hog = hog_features(images, pixels_per_cell=hog_cell, impl=best_hog_impl())
            parts.append(hog.astype(np.float32))
        elif name == "color":
            if images.ndim != 4 or images.shape[-1] != 3:
                raise ValueError(
                    "--features color needs RGB images (N, H, W, 3); this data set has images "
                    f"of shape {images.shape[1:]} (use pixels or hog)"
                )
            from fastnn.features import color_histogram_hsv, extract_features

            parts.append(
                extract_features(images, [color_histogram_hsv], verbose=verbose).astype(np.float32)
            )
    return np.hstack(parts) if len(parts) > 1 else parts[0]


def _split(X, y, val_size: int, seed: int):
    n = X.shape[0]
    if not 0 < val_size < n:
        raise ValueError(
            f"--val-size must be between 1 and {n - 1} for this data set; got {val_size}"
        )
    perm = np.random.default_rng(seed).permutation(n)
    val, train = np.sort(perm[:val_size]), np.sort(perm[val_size:])
    return X[train], y[train], X[val], y[val]


def _accuracy(model, X, y) -> float:
    return float(np.mean(model.predict(X) == y))


def run(args) -> int:
    import fastnn
    from fastnn.classifiers import LinearSVM, Softmax
    from fastnn.data import load_dataset
    from fastnn.model_selection import grid_search, random_search
    from fastnn.preprocessing import StandardScaler, add_bias_column

    features = _parse_features(args.features)
    if args.save_templates and features != ["pixels"]:
        raise ValueError("--save-templates needs --features pixels (templates are images)")
    for name in ("trials", "num_iters", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
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
    _limit_blas_threads(fastnn.get_num_threads())

    data = load_dataset(args.dataset, args.data_dir)
    images, labels = data["X_train"], data["y_train"]
    if args.num_train is not None:
        if args.num_train < 2:
            raise ValueError(f"--num-train must be >= 2, got {args.num_train}")
        images, labels = images[: args.num_train], labels[: args.num_train]
    hog_cell = args.hog_cell or (4 if images.shape[1] <= 28 else 8)

    start = time.perf_counter()
    F_all = compute_features(images, features, hog_cell, verbose=args.verbose)
    F_test = compute_features(data["X_test"], features, hog_cell, verbose=args.verbose)
    feature_time = time.perf_counter() - start
    val_size = args.val_size if args.val_size is not None else min(5000, F_all.shape[0] // 10)
    F_train, y_train, F_val, y_val = _split(F_all, labels, val_size, args.seed)

    scaler = StandardScaler().fit(F_train)  # statistics from the training split only
    X_train = add_bias_column(scaler.transform(F_train))
    X_val = add_bias_column(scaler.transform(F_val))
    X_test = add_bias_column(scaler.transform(F_test))
    num_classes = len(data["class_names"])
    print(
        f"{args.dataset}: {X_train.shape[0]} train / {X_val.shape[0]} val / {X_test.shape[0]} "
        f"test, features {'+'.join(features)}"
        f"{f' (HOG {hog_cell}px cells)' if 'hog' in features else ''}: "
        f"{X_train.shape[1] - 1} + bias, {feature_time:.1f} s"
    )

    cls = LinearSVM if args.loss == "svm" else Softmax

    def make_model():
        return cls(regularization=args.regularization, l1_ratio=args.l1_ratio, seed=args.seed)

    train_kwargs = {
        "num_iters": args.num_iters,
        "batch_size": args.batch_size,
        "momentum": args.momentum,
        "lr_decay": args.lr_decay,
        "num_classes": num_classes,
    }
    search_time = 0.0
    if args.search != "none":
        space = {
            "learning_rate": tuple(args.lr_range),
            "reg": tuple(args.reg_range),
        }
        start = time.perf_counter()
        if args.search == "random":
            result = random_search(
                make_model,
                space,
                X_train,
                y_train,
                X_val=X_val,
                y_val=y_val,
                num_trials=args.trials,
                train_kwargs=train_kwargs,
                seed=args.seed,
                verbose=args.verbose,
            )
        else:
            from fastnn.model_selection import LogUniform

            space = {k: LogUniform(*v) for k, v in space.items()}
            result = grid_search(
                make_model,
                space,
                X_train,
                y_train,
                X_val=X_val,
                y_val=y_val,
                points_per_range=args.grid_points,
                train_kwargs=train_kwargs,
                seed=args.seed,
                verbose=args.verbose,
            )
        search_time = time.perf_counter() - start
        print(f"\n{args.search} search, {len(result.results)} trials, {search_time:.1f} s:")
        print(result.table(max_rows=10))
        learning_rate = result.best_params["learning_rate"]
        reg = result.best_params["reg"]
        print(f"best: learning_rate={learning_rate:.3g} reg={reg:.3g}\n")
    else:
        learning_rate, reg = args.learning_rate, args.reg

    # Retrain the chosen setting (same seed, so this reproduces the best trial exactly) and
    # time it on its own, apart from the search.
    model = make_model()
    start = time.perf_counter()
    loss_history = model.train(
        X_train, y_train, learning_rate=learning_rate, reg=reg, **train_kwargs
    )
    train_time = time.perf_counter() - start
    name = "LinearSVM" if args.loss == "svm" else "Softmax"
    print(
        f"fastnn {name} (lr={learning_rate:.3g}, reg={reg:.3g}, {args.regularization}, "
        f"{args.num_iters} iters x {args.batch_size}): "
        f"train acc {_accuracy(model, X_train, y_train):.4f}  "
        f"val acc {_accuracy(model, X_val, y_val):.4f}  "
        f"test acc {_accuracy(model, X_test, data['y_test']):.4f}  "
        f"train time {train_time:.2f} s"
        + (f" (+ search {search_time:.1f} s)" if search_time else "")
    )

    if args.compare_sklearn:
        _compare_sklearn(X_train[:, :-1], y_train, X_val[:, :-1], y_val, X_test[:, :-1], data)

    if args.save_templates:
        from fastnn.visualize import plot_weight_templates

        plot_weight_templates(
            model.W, images.shape[1:], class_names=data["class_names"], path=args.save_templates
        )
        print(f"weight templates saved to {args.save_templates}")
    if args.save_loss:
        from fastnn.visualize import plot_loss_history

        plot_loss_history(
            loss_history, path=args.save_loss, title=f"{name} training loss", smooth=50
        )
        print(f"loss history saved to {args.save_loss}")
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


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "linear",
        help="train a linear SVM / softmax classifier (optionally on HOG/colour features)",
        description="Train a linear classifier with minibatch SGD and report train/val/test "
        "accuracy and time. Features are standardised with training statistics and get a "
        "bias column (the bias trick).",
    )
    parser.add_argument(
        "--dataset", default="sample", choices=("sample", "fashion-mnist", "cifar10")
    )
    parser.add_argument(
        "--data-dir", default=None, help="folder with the data (default: FASTNN_DATA, ...)"
    )
    parser.add_argument("--loss", default="softmax", choices=("svm", "softmax"))
    parser.add_argument(
        "--features",
        default="pixels",
        help="comma list of pixels, hog, color (color needs RGB, e.g. cifar10); default pixels",
    )
    parser.add_argument(
        "--hog-cell",
        type=int,
        default=None,
        help="HOG pixels per cell (default 4 for 28x28 images, else 8)",
    )
    parser.add_argument(
        "--search",
        default="none",
        choices=("none", "random", "grid"),
        help="hyperparameter search over --lr-range/--reg-range (random is the recommended method)",
    )
    parser.add_argument("--trials", type=int, default=10, help="random-search trials (default 10)")
    parser.add_argument("--grid-points", type=int, default=3, help="grid points per range")
    parser.add_argument(
        "--lr-range", type=float, nargs=2, default=(1e-3, 1e-1), metavar=("LO", "HI")
    )
    parser.add_argument(
        "--reg-range", type=float, nargs=2, default=(1e-6, 1e-2), metavar=("LO", "HI")
    )
    parser.add_argument("--learning-rate", type=float, default=1e-2, help="without --search")
    parser.add_argument("--reg", type=float, default=1e-4, help="without --search")
    parser.add_argument("--regularization", default="l2", choices=("l2", "l1", "elasticnet"))
    parser.add_argument("--l1-ratio", type=float, default=0.5, help="elastic-net L1 share")
    parser.add_argument("--num-iters", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument(
        "--lr-decay", type=float, default=0.9, help="learning-rate factor per epoch"
    )
    parser.add_argument(
        "--val-size",
        type=int,
        default=None,
        help="validation images taken from the training set (default: 10%% of them, at most 5000)",
    )
    parser.add_argument(
        "--num-train",
        type=int,
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
    parser.add_argument("--verbose", action="store_true", help="progress bars and per-trial lines")
    parser.set_defaults(func=run)
