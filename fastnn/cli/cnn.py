"""``fastnn train cnn``: train a ConvNet (or fine-tune a saved one) with the Solver.

Pipeline: load the data set -> optionally keep some classes (``--classes``, relabelled 0..k-1)
and a few training images per class (``--train-per-class``) -> validation split -> scale pixels
to [0, 1] and subtract the training split's mean image (per pixel and channel; stored in the
model file with ``"layout": "nchw"`` so ``fastnn evaluate`` feeds (N, C, H, W) images) -> the
shared runner of :mod:`fastnn.cli._training` (per-epoch table, checkpoint, resume,
``model.npz``, ``history.json``, ``training.png``, test accuracy), with ``--augment`` applied
to every training minibatch and ``--filters-png`` drawing the first-layer filters at the end.

Transfer learning uses the same command: ``--init-from MODEL.npz`` starts from a saved ConvNet
(its preprocessing is reused, so the features see the inputs they were trained on),
``--replace-head`` gives it a new, freshly initialised classifier for this data's classes, and
``--freeze PREFIXES`` keeps parameters fixed (``conv``: every convolution and its
normalisation; ``features``: everything but the head).

Examples::

    fastnn train cnn --dataset sample --epochs 1
    fastnn train cnn --dataset cifar10 --arch "conv32-bn-relu-pool,conv64-bn-relu-pool,\\
        fc128-relu-dropout0.5,fc10" --augment flip,crop4 --epochs 20 --out cifar
    fastnn train cnn --dataset fashion-mnist --classes 0,1,2,3,4 --epochs 5 --out base
    fastnn train cnn --dataset fashion-mnist --classes 5,6,7,8,9 --train-per-class 100 \\
        --init-from base/model.npz --replace-head --freeze features --epochs 20 --out tuned
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fastnn.cli._options import add_data_options, limit_blas_threads, split_validation
from fastnn.cli._training import (
    add_training_options,
    images_to_model_layout,
    run_training,
    weight_scale,
)

__all__ = ["register_train", "run_train_cnn"]

#: Raw 0..255 pixels are scaled to [0, 1] before the mean image is subtracted.
PIXEL_SCALE = 1.0 / 255.0
#: ``--arch`` default; ``{classes}`` becomes the number of classes.
DEFAULT_ARCH = "conv32-bn-relu-pool,conv64-bn-relu-pool,fc128-relu-dropout0.5,fc{classes}"


def _int_list(text: str) -> list[int]:
    """argparse type: comma-separated integers >= 0."""
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or any(v < 0 for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(
            f"must be distinct comma-separated integers >= 0, got {text!r}")
    return values


def _select(data: dict, classes: list[int] | None, per_class: int | None,
            seed: int) -> dict:
    """Keep ``classes`` (relabelled to their positions) and ``per_class`` training images each."""
    if classes is not None:
        known = len(data["class_names"])
        bad = [c for c in classes if c >= known]
        if bad:
            raise ValueError(f"--classes {bad} do not exist: {data.get('name', 'the data set')} "
                             f"has classes 0..{known - 1}")
        lookup = np.full(known, -1)
        lookup[classes] = np.arange(len(classes))
        out = {"class_names": [data["class_names"][c] for c in classes]}
        for split in ("train", "test"):
            keep = lookup[data[f"y_{split}"]] >= 0
            out[f"X_{split}"] = data[f"X_{split}"][keep]
            out[f"y_{split}"] = lookup[data[f"y_{split}"][keep]]
        data = out
    if per_class is not None:
        rng = np.random.default_rng(seed)
        picks = []
        for c in range(len(data["class_names"])):
            rows = np.flatnonzero(data["y_train"] == c)
            if rows.size < per_class:
                raise ValueError(f"--train-per-class {per_class}: class {c} has only "
                                 f"{rows.size} training images")
            picks.append(rng.choice(rows, per_class, replace=False))
        rows = np.sort(np.concatenate(picks))
        data = {**data, "X_train": data["X_train"][rows], "y_train": data["y_train"][rows]}
    return data


def _initial_model(args: argparse.Namespace, input_dim: tuple[int, int, int],
                   num_classes: int, dtype: type):
    """A new ConvNet from ``--arch``, or the ``--init-from`` one (head replaced, params frozen)
    with the preprocessing metadata it was trained with (None for a new model)."""
    from fastnn.classifiers import ConvNet
    from fastnn.serialization import load_model

    if args.init_from is None:
        if args.replace_head or args.freeze:
            raise ValueError("--replace-head and --freeze need --init-from MODEL.npz")
        arch = args.arch or DEFAULT_ARCH.format(classes=num_classes)
        model = ConvNet(arch, input_dim=input_dim, num_classes=num_classes, reg=args.reg,
                        weight_scale=args.weight_scale, dtype=dtype)
        return model, None
    model, meta = load_model(args.init_from, with_metadata=True)
    if not isinstance(model, ConvNet):
        raise TypeError(f"--init-from {args.init_from}: a ConvNet model is needed, got "
                         f"{type(model).__name__}")
    if model.input_dim != input_dim:
        raise ValueError(f"--init-from {args.init_from}: the model takes images of shape "
                         f"{model.input_dim}, this data set has {input_dim}")
    if args.replace_head:
        model.replace_classifier(num_classes, seed=args.seed)
    elif model.num_classes != num_classes:
        raise ValueError(f"--init-from {args.init_from}: the model has {model.num_classes} "
                         f"classes, this data has {num_classes}; add --replace-head")
    if args.freeze:
        model.freeze([t for t in args.freeze.split(",") if t.strip()])
    model.reg = args.reg
    return model, meta


def run_train_cnn(args: argparse.Namespace) -> int:
    """Train a ConvNet with the Solver; write the model, checkpoint, history and pictures.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn train cnn`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    from fastnn.data import load_dataset
    from fastnn.data.augment import parse_augment
    from fastnn.metrics import model_accuracy
    from fastnn.preprocessing import ScaleAndCenter

    limit_blas_threads()
    started = time.perf_counter()
    augment = parse_augment(args.augment, seed=args.seed)  # bad tokens fail before any work
    data = _select(load_dataset(args.dataset, root=args.data_dir), args.classes,
                   args.train_per_class, args.seed)
    X_tr, y_tr, X_val, y_val = split_validation(
        data["X_train"], data["y_train"], args.val_size, args.seed)
    H, W, C = X_tr.shape[1:]
    num_classes = len(data["class_names"])
    np.random.seed(args.seed)  # weights (and dropout) draw from the global state
    model, source_meta = _initial_model(args, (C, H, W), num_classes,
                                        np.dtype(args.dtype).type)
    dtype = model.params["W1"].dtype.type
    # a fine-tuned model keeps the preprocessing its features were trained with
    prep = (ScaleAndCenter.from_metadata(source_meta) if source_meta is not None
            else ScaleAndCenter(PIXEL_SCALE).fit(X_tr))
    meta = {**prep.to_metadata(), "layout": "nchw", "dataset": args.dataset,
            "class_names": list(data["class_names"])}
    X_tr, X_val, X_test = (images_to_model_layout(prep.transform(X, dtype), meta)
                           for X in (X_tr, X_val, data["X_test"]))
    frozen = f"; frozen {sorted(model.frozen)}" if model.frozen else ""
    solver = run_training(
        args, model, {"X_train": X_tr, "y_train": y_tr, "X_val": X_val, "y_val": y_val},
        metadata=meta,
        describe=f"data: {args.dataset}, train {X_tr.shape[0]}, val {X_val.shape[0]}, "
                 f"test {X_test.shape[0]}; augment {augment!r}{frozen}",
        evaluate_test=lambda best: {"test accuracy": model_accuracy(best, X_test,
                                                                    data["y_test"])},
        solver_kwargs={"augment": augment}, started=started,
    )
    if args.filters_png:
        from fastnn.visualize import plot_filters

        try:
            plot_filters(solver.model.params["W1"], args.filters_png)
        except ImportError as exc:
            print(f"no filter picture: {exc}")
        else:
            print(f"first-layer filters: {args.filters_png}")
    return 0


def register_train(models: argparse._SubParsersAction) -> None:
    """Add ``fastnn train cnn`` (found by :func:`fastnn.cli.train.register`).

    Parameters
    ----------
    models : argparse._SubParsersAction
        The ``train`` command's model sub-parsers.
    """
    cnn = models.add_parser("cnn", help="convolutional net (ConvNet from an --arch spec)")
    add_data_options(cnn)
    cnn.add_argument("--arch", default=None,
                     help="layer spec, e.g. 'conv32-bn-relu-pool,conv64-gn8-relu-pool,"
                     "fc128-relu-dropout0.5,fc10' (tokens conv<F>[k<K>][s<S>][p<P>], bn, gn<G>, "
                     "relu, pool[<K>], avgpool[<K>], gap, fc<M>, dropout<keep>; the last fc has "
                     "one unit per class; default " + DEFAULT_ARCH.format(classes="<classes>")
                     + ")")
    cnn.add_argument("--augment", default=None,
                     help="minibatch augmentation, e.g. flip,crop4,cutout8,jitter0.1 "
                     "(default none)")
    cnn.add_argument("--weight-scale", type=weight_scale, default="he",
                     help="std of initial weights, or he/xavier (default he)")
    cnn.add_argument("--reg", type=float, default=0.0, help="L2 regularisation strength")
    cnn.add_argument("--classes", type=_int_list, default=None,
                     help="keep only these classes (comma-separated), relabelled 0..k-1")
    cnn.add_argument("--train-per-class", type=int, default=None, metavar="N",
                     help="use only N (random) training images per class")
    cnn.add_argument("--init-from", default=None, metavar="MODEL.npz",
                     help="start from a saved ConvNet (fine-tuning; reuses its preprocessing)")
    cnn.add_argument("--replace-head", action="store_true",
                     help="with --init-from: a new classifier layer for this data's classes")
    cnn.add_argument("--freeze", default=None, metavar="PREFIXES",
                     help="with --init-from: parameters to keep fixed, comma-separated names "
                     "or prefixes (W1, gamma, ...), 'conv' (every convolution and its norm) or "
                     "'features' (all but the classifier)")
    cnn.add_argument("--filters-png", default=None, metavar="PATH",
                     help="save the first-layer filters as an image grid (needs matplotlib)")
    add_training_options(cnn, batch_size=64)
    cnn.set_defaults(func=run_train_cnn)
