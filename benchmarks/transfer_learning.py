"""Transfer learning on Fashion-MNIST: classes 0-4 -> classes 5-9 from 100 labelled images each.

1. Pre-train a ConvNet on every training image of classes 0-4 (Adam, per-epoch test accuracy on
   the test images of classes 0-4); save it with :func:`fastnn.serialization.save_model`.
2. Draw ``--per-class`` (100) training images of each of classes 5-9 (seeded): 500 labelled
   images, relabelled 0-4.
3. *Fine-tune*: :func:`fastnn.serialization.load_model` the saved network, ``replace_classifier(5)``
   (a freshly initialised head), ``freeze`` the feature parameters (``--freeze conv``: every
   convolution and its normalisation; ``--freeze all-but-head``: everything but the new head),
   train on the 500 images.
   *From scratch*: the same architecture, freshly initialised, nothing frozen, the same 500 images,
   epochs, batch size and optimiser.
4. Both are tuned the same way: each learning rate of ``--lr-grid`` is tried on a stratified
   80/20 split of the 500 images, the one with the best accuracy on the held-out 20% wins, and the
   network is then trained on all 500 images with it. The test images of classes 5-9 are never
   used for a choice.
5. Report the accuracy on ALL test images of classes 5-9 for both, with their training times.
   ``--also-unfrozen`` adds a third network: the pre-trained one with a new head and nothing
   frozen, tuned and trained the same way.

Full run (a few minutes on a quiet 2-core machine)::

    FASTNN_DATA=../shared/data python benchmarks/transfer_learning.py --out transfer.json

Smoke run (seconds)::

    python benchmarks/transfer_learning.py --dataset sample --per-class 10 --pretrain-epochs 1 \\
        --finetune-epochs 1 --lr-grid 1e-3
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_ARCH = "conv32-bn-relu-pool,conv64-bn-relu-pool,fc128-relu-dropout0.5,fc5"
SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
#: ConvNet parameter names: kind and the number of the weighted layer they belong to.
_PARAM_NAME = re.compile(r"(W|b|gamma|beta)(\d+)")


def _floats(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers > 0, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    from _experiment import positive_float, positive_int

    parser = argparse.ArgumentParser(
        prog="transfer_learning.py",
        description="Fashion-MNIST transfer learning: pre-train on classes 0-4, then fine-tune "
                    "(frozen features) vs train from scratch on 100 images per class of 5-9.")
    parser.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "sample"))
    parser.add_argument("--data-dir", default=None, metavar="DIR")
    parser.add_argument("--arch", default=DEFAULT_ARCH,
                        help="ConvNet spec ending with fc5 (default %(default)s)")
    parser.add_argument("--pretrain-epochs", type=positive_int, default=5)
    parser.add_argument("--pretrain-lr", type=positive_float, default=1e-3)
    parser.add_argument("--batch-size", type=positive_int, default=128, help="pre-training minibatch")
    parser.add_argument("--per-class", type=positive_int, default=100,
                        help="labelled training images per class of 5-9 (default 100)")
    parser.add_argument("--finetune-epochs", type=positive_int, default=30,
                        help="epochs of fine-tuning and of training from scratch")
    parser.add_argument("--finetune-batch-size", type=positive_int, default=50)
    parser.add_argument("--lr-grid", type=_floats, default="3e-4,1e-3,3e-3",
                        help="Adam learning rates tried for both methods (default %(default)s)")
    parser.add_argument("--freeze", default="conv", choices=("conv", "all-but-head"),
                        help="what fine-tuning keeps fixed (default: conv layers and their norms)")
    parser.add_argument("--also-unfrozen", action="store_true",
                        help="also fine-tune the pre-trained network with nothing frozen")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="use only the first N training and N test images (smoke runs)")
    parser.add_argument("--model-path", default=None, metavar="NPZ",
                        help="where to save the pre-trained model (default: a temporary folder)")
    parser.add_argument("--out", default=None, metavar="JSON", help="write the full results here")
    return parser


def select_per_class(y: np.ndarray, classes: tuple[int, ...], per_class: int,
                     seed: int) -> np.ndarray:
    """Indices of ``per_class`` examples of each class, drawn without replacement (seeded).

    Parameters
    ----------
    y : ndarray of shape (N,)
        Labels.
    classes : tuple of int
        The classes to draw from.
    per_class : int
        Examples per class.
    seed : int
        Seed of the draw.

    Returns
    -------
    ndarray of int
        Sorted indices into ``y``.

    Raises
    ------
    ValueError
        When a class has fewer than ``per_class`` examples.
    """
    rng = np.random.default_rng(seed)
    chosen = []
    for c in classes:
        pool = np.flatnonzero(y == c)
        if pool.size < per_class:
            raise ValueError(f"class {c} has only {pool.size} training images; --per-class "
                             f"{per_class} needs more (use a larger --limit)")
        chosen.append(rng.choice(pool, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): ``fraction`` of every class held out (at least one)."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = max(1, round(fraction * idx.size))
        held.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def feature_parameters(model: Any, mode: str) -> list[str]:
    """Names of the parameters fine-tuning freezes.

    Parameters
    ----------
    model : ConvNet
        The network (its ``layers`` tell which weighted layers are convolutions).
    mode : {"conv", "all-but-head"}
        ``"conv"``: ``W``/``b`` of every convolution and ``gamma``/``beta`` of its normalisation;
        ``"all-but-head"``: every parameter except the last fc layer's.

    Returns
    -------
    list of str
    """
    head = model.layers[-1].index
    if mode == "all-but-head":
        return sorted(name for name in model.params if name not in (f"W{head}", f"b{head}"))
    conv = {layer.index for layer in model.layers if layer.kind == "conv"}
    matches = (_PARAM_NAME.fullmatch(name) for name in model.params)
    return sorted(m.group(0) for m in matches if m is not None and int(m.group(2)) in conv)


def _train(model: Any, X: np.ndarray, y: np.ndarray, evaluate: Any, lr: float,
           args: argparse.Namespace, side: str, verbose: bool) -> dict[str, Any]:
    from _experiment import train_fastnn

    return train_fastnn(model, X, y, evaluate, epochs=args.finetune_epochs,
                        batch_size=args.finetune_batch_size, learning_rate=lr, seed=args.seed,
                        side=side, verbose=verbose)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole experiment; returns the results dict (see the module docstring)."""
    from _experiment import TABLE_HEADER, accuracy_of, load_images, train_fastnn, use_threads

    from fastnn.classifiers import ConvNet
    from fastnn.serialization import load_model, save_model

    threads = use_threads(args.threads)
    data = load_images(args.dataset, args.data_dir, limit=args.limit)
    input_dim = data["input_dim"]
    n_new = len(TARGET_CLASSES)
    src_train = np.isin(data["y_train"], SOURCE_CLASSES)
    src_test = np.isin(data["y_test"], SOURCE_CLASSES)
    tgt_test = np.isin(data["y_test"], TARGET_CLASSES)
    X_src, y_src = data["X_train"][src_train], data["y_train"][src_train]
    X_src_test, y_src_test = data["X_test"][src_test], data["y_test"][src_test]
    X_tgt_test = data["X_test"][tgt_test]
    y_tgt_test = data["y_test"][tgt_test] - TARGET_CLASSES[0]
    picked = select_per_class(data["y_train"], TARGET_CLASSES, args.per_class, args.seed)
    X_few, y_few = data["X_train"][picked], data["y_train"][picked] - TARGET_CLASSES[0]
    print(f"{threads} threads; pre-training on {X_src.shape[0]} images of classes 0-4, "
          f"{X_src_test.shape[0]} test images; target: {X_few.shape[0]} labelled images of "
          f"classes 5-9, {X_tgt_test.shape[0]} test images", flush=True)

    # 1. pre-train on classes 0-4 and save
    np.random.seed(args.seed)
    source = ConvNet(args.arch, input_dim=input_dim, num_classes=len(SOURCE_CLASSES),
                     seed=args.seed)
    print(f"pre-training {source!r}\n{TABLE_HEADER}", flush=True)
    pre = train_fastnn(source, X_src, y_src, lambda m: accuracy_of(m, X_src_test, y_src_test),
                       epochs=args.pretrain_epochs, batch_size=args.batch_size,
                       learning_rate=args.pretrain_lr, seed=args.seed, side="pretrain")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.model_path or Path(tmp) / "pretrained_0-4.npz")
        save_model(path, source, metadata={"classes": "0-4"})
        saved_bytes = path.stat().st_size

        def pretrained_model(freeze: bool) -> Any:
            np.random.seed(args.seed)  # dropout masks
            model = load_model(path)
            model.replace_classifier(n_new, seed=args.seed)
            if freeze:
                model.freeze(feature_parameters(model, args.freeze))
            return model

        def scratch_model() -> Any:
            np.random.seed(args.seed)  # dropout masks
            # weights from another seed than the pre-training run started from
            return ConvNet(args.arch, input_dim=input_dim, num_classes=n_new, seed=args.seed + 1)

        methods = {"fine_tune": lambda: pretrained_model(True), "scratch": scratch_model}
        if args.also_unfrozen:
            methods["fine_tune_all"] = lambda: pretrained_model(False)
        # 2. choose each method's learning rate on a held-out fifth of the 500 images
        fit_idx, val_idx = stratified_split(y_few, 0.2, args.seed)
        grid: dict[str, dict[float, float]] = {name: {} for name in methods}
        for name, make in methods.items():
            for lr in args.lr_grid:
                result = _train(make(), X_few[fit_idx], y_few[fit_idx],
                                lambda m: accuracy_of(m, X_few[val_idx], y_few[val_idx]),
                                lr, args, name, verbose=False)
                grid[name][lr] = result["rows"][-1]["test_acc"] if result["rows"] else 0.0
                print(f"lr search {name:>13}: lr {lr:g} -> held-out accuracy "
                      f"{grid[name][lr]:.4f}", flush=True)
        # 3. train each method on all 500 images with its learning rate; test on classes 5-9
        final: dict[str, Any] = {}
        for name, make in methods.items():
            lr = max(args.lr_grid, key=lambda v: grid[name][v])  # first best on ties
            model = make()
            frozen = sorted(getattr(model, "frozen", ()))
            print(f"{name}: lr {lr:g}, frozen {frozen or 'nothing'}\n{TABLE_HEADER}", flush=True)
            started = time.perf_counter()
            result = _train(model, X_few, y_few, lambda m: accuracy_of(m, X_tgt_test, y_tgt_test),
                            lr, args, name, verbose=True)
            final[name] = {
                "learning_rate": lr,
                "frozen": frozen,
                "test_acc": accuracy_of(model, X_tgt_test, y_tgt_test),
                "train_seconds": result["train_seconds"],
                "wall_seconds": time.perf_counter() - started,
                "rows": result["rows"],
                "lr_search": grid[name],
            }
    print(f"\naccuracy on all {X_tgt_test.shape[0]} test images of classes 5-9 after training on "
          f"{X_few.shape[0]} labelled images:")
    for name, res in final.items():
        print(f"{name:>13}: {res['test_acc']:.4f} (lr {res['learning_rate']:g}, "
              f"{res['train_seconds']:.1f} training s)")
    print(f"pre-training: {pre['rows'][-1]['test_acc'] if pre['rows'] else float('nan'):.4f} on "
          f"classes 0-4 test images, {pre['train_seconds']:.1f} training s")
    return {
        "pretrain": {"rows": pre["rows"], "train_seconds": pre["train_seconds"],
                     "test_acc_classes_0_4": pre["rows"][-1]["test_acc"] if pre["rows"] else None,
                     "model_bytes": saved_bytes, "images": int(X_src.shape[0])},
        "labelled_images": int(X_few.shape[0]),
        "test_images_classes_5_9": int(X_tgt_test.shape[0]),
        **final,
        "threads": threads,
    }


def _use_sibling_modules() -> None:
    """Make the helper modules next to this script (``_experiment``...) importable."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the experiment; returns the results dict that ``--out`` receives.

    Parameters
    ----------
    argv : list of str or None
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    dict
        ``command``, ``options``, ``pretrain``, ``fine_tune``, ``scratch`` (and
        ``fine_tune_all`` with ``--also-unfrozen``) and counts.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    _use_sibling_modules()
    args = build_parser().parse_args(argv)
    from _experiment import announce, write_json

    command = announce(__file__, argv)
    report = {"command": command, "options": vars(args), **run(args)}
    write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
