"""The ``.npz`` container of every fastnn file (private; the public face is :mod:`fastnn.checkpoint`).

A NumPy ``.npz`` of plain arrays plus a JSON header in the member ``__fastnn__`` (a 0-d unicode
array). Written atomically: a temporary file in the target directory, flushed and fsync'ed, then
``os.replace``d over the target, so a crash leaves the previous file intact. Read with
``allow_pickle=False``, every member's declared shape and dtype checked before its data are read,
so a damaged or hostile file cannot make fastnn allocate more than the file holds.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.lib import format as npformat

from fastnn._validation import check_path

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
HEADER_KEY = "__fastnn__"
_MAX_HEADER_BYTES = 1 << 26
_V1_STATE_PREFIXES = {"bn_params/": "state/", "best_bn_params/": "best_state/"}


class CheckpointError(ValueError):
    """A file is not a readable fastnn model/checkpoint (corrupted, truncated, or foreign)."""


def _same_kind(a: np.dtype, b: np.dtype) -> bool:
    return a.kind == b.kind or (a.kind in "iu" and b.kind in "iu")


def check_arrays_like(arrays: Mapping[str, Any], reference: Mapping[str, np.ndarray],
                      what: str) -> None:
    """Check that ``arrays`` have exactly the names, shapes and dtype kinds of ``reference``.

    Parameters
    ----------
    arrays : mapping of str -> ndarray (or anything with ``shape`` and ``dtype``)
        What a file holds.
    reference : mapping of str -> ndarray
        What the model has.
    what : str
        The kind of entry, for messages ("parameter", "state").

    Raises
    ------
    ValueError, TypeError
        Naming the first entry that differs.
    """
    if set(arrays) != set(reference):
        raise ValueError(f"stored {what} entries {sorted(arrays)} do not match the model's "
                         f"{sorted(reference)}")
    for name, ref in reference.items():
        got, ref = arrays[name], ref if hasattr(ref, "dtype") else np.asarray(ref)
        if tuple(got.shape) != tuple(ref.shape):
            raise ValueError(f"{what} {name!r} has shape {tuple(got.shape)}, the model expects "
                             f"{tuple(ref.shape)}")
        if not _same_kind(np.dtype(got.dtype), np.dtype(ref.dtype)):
            raise TypeError(f"{what} {name!r} has dtype {got.dtype}, the model's is {ref.dtype}")


# --------------------------------------------------------------------------- writing


def _npz_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def atomic_savez(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                 compress: bool = False) -> Path:
    """Write ``arrays`` to ``path`` (``.npz`` appended when missing) atomically.

    The data go to a temporary file in the same directory, which is flushed, fsync'ed and then
    renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows). If anything fails,
    the temporary file is removed and ``path`` keeps its previous content.

    Parameters
    ----------
    path : str or PathLike
        Target file.
    arrays : mapping of str -> ndarray
        Members to write (no object arrays).
    compress : bool
        Use ``np.savez_compressed``.

    Returns
    -------
    Path
        The path written.
    """
    path = _npz_path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in arrays.items():
        if isinstance(value, np.ndarray) and value.dtype == object:
            raise TypeError(f"array {key!r} has dtype object, which cannot be saved without pickle")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            (np.savez_compressed if compress else np.savez)(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        os.chmod(tmp_name, 0o666 & ~current_umask())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    return path


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_default(value: Any) -> Any:
    """``json.dumps``' ``default``: NumPy scalars and dtypes, tuples and sets as JSON values.

    Parameters
    ----------
    value : object
        What ``json`` cannot encode by itself.

    Returns
    -------
    object
        A JSON-encodable equivalent.
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON-serialisable")


def header_array(header: Mapping[str, Any]) -> np.ndarray:
    """The JSON header as a 0-d unicode array (loadable with ``allow_pickle=False``).

    Parameters
    ----------
    header : mapping
        JSON-serialisable values (NumPy scalars and dtypes are converted).

    Returns
    -------
    ndarray
    """
    return np.array(json.dumps(header, default=json_default, sort_keys=True))



# --------------------------------------------------------------------------- reading


class Member(NamedTuple):
    """A ``.npz`` member as its ``.npy`` header declares it (nothing of its data read)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


_READ_ERRORS = (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, RuntimeError,
                zlib.error, NotImplementedError)


class NpzFile:
    """A fastnn ``.npz`` opened with its header parsed and its members checked, data unread.

    Parameters
    ----------
    path : str or PathLike
        The file.

    Attributes
    ----------
    header : dict
        The JSON header (a known version).
    members : dict of str -> Member
        Every other member as its ``.npy`` header declares it.
    label : str
        The path as shown in error messages.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = check_path(path, "path")
        self.label = repr(os.fspath(self.path))
        if not self.path.is_file():
            raise FileNotFoundError(f"checkpoint file {os.fspath(self.path)!r} does not exist")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except _READ_ERRORS as exc:
            raise self._damaged(exc) from None
        try:
            self.members = self._scan()
            self.header = self._read_header()
        except BaseException:
            self._zip.close()
            raise

    def _damaged(self, exc: BaseException) -> CheckpointError:
        return CheckpointError(f"{self.label} is not a readable fastnn .npz file (corrupted or "
                               f"truncated?): {type(exc).__name__}: {exc}")

    def _scan(self) -> dict[str, Member]:
        members: dict[str, Member] = {}
        try:
            for info in self._zip.infolist():
                if not info.filename.endswith(".npy") or info.filename[:-4] in members:
                    raise ValueError(f"member {info.filename!r} is not a distinct .npy array")
                with self._zip.open(info) as handle:
                    version = npformat.read_magic(handle)
                    if version == (1, 0):
                        shape, _, dtype = npformat.read_array_header_1_0(handle)
                    elif version == (2, 0):
                        shape, _, dtype = npformat.read_array_header_2_0(handle)
                    else:
                        raise ValueError(f"member {info.filename!r} has .npy version {version}")
                    offset = handle.tell()
                key = info.filename[:-4]
                if dtype.hasobject:
                    raise CheckpointError(f"{self.label}: array {key!r} holds Python objects "
                                          f"(pickle), which fastnn never loads")
                nbytes = math.prod(shape) * dtype.itemsize
                if offset + nbytes > info.file_size:  # would allocate more than the file holds
                    raise ValueError(f"array {key!r} declares shape {shape} ({nbytes} bytes) "
                                     f"but its member holds {info.file_size - offset} bytes")
                members[key] = Member(info.filename, tuple(shape), dtype)
        except CheckpointError:
            raise
        except _READ_ERRORS as exc:
            raise self._damaged(exc) from None
        return members

    def _read_header(self) -> dict[str, Any]:
        member = self.members.pop(HEADER_KEY, None)
        if member is None:
            raise CheckpointError(f"{self.label} is not a fastnn file (no {HEADER_KEY} header)")
        if member.dtype.kind != "U" or member.shape != () or (
                member.dtype.itemsize > _MAX_HEADER_BYTES):
            raise CheckpointError(f"{self.label} has a damaged header: expected a 0-d unicode "
                                  f"array, got {member.dtype} of shape {member.shape}")
        try:
            header = json.loads(str(self._read(member)))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{self.label} has a damaged header: {exc}") from None
        if not isinstance(header, dict):
            raise CheckpointError(f"{self.label} has a damaged header: expected a JSON object, "
                                  f"got {type(header).__name__}")
        version = header.get("version")
        if type(version) is not int or version not in READABLE_VERSIONS:
            raise CheckpointError(f"{self.label} has an unknown format version {version!r} "
                                  f"(this fastnn reads {READABLE_VERSIONS}); newer or damaged?")
        if version == 1:
            self.members = self._v1_members()
            if isinstance(header.get("model"), dict):
                header["model"].pop("bn_params", None)
        return header

    def _v1_members(self) -> dict[str, Member]:
        """Version 1 kept batch-norm arrays as ``bn_params/<i>/<key>``: rename to the state."""
        renamed: dict[str, Member] = {}
        for key, member in self.members.items():
            for old, new in _V1_STATE_PREFIXES.items():
                if key.startswith(old):
                    index, _, name = key[len(old):].partition("/")
                    if not (index.isascii() and index.isdigit() and str(int(index)) == index
                            and name and "/" not in name):
                        raise CheckpointError(f"{self.label}: malformed batch-norm key {key!r} "
                                              f"(expected {old}<layer index>/<name>)")
                    key = f"{new}{name}{int(index) + 1}"
                    break
            if key in renamed:
                raise CheckpointError(f"{self.label}: two arrays would both become {key!r}")
            renamed[key] = member
        return renamed

    def _read(self, member: Member) -> np.ndarray:
        try:
            with self._zip.open(member.name) as handle:
                return npformat.read_array(handle, allow_pickle=False)
        except _READ_ERRORS as exc:
            raise self._damaged(exc) from None

    def group(self, prefix: str, plain: bool = True) -> dict[str, Member]:
        """Members under ``prefix``, keyed by the rest of their name.

        Parameters
        ----------
        prefix : str
            For example ``"params/"``.
        plain : bool
            Require the rest to be a non-empty name without ``"/"`` (else a CheckpointError).

        Returns
        -------
        dict of str -> Member
        """
        found = {}
        for key, member in self.members.items():
            if key.startswith(prefix):
                name = key[len(prefix):]
                if not name or (plain and "/" in name):
                    raise CheckpointError(f"{self.label}: malformed array name {key!r} "
                                          f"(expected {prefix}<name>)")
                found[name] = member
        return found

    def read(self, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Read the data of some members.

        Parameters
        ----------
        keys : iterable of str, optional
            Member names (default: every member).

        Returns
        -------
        dict of str -> ndarray
        """
        keys = self.members if keys is None else keys
        return {key: self._read(self.members[key]) for key in keys}

    def close(self) -> None:
        """Close the underlying zip file."""
        self._zip.close()


def read_npz(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a fastnn ``.npz`` eagerly with ``allow_pickle=False``: ``(header, arrays)``.

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    header : dict
        The JSON header (a known format version).
    arrays : dict of str -> ndarray
        Every other member (version-1 batch-norm entries renamed to ``state/``).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    CheckpointError
        When it is not a complete fastnn file (truncated, corrupted, foreign, pickled data, an
        unknown version, or an array declaring more data than its member holds).
    """
    npz = NpzFile(path)
    try:
        return npz.header, npz.read()
    finally:
        npz.close()
