"""``fastnn info``: build and runtime configuration."""

from __future__ import annotations

import fastnn


def run(args) -> int:
    fastnn.show_config()
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="show version, compiler, OpenMP, threads and BLAS")
    parser.set_defaults(func=run)
