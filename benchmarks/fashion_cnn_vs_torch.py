"""Fashion-MNIST: one ConvNet and one recipe, trained with fastnn and with PyTorch in one run.

Both sides train the same architecture (``--arch``, the ``fastnn train cnn`` syntax) from the same
initial weights (PyTorch copies the fastnn model's He-initialised weights) with Adam, the same
learning rate, batch size, epochs and schedule, on the same preprocessed images (pixels scaled to
[0, 1], training mean image subtracted), on ``--threads`` threads each (``fastnn.set_num_threads``
plus NumPy's BLAS; ``torch.set_num_threads``). After every epoch each side measures its accuracy
on all test images, outside the timed region. The table shows epoch / cumulative training seconds
/ mean training loss / test accuracy; the summary gives the training time at which each side
first reached ``--target`` test accuracy and its final accuracy. ``--max-minutes`` caps each
side's training time (checked at epoch ends). See ``_experiment.py`` for what is timed and
``_torch_convnet.py`` for the layer-by-layer correspondence.

``--seeds 0,1,2`` repeats the comparison per seed (initial weights, minibatch order, dropout
masks) and ends with a table of both sides' training seconds to ``--target`` per seed and the
number of seeds in which fastnn got there no later than PyTorch: one seed's crossing epoch
moves by a few epochs with the random stream, on either side. ``--stop-at-target`` ends each
side's training at the first epoch that reaches ``--target`` (the schedule still spans
``--epochs``), which is all the time-to-target comparison needs.

By default each side runs in its own child process, one after the other: every library starts
with its own out-of-the-box runtime (fastnn sets ``OMP_WAIT_POLICY=PASSIVE`` when imported, which
would otherwise also apply to PyTorch's OpenMP threads) and neither inherits the other's memory.
``--in-process`` runs both in this process instead; ``--side`` runs one only.

Full run (10-30 minutes on a quiet 2-core machine)::

    FASTNN_DATA=../shared/data python benchmarks/fashion_cnn_vs_torch.py --out fashion_cnn.json

Smoke run (seconds)::

    python benchmarks/fashion_cnn_vs_torch.py --dataset sample --limit 256 --epochs 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_ARCH = "conv32-bn-relu-pool,conv64-bn-relu-pool,fc128-relu-dropout0.5,fc10"
SIDES = ("fastnn", "torch")


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (parsing imports neither fastnn nor torch)."""
    from _experiment import non_negative_float, positive_float, positive_int, seed_list

    parser = argparse.ArgumentParser(
        prog="fashion_cnn_vs_torch.py",
        description="Train the same ConvNet with fastnn and PyTorch on Fashion-MNIST; report "
                    "per-epoch test accuracy, training time and time to a target accuracy.")
    parser.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "sample"),
                        help="full Fashion-MNIST, or the small cut packaged with fastnn (smoke "
                             "runs)")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="data folder (default: $FASTNN_DATA, then the library's search path)")
    parser.add_argument("--arch", default=DEFAULT_ARCH, help="ConvNet spec (default %(default)s)")
    parser.add_argument("--epochs", type=positive_int, default=20,
                        help="planned epochs (the cosine schedule spans them; default %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="minibatch size (default %(default)s; benchmarks/README.md has "
                             "the runs with 128 and with augmentation)")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--lr-schedule", default="cosine",
                        help="constant, step, cosine, linear or inverse_sqrt (over the planned "
                             "epochs; default %(default)s)")
    parser.add_argument("--lr-decay", type=positive_float, default=1.0, help="per-epoch lr factor")
    parser.add_argument("--reg", type=non_negative_float, default=0.0, help="L2 strength on conv/fc weights")
    parser.add_argument("--augment", default=None, metavar="SPEC",
                        help="augment every training minibatch with fastnn.data.augment.Augmenter "
                             "(e.g. crop2), on both sides and inside the timed region (default: "
                             "none)")
    parser.add_argument("--target", type=float, default=0.92, help="test accuracy to reach")
    parser.add_argument("--max-minutes", type=non_negative_float, default=15.0,
                        help="training-time budget per side (default %(default)s)")
    parser.add_argument("--threads", type=positive_int, default=2, help="threads per side (default 2)")
    parser.add_argument("--seed", type=int, default=0,
                        help="initial weights, minibatch order, dropout")
    parser.add_argument("--seeds", type=seed_list, default=None, metavar="S1,S2,...",
                        help="run the comparison once per seed (overrides --seed) and summarise "
                             "over the seeds")
    parser.add_argument("--stop-at-target", action="store_true",
                        help="end each side's training at the first epoch whose test accuracy "
                             "reaches --target")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="use only the first N training and N test images (smoke runs)")
    parser.add_argument("--side", default="both", choices=("both", *SIDES))
    parser.add_argument("--in-process", action="store_true",
                        help="run both sides in this process instead of one child process each")
    parser.add_argument("--out", default=None, metavar="JSON", help="write the full results here")
    return parser


def _summary_line(side: str, result: dict[str, Any], target: float) -> str:
    reached = result["reached_target"]
    head = (f"reached {reached['test_acc']:.4f} at epoch {reached['epoch']} after "
            f"{reached['train_seconds']:.1f} s" if reached else f"did not reach {target:.4f}")
    return (f"{side:>8}: {head}; final {result['final_test_acc']:.4f} (best "
            f"{result['best_test_acc']:.4f}) after {result['epochs_run']} epochs, "
            f"{result['train_seconds']:.1f} training s ({result['seconds_per_epoch']:.1f} s/epoch)"
            + (f"; {result['stopped']}" if result["stopped"] else ""))


def summarise(results: dict[str, Any], target: float) -> dict[str, Any]:
    """Print the end-of-run summary; return the comparison numbers.

    Parameters
    ----------
    results : dict
        Side name -> that side's result (see :func:`run_side`).
    target : float
        The ``--target`` accuracy.

    Returns
    -------
    dict
        ``torch_over_fastnn_time_to_target`` and ``torch_over_fastnn_seconds_per_epoch`` when
        both sides have the numbers.
    """
    print(f"\nsummary (target test accuracy {target:.4f}; training seconds exclude evaluation)")
    for side, result in results.items():
        print(_summary_line(side, result, target))
    comparison: dict[str, Any] = {}
    if all(s in results for s in SIDES):
        fast, torch_ = results["fastnn"], results["torch"]
        if fast["seconds_per_epoch"] > 0:
            comparison["torch_over_fastnn_seconds_per_epoch"] = (
                torch_["seconds_per_epoch"] / fast["seconds_per_epoch"])
        if fast["reached_target"] and torch_["reached_target"]:
            comparison["torch_over_fastnn_time_to_target"] = (
                torch_["reached_target"]["train_seconds"]
                / fast["reached_target"]["train_seconds"])
        for key, value in comparison.items():
            print(f"{key}: {value:.2f}")
    return comparison


def run_side(args: argparse.Namespace, side: str) -> dict[str, Any]:
    """Train one side and return its results (per-epoch rows and summary numbers).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options.
    side : {"fastnn", "torch"}
        Which library trains.

    Returns
    -------
    dict
        ``rows``, ``train_seconds``, ``stopped``, ``reached_target``, ``final_test_acc``,
        ``best_test_acc``, ``epochs_run``, ``seconds_per_epoch``, ``threads``, ``version``.
    """
    if side == "torch":
        # before fastnn: PyTorch's OpenMP runtime must read the user's environment, not the
        # OMP_WAIT_POLICY default that importing fastnn sets for fastnn's own kernels
        import torch
    import numpy as np
    from _experiment import (
        TABLE_HEADER,
        accuracy_of,
        load_images,
        time_to_target,
        train_fastnn,
        use_threads,
    )

    import fastnn
    from fastnn.classifiers import ConvNet

    threads = use_threads(args.threads)
    data = load_images(args.dataset, args.data_dir, limit=args.limit)
    X_train, y_train, X_test, y_test = (data[k] for k in ("X_train", "y_train", "X_test",
                                                          "y_test"))
    np.random.seed(args.seed)
    model = ConvNet(args.arch, input_dim=data["input_dim"], num_classes=len(data["class_names"]),
                    reg=args.reg, seed=args.seed)
    recipe = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
              "lr_schedule": args.lr_schedule, "lr_decay": args.lr_decay, "seed": args.seed,
              "max_seconds": args.max_minutes * 60.0, "side": side,
              "stop_at": args.target if args.stop_at_target else None}
    if args.augment:
        from fastnn.data.augment import Augmenter

        # the same augmenter code and seed on both sides (numpy minibatches, before PyTorch)
        recipe["augment"] = Augmenter(args.augment, seed=args.seed)
    print(f"[{side}] {X_train.shape[0]} training images {X_train.shape[1:]}, {X_test.shape[0]} "
          f"test images; {threads} threads; {model!r}", flush=True)
    print(TABLE_HEADER, flush=True)
    if side == "fastnn":
        version = fastnn.__version__
        result = train_fastnn(model, X_train, y_train,
                              lambda m: accuracy_of(m, X_test, y_test), **recipe)
    else:
        from _torch_convnet import (
            build_torch_convnet,
            copy_fastnn_weights,
            evaluate_torch,
            train_torch,
        )

        torch.set_num_threads(threads)
        torch.manual_seed(args.seed)  # dropout masks
        version = torch.__version__
        threads = torch.get_num_threads()
        net = build_torch_convnet(args.arch, data["input_dim"], len(data["class_names"]))
        copy_fastnn_weights(net, model)
        result = train_torch(net, X_train, y_train, lambda n: evaluate_torch(n, X_test, y_test),
                             reg=args.reg, **recipe)
    rows = result["rows"]
    accs = [r["test_acc"] for r in rows] or [float("nan")]
    result.update(
        reached_target=time_to_target(rows, args.target),
        final_test_acc=accs[-1],
        best_test_acc=max(accs),
        epochs_run=len(rows),
        seconds_per_epoch=result["train_seconds"] / max(len(rows), 1),
        threads=threads,
        version=version,
    )
    return result


def _run_child(argv: list[str], side: str, seed: int) -> dict[str, Any]:
    """Run one side with one seed in a fresh Python process (same options otherwise) and read
    its JSON results.

    The child imports the same fastnn this process would (its folder goes first on
    ``PYTHONPATH``), not whichever one happens to be installed.
    """
    found = importlib.util.find_spec("fastnn")  # locates without importing
    env = dict(os.environ)
    if found is not None and found.origin is not None:
        root = str(Path(found.origin).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{side}.json"
        # later options win in argparse, so appending overrides any --side/--out given
        command = [sys.executable, str(Path(__file__).resolve()), *argv, "--side", side,
                   "--seeds", str(seed), "--out", str(out)]
        subprocess.run(command, check=True, env=env)
        return json.loads(out.read_text())["sides"][side]


def _use_sibling_modules() -> None:
    """Make the helper modules next to this script (``_experiment``...) importable."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)


def summarise_seeds(runs: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """Print and return the comparison over several seeds.

    Parameters
    ----------
    runs : list of dict
        One ``{"seed", "sides", "comparison"}`` per seed.
    target : float
        The ``--target`` accuracy.

    Returns
    -------
    dict
        Per side: the seconds to the target per seed (None: not reached) and seconds per
        epoch per seed; ``fastnn_first``: seeds in which fastnn reached the target in no more
        training time than PyTorch (or PyTorch did not reach it); ``seeds``.
    """
    print(f"\nover {len(runs)} seeds (training seconds to test accuracy {target:.4f}):")
    print(f"{'seed':>6} {'fastnn s':>10} {'torch s':>10} {'fastnn ep':>9} {'torch ep':>8} "
          f"{'fastnn s/ep':>11} {'torch s/ep':>10}")
    overall: dict[str, Any] = {"seeds": [r["seed"] for r in runs], "fastnn_first": []}
    for side in SIDES:
        overall[side] = {"seconds_to_target": [], "epochs_to_target": [],
                         "seconds_per_epoch": []}
    for run in runs:
        for side in SIDES:
            result = run["sides"].get(side)
            reached = result["reached_target"] if result else None
            entry = overall[side]
            entry["seconds_to_target"].append(reached["train_seconds"] if reached else None)
            entry["epochs_to_target"].append(reached["epoch"] if reached else None)
            entry["seconds_per_epoch"].append(result["seconds_per_epoch"] if result else None)
        f_s, t_s = (overall[side]["seconds_to_target"][-1] for side in SIDES)
        if f_s is not None and (t_s is None or f_s <= t_s):
            overall["fastnn_first"].append(run["seed"])
        row = [f"{run['seed']:>6}"]
        for key, form, widths in (("seconds_to_target", ".1f", (10, 10)),
                                  ("epochs_to_target", "d", (9, 8)),
                                  ("seconds_per_epoch", ".2f", (11, 10))):
            for side, width in zip(SIDES, widths):
                value = overall[side][key][-1]
                row.append(f"{value:>{width}{form}}" if value is not None else f"{'-':>{width}}")
        print(" ".join(row))
    print(f"fastnn reached {target:.4f} in no more training time than PyTorch in "
          f"{len(overall['fastnn_first'])} of {len(runs)} seeds")
    return overall


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison; returns the results dict that ``--out`` receives.

    Parameters
    ----------
    argv : list of str or None
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    dict
        ``command``, ``options``, ``runs`` (one ``{"seed", "sides", "comparison"}`` per seed,
        ``sides`` mapping a side to its :func:`run_side` result); with one seed also its
        ``sides`` and ``comparison`` at the top level, with several ``overall``
        (:func:`summarise_seeds`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    _use_sibling_modules()
    args = build_parser().parse_args(argv)
    from _experiment import announce, write_json

    command = announce(__file__, argv)
    sides = SIDES if args.side == "both" else (args.side,)
    seeds = args.seeds if args.seeds is not None else [args.seed]
    children = (len(sides) > 1 or len(seeds) > 1) and not args.in_process
    runs = []
    for seed in seeds:
        args.seed = seed
        results: dict[str, Any] = {}
        for side in sides:
            results[side] = _run_child(argv, side, seed) if children else run_side(args, side)
        if len(seeds) > 1:
            print(f"\nseed {seed}:")
        runs.append({"seed": seed, "sides": results,
                     "comparison": summarise(results, args.target)})
    report: dict[str, Any] = {"command": command, "options": vars(args), "runs": runs}
    if len(runs) == 1:
        report.update(sides=runs[0]["sides"], comparison=runs[0]["comparison"])
    else:
        report["overall"] = summarise_seeds(runs, args.target)
    write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
