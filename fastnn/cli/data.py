"""``fastnn download`` and ``fastnn datasets``: get data sets and see where they are."""

from __future__ import annotations

import argparse
import sys

from fastnn.cli._options import add_progress_option
from fastnn.data._errors import DatasetError
from fastnn.data.registry import (
    DATASETS,
    find_dataset,
    get_data_dir,
    search_locations,
    verify_dataset,
)


def _describe(name: str, verify: bool, out) -> bool:
    """Print one data set's entry; returns whether it was found (and verified, if asked)."""
    info = DATASETS[name]
    print(f"{info.name}: {info.title}", file=out)
    print(f"  files:   {', '.join(f.name for f in info.files)}", file=out)
    ok = True
    try:
        folder = find_dataset(info.name)
        status = ""
        if verify:
            verify_dataset(info.name, folder)
            status = "  (checksums OK)" if any(f.sha256 or f.md5 for f in info.files) else ""
        print(f"  found:   {folder}{status}", file=out)
    except DatasetError as exc:
        ok = False
        if verify and "checksum" in str(exc):
            print(f"  found:   BAD: {exc}", file=out)
        else:
            searched = ", ".join(str(p) for p in search_locations(info.name))
            print(f"  found:   no (searched {searched})", file=out)
    for entry in info.downloads:
        print(f"  source:  {entry.url}", file=out)
    if info.license:
        print(f"  licence: {info.license}", file=out)
    return ok


def run_datasets(args: argparse.Namespace) -> int:
    """List the registry's data sets and where each was found.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (``verify``).

    Returns
    -------
    int
        Exit code (0).
    """
    out = sys.stdout
    print(f"data directory: {get_data_dir()} (set FASTNN_DATA to change it)", file=out)
    for name in DATASETS:
        print(file=out)
        _describe(name, args.verify, out)
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Download, verify and unpack one data set (or list them with ``--list``).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn download`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    if args.list:
        return run_datasets(args)
    if args.name is None:
        raise ValueError(f"give a data set to download: {', '.join(_downloadable())}")
    from fastnn.data.download import download

    folder = download(
        args.name,
        args.dir,
        mirror=args.mirror,
        force=args.force,
        keep_archive=args.keep_archive,
        show_progress=args.progress,
    )
    print(f"{args.name}: ready in {folder} (checksums verified)")
    return 0


def _downloadable() -> list[str]:
    return [name for name, info in DATASETS.items() if info.downloads]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``download`` and ``datasets`` commands.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "download",
        help="download a data set (official files, checksum-verified)",
        description="Download a data set's official files into the data directory "
        "($FASTNN_DATA, else ~/.fastnn/data), verify their checksums and unpack them.",
    )
    p.add_argument("name", nargs="?", choices=_downloadable(), help="data set to download")
    p.add_argument(
        "--data-dir", "--dir", dest="dir", default=None, metavar="DIR",
        help="data directory to download into (default: $FASTNN_DATA, else ~/.fastnn/data)",
    )
    p.add_argument(
        "--mirror", default=None, metavar="URL",
        help="base URL replacing the official host; files are fetched from URL/<file name> "
        "(file:// works for local copies)",
    )  # fmt: skip
    p.add_argument("--force", action="store_true", help="download even if already present")
    p.add_argument("--keep-archive", action="store_true", help="keep tar archives after unpacking")
    add_progress_option(p)
    p.add_argument(
        "--quiet", dest="progress", action="store_false", default=None,
        help="no progress bar (same as --no-progress)",
    )
    p.add_argument("--list", action="store_true", help="list data sets and where they are")
    p.add_argument("--verify", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run_download)

    q = subparsers.add_parser(
        "datasets",
        help="list known data sets, their files and where each was found",
    )
    q.add_argument("--verify", action="store_true", help="also check the files' checksums")
    q.set_defaults(func=run_datasets)
