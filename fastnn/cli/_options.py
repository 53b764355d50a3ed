"""What every ``fastnn`` data command shares: its options, argument types and small helpers.

- :func:`add_data_options`: ``--dataset`` (choices from the data registry, aliases accepted)
  and ``--data-dir``;
- :func:`add_progress_option`: ``--progress/--no-progress`` (default: a bar only when stderr is a
  terminal);
- :func:`positive_int`, :func:`positive_float`, :func:`non_negative_float`: argparse types, so a
  bad number is refused while parsing with a message naming the flag
  (``argument --epochs: must be a positive integer, got 0``);
- :func:`split_validation`: the ``--val-size`` hold-out every training command takes;
- :func:`limit_blas_threads`: NumPy's BLAS follows ``--threads`` too.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

#: Default ``--val-size``: a tenth of the training images, at most this many.
MAX_DEFAULT_VAL_SIZE = 5000


def _shown(text: str) -> str:
    """The rejected value as typed: bare when it is a number, else quoted."""
    try:
        float(text)
    except ValueError:
        return repr(text)
    return text


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {_shown(text)}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {_shown(text)}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {_shown(text)}")
    return value


def dataset_name(text: str) -> str:
    """argparse type of ``--dataset``: the registry's name for ``text`` (aliases such as
    ``cifar-10`` and any letter case work); an unknown name is returned unchanged so that
    argparse reports it together with the valid choices."""
    from fastnn.data import get_dataset_info

    try:
        return get_dataset_info(text).name
    except (TypeError, ValueError):
        return text


def add_data_options(parser: argparse.ArgumentParser, default: str = "sample") -> None:
    """Add ``--dataset`` and ``--data-dir`` to a command's parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    default : str
        Default data set (the packaged offline sample).
    """
    from fastnn.data import DATASETS

    parser.add_argument(
        "--dataset",
        type=dataset_name,
        choices=tuple(DATASETS),
        default=default,
        help="data set: the packaged offline sample or a full one (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder holding the data set, or a data directory with it in a subfolder "
        "(default: $FASTNN_DATA, else ~/.fastnn/data, then system folders)",
    )


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--progress/--no-progress`` (``args.progress``: True, False or None = automatic).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    """
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress bars (default: only when stderr is a terminal)",
    )


def split_validation(
    X: np.ndarray, y: np.ndarray, val_size: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``--val-size`` hold-out of a training command (a seeded random split).

    Parameters
    ----------
    X, y : ndarray
        Training examples (N, ...) and labels (N,).
    val_size : int or None
        Validation examples; None: ``min(5000, N // 10)`` (at least one).
    seed : int
        ``--seed``.

    Returns
    -------
    X_train, y_train, X_val, y_val : ndarray
    """
    from fastnn.model_selection import train_validation_split

    n = X.shape[0]
    if val_size is None:
        val_size = max(1, min(MAX_DEFAULT_VAL_SIZE, n // 10))
    if not 1 <= val_size < n:
        raise ValueError(
            f"--val-size must be between 1 and {n - 1} for this data set (it has {n} training "
            f"images); got {val_size}"
        )
    return train_validation_split(X, y, val_size, seed=seed)


def limit_blas_threads() -> None:
    """Make NumPy's BLAS use fastnn's thread count too, when threadpoolctl is installed."""
    import fastnn

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(fastnn.get_num_threads())

