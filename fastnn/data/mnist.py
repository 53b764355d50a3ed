"""MNIST and Fashion-MNIST in their original IDX format, gzip-compressed or raw.

IDX layout (big-endian): two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions, one 32-bit size per dimension, then the values in C order. Labels are
``idx1`` (magic 0x00000801), images ``idx3`` (magic 0x00000803).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from fastnn._validation import check_int, check_path
from fastnn.data._classes import NUM_CLASSES
from fastnn.data._errors import DatasetError

__all__ = ["load_mnist", "mnist_files", "read_idx"]

_KIND_ALIASES = {"train": "train", "t10k": "t10k", "test": "t10k"}
_TYPE_CODES = {0x08: np.dtype(np.uint8)}  # the only type MNIST-style data sets use
_MAX_GZIP_RATIO = 1100  # deflate cannot expand data by more than about 1032:1


def mnist_files(kind: str) -> tuple[str, str]:
    """Base names (without ``.gz``) of the image and label files for ``kind``.

    Parameters
    ----------
    kind : {"train", "t10k", "test"}
        Which split; ``"test"`` is an alias of ``"t10k"``.

    Returns
    -------
    images, labels : str
        For example ``"train-images-idx3-ubyte"`` and ``"train-labels-idx1-ubyte"``.
    """
    prefix = _check_kind(kind)
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _check_kind(kind: str) -> str:
    if not isinstance(kind, str) or kind not in _KIND_ALIASES:
        raise ValueError(f"kind must be 'train', 't10k' or 'test', got {kind!r}")
    return _KIND_ALIASES[kind]


def _open(path: Path):
    """Open ``path`` for reading, transparently decompressing gzip (detected by content)."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _read_exact(stream, n: int, path: Path, what: str) -> bytearray:
    """Read exactly ``n`` bytes or raise a DatasetError saying how many were there."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        chunk = stream.readinto(view[got:])
        if not chunk:
            break
        got += chunk
    if got != n:
        raise DatasetError(f"{path}: truncated IDX file: expected {n} bytes of {what}, found {got}")
    return buf


def read_idx(path: str | os.PathLike, *, expected_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a writable uint8 array of its stored shape.

    Parameters
    ----------
    path : path-like
        The file. Gzip compression is detected from the content, not the name.
    expected_ndim : int, optional
        Required number of dimensions (1 for labels, 3 for images).

    Returns
    -------
    ndarray of uint8
        The values, shape given by the header.

    Raises
    ------
    DatasetError
        Missing file, wrong magic number, unexpected type or rank, truncated data, trailing
        bytes, or a corrupt gzip stream; the message names the file and the problem.
    """
    path = check_path(path, "path")
    if expected_ndim is not None:
        expected_ndim = check_int(expected_ndim, "expected_ndim", minimum=1, maximum=8)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with _open(path) as stream:
            header = _read_exact(stream, 4, path, "header")
            zero, type_code, ndim = struct.unpack(">HBB", header)
            if zero != 0 or type_code not in _TYPE_CODES:
                magic = int.from_bytes(header, "big")
                raise DatasetError(
                    f"{path}: wrong magic number 0x{magic:08x}: not an unsigned-byte IDX file "
                    "(expected 0x00000801 for labels or 0x00000803 for images)"
                )
            if expected_ndim is not None and ndim != expected_ndim:
                magic = int.from_bytes(header, "big")
                raise DatasetError(
                    f"{path}: wrong magic number 0x{magic:08x}: expected an IDX file with "
                    f"{expected_ndim} dimension(s) (magic 0x{0x800 + expected_ndim:08x}), "
                    f"found {ndim}"
                )
            dims = struct.unpack(f">{ndim}I", _read_exact(stream, 4 * ndim, path, "dimensions"))
            count = math.prod(dims)  # Python ints: up to 2**32 per dimension, never wraps
            # Refuse before allocating: a corrupt header must not ask for gigabytes.
            stored = path.stat().st_size
            if not isinstance(stream, gzip.GzipFile):
                available = stored - 4 - 4 * ndim
                if count > available:
                    raise DatasetError(
                        f"{path}: truncated IDX file: the header announces shape {dims} "
                        f"({count} bytes of data) but only {available} bytes follow it"
                    )
            elif count > stored * _MAX_GZIP_RATIO:
                raise DatasetError(
                    f"{path}: truncated or corrupt IDX file: the header announces shape {dims} "
                    f"({count} bytes), more than a {stored}-byte gzip file can hold"
                )
            buf = _read_exact(stream, count, path, f"data for shape {dims}")
            if stream.read(1):
                raise DatasetError(
                    f"{path}: corrupt IDX file: unexpected bytes after the {count} values "
                    f"announced by the header (shape {dims})"
                )
    except DatasetError:
        raise
    except (EOFError, OSError, zlib.error) as exc:
        # gzip raises EOFError on a cut stream and BadGzipFile (OSError) on a bad CRC/header.
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    return np.frombuffer(buf, dtype=np.uint8).reshape(dims)


def _find_idx(root: Path, base: str) -> Path:
    for candidate in (root / f"{base}.gz", root / base):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{root / (base + '.gz')}: file not found (nor the uncompressed {base})")


def load_mnist(
    root: str | os.PathLike, kind: str = "train", *, flatten: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST or Fashion-MNIST images and labels from IDX files.

    Same call as Fashion-MNIST's own ``utils/mnist_reader.load_mnist(path, kind)``.

    Parameters
    ----------
    root : path-like
        Folder holding ``{kind}-images-idx3-ubyte[.gz]`` and ``{kind}-labels-idx1-ubyte[.gz]``
        (the gzip file is preferred when both exist).
    kind : {"train", "t10k", "test"}
        Which split; ``"test"`` is an alias of ``"t10k"``.
    flatten : bool
        Return images as (N, rows*cols) like the reference reader (default), or (N, rows, cols).

    Returns
    -------
    images : ndarray of uint8, shape (N, 784) or (N, 28, 28)
        Raw pixel values 0..255.
    labels : ndarray of int64, shape (N,)
        Class indices 0..9.

    Raises
    ------
    DatasetError
        A file is missing or corrupt, the image and label counts disagree, or a label is not
        a class index 0..9.
    ValueError
        ``kind`` is not one of the accepted names.
    """
    root = check_path(root, "root")
    images_base, labels_base = mnist_files(kind)
    images_path = _find_idx(root, images_base)
    labels_path = _find_idx(root, labels_base)
    images = read_idx(images_path, expected_ndim=3)
    labels = read_idx(labels_path, expected_ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{labels_path}: holds {labels.shape[0]} labels but {images_path} holds "
            f"{images.shape[0]} images"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DatasetError(f"{labels_path}: labels must be class indices 0..{NUM_CLASSES - 1}, "
                           f"found {int(labels.max())}")
    if flatten:
        images = images.reshape(images.shape[0], -1)
    return images, labels.astype(np.int64)
