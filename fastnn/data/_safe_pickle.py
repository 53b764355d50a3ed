"""A restricted unpickler for the official CIFAR-10 "python version" batches.

``pickle.load`` can call any importable function named in the file, so a doctored batch could run
arbitrary code. The CIFAR batches only ever need NumPy to rebuild arrays, so this unpickler
resolves exactly those globals and refuses everything else before anything is called.

Within those globals two more things are refused: object arrays (their items would be arbitrary
Python objects; the batches never hold any) and arrays bigger than the file, which a doctored
header could otherwise make NumPy allocate before the (short) data is even read.
"""

from __future__ import annotations

import codecs
import io
import math
import operator
import os
import pickle
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np


def _reconstruct():
    # Imported lazily: the private module moved from numpy.core to numpy._core in NumPy 2.
    try:
        from numpy._core.multiarray import _reconstruct as fn
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


def _scalar():
    try:
        from numpy._core.multiarray import scalar as fn
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import scalar as fn
    return fn


def _frombuffer():
    try:
        from numpy._core.numeric import _frombuffer as fn
    except ImportError:  # NumPy 1.x
        from numpy.core.numeric import _frombuffer as fn
    return fn


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (it could run code); nothing was run."""


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that protocol-2 pickles written by Python 3 use for bytes.

    Only the latin-1 round trip that pickle itself emits is allowed; any other codec is refused.
    """
    if codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(
            f"refusing _codecs.encode with encoding {encoding!r} (only latin-1 is used by pickle)"
        )
    return codecs.encode(text, "latin-1", errors)


# (module, name) -> zero-argument factory returning the object to hand to the unpickler.
# Both the NumPy 1.x ("numpy.core") and 2.x ("numpy._core") spellings appear in real files:
# the official batches were written by NumPy 1 under Python 2; files re-saved today use NumPy 2.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): lambda: _latin1_encode,
}


def _nbytes(shape: Any, dtype: Any) -> int | None:
    """Bytes an array of ``shape`` and ``dtype`` needs, or None when NumPy would refuse them."""
    try:
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        count = math.prod(operator.index(d) for d in dims)
        itemsize = np.dtype(dtype).itemsize
    except (TypeError, ValueError):
        return None  # NumPy raises its own error for these
    return count * itemsize


class _Guard:
    """The allowed globals that create arrays, with sizes checked against the file first."""

    def __init__(self, max_bytes: float) -> None:
        self.max_bytes = max_bytes
        self.ndarray_global = self.ndarray  # one bound method, so reconstruct can recognise it

    def check(self, shape: Any, dtype: Any) -> None:
        nbytes = _nbytes(shape, dtype)
        if nbytes is not None and nbytes > self.max_bytes:
            raise pickle.UnpicklingError(
                f"an array of shape {shape} and dtype {dtype!r} would need {nbytes} bytes, more "
                f"than the {self.max_bytes}-byte file can hold"
            )

    def ndarray(self, shape: Any, dtype: Any = float, *args: Any, **kwargs: Any) -> np.ndarray:
        self.check(shape, dtype)
        return np.ndarray(shape, dtype, *args, **kwargs)

    def reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype is self.ndarray_global:  # the pickle's 'numpy.ndarray' global, resolved to this guard
            subtype = np.ndarray
        self.check(shape, dtype)
        return _reconstruct()(subtype, shape, dtype)

    def frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
        self.check(shape, dtype)
        return _frombuffer()(buffer, dtype, shape, order)


def _dtype(*args: Any, **kwargs: Any) -> np.dtype:
    dtype = np.dtype(*args, **kwargs)
    if dtype.hasobject:
        raise UnsafePickleError(
            f"refusing to build an object array (dtype {dtype}): its items would be arbitrary "
            "Python objects, and a data file only holds numbers"
        )
    return dtype


_GUARDED: dict[tuple[str, str], Callable[[_Guard], Any]] = {
    ("numpy", "ndarray"): lambda guard: guard.ndarray_global,
    ("numpy.core.multiarray", "_reconstruct"): lambda guard: guard.reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): lambda guard: guard.reconstruct,
    ("numpy.core.numeric", "_frombuffer"): lambda guard: guard.frombuffer,
    ("numpy._core.numeric", "_frombuffer"): lambda guard: guard.frombuffer,
    ("numpy", "dtype"): lambda guard: _dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals NumPy needs to rebuild numeric arrays.

    Parameters
    ----------
    file : binary file
        The pickle.
    encoding : str
        How Python 2 ``str`` objects are decoded (see :func:`safe_load`).
    max_bytes : int, optional
        No array may need more bytes than this (the file's size); unlimited when None.
    """

    def __init__(self, file: BinaryIO, *, encoding: str = "bytes",
                 max_bytes: int | None = None) -> None:
        super().__init__(file, encoding=encoding)
        self._guard = _Guard(max_bytes if max_bytes is not None else math.inf)

    def find_class(self, module: str, name: str) -> Any:
        """The object for global ``module.name``, if it is on the allow-list.

        Parameters
        ----------
        module, name : str
            The global the pickle names.

        Returns
        -------
        object
            The NumPy function or type (size-checked where it creates arrays).

        Raises
        ------
        UnsafePickleError
            The global is not on the allow-list.
        """
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise UnsafePickleError(
                f"refusing to load global '{module}.{name}': only NumPy array reconstruction "
                "is allowed in a data file (a pickle naming other globals may execute code)"
            )
        guarded = _GUARDED.get((module, name))
        return guarded(self._guard) if guarded is not None else factory()


def _stream_size(fileobj: BinaryIO) -> int | None:
    """Size in bytes of a real file or an in-memory buffer; None when it cannot be told."""
    try:
        return os.fstat(fileobj.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass
    getbuffer = getattr(fileobj, "getbuffer", None)
    return len(getbuffer()) if getbuffer is not None else None


def safe_load(fileobj: BinaryIO, *, encoding: str = "bytes", max_bytes: int | None = None) -> Any:
    """Unpickle ``fileobj`` with :class:`RestrictedUnpickler`.

    Parameters
    ----------
    fileobj : binary file
        The pickle, opened for reading.
    encoding : str
        ``"bytes"`` keeps Python 2 ``str`` objects (the keys of the official CIFAR-10 batches)
        as ``bytes``, as the CIFAR-10 web page's own loader does; ``"latin1"`` decodes them.
    max_bytes : int, optional
        Largest array allowed, in bytes; by default the size of ``fileobj`` (a real file or a
        ``BytesIO``), unlimited when that cannot be told.

    Returns
    -------
    object
        The unpickled object.

    Raises
    ------
    UnsafePickleError
        The pickle names a global outside the allow-list or builds an object array.
    pickle.UnpicklingError
        An array would be larger than ``max_bytes``, or the pickle is corrupt.
    """
    if max_bytes is None:
        max_bytes = _stream_size(fileobj)
    return RestrictedUnpickler(fileobj, encoding=encoding, max_bytes=max_bytes).load()
