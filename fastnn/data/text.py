"""Character-level text data: reading, vocabulary, encoding, splitting, and BPTT windows.

Everything a character language model (:class:`fastnn.classifiers.CharRNN`) needs::

    data = load_text_dataset()                    # <data dir>/text/fortunes.txt, last 10% held out
    data["vocab"]                                 # sorted distinct characters, a str
    stream = TextStream(data["train"], batch_size=64, seq_length=100)
    for x, y in stream:                           # (64, 100) int inputs and next-character targets
        ...

Truncated backpropagation through time needs windows that continue each other: the encoded
text is cut into ``batch_size`` contiguous streams (row ``r`` of every window comes from the
``r``-th slice of the text), so row ``r`` of window ``k + 1`` starts exactly where row ``r`` of
window ``k`` ended, and a model can carry its hidden state from one window to the next.

Any UTF-8 file works. The default corpus is ``<data dir>/text/fortunes.txt`` (the data
directory is ``$FASTNN_DATA`` or ``~/.fastnn/data``, :func:`fastnn.data.get_data_dir`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fastnn._validation import check_array, check_float, check_int, check_path
from fastnn.data._errors import DatasetError
from fastnn.data.registry import get_data_dir

__all__ = [
    "DEFAULT_TEXT",
    "TextStream",
    "build_vocabulary",
    "check_ids",
    "check_vocabulary",
    "decode_text",
    "default_text_path",
    "encode_text",
    "load_text_dataset",
    "read_text",
    "split_text",
]

#: The default corpus, relative to the data directory.
DEFAULT_TEXT = Path("text") / "fortunes.txt"


def default_text_path() -> Path:
    """``<data dir>/text/fortunes.txt`` (it may not exist; :func:`read_text` says so)."""
    return get_data_dir() / DEFAULT_TEXT


def read_text(path: str | os.PathLike) -> str:
    """Read a whole UTF-8 text file.

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    str
        Its contents (a leading byte-order mark is dropped).

    Raises
    ------
    TypeError
        ``path`` is not a path.
    DatasetError
        (a FileNotFoundError and ValueError) The file is missing, empty, or not valid UTF-8;
        the message starts with the path and gives the byte offset of the first invalid byte.
    """
    path = check_path(path, "path")
    if not path.is_file():
        raise DatasetError(f"{path}: no such text file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not valid UTF-8 (byte {exc.start} is "
                           f"{raw[exc.start:exc.start + 1]!r}: {exc.reason})") from None
    if not text:
        raise DatasetError(f"{path}: the text file is empty")
    return text


def build_vocabulary(text: str) -> str:
    """The distinct characters of ``text``, sorted by code point (stable across runs).

    Parameters
    ----------
    text : str
        Non-empty text.

    Returns
    -------
    str
        Character ``i`` of the result has id ``i``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError("text must not be empty")
    return "".join(sorted(set(text)))


def _code_points(text: str) -> np.ndarray:
    # UTF-32 holds one fixed-width code unit per character: a vectorised view of the text
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


def check_vocabulary(vocab: Any, name: str = "vocab") -> str:
    """``vocab`` as a str of distinct characters sorted by code point (what
    :func:`build_vocabulary` returns); a list of one-character strings is accepted."""
    if isinstance(vocab, (list, tuple)):
        if not all(isinstance(c, str) and len(c) == 1 for c in vocab):
            raise TypeError(f"{name} must be a str or a list of single characters")
        vocab = "".join(vocab)
    if not isinstance(vocab, str):
        raise TypeError(f"{name} must be a str of characters, got {type(vocab).__name__}")
    if not vocab:
        raise ValueError(f"{name} must hold at least one character, got ''")
    if "".join(sorted(set(vocab))) != vocab:
        raise ValueError(f"{name} must hold distinct characters sorted by code point (as "
                         f"build_vocabulary returns), got {vocab[:40]!r}")
    return vocab


def encode_text(text: str, vocab: str) -> np.ndarray:
    """Character ids of ``text`` in ``vocab``.

    Parameters
    ----------
    text : str
    vocab : str
        Sorted distinct characters (:func:`build_vocabulary`), e.g. a loaded model's vocabulary.

    Returns
    -------
    ndarray of int32, shape (len(text),)

    Raises
    ------
    ValueError
        A character of ``text`` is not in ``vocab``: the message names the character and its
        position in ``text``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    vocab = check_vocabulary(vocab)
    points = _code_points(text)
    table = _code_points(vocab)
    ids = np.searchsorted(table, points)
    ids = np.minimum(ids, len(table) - 1)
    missing = np.flatnonzero(table[ids] != points)
    if missing.size:
        pos = int(missing[0])
        raise ValueError(f"text has character {text[pos]!r} (U+{ord(text[pos]):04X}) at position "
                         f"{pos} that is not in the vocabulary of {len(vocab)} characters "
                         f"({missing.size} such positions in all)")
    return ids.astype(np.int32)


def check_ids(ids: Any, name: str = "ids") -> np.ndarray:
    """``ids`` as a 1-D integer array (lists accepted; whole-number floats read as ids)."""
    arr = check_array(ids, name, ndim=1, dtype="int", allow_empty=True)
    if arr.dtype == np.bool_:
        raise TypeError(f"{name} must hold integer character ids, got a boolean array")
    return arr


def decode_text(ids: Any, vocab: str) -> str:
    """The text of character ids (inverse of :func:`encode_text`).

    Parameters
    ----------
    ids : array_like of int, 1-D
    vocab : str

    Returns
    -------
    str
    """
    vocab = check_vocabulary(vocab)
    arr = check_ids(ids)
    bad = np.flatnonzero((arr < 0) | (arr >= len(vocab)))
    if bad.size:
        raise ValueError(f"ids[{int(bad[0])}] = {int(arr[bad[0]])} is outside the vocabulary "
                         f"[0, {len(vocab)})")
    return "".join(vocab[i] for i in arr.tolist())


def split_text(ids: Any, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Split by position: the last ``val_fraction`` of the sequence is held out.

    Parameters
    ----------
    ids : array_like, 1-D
        Encoded text (or any sequence).
    val_fraction : float in [0, 1)
        Fraction held out for validation (rounded down to whole characters).

    Returns
    -------
    train, val : ndarray
        Views of ``ids`` (no shuffling: neighbouring characters stay together, so validation
        text is text the model has never seen).
    """
    arr = check_array(ids, "ids", ndim=1, dtype=None, allow_empty=True)
    val_fraction = check_float(val_fraction, "val_fraction", minimum=0.0, maximum=1.0,
                               max_inclusive=False)
    n_val = int(len(arr) * val_fraction)
    return arr[:len(arr) - n_val], arr[len(arr) - n_val:]


def load_text_dataset(path: str | os.PathLike | None = None, val_fraction: float = 0.1,
                      vocab: str | None = None) -> dict[str, Any]:
    """Read, encode and split a text corpus for a character language model.

    Parameters
    ----------
    path : str or PathLike, optional
        A UTF-8 file; default ``<data dir>/text/fortunes.txt``.
    val_fraction : float in [0, 1)
        Last fraction of the text held out (default 0.1).
    vocab : str, optional
        Use this vocabulary (e.g. a loaded model's); default: the text's own characters.

    Returns
    -------
    dict
        ``vocab`` (str), ``train`` and ``val`` (int32 arrays of ids), ``path`` (str).

    Raises
    ------
    DatasetError
        Missing, empty or non-UTF-8 file.
    ValueError
        With ``vocab``: a character of the text is missing from it (named, with its position).
    """
    path = default_text_path() if path is None else check_path(path, "path")
    text = read_text(path)
    vocab = build_vocabulary(text) if vocab is None else check_vocabulary(vocab)
    train, val = split_text(encode_text(text, vocab), val_fraction)
    return {"vocab": vocab, "train": train, "val": val, "path": str(path)}


class TextStream:
    """Consecutive ``(batch_size, seq_length)`` windows of a long sequence, for truncated BPTT.

    The first ``batch_size * L`` + 1 ids (``L = (len(ids) - 1) // batch_size``) are cut into
    ``batch_size`` contiguous streams of length ``L``: row ``r`` reads ``ids[r * L:(r + 1) * L]``
    and its targets are the next characters, ``ids[r * L + 1:(r + 1) * L + 1]``. Window ``k``
    holds columns ``k * seq_length`` to ``(k + 1) * seq_length`` of the streams, so row ``r`` of
    window ``k + 1`` continues row ``r`` of window ``k``; the last ``L % seq_length`` columns
    (fewer than a window) are left out, so every window has the same shape.

    Parameters
    ----------
    ids : array_like of int, 1-D
        The encoded text.
    batch_size : int >= 1
    seq_length : int >= 1

    Attributes
    ----------
    inputs, targets : ndarray, shape (batch_size, L)
        The streams.
    num_windows : int
        Windows per pass (also ``len(stream)``).
    """

    def __init__(self, ids: Any, batch_size: int, seq_length: int) -> None:
        arr = check_ids(ids)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.seq_length = check_int(seq_length, "seq_length", minimum=1)
        length = (len(arr) - 1) // self.batch_size if len(arr) else 0
        self.num_windows = length // self.seq_length
        if self.num_windows < 1:
            raise ValueError(
                f"ids: a text of {len(arr)} characters is too short for windows of batch_size="
                f"{self.batch_size} x seq_length={self.seq_length} (needs at least "
                f"{self.batch_size * self.seq_length + 1} characters)")
        used = self.batch_size * length
        self.inputs = arr[:used].reshape(self.batch_size, length)
        self.targets = arr[1:used + 1].reshape(self.batch_size, length)

    def __len__(self) -> int:
        return self.num_windows

    def window(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Window ``k`` (taken modulo :attr:`num_windows`): inputs and targets, each
        (batch_size, seq_length), views of the streams."""
        k = check_int(k, "k") % self.num_windows
        cols = slice(k * self.seq_length, (k + 1) * self.seq_length)
        return self.inputs[:, cols], self.targets[:, cols]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for k in range(self.num_windows):
            yield self.window(k)
