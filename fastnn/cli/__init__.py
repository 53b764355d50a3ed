"""The ``fastnn`` command: a thin layer over the library's Python functions.

Each subcommand family lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser(s) and sets ``func`` (called with the parsed
arguments, returning an exit code). Modules are discovered here, so adding a family never
touches this file. Options shared by the data commands live in ``_options``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import fastnn
from fastnn.cli._options import positive_int


def build_parser() -> argparse.ArgumentParser:
    """The ``fastnn`` parser with every discovered subcommand registered.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="fastnn",
        description="fastnn: the CS231n toolkit for image classification, made fast.",
    )
    parser.add_argument("--version", action="version", version=f"fastnn {fastnn.__version__}")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="threads for compiled kernels (default: FASTNN_NUM_THREADS or all cores)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``fastnn`` command line and return its exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for bad arguments or input (the message went to stderr, naming the
        flag or file), 130 when interrupted. Never raises ``SystemExit``, so the function can
        be called from Python and tests like any other.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help/--version (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    if args.command is None:
        parser.print_help()
        return 0
    if args.threads is not None:  # positive_int already refused anything but n >= 1
        if args.threads > fastnn.max_num_threads():
            parser.print_usage(sys.stderr)
            print(f"fastnn: error: argument --threads: must be at most "
                  f"{fastnn.max_num_threads()} (the cores this process may run on), got "
                  f"{args.threads}", file=sys.stderr)
            return 2
        fastnn.set_num_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, OSError) as exc:
        print(f"fastnn {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
