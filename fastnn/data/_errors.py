"""The one exception type of :mod:`fastnn.data`."""

from __future__ import annotations


class DatasetError(FileNotFoundError, ValueError):
    """A data file is missing, truncated, corrupt, unsafe or fails its checksum.

    It subclasses both :class:`FileNotFoundError` (so ``except OSError`` around file access keeps
    working) and :class:`ValueError` (so ``except ValueError`` around bad input keeps working).
    The message always starts with the file (or folder) concerned, then the problem.
    """
