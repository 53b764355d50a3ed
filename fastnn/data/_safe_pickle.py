"""A restricted unpickler for the official CIFAR-10 "python version" batches.

``pickle.load`` can call any importable function named in the file, so a doctored batch could run
arbitrary code. The CIFAR batches only ever need NumPy to rebuild arrays, so this unpickler
resolves exactly those globals and refuses everything else before anything is called.
"""

from __future__ import annotations

import codecs
import pickle
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


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals NumPy needs to rebuild arrays."""

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise UnsafePickleError(
                f"refusing to load global '{module}.{name}': only NumPy array reconstruction "
                "is allowed in a data file (a pickle naming other globals may execute code)"
            )
        return factory()


def safe_load(fileobj: BinaryIO, *, encoding: str = "bytes") -> Any:
    """Unpickle ``fileobj`` with :class:`RestrictedUnpickler`.

    ``encoding="bytes"`` keeps Python 2 ``str`` objects (the keys of the official CIFAR-10
    batches) as ``bytes``, as the CIFAR-10 web page's own loader does; ``"latin1"`` decodes them.
    """
    return RestrictedUnpickler(fileobj, encoding=encoding).load()
