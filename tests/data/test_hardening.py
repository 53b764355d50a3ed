"""Issue 7: loaders turn every malformed label, oversized array and overflowing header into a
DatasetError naming the file (before, OverflowError or ValueError escaped, 1.7 became label 1
and "1" was accepted), and the registry and the CIFAR loader no longer import each other."""

from __future__ import annotations

import ast
import gzip
import io
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastnn.data import DatasetError, load_CIFAR_batch, load_mnist, read_idx
from fastnn.data._safe_pickle import UnsafePickleError, safe_load

try:
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer


def _batch(path: Path, labels, n: int = 2) -> Path:
    path.write_bytes(pickle.dumps({b"data": np.zeros((n, 3072), np.uint8), b"labels": labels},
                                  protocol=2))
    return path


# ------------------------------------------------------------------------- CIFAR labels
@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([1, 2**70], r"labels must be in 0\.\.9, found 1\.\.1180591620717411303424"),
        ([1, -(2**70)], r"labels must be in 0\.\.9, found -1180591620717411303424\.\.1"),
        ([1.7, 2.0], r"bad 'labels' entry: expected integers 0\.\.9, found float64 values"),
        (["1", "2"], r"bad 'labels' entry: expected integers 0\.\.9, found <U1 values"),
        ([b"1", b"2"], r"bad 'labels' entry: expected integers"),
        ([True, False], r"bad 'labels' entry: expected integers 0\.\.9, found bool values"),
        ([1, None], r"bad 'labels' entry: expected integers 0\.\.9, found NoneType, int"),
        (np.array([1.0, 2.0]), r"bad 'labels' entry: expected integers"),
        (np.array([3, 10], np.uint8), r"labels must be in 0\.\.9, found 3\.\.10"),
        ([[1], [2, 3]], r"bad 'labels' entry"),
    ],
)
def test_cifar_labels_that_are_not_class_indices(tmp_path, labels, message):
    path = _batch(tmp_path / "data_batch_1", labels)
    with pytest.raises(DatasetError, match=rf"data_batch_1: {message}"):
        load_CIFAR_batch(path)


def test_cifar_integer_labels_of_any_int_dtype_load(tmp_path):
    for labels in ([3, 9], np.array([3, 9], np.uint8), np.array([3, 9], np.int32)):
        _, y = load_CIFAR_batch(_batch(tmp_path / "data_batch_1", labels))
        assert y.dtype == np.int64 and y.tolist() == [3, 9]


# ------------------------------------------------------------------- restricted unpickler
class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


OVERSIZED = {
    "reconstruct": _Reduce(_reconstruct, (np.ndarray, (10**8,), np.dtype(np.uint8))),
    "reconstruct_subarray_dtype": _Reduce(_reconstruct, (np.ndarray, (1,),
                                                         np.dtype((np.uint8, (10**4, 10**4))))),
    "ndarray": _Reduce(np.ndarray, ((10**8,), np.dtype(np.uint8))),
    "frombuffer": _Reduce(_frombuffer, (b"abcd", np.dtype(np.uint8), (10**8,), "C")),
}


@pytest.mark.parametrize("how", sorted(OVERSIZED))
def test_unpickler_refuses_arrays_larger_than_the_file(tmp_path, how):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": OVERSIZED[how], b"labels": [0]}, protocol=2))
    assert path.stat().st_size < 1000
    with pytest.raises(DatasetError, match=r"data_batch_1: corrupt or truncated pickle .*would "
                                           r"need 100000000 bytes, more than the \d+-byte file"):
        load_CIFAR_batch(path)


def test_unpickler_limit_for_in_memory_buffers_and_explicit_limits():
    blob = pickle.dumps(np.arange(100, dtype=np.uint8), protocol=5)  # via _frombuffer
    np.testing.assert_array_equal(safe_load(io.BytesIO(blob)), np.arange(100))
    with pytest.raises(pickle.UnpicklingError, match="would need 100 bytes, more than the 50"):
        safe_load(io.BytesIO(blob), max_bytes=50)


@pytest.mark.parametrize("protocol", [2, 5])
def test_unpickler_refuses_object_arrays(tmp_path, protocol):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": np.array([1, 2], dtype=object), b"labels": [0]},
                                  protocol=protocol))
    with pytest.raises(DatasetError, match="unsafe pickle: refusing to build an object array"):
        load_CIFAR_batch(path)
    with pytest.raises(UnsafePickleError):
        safe_load(io.BytesIO(path.read_bytes()))


def test_unpickler_still_loads_real_arrays_of_every_protocol(tmp_path):
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for protocol in (2, 4, 5):
        path = tmp_path / f"batch_{protocol}"
        path.write_bytes(pickle.dumps({"data": data, "labels": [1, 2]}, protocol=protocol))
        X, y = load_CIFAR_batch(path)
        assert X.shape == (2, 32, 32, 3) and y.tolist() == [1, 2]


# ------------------------------------------------------------------------------ MNIST / IDX
def _idx(path: Path, dims: tuple[int, ...], payload: bytes = b"", compress: bool = False) -> Path:
    data = struct.pack(f">HBB{len(dims)}I", 0, 0x08, len(dims), *dims) + payload
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_idx_header_whose_size_overflows_int64(tmp_path, compress):
    # 2**16 * 2**16 * (2**32 - 1) wraps to a negative int64: it used to reach bytearray(-n)
    dims = (2**16, 2**16, 2**32 - 1)
    path = _idx(tmp_path / "train-images-idx3-ubyte", dims, bytes(64), compress)
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.*: truncated.*"
                                           r"18446744069414584320 bytes"):
        read_idx(path)


def _mnist_files(root: Path, labels: np.ndarray) -> Path:
    n = labels.shape[0]
    _idx(root / "train-images-idx3-ubyte", (n, 2, 2), bytes(4 * n))
    _idx(root / "train-labels-idx1-ubyte", (n,), labels.astype(np.uint8).tobytes())
    return root


def test_mnist_labels_outside_the_classes(tmp_path):
    root = _mnist_files(tmp_path, np.array([0, 9, 10]))
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte: labels must be class "
                                           r"indices 0\.\.9, found 10"):
        load_mnist(root)
    root = _mnist_files(tmp_path, np.array([0, 9, 3]))
    _, y = load_mnist(root)
    assert y.tolist() == [0, 9, 3]


# ------------------------------------------------------------------------------ import graph
def _imported_modules(module: str) -> set[str]:
    import importlib.util

    source = Path(importlib.util.find_spec(module).origin).read_text()
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_registry_does_not_import_the_cifar_loader():
    """The class names live in fastnn.data._classes, so the import graph has no cycle."""
    assert "fastnn.data.cifar" not in _imported_modules("fastnn.data.registry")
    assert "fastnn.data.registry" in _imported_modules("fastnn.data.cifar")


@pytest.mark.parametrize("first", ["fastnn.data.registry", "fastnn.data.cifar"])
def test_data_modules_import_in_either_order(first):
    second = ({"fastnn.data.registry", "fastnn.data.cifar"} - {first}).pop()
    code = (f"import {first}, {second}; "
            f"print({second}.__name__, len(fastnn.data.registry.DATASETS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[0] == second


# ------------------------------------------------------------------------- path arguments
@pytest.mark.parametrize("bad", [None, 3, ["a"]])
def test_path_arguments_that_are_not_paths_name_the_argument(bad):
    from fastnn.data import get_CIFAR10_data, load_CIFAR10, load_dataset

    with pytest.raises(TypeError, match="^root must be a str or os.PathLike"):
        load_mnist(bad)
    with pytest.raises(TypeError, match="^path must be a str or os.PathLike"):
        read_idx(bad)
    with pytest.raises(TypeError, match="^root must be a str or os.PathLike"):
        load_CIFAR10(bad)
    with pytest.raises(TypeError, match="^filename must be a str or os.PathLike"):
        load_CIFAR_batch(bad)
    if bad is not None:  # root=None means "look in the data directory"
        with pytest.raises(TypeError, match="^root must be a str or os.PathLike"):
            get_CIFAR10_data(root=bad)
        with pytest.raises(TypeError, match="^root must be a str or os.PathLike"):
            load_dataset("cifar10", root=bad)


@pytest.mark.parametrize("bad", [0, -1, 9, 10**12, 1.5, float("nan"), "3", True, [3], 1j])
def test_read_idx_checks_expected_ndim_before_opening_the_file(tmp_path, bad):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(struct.pack(">HBBI", 0, 8, 1, 2) + bytes([1, 2]))
    with pytest.raises((TypeError, ValueError), match="^expected_ndim must be"):
        read_idx(path, expected_ndim=bad)
    with pytest.raises((TypeError, ValueError), match="^expected_ndim must be"):
        read_idx(tmp_path / "missing", expected_ndim=bad)
    np.testing.assert_array_equal(read_idx(str(path), expected_ndim=np.int64(1)), [1, 2])
