"""CIFAR-10 subset: a ConvNet with data augmentation, and ThreeLayerConvNet overfitting 100 images.

Part 1. A :class:`fastnn.classifiers.ConvNet` (``--arch``) trained with the Solver on the 5,000
training images of the CIFAR-10 subset (``FASTNN_DATA/cifar10-subset``), every minibatch
augmented by a :class:`fastnn.data.augment.Augmenter` (``--augment``, default random horizontal
flip and random crop with 4 pixels of zero padding). After every epoch: the accuracy on the
subset's 1,000 test images (measured outside the timed region), the cumulative training seconds,
and the share of the epoch's training time spent inside the augmenter (every call timed). The
issue asks for a test accuracy of at least 0.55 (``--target``).

Part 2. CS231n's sanity check: :class:`fastnn.classifiers.ThreeLayerConvNet` (``weight_scale``
1e-2, Adam 1e-3, batch 50) trained on the first 100 training images until its accuracy on those
100 images is 100% (or ``--overfit-epochs`` run out); prints the iterations it took.

Pixels are scaled to [0, 1] and the training mean image is subtracted (``_experiment.load_images``);
augmentation works on these centred images, so padding and crops fill with the mean image.

Full run (about 10-20 minutes on a quiet 2-core machine)::

    FASTNN_DATA=../shared/data python benchmarks/cifar_augment.py --out cifar_augment.json

Smoke run::

    FASTNN_DATA=../shared/data python benchmarks/cifar_augment.py --limit 256 --epochs 1 \\
        --overfit-epochs 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_ARCH = ("conv32-bn-relu-pool,conv64-bn-relu-pool,conv128-bn-relu-pool,"
                "fc256-relu-dropout0.5,fc10")


class TimedAugment:
    """Wraps an augmenter and adds up the wall time of its calls.

    Parameters
    ----------
    augment : callable
        ``augment(X_batch) -> X_batch'``.

    Attributes
    ----------
    seconds : float
        Total time spent in ``augment`` so far.
    calls : int
        Number of calls.
    """

    def __init__(self, augment: Any) -> None:
        self.augment = augment
        self.seconds = 0.0
        self.calls = 0

    @property
    def rng(self) -> Any:
        """The wrapped augmenter's generator (the Solver checkpoints it)."""
        return getattr(self.augment, "rng", None)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        out = self.augment(X)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return out


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    from _experiment import non_negative_float, positive_float, positive_int

    parser = argparse.ArgumentParser(
        prog="cifar_augment.py",
        description="CIFAR-10 subset: ConvNet with augmentation (per-epoch test accuracy, time, "
                    "augmentation share), and ThreeLayerConvNet overfitting 100 images.")
    parser.add_argument("--data-dir", default=None, metavar="DIR")
    parser.add_argument("--arch", default=DEFAULT_ARCH, help="ConvNet spec (default %(default)s)")
    parser.add_argument("--augment", default="flip,crop4",
                        help="Augmenter tokens, e.g. flip,crop4,cutout8 ('none': off)")
    parser.add_argument("--epochs", type=positive_int, default=40)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--lr-schedule", default="cosine")
    parser.add_argument("--reg", type=non_negative_float, default=5e-4, help="L2 strength on the weights")
    parser.add_argument("--target", type=float, default=0.55, help="test accuracy to reach")
    parser.add_argument("--max-minutes", type=non_negative_float, default=None,
                        help="training-time budget of part 1 (default: none)")
    parser.add_argument("--overfit-samples", type=positive_int, default=100)
    parser.add_argument("--overfit-epochs", type=positive_int, default=60,
                        help="most epochs of part 2 (it stops at 100%% training accuracy)")
    parser.add_argument("--skip-overfit", action="store_true", help="run part 1 only")
    parser.add_argument("--skip-convnet", action="store_true", help="run part 2 only")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="use only the first N training and N test images (smoke runs)")
    parser.add_argument("--out", default=None, metavar="JSON", help="write the full results here")
    return parser


def run_convnet(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    """Part 1: the augmented ConvNet; returns rows, accuracies, times and augmentation share."""
    from _experiment import TABLE_HEADER, accuracy_of, time_to_target, train_fastnn

    from fastnn.classifiers import ConvNet
    from fastnn.data.augment import parse_augment

    augmenter = parse_augment(args.augment, seed=args.seed)
    timed = None if augmenter is None else TimedAugment(augmenter)
    model = ConvNet(args.arch, input_dim=data["input_dim"], num_classes=len(data["class_names"]),
                    reg=args.reg, seed=args.seed)
    X_test, y_test = data["X_test"], data["y_test"]
    previous = {"aug": 0.0, "train": 0.0}

    def augmentation_share(row: dict[str, Any]) -> dict[str, Any]:
        if timed is None:
            return {}
        aug = timed.seconds - previous["aug"]
        epoch_seconds = row["train_seconds"] - previous["train"]
        previous.update(aug=timed.seconds, train=row["train_seconds"])
        return {"aug_seconds": aug, "aug_share": aug / epoch_seconds if epoch_seconds else 0.0}

    print(f"part 1: {model!r}; augment {augmenter!r}; {data['X_train'].shape[0]} training, "
          f"{X_test.shape[0]} test images\n{TABLE_HEADER}", flush=True)
    result = train_fastnn(
        model, data["X_train"], data["y_train"], lambda m: accuracy_of(m, X_test, y_test),
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        lr_schedule=args.lr_schedule, seed=args.seed, augment=timed,
        max_seconds=None if args.max_minutes is None else args.max_minutes * 60.0,
        row_extras=augmentation_share, side="convnet")
    rows = result["rows"]
    accs = [r["test_acc"] for r in rows] or [float("nan")]
    aug_seconds = timed.seconds if timed is not None else 0.0
    summary = {
        "model": repr(model),
        "augment": repr(augmenter),
        "rows": rows,
        "final_test_acc": accs[-1],
        "best_test_acc": max(accs),
        "reached_target": time_to_target(rows, args.target),
        "train_seconds": result["train_seconds"],
        "augment_seconds": aug_seconds,
        "augment_share": aug_seconds / result["train_seconds"] if result["train_seconds"] else 0.0,
        "augment_calls": timed.calls if timed is not None else 0,
        "stopped": result["stopped"],
    }
    print(f"part 1: final test accuracy {summary['final_test_acc']:.4f} (best "
          f"{summary['best_test_acc']:.4f}, target {args.target:.2f} "
          f"{'reached' if summary['reached_target'] else 'NOT reached'}); "
          f"{summary['train_seconds']:.1f} training s; augmentation "
          f"{aug_seconds:.2f} s = {100 * summary['augment_share']:.1f}% of training time",
          flush=True)
    return summary


def run_overfit(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    """Part 2: ThreeLayerConvNet on the first ``--overfit-samples`` training images."""
    from fastnn.classifiers import ThreeLayerConvNet
    from fastnn.solver import Solver

    n = args.overfit_samples
    X, y = data["X_train"][:n], data["y_train"][:n]
    np.random.seed(args.seed)  # ThreeLayerConvNet draws its weights from NumPy's global state
    model = ThreeLayerConvNet(input_dim=data["input_dim"],
                              num_classes=len(data["class_names"]), weight_scale=1e-2)
    rows: list[dict[str, Any]] = []

    def on_row(row: dict[str, Any]) -> None:
        rows.append({k: row[k] for k in ("epoch", "iteration", "loss", "train_acc")})
        print(f"{row['epoch']:>5} {row['iteration']:>9} {row['loss']:>8.4f} "
              f"{row['train_acc']:>9.4f}", flush=True)
        if row["train_acc"] >= 1.0:
            solver.stop_reason = f"100% training accuracy after {row['iteration']} iterations"

    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                    update_rule="adam", optim_config={"learning_rate": 1e-3}, batch_size=50,
                    num_epochs=args.overfit_epochs, num_train_samples=None, verbose=False,
                    progress=False, seed=args.seed, shuffle=True, epoch_callback=on_row)
    print(f"\npart 2: {model!r} on {X.shape[0]} training images\n"
          f"{'epoch':>5} {'iteration':>9} {'loss':>8} {'train_acc':>9}", flush=True)
    started = time.perf_counter()
    solver.train()
    seconds = time.perf_counter() - started
    final = rows[-1] if rows else {"iteration": 0, "train_acc": float("nan")}
    print(f"part 2: training accuracy {final['train_acc']:.4f} on {X.shape[0]} images after "
          f"{final['iteration']} iterations ({seconds:.1f} s)", flush=True)
    return {"rows": rows, "iterations": final["iteration"], "train_acc": final["train_acc"],
            "seconds": seconds, "images": int(X.shape[0])}


def _use_sibling_modules() -> None:
    """Make the helper modules next to this script (``_experiment``...) importable."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both parts; returns the results dict that ``--out`` receives.

    Parameters
    ----------
    argv : list of str or None
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    dict
        ``command``, ``options``, ``threads``, ``convnet`` (part 1), ``overfit`` (part 2).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    _use_sibling_modules()
    args = build_parser().parse_args(argv)
    from _experiment import announce, load_images, use_threads, write_json

    command = announce(__file__, argv)
    threads = use_threads(args.threads)
    data = load_images("cifar10", args.data_dir, limit=args.limit)
    print(f"{threads} threads", flush=True)
    report: dict[str, Any] = {"command": command, "options": vars(args), "threads": threads}
    if not args.skip_convnet:
        report["convnet"] = run_convnet(args, data)
    if not args.skip_overfit:
        report["overfit"] = run_overfit(args, data)
    write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
