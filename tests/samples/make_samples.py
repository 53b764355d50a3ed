"""Regenerate the committed real-data samples from the full data under FASTNN_DATA.

Run from the project root::

    FASTNN_DATA=../shared/data python tests/samples/make_samples.py

Writes (byte-for-byte reproducible: gzip with mtime 0 and no file name):

- ``fastnn/data/sample/``: the packaged sample behind ``fastnn.data.load_sample()``:
  the first 200 training and first 50 test images of each Fashion-MNIST class, kept in their
  original order (2,000 + 500 images, stratified so every class has equal weight).
- ``tests/samples/fashion-mnist/``: the first 300 training and first 100 test images of
  Fashion-MNIST (first-N, so labels equal the originals at the same indices).
- ``tests/samples/cifar-10-batches-py/``: the first 20 images of each of the five training
  batches and of the test batch of the CIFAR-10 data under FASTNN_DATA, re-pickled in the
  official format (protocol 2, Python 2 ``str`` keys, NumPy arrays), plus ``batches.meta``.

Then prints the sha256 of each packaged-sample file for ``fastnn/data/registry.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
sys.path.insert(0, str(PROJECT))

from fastnn.data import find_dataset, load_CIFAR_batch, load_mnist
from fastnn.data._safe_pickle import safe_load


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzip-compressed IDX file (magic 0x0000080<ndim>)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
    ):
        gz.write(header + array.tobytes())


def write_mnist(folder: Path, train: tuple, test: tuple) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, (images, labels) in (("train", train), ("t10k", test)):
        write_idx_gz(folder / f"{kind}-images-idx3-ubyte.gz", images)
        write_idx_gz(folder / f"{kind}-labels-idx1-ubyte.gz", labels.astype(np.uint8))


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` examples of every class, in original order."""
    picks = [np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


class Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler that writes ``bytes`` as Python 2 ``str`` (SHORT_BINSTRING/BINSTRING)
    and names NumPy's reconstructor ``numpy.core.multiarray._reconstruct``, as the official
    CIFAR-10 files (written by Python 2 and NumPy 1) do."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None) -> None:
        if getattr(obj, "__name__", None) == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_cifar(src: Path, dst: Path, per_batch: int) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        with open(src / name, "rb") as f:
            batch = safe_load(f)  # bytes keys, like the official loader
        X, _ = load_CIFAR_batch(src / name)  # validates the batch
        n = min(per_batch, X.shape[0])
        cut = {
            b"batch_label": batch[b"batch_label"],
            b"labels": [int(v) for v in batch[b"labels"][:n]],
            b"data": np.ascontiguousarray(batch[b"data"][:n]),
            b"filenames": list(batch[b"filenames"][:n]),
        }
        (dst / name).write_bytes(py2_pickle(cut))
    shutil.copyfile(src / "batches.meta", dst / "batches.meta")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    if not os.environ.get("FASTNN_DATA"):
        print("set FASTNN_DATA to the folder holding fashion-mnist/ and cifar-10 batches",
              file=sys.stderr)  # fmt: skip
        return 2
    fashion = find_dataset("fashion-mnist")
    cifar = find_dataset("cifar10")
    Xtr, ytr = load_mnist(fashion, "train", flatten=False)
    Xte, yte = load_mnist(fashion, "t10k", flatten=False)

    sample_dir = PROJECT / "fastnn" / "data" / "sample"
    itr, ite = first_per_class(ytr, 200), first_per_class(yte, 50)
    write_mnist(sample_dir, (Xtr[itr], ytr[itr]), (Xte[ite], yte[ite]))

    write_mnist(HERE / "fashion-mnist", (Xtr[:300], ytr[:300]), (Xte[:100], yte[:100]))
    write_cifar(cifar, HERE / "cifar-10-batches-py", per_batch=20)

    for path in sorted(sample_dir.glob("*.gz")):
        print(f"{path.name} {sha256(path)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
