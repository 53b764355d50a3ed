"""What the recurrent models share: the cell dispatch, CS231n's initialisation, input checks.

The models themselves live one per module: :mod:`fastnn.classifiers.captioning_rnn`
(``CaptioningRNN``), :mod:`fastnn.classifiers.sequence` (``SequenceClassifier``) and
:mod:`fastnn.classifiers.char_rnn` (``CharRNN``). Each is a plain model (``params`` dict,
``loss``) built on the layer functions of :mod:`fastnn.layers` (``rnn_*``/``lstm_*``, word
embedding, temporal affine and softmax), so every one of them runs on the compiled LSTM cell.

A cell of type ``"rnn"`` has ``Wx`` (D, H), ``Wh`` (H, H), ``b`` (H,); an ``"lstm"`` cell has
four times the columns, gates in the order i, f, o, g (CS231n's).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastnn._validation import check_array, check_choice, memory_limit_bytes
from fastnn.layers.recurrent import (
    lstm_backward,
    lstm_forward,
    lstm_last_state,
    lstm_step_forward,
    rnn_backward,
    rnn_forward,
    rnn_step_forward,
)

__all__ = [
    "CELL_TYPES",
    "cell_shapes",
    "check_cell_type",
    "check_features",
    "check_memory",
    "check_token_ids",
    "final_state",
    "gate_count",
    "init_cell",
    "recurrent_backward",
    "recurrent_forward",
    "recurrent_step",
    "sample_from_scores",
]

CELL_TYPES = ("rnn", "lstm")


def check_cell_type(cell_type: Any) -> str:
    """``cell_type`` must be ``"rnn"`` or ``"lstm"``."""
    return check_choice(cell_type, "cell_type", CELL_TYPES)


def gate_count(cell_type: str) -> int:
    """Columns of ``Wx``/``Wh``/``b`` per hidden unit: 4 for an LSTM (i, f, o, g), 1 for an RNN."""
    return 4 if cell_type == "lstm" else 1


def check_memory(shapes: dict[str, tuple[int, ...]], what: str) -> dict[str, tuple[int, ...]]:
    """Refuse, before anything is allocated, parameters that cannot fit in memory at 8 bytes
    each (initial weights are drawn in float64); ``what`` names the sizes in the message."""
    count = sum(math.prod(shape) for shape in shapes.values())
    limit = memory_limit_bytes()
    if 8 * count > limit:
        raise ValueError(f"{what} give {count:.3g} parameters ({8 * count / 2**30:.3g} GiB at 8 "
                         f"bytes each), more than this machine's memory ({limit / 2**30:.3g} "
                         f"GiB); use smaller sizes")
    return shapes


def cell_shapes(input_dim: int, hidden_dim: int, cell_type: str) -> dict[str, tuple[int, ...]]:
    """Shapes of ``Wx``, ``Wh``, ``b`` of one cell."""
    g = gate_count(cell_type) * hidden_dim
    return {"Wx": (input_dim, g), "Wh": (hidden_dim, g), "b": (g,)}


def init_cell(input_dim: int, hidden_dim: int, cell_type: str) -> dict[str, np.ndarray]:
    """CS231n's initialisation of one cell (float64, from NumPy's global random state):
    ``Wx = randn / sqrt(input_dim)``, ``Wh = randn / sqrt(hidden_dim)``, ``b = 0``."""
    g = gate_count(cell_type) * hidden_dim
    return {
        "Wx": np.random.randn(input_dim, g) / np.sqrt(input_dim),
        "Wh": np.random.randn(hidden_dim, g) / np.sqrt(hidden_dim),
        "b": np.zeros(g),
    }


def check_token_ids(ids: Any, name: str, vocab_size: int, *, min_length: int = 1) -> np.ndarray:
    """``ids`` as an int (N, T) array of ids in ``[0, vocab_size)`` with ``N >= 1`` and
    ``T >= min_length``; errors name ``name``, the offending id and its position."""
    arr = check_array(ids, name, ndim=2, dtype="int", allow_empty=True)
    if arr.dtype == np.bool_:  # would index as a mask, not as ids
        raise TypeError(f"{name} must hold integer token ids, got a boolean array")
    if arr.shape[0] < 1 or arr.shape[1] < min_length:
        raise ValueError(f"{name} must have shape (N, T) with N >= 1 and T >= {min_length}, got "
                         f"shape {arr.shape}")
    bad = (arr < 0) | (arr >= vocab_size)
    if bad.any():
        n, t = np.argwhere(bad)[0]
        raise ValueError(f"{name}[{n}, {t}] = {int(arr[n, t])} is not a token id of the "
                         f"vocabulary of {vocab_size} (valid ids are 0..{vocab_size - 1})")
    return arr


def check_features(x: Any, name: str, dim: int, dtype: Any, ndim: int = 2) -> np.ndarray:
    """A finite float array (N, ..., dim) with N >= 1, cast to the model's ``dtype``."""
    arr = check_array(x, name, ndim=ndim)
    if arr.shape[0] < 1 or arr.shape[-1] != dim:
        raise ValueError(f"{name} must have shape (N, {'..., ' if ndim > 2 else ''}{dim}) with "
                         f"N >= 1, got shape {arr.shape}")
    return arr.astype(dtype, copy=False)


def recurrent_forward(x: np.ndarray, h0: np.ndarray, params: dict[str, np.ndarray],
                      cell_type: str, c0: np.ndarray | None = None
                      ) -> tuple[np.ndarray, Any]:
    """The whole sequence through the cell: ``h`` (N, T, H) and the cache.

    ``c0`` (an LSTM's initial cell state, zeros when None) continues a previous window.
    """
    if cell_type == "lstm":
        return lstm_forward(x, h0, params["Wx"], params["Wh"], params["b"], c0=c0)
    return rnn_forward(x, h0, params["Wx"], params["Wh"], params["b"])


def recurrent_backward(dh: np.ndarray, cache: Any, cell_type: str) -> tuple[np.ndarray, ...]:
    """``dx, dh0, dWx, dWh, db`` of :func:`recurrent_forward`."""
    if cell_type == "lstm":
        return lstm_backward(dh, cache)
    return rnn_backward(dh, cache)


def final_state(h: np.ndarray, cache: Any, cell_type: str
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(h_T, c_T)`` after :func:`recurrent_forward` (``c_T`` is None for an RNN), copied so
    a caller may keep them across windows."""
    if cell_type == "lstm":
        h_last, c_last = lstm_last_state(cache)
        return np.array(h_last, copy=True), np.array(c_last, copy=True)
    return h[:, -1, :].copy(), None


def recurrent_step(x: np.ndarray, h: np.ndarray, c: np.ndarray | None,
                   params: dict[str, np.ndarray], cell_type: str
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """One time step (sampling): the next ``(h, c)``; ``c`` is None for an RNN."""
    if cell_type == "lstm":
        h, c, _ = lstm_step_forward(x, h, c, params["Wx"], params["Wh"], params["b"])
        return h, c
    h, _ = rnn_step_forward(x, h, params["Wx"], params["Wh"], params["b"])
    return h, None


def sample_from_scores(scores: np.ndarray, temperature: float | None,
                       rng: np.random.Generator) -> np.ndarray:
    """Next token per row: the argmax when ``temperature`` is None, else a draw from
    ``softmax(scores / temperature)``."""
    if temperature is None:
        return np.argmax(scores, axis=1)
    z = scores.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    # inverse-CDF draw, one uniform per row (vectorised over the batch)
    u = rng.random((p.shape[0], 1))
    idx = (np.cumsum(p, axis=1) < u).sum(axis=1)
    return np.minimum(idx, p.shape[1] - 1)
