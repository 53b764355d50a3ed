"""``LanguageModelSolver``: the Solver for character language models (truncated BPTT).

The same training loop as :class:`fastnn.solver.Solver` (update rules, schedules, clipping,
checkpoints, resume, early stopping), through its hooks:

- the training text is cut into ``batch_size`` contiguous streams
  (:class:`fastnn.data.text.TextStream`) and iteration ``t`` of an epoch trains on window
  ``t``: one epoch is one pass over the text;
- the state the model ends a window in is the initial state of the next window of the same
  epoch (gradients stop at the boundary), and every epoch starts from zeros;
- each evaluation runs the model over the whole validation text, carrying the state across its
  windows too, and reports ``val_loss`` in nats per character; the best model is the one with
  the lowest ``val_loss``;
- checkpoints also hold the carried state, so a resumed run continues the stream exactly.

The model must have ``loss(X, y)`` over (N, T) id windows, ``window_loss(X, y, state,
compute_grads)`` and the ``initial_state``/``final_state`` attributes of
:class:`fastnn.classifiers.char_rnn.CharRNN`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from fastnn._solver import Solver
from fastnn._validation import check_int
from fastnn.data.text import TextStream

__all__ = ["LanguageModelSolver"]

_CARRY_KEYS = ("lm_carry_h", "lm_carry_c")


class LanguageModelSolver(Solver):
    """Train a character language model on consecutive windows of a text.

    Parameters
    ----------
    model : CharRNN
        The language model.
    data : dict
        ``train`` and ``val``: 1-D integer arrays of character ids (what
        :func:`fastnn.data.text.load_text_dataset` returns; a ``vocab`` key is ignored).
    seq_length : int, default 100
        Time steps per window (the truncation length of backpropagation through time).
    **kwargs
        The :class:`~fastnn.solver.Solver` keyword arguments; ``batch_size`` is the number of
        parallel streams, ``num_train_samples``/``num_val_samples``/``shuffle``/``augment``
        have no effect. ``grad_clip`` (a global norm, e.g. 5.0) is recommended.

    Attributes
    ----------
    train_stream, val_stream : TextStream
    history : list of dict
        As the Solver's, with ``val_loss`` (nats per character) instead of accuracies.
    """

    selection_metric = "val_loss"
    higher_is_better = False

    def __init__(self, model: Any, data: Mapping[str, Any], seq_length: int = 100,
                 **kwargs: Any) -> None:
        self.seq_length = check_int(seq_length, "seq_length", minimum=1)
        # the streams are cut at the batch size, which _check_data needs before Solver parses it
        self._stream_batch = check_int(kwargs.get("batch_size", 100), "batch_size", minimum=1)
        self._carry: tuple[np.ndarray, np.ndarray | None] | None = None
        super().__init__(model, data, **kwargs)

    # ------------------------------------------------------------------ hooks
    def _check_data(self, data: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a dict with 'train' and 'val' id arrays, got "
                            f"{type(data).__name__}")
        missing = [k for k in ("train", "val") if k not in data]
        if missing:
            raise ValueError(f"data is missing {', '.join(repr(k) for k in missing)} (1-D "
                             f"arrays of character ids, as load_text_dataset returns)")
        vocab = getattr(self.model, "vocab", None)
        if not isinstance(vocab, str) or not callable(getattr(self.model, "window_loss", None)):
            raise TypeError(f"model must be a character language model (a vocab str and "
                            f"window_loss, like CharRNN), got {type(self.model).__name__}")
        vocab_size = len(vocab)
        for key in ("train", "val"):
            ids = np.asarray(data[key])
            if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
                raise ValueError(f"data[{key!r}] must be a 1-D array of integer character ids, "
                                 f"got shape {ids.shape} dtype {ids.dtype}")
            bad = np.flatnonzero((ids < 0) | (ids >= vocab_size))
            if bad.size:
                raise ValueError(f"data[{key!r}][{int(bad[0])}] = {int(ids[bad[0]])} is not a "
                                 f"character id of the model's vocabulary of {vocab_size}")
        try:
            self.train_stream = TextStream(data["train"], self._stream_batch, self.seq_length)
        except ValueError as exc:
            raise ValueError(f"data['train']: {exc}") from None
        val = np.asarray(data["val"])
        # the validation text may be short: fewer streams, never a failure while it has a window
        val_batch = max(1, min(self._stream_batch, (len(val) - 1) // self.seq_length))
        try:
            self.val_stream = TextStream(val, val_batch, self.seq_length)
        except ValueError as exc:
            raise ValueError(f"data['val']: {exc}") from None
        return (self.train_stream.inputs, self.train_stream.targets,
                self.val_stream.inputs, self.val_stream.targets)

    def _check_labels_against_model(self) -> None:
        """Ids were checked against the model's vocabulary in :meth:`_check_data`."""

    def _iterations_per_epoch(self) -> int:
        return self.train_stream.num_windows

    def _batch(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        k = t % self.train_stream.num_windows
        self.model.initial_state = None if k == 0 else self._carry
        return self.train_stream.window(k)

    def _step(self, t: int | None = None, schedule: Any = None) -> bool:
        done = super()._step(t, schedule)
        if done:
            self._carry = self.model.final_state
        return done

    def _epoch_scores(self) -> dict[str, float]:
        return {"val_loss": self.validation_loss()}

    # ------------------------------------------------------------------ evaluation
    def validation_loss(self) -> float:
        """Mean loss per character (nats) over every window of the validation text, the state
        carried from window to window as in training."""
        state = None
        total = 0.0
        for x, y in self.val_stream:
            loss, _, state = self.model.window_loss(x, y, state, compute_grads=False)
            total += loss
        # regularisation is part of each window's loss; the mean keeps it once
        return total / self.val_stream.num_windows

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str | os.PathLike) -> str:
        """The Solver's checkpoint plus the carried state (as ``metadata`` arrays)."""
        added = []
        if self._carry is not None:
            for key, value in zip(_CARRY_KEYS, self._carry, strict=True):
                if value is not None:
                    self.metadata[key] = value
                    added.append(key)
        try:
            return super().save_checkpoint(path)
        finally:
            for key in added:
                self.metadata.pop(key, None)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint, including the carried state and the stream position."""
        super().load_checkpoint(path)
        h = self.metadata.pop(_CARRY_KEYS[0], None)
        c = self.metadata.pop(_CARRY_KEYS[1], None)
        if h is None:
            self._carry = None
            return
        n, hidden = self.train_stream.batch_size, self.model.hidden_dim
        for key, value in zip(_CARRY_KEYS, (h, c), strict=True):
            if value is not None and np.shape(value) != (n, hidden):
                raise ValueError(f"cannot resume {str(path)!r}: its carried state {key} has "
                                 f"shape {np.shape(value)}, expected {(n, hidden)}")
        dt = self.model.params["Wh"].dtype
        self._carry = (np.asarray(h, dtype=dt),
                       None if c is None else np.asarray(c, dtype=dt))
