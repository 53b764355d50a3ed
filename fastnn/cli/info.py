"""``fastnn info``: build and runtime configuration."""

from __future__ import annotations

import argparse

import fastnn


def run(args: argparse.Namespace) -> int:
    """Print version, compiler, OpenMP, threads and BLAS.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed (empty) ``fastnn info`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    fastnn.show_config()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``ArgumentParser.add_subparsers``.
    """
    parser = subparsers.add_parser("info", help="show version, compiler, OpenMP, threads and BLAS")
    parser.set_defaults(func=run)
