"""``load_dataset`` and ``load_sample``: every data set as one dict of the same shape.

Every loader returns ``{"X_train", "y_train", "X_test", "y_test", "class_names"}`` with images
float32 (N, H, W, C) holding raw pixel values 0..255 and labels int64, so code written against
the packaged sample runs unchanged on Fashion-MNIST or CIFAR-10.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fastnn.data.cifar import load_CIFAR10, load_cifar10_meta
from fastnn.data.mnist import load_mnist
from fastnn.data.registry import SAMPLE_DIR, find_dataset, get_dataset_info, verify_dataset

__all__ = ["DATASET_NAMES", "load_dataset", "load_sample"]

DATASET_NAMES = ("sample", "fashion-mnist", "cifar10")


def _mnist_dict(folder: os.PathLike, class_names: tuple[str, ...]) -> dict[str, Any]:
    X_train, y_train = load_mnist(folder, "train", flatten=False)
    X_test, y_test = load_mnist(folder, "t10k", flatten=False)
    # (N, 28, 28) uint8 -> (N, 28, 28, 1) float32: one channel, like CIFAR's three.
    return {
        "X_train": X_train[..., None].astype(np.float32),
        "y_train": y_train,
        "X_test": X_test[..., None].astype(np.float32),
        "y_test": y_test,
        "class_names": list(class_names),
    }


def load_dataset(
    name: str, root: str | os.PathLike | None = None, *, verify: bool = True
) -> dict[str, Any]:
    """Load a data set by name.

    Parameters
    ----------
    name : {"sample", "fashion-mnist", "cifar10"}
        Which data set (case-insensitive; aliases like ``"cifar-10"`` are accepted).
        ``"sample"`` is the small real Fashion-MNIST cut that ships inside fastnn.
    root : path-like, optional
        A folder holding the files, or a data directory holding them in a known subfolder
        (``fashion-mnist/``, ``cifar-10-batches-py/``, ``cifar10-subset/cifar-10-batches-py/``).
        By default the data directory is searched: ``$FASTNN_DATA``, else ``~/.fastnn/data``,
        then system folders such as Debian's ``/usr/share/datasets/fashion-mnist``.
    verify : bool
        Check the files against the registry's checksums first (data sets that have them).

    Returns
    -------
    dict
        ``X_train`` float32 (N, H, W, C) raw pixels 0..255, ``y_train`` int64 (N,),
        ``X_test``, ``y_test`` likewise, and ``class_names`` (list of str).
        Fashion-MNIST: H = W = 28, C = 1; CIFAR-10: H = W = 32, C = 3.

    Raises
    ------
    DatasetError
        Files missing, corrupt, or failing their checksum; the message names the file.
    ValueError
        Unknown data set name.
    """
    info = get_dataset_info(name)
    folder = find_dataset(info.name, root)
    if verify:
        verify_dataset(info.name, folder)
    if info.name == "cifar10":
        X_train, y_train, X_test, y_test = load_CIFAR10(folder, dtype=np.float32)
        return {
            "X_train": X_train,
            "y_train": y_train,
            "X_test": X_test,
            "y_test": y_test,
            "class_names": list(load_cifar10_meta(folder)),
        }
    return _mnist_dict(folder, info.class_names)


def load_sample() -> dict[str, Any]:
    """The packaged sample: 2,000 training and 500 test Fashion-MNIST images, offline.

    The first 200 training and first 50 test images of each class, in their original order
    (so every class is equally represented), cut from the official files.
    Same dict as :func:`load_dataset`: ``X_*`` float32 (N, 28, 28, 1) 0..255, ``y_*`` int64.

    Returns
    -------
    dict
        The data set, as :func:`load_dataset` returns it.
    """
    return load_dataset("sample", SAMPLE_DIR)
