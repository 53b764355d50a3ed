"""Path arguments of the data loaders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def as_path(value: Any, name: str) -> Path:
    """``value`` as a :class:`~pathlib.Path`; anything but ``str``/``os.PathLike`` is a TypeError
    naming the argument ``name`` (bytes paths are accepted too, as :mod:`os` does)."""
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    if isinstance(value, bytes):
        return Path(os.fsdecode(value))
    raise TypeError(f"{name} must be a str or os.PathLike, got {type(value).__name__} {value!r:.80}")
