"""``fastnn bench SUITE [--compare] [--quick]``: time implementations side by side."""

from __future__ import annotations

import argparse

import fastnn
from fastnn.bench import format_table, limit_peer_threads, suites


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark suite(s) and print a table per suite.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn bench`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    available = suites()
    names = list(available) if args.suite == "all" else [args.suite]
    for name in names:
        if name not in available:
            raise ValueError(f"suite must be one of {', '.join(available)} or 'all'; got {name!r}")
    limit_peer_threads()
    print(f"fastnn {fastnn.__version__}, threads={fastnn.get_num_threads()}")
    for name in names:
        rows = available[name](compare=args.compare, quick=args.quick)
        print(f"\n[{name}]")
        print(format_table(rows))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``ArgumentParser.add_subparsers``.
    """
    parser = subparsers.add_parser(
        "bench", help="benchmark looped vs vectorized vs compiled implementations"
    )
    parser.add_argument("suite", help="which suite to run (or 'all')")
    parser.add_argument(
        "--compare", action="store_true", help="include PyTorch/SciPy/scikit-learn when installed"
    )
    parser.add_argument("--quick", action="store_true", help="smaller shapes, fewer repeats")
    parser.set_defaults(func=run)
