"""The ``fastnn`` command: a thin layer over the library's Python functions.

Each subcommand family lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser(s) and sets ``func`` (called with the parsed
arguments, returning an exit code). Modules are discovered here, so adding a family never
touches this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import fastnn


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastnn",
        description="fastnn: the CS231n toolkit for image classification, made fast.",
    )
    parser.add_argument("--version", action="version", version=f"fastnn {fastnn.__version__}")
    parser.add_argument(
        "--threads",
        type=int,
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.threads is not None:
        try:
            fastnn.set_num_threads(args.threads)
        except (TypeError, ValueError) as exc:
            parser.error(f"--threads: {exc}")
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
