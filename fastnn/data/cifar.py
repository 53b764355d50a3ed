"""CIFAR-10 from the official "python version" batches (``cifar-10-batches-py``).

Each batch is a pickled dict with ``data`` (uint8, (N, 3072), channel-major: 1024 red, 1024
green, 1024 blue values, each row-major 32x32) and ``labels`` (N ints). N is read from every
file: subsets (like the 1,000-per-batch one used in this project's tests) load the same way.
Files are unpickled with a restricted unpickler, so a doctored batch cannot run code.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from fastnn._validation import check_int, check_path
from fastnn.data._classes import CIFAR10_CLASSES, NUM_CLASSES
from fastnn.data._errors import DatasetError
from fastnn.data._safe_pickle import UnsafePickleError, safe_load
from fastnn.data.registry import find_dataset

__all__ = [
    "CIFAR10_CLASSES",
    "TEST_BATCH",
    "TRAIN_BATCHES",
    "get_CIFAR10_data",
    "load_CIFAR10",
    "load_CIFAR_batch",
    "load_cifar10_meta",
]

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _unpickle(path: Path) -> dict[str, Any]:
    """Safely unpickle one CIFAR file into a dict with ``str`` keys."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with open(path, "rb") as f:
            obj = safe_load(f, encoding="bytes")
    except UnsafePickleError as exc:
        raise DatasetError(f"{path}: unsafe pickle: {exc}") from None
    except pickle.UnpicklingError as exc:
        raise DatasetError(f"{path}: corrupt or truncated pickle ({exc})") from None
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            MemoryError, struct.error) as exc:  # fmt: skip
        # Cut files end in EOFError ("Ran out of input"); garbage opcodes raise the others.
        raise DatasetError(
            f"{path}: corrupt or truncated pickle ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(obj, dict):
        raise DatasetError(
            f"{path}: not a CIFAR-10 batch: expected a pickled dict, got {type(obj).__name__}"
        )
    return {_text(k): v for k, v in obj.items()}


def load_CIFAR_batch(filename: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load one CIFAR-10 batch file.

    Parameters
    ----------
    filename : path-like
        A ``data_batch_*`` or ``test_batch`` file.

    Returns
    -------
    X : ndarray of uint8, shape (N, 32, 32, 3)
        Images in height, width, channel order (a view of the file's channel-major rows).
    y : ndarray of int64, shape (N,)
        Labels 0..9.

    Raises
    ------
    DatasetError
        The file is missing, truncated, corrupt, unsafe, or its arrays have the wrong shape.
    """
    path = check_path(filename, "filename")
    batch = _unpickle(path)
    for key in ("data", "labels"):
        if key not in batch:
            raise DatasetError(
                f"{path}: not a CIFAR-10 batch: no '{key}' entry (keys: {sorted(batch)})"
            )
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:  # fmt: skip
        desc = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
                else type(data).__name__)  # fmt: skip
        raise DatasetError(
            f"{path}: bad 'data' entry: expected a uint8 array of shape (N, 3072), got {desc}"
        )
    n = data.shape[0]  # read from the file, never assumed to be 10,000
    labels = _labels(batch["labels"], n, path)
    X = data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
    return X, labels


def _labels(raw: Any, n: int, path: Path) -> np.ndarray:
    """The ``labels`` entry as int64 class indices 0..9, one per image.

    Only integers are labels: a float (1.7 would truncate to 1), a string ("1") or a bool is a
    corrupt file, and so is an integer too large for int64 (NumPy keeps those as objects).
    """
    try:
        labels = np.asarray(raw)
    except (TypeError, ValueError) as exc:  # ragged nesting
        raise DatasetError(f"{path}: bad 'labels' entry: {exc}") from None
    if labels.dtype == object:
        values = labels.reshape(-1).tolist()
        kinds = {type(v) for v in values}
        if kinds and all(issubclass(k, int) and k is not bool for k in kinds):
            # Python ints too large for int64: out of range, whatever else the file holds
            raise DatasetError(f"{path}: labels must be in 0..{NUM_CLASSES - 1}, found "
                               f"{min(values)}..{max(values)}")
        found = ", ".join(sorted(k.__name__ for k in kinds))
        raise DatasetError(f"{path}: bad 'labels' entry: expected integers 0..{NUM_CLASSES - 1}, "
                           f"found {found}")
    if labels.dtype.kind not in "iu":
        raise DatasetError(f"{path}: bad 'labels' entry: expected integers 0..{NUM_CLASSES - 1}, "
                           f"found {labels.dtype} values")
    if labels.shape != (n,):
        raise DatasetError(f"{path}: 'labels' has shape {labels.shape} but 'data' holds {n} images")
    if n and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DatasetError(f"{path}: labels must be in 0..{NUM_CLASSES - 1}, found "
                           f"{labels.min()}..{labels.max()}")
    return labels.astype(np.int64, copy=False)


def load_cifar10_meta(root: str | os.PathLike) -> tuple[str, ...]:
    """Class names from ``batches.meta`` in ``root`` (the standard names when it is absent).

    Parameters
    ----------
    root : path-like
        The ``cifar-10-batches-py`` folder.

    Returns
    -------
    tuple of str
        The ten class names, in label order.

    Raises
    ------
    DatasetError
        ``batches.meta`` exists but is corrupt, unsafe or does not hold ten names.
    """
    path = check_path(root, "root") / META_FILE
    if not path.is_file():
        return CIFAR10_CLASSES
    meta = _unpickle(path)
    names = meta.get("label_names")
    if not isinstance(names, (list, tuple)) or len(names) != 10:
        raise DatasetError(f"{path}: bad 'label_names' entry: expected 10 names, got {names!r}")
    return tuple(_text(n) for n in names)


def load_CIFAR10(
    root: str | os.PathLike, *, dtype: Any = np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load all of CIFAR-10 (the CS231n ``load_CIFAR10``).

    Parameters
    ----------
    root : path-like
        The ``cifar-10-batches-py`` folder holding ``data_batch_1`` .. ``data_batch_5`` and
        ``test_batch``.
    dtype : dtype, optional
        Image dtype. The default float64 matches CS231n (``astype("float")``); pass
        ``np.float32`` to halve the memory.

    Returns
    -------
    Xtr : ndarray, shape (N_train, 32, 32, 3)
        Training images, raw pixel values 0..255.
    Ytr : ndarray of int64, shape (N_train,)
    Xte : ndarray, shape (N_test, 32, 32, 3)
    Yte : ndarray of int64, shape (N_test,)

    Raises
    ------
    DatasetError
        A batch is missing, truncated, corrupt or unsafe; the message names the file.
    """
    root = check_path(root, "root")
    if not root.is_dir():
        raise DatasetError(f"{root}: CIFAR-10 folder not found (expected cifar-10-batches-py)")
    if not (root / TRAIN_BATCHES[0]).exists():
        # Given a data directory instead of the batches folder: use its known subfolder.
        try:
            root = find_dataset("cifar10", root)
        except DatasetError:
            pass  # report the missing batch in root itself, below
    xs, ys = [], []
    for name in TRAIN_BATCHES:
        X, y = load_CIFAR_batch(root / name)
        xs.append(X)
        ys.append(y)
    Xtr = np.concatenate(xs).astype(dtype, order="C")
    Ytr = np.concatenate(ys)
    del xs, ys
    Xte, Yte = load_CIFAR_batch(root / TEST_BATCH)
    # order="C": the (H, W, C) view of channel-major rows would otherwise keep its strides.
    return Xtr, Ytr, Xte.astype(dtype, order="C"), Yte


def get_CIFAR10_data(
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    subtract_mean: bool = True,
    root: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
    """CIFAR-10 split into train/validation/test, mean-subtracted, channels first (CS231n).

    The validation images are the ``num_validation`` training images that follow the first
    ``num_training``; the test images are the first ``num_test`` of the test batch. The mean
    image is computed over the training split only and subtracted from all three.

    Parameters
    ----------
    num_training, num_validation, num_test : int
        Split sizes. ``num_training + num_validation`` must not exceed the training images
        available, nor ``num_test`` the test images (the full data set has 50,000 / 10,000).
    subtract_mean : bool
        Subtract the training mean image.
    root : path-like, optional
        The ``cifar-10-batches-py`` folder; by default it is looked up in the data directory
        (``FASTNN_DATA``, else ``~/.fastnn/data``; see :func:`fastnn.data.find_dataset`).

    Returns
    -------
    dict
        ``X_train, y_train, X_val, y_val, X_test, y_test``; images float64 (N, 3, 32, 32).

    Raises
    ------
    ValueError
        A split size is negative, or larger than what the files hold (the message names the
        argument and the available count).
    DatasetError
        The files are missing or corrupt.
    """
    num_training = check_int(num_training, "num_training", minimum=1)
    num_validation = check_int(num_validation, "num_validation", minimum=0)
    num_test = check_int(num_test, "num_test", minimum=0)
    if root is not None:
        root = check_path(root, "root")
    if root is None:
        root = find_dataset("cifar10")
    X_train, y_train, X_test, y_test = load_CIFAR10(root)
    n_train, n_test = X_train.shape[0], X_test.shape[0]
    if num_training > n_train:
        raise ValueError(
            f"num_training={num_training} exceeds the {n_train} training images available in {root}"
        )
    if num_training + num_validation > n_train:
        raise ValueError(
            f"num_validation={num_validation} is too large: num_training + num_validation = "
            f"{num_training + num_validation} exceeds the {n_train} training images available "
            f"in {root} (at most {n_train - num_training} are left for validation)"
        )
    if num_test > n_test:
        raise ValueError(
            f"num_test={num_test} exceeds the {n_test} test images available in {root}"
        )

    X_val = X_train[num_training : num_training + num_validation]
    y_val = y_train[num_training : num_training + num_validation]
    X_train = X_train[:num_training]
    y_train = y_train[:num_training]
    X_test = X_test[:num_test]
    y_test = y_test[:num_test]

    if subtract_mean:
        # In place on the freshly loaded arrays (disjoint slices): no extra 50,000-image copy.
        mean_image = np.mean(X_train, axis=0)
        X_train -= mean_image
        X_val -= mean_image
        X_test -= mean_image

    # Channels first, as the CS231n layers expect (N, C, H, W); copy to make them contiguous.
    return {
        "X_train": X_train.transpose(0, 3, 1, 2).copy(),
        "y_train": y_train.copy(),
        "X_val": X_val.transpose(0, 3, 1, 2).copy(),
        "y_val": y_val.copy(),
        "X_test": X_test.transpose(0, 3, 1, 2).copy(),
        "y_test": y_test.copy(),
    }
