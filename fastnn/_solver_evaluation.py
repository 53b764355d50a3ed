"""The Solver's evaluation side: accuracy checks, per-epoch scores and best-model selection.

Kept apart from :mod:`fastnn.solver` (the training loop) so each module does one job; the
:class:`EvaluationMixin` methods read the Solver's ``model``, ``X_train``/``y_train``,
``X_val``/``y_val``, ``num_train_samples``, ``num_val_samples``, ``_rng`` and, in ``_evaluate``
(the epoch-end book-keeping), the training state it commits.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from fastnn._interrupt import deferred_interrupt
from fastnn._validation import check_array, check_int, check_labels
from fastnn.metrics import accuracy
from fastnn.serialization import get_model_state

__all__ = ["EVAL_BATCH", "EvaluationMixin"]

# The Solver's own accuracy checks score this many examples per forward pass: predictions do
# not depend on it (test mode is per example), and larger blocks mean fewer Python round trips.
EVAL_BATCH = 500


class EvaluationMixin:
    """``check_accuracy`` and the overridable evaluation hooks of :class:`fastnn.solver.Solver`.

    Class attributes a subclass may override:

    - ``selection_metric`` (default ``"val_acc"``): the key of :meth:`_epoch_scores` that picks
      the best model and drives early stopping;
    - ``higher_is_better`` (default True): its direction (False for a loss such as
      ``"val_loss"``).
    """

    selection_metric: str = "val_acc"
    higher_is_better: bool = True

    def check_accuracy(self, X: np.ndarray, y: np.ndarray, num_samples: int | None = None,
                       batch_size: int = 100) -> float:
        """Accuracy of the model on ``(X, y)``, on a random subsample of ``num_samples``
        examples (drawn with replacement from the Solver's random state, as CS231n does) when
        given, computed ``batch_size`` examples at a time.

        ``X`` (N, ...) must have finite values and as many per example as ``data['X_train']``
        (usually its example shape), ``y`` (N,) integer labels; lists are accepted.
        """
        X = check_array(X, "X", dtype="float")
        # the model sees X as it is: any example shape with data['X_train']'s number of values
        if X.ndim < 2 or math.prod(X.shape[1:]) != math.prod(self.X_train.shape[1:]):
            raise ValueError(f"X must be (N, ...) with examples of data['X_train']'s example "
                             f"shape {self.X_train.shape[1:]}; got shape {X.shape}")
        y = check_labels(y, "y", n=X.shape[0], n_name="X")
        if num_samples is not None:
            num_samples = check_int(num_samples, "num_samples", minimum=0)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        return self._accuracy(X, y, num_samples, batch_size)

    def _accuracy(self, X: np.ndarray, y: np.ndarray, num_samples: int | None,
                  batch_size: int) -> float:
        """:meth:`check_accuracy` on validated arrays (the Solver's own data)."""
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = self._rng.integers(0, N, num_samples)
            N = num_samples
            X = X[mask]
            y = y[mask]
        num_batches = -(-N // batch_size)
        y_pred = []
        for i in range(num_batches):
            scores = self.model.loss(X[i * batch_size:(i + 1) * batch_size])
            y_pred.append(np.argmax(scores, axis=1))
        return accuracy(y, np.hstack(y_pred)) if N else 0.0

    def _epoch_scores(self) -> dict[str, float]:
        """Hook: the scores of one evaluation, merged into its ``history`` row.

        Default: ``{"train_acc", "val_acc"}`` (training accuracy on ``num_train_samples``
        examples, validation accuracy on ``num_val_samples``), in that order. A subclass may
        return other finite numbers (for example ``{"val_loss": ...}``); the key named by
        ``selection_metric`` must be among them.
        """
        return {
            "train_acc": self._accuracy(self.X_train, self.y_train, self.num_train_samples,
                                        EVAL_BATCH),
            "val_acc": self._accuracy(self.X_val, self.y_val, self.num_val_samples, EVAL_BATCH),
        }

    def _selection_score(self, row: dict[str, Any]) -> float:
        """The value of ``selection_metric`` in ``row`` (a KeyError naming it otherwise)."""
        try:
            return float(row[self.selection_metric])
        except KeyError:
            raise KeyError(f"selection_metric {self.selection_metric!r} is not among the epoch "
                           f"scores {sorted(row)}") from None

    def _is_improvement(self, score: float) -> bool:
        """Whether ``score`` beats ``best_score``.

        Before any best model the reference is 0 for a higher-is-better metric (CS231n's
        ``best_val_acc = 0`` with a strict ``>``), and any finite score for a lower-is-better one.
        """
        best = self.best_score
        if self.higher_is_better:
            return score > (0.0 if best is None else best)
        return math.isfinite(score) and (best is None or score < best)

    def _evaluate(self, t: int, num_iterations: int, per_epoch: int) -> None:
        """Epoch-end book-keeping for iteration ``t`` (CS231n's order), committed at once."""
        epoch_end = (t + 1) % per_epoch == 0
        new_epoch = self.epoch + 1 if epoch_end else self.epoch
        evaluate = t == 0 or t == num_iterations - 1 or epoch_end
        row = None
        if evaluate:
            scores = self._epoch_scores()
            now = time.perf_counter()
            start_time, start_it = self._row_start
            losses = self.loss_history[start_it:]
            first = next(iter(self.optim_configs.values()), {})
            row = {
                "epoch": new_epoch,
                "iteration": self._iteration,
                "loss": float(np.mean(losses)) if losses else float("nan"),
                **{k: float(v) for k, v in scores.items()},
                "lr": float(first.get("learning_rate", float("nan"))),
                "seconds": now - start_time,
            }
        with deferred_interrupt():
            if epoch_end:
                self.epoch = new_epoch
                if self.lr_schedule is None:
                    for k, config in self.optim_configs.items():
                        # a parameter never updated yet (frozen) has no rate in its config
                        config["learning_rate"] = (config.get("learning_rate", self._base_lrs[k])
                                                   * self.lr_decay)
            if row is not None:
                self.train_acc_history.append(row.get("train_acc", math.nan))
                self.val_acc_history.append(row.get("val_acc", math.nan))
                self.history.append(row)
                self._row_start = (time.perf_counter(), len(self.loss_history))
                score = self._selection_score(row)
                if self._is_improvement(score):
                    self.best_score = score
                    self.best_val_acc = row.get("val_acc", self.best_val_acc)
                    self.best_params = {k: v.copy() for k, v in self.model.params.items()}
                    self._best_state = get_model_state(self.model)
                    self._bad_evals = 0
                else:
                    self._bad_evals += 1
            self._pending_eval = False
            self._loop_t = t + 1
            if row is not None:  # only an evaluation draws random numbers here
                self._snapshot_rng()
        if row is None:
            return
        self._save_checkpoint()
        if self.verbose and {"train_acc", "val_acc"} <= row.keys():
            print(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {row['train_acc']:f}; "
                  f"val_acc: {row['val_acc']:f}")
        elif self.verbose:
            print(f"(Epoch {self.epoch} / {self.num_epochs}) " + "; ".join(
                f"{k}: {v:f}" for k, v in scores.items()))
        if self.epoch_callback is not None:
            self.epoch_callback(row)
        if self.early_stopping is not None and self._bad_evals >= self.early_stopping:
            metric = ("validation accuracy" if self.selection_metric == "val_acc"
                      else self.selection_metric)
            self.stop_reason = (f"early stopping: {metric} has not improved for "
                                f"{self._bad_evals} evaluations (best {self.best_score or 0.0:.4f})")
            if self.verbose:
                print(self.stop_reason)
