"""Loaders on the committed real samples (tests/samples), and their error handling."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from fastnn.data import (
    DatasetError,
    get_CIFAR10_data,
    load_CIFAR10,
    load_CIFAR_batch,
    load_dataset,
    load_mnist,
    load_sample,
    read_idx,
)
from fastnn.data.cifar import load_cifar10_meta

# The originals' first labels (Fashion-MNIST train/t10k; CIFAR-10 data_batch_1/test_batch).
FASHION_TRAIN_FIRST = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
FASHION_TEST_FIRST = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
CIFAR_TRAIN_FIRST = [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
CIFAR_TEST_FIRST = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]


@pytest.fixture
def fashion_dir(samples_dir: Path) -> Path:
    return samples_dir / "fashion-mnist"


@pytest.fixture
def cifar_dir(samples_dir: Path) -> Path:
    return samples_dir / "cifar-10-batches-py"


@pytest.fixture
def cifar_copy(cifar_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "cifar-10-batches-py"
    shutil.copytree(cifar_dir, dst)
    return dst


# ---------------------------------------------------------------- MNIST / Fashion-MNIST (IDX)


def test_load_mnist_sample(fashion_dir):
    X, y = load_mnist(fashion_dir, "train")
    assert X.shape == (300, 784) and X.dtype == np.uint8
    assert y.shape == (300,) and y.dtype == np.int64
    assert y.min() >= 0 and y.max() <= 9 and len(np.unique(y)) == 10
    assert y[:10].tolist() == FASHION_TRAIN_FIRST
    assert X.max() == 255 and X.min() == 0
    Xt, yt = load_mnist(fashion_dir, "t10k")
    assert Xt.shape == (100, 784) and yt[:10].tolist() == FASHION_TEST_FIRST
    X3, _ = load_mnist(fashion_dir, "t10k", flatten=False)
    assert X3.shape == (100, 28, 28)
    np.testing.assert_array_equal(X3.reshape(100, -1), Xt)
    Xa, ya = load_mnist(fashion_dir, "test")  # alias of t10k
    np.testing.assert_array_equal(Xa, Xt)
    np.testing.assert_array_equal(ya, yt)
    assert X.flags.writeable  # a fresh array, not a read-only view of the file's bytes


def test_load_mnist_raw_equals_gzip(fashion_dir, tmp_path):
    for f in fashion_dir.glob("*.gz"):
        (tmp_path / f.stem).write_bytes(gzip.decompress(f.read_bytes()))
    X, y = load_mnist(tmp_path, "train")
    Xg, yg = load_mnist(fashion_dir, "train")
    np.testing.assert_array_equal(X, Xg)
    np.testing.assert_array_equal(y, yg)


def test_load_mnist_bad_kind(fashion_dir):
    with pytest.raises(ValueError, match="kind must be"):
        load_mnist(fashion_dir, "validation")


def test_load_mnist_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz: file not found"):
        load_mnist(tmp_path, "train")


def _idx_bytes(array: np.ndarray, magic_type: int = 0x08) -> bytes:
    header = struct.pack(">HBB", 0, magic_type, array.ndim)
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_read_idx_wrong_magic(fashion_dir, tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x56\x78" + b"\x00" * 100)
    with pytest.raises(
        DatasetError, match=r"train-images-idx3-ubyte: wrong magic number 0x12345678"
    ):
        read_idx(bad)
    # A labels file where images are expected: right format, wrong rank.
    labels = gzip.decompress((fashion_dir / "train-labels-idx1-ubyte.gz").read_bytes())
    bad.write_bytes(labels)
    with pytest.raises(DatasetError, match=r"wrong magic number 0x00000801.*3 dimension"):
        read_idx(bad, expected_ndim=3)


def test_read_idx_truncated_raw(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    data = _idx_bytes(np.zeros((5, 28, 28), np.uint8))
    path.write_bytes(data[:-100])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte: truncated IDX file: the "
                       r"header announces shape \(5, 28, 28\) \(3920 bytes of data\) but only "
                       r"3820 bytes follow it"):  # fmt: skip
        read_idx(path)
    path.write_bytes(data[:10])
    with pytest.raises(DatasetError, match="truncated IDX file"):
        read_idx(path)


def test_read_idx_huge_header_is_refused_before_allocating(tmp_path):
    header = struct.pack(">HBBIII", 0, 0x08, 3, 4_000_000, 1000, 1000)
    raw = tmp_path / "train-images-idx3-ubyte"
    raw.write_bytes(header + bytes(100))
    with pytest.raises(
        DatasetError, match=r"truncated IDX file: the header announces shape \(4000000,"
    ):
        read_idx(raw)
    gz = tmp_path / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(header + bytes(100)))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte\.gz: truncated or corrupt"):
        read_idx(gz)


def test_read_idx_trailing_bytes(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(_idx_bytes(np.arange(10, dtype=np.uint8)) + b"junk")
    with pytest.raises(DatasetError, match="unexpected bytes after the 10 values"):
        read_idx(path)


def test_read_idx_truncated_gzip(fashion_dir, tmp_path):
    data = (fashion_dir / "train-images-idx3-ubyte.gz").read_bytes()
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        DatasetError, match=r"train-images-idx3-ubyte\.gz: corrupt or truncated gzip"
    ):
        read_idx(path)


def test_read_idx_corrupt_gzip(fashion_dir, tmp_path):
    data = bytearray((fashion_dir / "train-labels-idx1-ubyte.gz").read_bytes())
    data[-6] ^= 0xFF  # flip a CRC byte
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(
        DatasetError, match=r"train-labels-idx1-ubyte\.gz: corrupt or truncated gzip"
    ):
        read_idx(path)


def test_load_mnist_count_mismatch(fashion_dir, tmp_path):
    shutil.copy(fashion_dir / "t10k-images-idx3-ubyte.gz", tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(DatasetError, match="holds 7 labels but .* holds 100 images"):
        load_mnist(tmp_path, "t10k")


# ---------------------------------------------------------------- CIFAR-10 (python pickles)


def test_load_cifar10_sample(cifar_dir):
    Xtr, ytr, Xte, yte = load_CIFAR10(cifar_dir)
    assert Xtr.shape == (100, 32, 32, 3) and Xtr.dtype == np.float64
    assert ytr.shape == (100,) and ytr.dtype == np.int64
    assert Xte.shape == (20, 32, 32, 3) and yte.shape == (20,)
    assert ytr[:10].tolist() == CIFAR_TRAIN_FIRST and yte[:10].tolist() == CIFAR_TEST_FIRST
    assert ytr.min() >= 0 and ytr.max() <= 9
    assert Xtr.min() >= 0 and Xtr.max() <= 255
    # Batches are concatenated in order: image 20 is the first of data_batch_2.
    X2, y2 = load_CIFAR_batch(cifar_dir / "data_batch_2")
    np.testing.assert_array_equal(Xtr[20], X2[0])
    assert ytr[20] == y2[0]
    assert Xtr.flags.c_contiguous and Xte.flags.c_contiguous
    X32, _, Xte32, _ = load_CIFAR10(cifar_dir, dtype=np.float32)
    assert X32.dtype == np.float32 and Xte32.flags.c_contiguous
    np.testing.assert_array_equal(X32, Xtr)
    # A data directory instead of the batches folder is resolved to its subfolder.
    Xd, *_ = load_CIFAR10(cifar_dir.parent)
    np.testing.assert_array_equal(Xd, Xtr)


def test_cifar_channel_layout(cifar_dir):
    """Rows are channel-major (1024 R, 1024 G, 1024 B); images come out (H, W, C)."""
    with open(cifar_dir / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]  # trusted test sample
    X, _ = load_CIFAR_batch(cifar_dir / "data_batch_1")
    for c in range(3):
        np.testing.assert_array_equal(
            X[3, :, :, c], raw[3, c * 1024 : (c + 1) * 1024].reshape(32, 32)
        )


def test_cifar_meta(cifar_dir, tmp_path):
    assert load_cifar10_meta(cifar_dir)[:3] == ("airplane", "automobile", "bird")
    assert len(load_cifar10_meta(tmp_path)) == 10  # default names when batches.meta is absent


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_python3_pickles_and_batch_size_read_from_file(cifar_copy, protocol):
    """Batches re-saved by Python 3 (str keys, NumPy 2 globals) load, and sizes come from the
    files: one batch of 7 images gives 87 training images."""
    X, y = load_CIFAR_batch(cifar_copy / "data_batch_3")
    batch = {"batch_label": "training batch 3 of 5", "labels": y[:7].tolist(),
             "data": np.ascontiguousarray(X[:7].transpose(0, 3, 1, 2).reshape(7, -1))}  # fmt: skip
    (cifar_copy / "data_batch_3").write_bytes(pickle.dumps(batch, protocol=protocol))
    Xtr, ytr, _, _ = load_CIFAR10(cifar_copy)
    assert Xtr.shape == (87, 32, 32, 3)
    np.testing.assert_array_equal(Xtr[40:47], X[:7])
    np.testing.assert_array_equal(ytr[40:47], y[:7])


def test_cifar_truncated_pickle(cifar_copy):
    path = cifar_copy / "data_batch_4"
    path.write_bytes(path.read_bytes()[:30000])
    with pytest.raises(DatasetError, match=r"data_batch_4: corrupt or truncated pickle"):
        load_CIFAR10(cifar_copy)
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match=r"data_batch_4: corrupt or truncated pickle"):
        load_CIFAR_batch(path)


def test_cifar_missing_batch(cifar_copy):
    (cifar_copy / "test_batch").unlink()
    with pytest.raises(DatasetError, match=r"test_batch: file not found"):
        load_CIFAR10(cifar_copy)
    with pytest.raises(DatasetError, match="CIFAR-10 folder not found"):
        load_CIFAR10(cifar_copy / "nope")
    (cifar_copy / "data_batch_1").unlink()
    with pytest.raises(DatasetError, match=r"cifar-10-batches-py/data_batch_1: file not found"):
        load_CIFAR10(cifar_copy)


def test_cifar_without_meta_uses_standard_names(cifar_copy):
    (cifar_copy / "batches.meta").unlink()
    d = load_dataset("cifar10", cifar_copy)
    assert d["class_names"][:2] == ["airplane", "automobile"] and d["X_test"].shape[0] == 20


class _Evil:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_cifar_disallowed_global_is_refused(cifar_copy, tmp_path, protocol):
    sentinel = tmp_path / "pwned"
    path = cifar_copy / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Evil(str(sentinel)), b"labels": []}, protocol))
    with pytest.raises(DatasetError, match=r"data_batch_1: unsafe pickle: refusing to load "
                       r"global '(posix|nt)\.mkdir'"):  # fmt: skip
        load_CIFAR10(cifar_copy)
    assert not sentinel.exists()


def test_cifar_disallowed_global_inside_object_array(cifar_copy, tmp_path):
    sentinel = tmp_path / "pwned"
    arr = np.array([_Evil(str(sentinel))], dtype=object)
    path = cifar_copy / "test_batch"
    path.write_bytes(pickle.dumps({"data": arr, "labels": [0]}, protocol=2))
    with pytest.raises(DatasetError, match="unsafe pickle: refusing"):
        load_CIFAR_batch(path)
    assert not sentinel.exists()


def test_cifar_codecs_encode_only_latin1(cifar_copy):
    # A hand-written protocol-2 pickle calling _codecs.encode('x', 'rot13').
    payload = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R."
    path = cifar_copy / "data_batch_2"
    path.write_bytes(payload)
    with pytest.raises(
        DatasetError, match="data_batch_2: unsafe pickle: refusing _codecs.encode .*rot13"
    ):
        load_CIFAR_batch(path)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2, 3], "expected a pickled dict, got list"),
        ({b"labels": [1]}, "no 'data' entry"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "no 'labels' entry"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}, "shape \\(N, 3072\\)"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}, "uint8 array"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "'data' holds 2 images"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 12]}, "labels must be in 0..9"),
    ],
)
def test_cifar_malformed_batch(cifar_copy, obj, message):
    path = cifar_copy / "data_batch_5"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(DatasetError, match=f"data_batch_5: .*{message}"):
        load_CIFAR_batch(path)


def test_get_cifar10_data_sample(cifar_dir):
    d = get_CIFAR10_data(num_training=70, num_validation=30, num_test=15, root=cifar_dir)
    assert set(d) == {"X_train", "y_train", "X_val", "y_val", "X_test", "y_test"}
    assert d["X_train"].shape == (70, 3, 32, 32)
    assert d["X_val"].shape == (30, 3, 32, 32)
    assert d["X_test"].shape == (15, 3, 32, 32)
    assert d["y_train"].shape == (70,) and d["y_val"].shape == (30,) and d["y_test"].shape == (15,)
    assert all(d[k].flags.c_contiguous for k in ("X_train", "X_val", "X_test"))
    Xtr, ytr, Xte, yte = load_CIFAR10(cifar_dir)
    mean = Xtr[:70].mean(axis=0)
    np.testing.assert_allclose(d["X_train"].mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(d["X_val"], (Xtr[70:100] - mean).transpose(0, 3, 1, 2))
    np.testing.assert_allclose(d["X_test"], (Xte[:15] - mean).transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(d["y_val"], ytr[70:100])
    np.testing.assert_array_equal(d["y_test"], yte[:15])
    raw = get_CIFAR10_data(50, 10, 5, subtract_mean=False, root=cifar_dir)
    np.testing.assert_array_equal(raw["X_train"], Xtr[:50].transpose(0, 3, 1, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "num_training=49000 exceeds the 100 training images"),
        ({"num_training": 90, "num_validation": 20}, "num_validation=20 is too large.*at most 10"),
        (
            {"num_training": 50, "num_validation": 0, "num_test": 21},
            "num_test=21 exceeds the 20 test images",
        ),
        ({"num_training": 0}, "num_training must be >= 1"),
        ({"num_training": 10, "num_validation": -1}, "num_validation must be >= 0"),
    ],
)
def test_get_cifar10_data_bad_sizes(cifar_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_CIFAR10_data(root=cifar_dir, **kwargs)


def test_get_cifar10_data_default_root(samples_dir, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(samples_dir))
    d = get_CIFAR10_data(num_training=80, num_validation=20, num_test=20)
    assert d["X_train"].shape == (80, 3, 32, 32) and d["y_val"].shape == (20,)


# ---------------------------------------------------------------- load_dataset / load_sample


def test_load_sample():
    d = load_sample()
    assert set(d) == {"X_train", "y_train", "X_test", "y_test", "class_names"}
    assert d["X_train"].shape == (2000, 28, 28, 1) and d["X_train"].dtype == np.float32
    assert d["X_test"].shape == (500, 28, 28, 1) and d["X_test"].dtype == np.float32
    assert d["y_train"].dtype == np.int64 and d["y_test"].dtype == np.int64
    assert np.bincount(d["y_train"]).tolist() == [200] * 10
    assert np.bincount(d["y_test"]).tolist() == [50] * 10
    assert d["X_train"].min() == 0 and d["X_train"].max() == 255
    assert d["class_names"][0] == "T-shirt/top" and len(d["class_names"]) == 10
    assert d["X_train"].flags.c_contiguous and d["X_test"].flags.c_contiguous
    # Stratified first-N keeps original order: the first images are the data set's first ones.
    assert d["y_train"][:10].tolist() == FASHION_TRAIN_FIRST


def test_load_sample_matches_committed_test_sample(fashion_dir):
    """The first training images of the packaged sample are the originals' first images."""
    X, _ = load_mnist(fashion_dir, "train", flatten=False)
    d = load_dataset("sample")
    np.testing.assert_array_equal(d["X_train"][:5, :, :, 0], X[:5])


def test_load_dataset_fashion_sample_dir(samples_dir):
    # The cut files differ from the registry's full-data checksums, so verification must fail,
    d = load_dataset("fashion-mnist", samples_dir, verify=False)
    assert d["X_train"].shape == (300, 28, 28, 1) and d["X_train"].dtype == np.float32
    assert d["X_test"].shape == (100, 28, 28, 1) and d["y_test"].dtype == np.int64
    # ... and with verification on it does, naming the file and the problem.
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz: checksum mismatch"):
        load_dataset("fashion-mnist", samples_dir)


def test_load_dataset_cifar_sample_dir(samples_dir):
    d = load_dataset("CIFAR-10", samples_dir)  # case-insensitive alias
    assert d["X_train"].shape == (100, 32, 32, 3) and d["X_train"].dtype == np.float32
    assert d["y_train"].dtype == np.int64 and d["y_train"][:10].tolist() == CIFAR_TRAIN_FIRST
    assert d["class_names"][-1] == "truck"
    assert all(d[k].flags.c_contiguous for k in ("X_train", "X_test"))


def test_load_dataset_unknown_and_missing(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'mnist3'"):
        load_dataset("mnist3")
    with pytest.raises(DatasetError) as info:
        load_dataset("fashion-mnist", tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in msg and "file not found" in msg
    assert "fastnn download fashion-mnist" in msg
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


def test_cli_data_options_load_what_they_name(samples_dir):
    import argparse

    from fastnn.cli._options import add_data_options

    parser = argparse.ArgumentParser()
    add_data_options(parser)
    args = parser.parse_args([])
    assert (args.dataset, args.data_dir) == ("sample", None)
    args = parser.parse_args(["--dataset", "cifar10", "--data-dir", str(samples_dir)])
    assert load_dataset(args.dataset, args.data_dir)["X_train"].shape == (100, 32, 32, 3)
    with pytest.raises(SystemExit):
        parser.parse_args(["--dataset", "mnist3"])
