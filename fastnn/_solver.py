"""The Solver: minibatch training of any model with a ``params`` dict and ``loss(X, y=None)``.

A drop-in replacement for CS231n's ``cs231n.solver.Solver`` (same keyword arguments, methods and
attributes), extended with learning-rate schedules, gradient clipping, early stopping, a progress
bar, a per-epoch history, atomic ``.npz`` checkpoints and exact resume::

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    num_epochs=10, batch_size=128, lr_schedule="cosine", checkpoint_name="run")
    solver.train()
    ...
    solver = Solver(model, data, **same_kwargs)
    solver.resume("run_epoch_4.npz")          # continues exactly where epoch 4 ended

Ownership: the Solver owns the model's parameter arrays while it trains and updates them in place
(the update rules' ``out=`` form); it never writes into ``data``. At the end of ``train()`` the
model holds the parameters (and model state, such as batchnorm running averages) with the best
validation accuracy, as in CS231n.

Randomness: minibatches (and ``check_accuracy``'s subsampling) come from a Solver-owned PCG64
generator (``seed``; when omitted, drawn from NumPy's global state, so ``np.random.seed(...)``
still fixes everything); the sequence is not CS231n's ``np.random.choice`` one. Dropout without a
seed draws from NumPy's global state, which the Solver copies after every step and checkpoints
store, so a resumed run reproduces the uninterrupted one.

Models reach the Solver through ``params``, ``loss`` and, for other state (batchnorm averages),
the ``get_state``/``set_state`` protocol of :mod:`fastnn.serialization`; checkpoints are
:mod:`fastnn.checkpoint`. A model may also have ``frozen`` (a collection of parameter names):
the Solver never updates those, nor any parameter ``loss`` returns no gradient for (transfer
learning: a frozen feature extractor need not compute its gradients at all).

Hooks for subclasses (other training set-ups, e.g. language models), each with the CS231n
behaviour by default:

- ``_check_data(data) -> (X_train, y_train, X_val, y_val)``: validate ``data``
  (default :func:`fastnn._validation.check_data_dict`);
- ``_check_labels_against_model()``: check the labels fit the model's outputs;
- ``_iterations_per_epoch() -> int``: default ``max(N_train // batch_size, 1)``;
- ``_batch(t) -> (X_batch, y_batch)``: the minibatch of loop position ``t`` (default: the rows
  ``_minibatch(t)`` picks, then the ``augment`` callable on ``X_batch``);
- ``_epoch_scores() -> dict``: the scores merged into each ``history`` row (default
  ``train_acc``, ``val_acc``); the best model is the one with the best ``selection_metric``
  score (class attribute, default ``"val_acc"``), ``higher_is_better`` (default True) giving
  the direction; both also drive early stopping.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fastnn import optim
from fastnn._interrupt import deferred_interrupt
from fastnn._progress import progress as _progress
from fastnn._solver_evaluation import EvaluationMixin
from fastnn._validation import (
    check_data_dict,
    check_fits_in_memory,
    check_float,
    check_int,
    check_labels,
)
from fastnn.checkpoint import CheckpointingMixin
from fastnn.serialization import get_model_state, set_model_state

__all__ = ["Solver"]


_CS231N_KWARGS = (
    "update_rule", "optim_config", "lr_decay", "batch_size", "num_epochs", "num_train_samples",
    "num_val_samples", "checkpoint_name", "print_every", "verbose",
)
_EXTRA_KWARGS = (
    "lr_schedule", "grad_clip", "grad_clip_value", "early_stopping", "progress", "seed", "shuffle",
    "epoch_callback", "augment",
)


class Solver(CheckpointingMixin, EvaluationMixin):
    """Train a classification model with minibatch gradient descent.

    Parameters
    ----------
    model : object
        Has ``params`` (dict name -> ndarray) and ``loss(X, y=None)``: scores (N, C) when ``y`` is
        None, else ``(loss, grads)`` with ``grads`` keyed like ``params``.
    data : dict
        ``X_train`` (N_train, ...), ``y_train`` (N_train,), ``X_val`` (N_val, ...), ``y_val``
        (N_val,); integer labels in ``[0, C)``.
    update_rule : str or callable
        A rule of :mod:`fastnn.optim` by name (default ``"sgd"``) or ``rule(w, dw, config)``.
    optim_config : dict
        Hyperparameters for the rule; each parameter gets its own copy.
    lr_decay : float
        Multiply the learning rate by this after every epoch (CS231n). Default 1.0.
    batch_size : int
        Minibatch size (default 100).
    num_epochs : int
        Epochs to train (default 10).
    num_train_samples : int or None
        Training examples used to estimate training accuracy (default 1000; None for all).
    num_val_samples : int or None
        Validation examples used for validation accuracy (default None: all).
    checkpoint_name : str or None
        If set, write ``f"{checkpoint_name}_epoch_{epoch}.npz"`` at every evaluation (CS231n wrote
        ``.pkl``; fastnn never pickles) and ``f"{checkpoint_name}_interrupted.npz"`` on Ctrl-C.
        With None nothing is written, not even on Ctrl-C. Optimiser configs are stored in full:
        scalars, arrays, and lists/tuples of numbers (restored as lists); any other value a custom
        update rule keeps there is left out with a one-time ``RuntimeWarning``.
    print_every : int
        Print the training loss every this many iterations when ``verbose`` (default 10).
    verbose : bool
        Print progress lines in CS231n's format (default True).
    lr_schedule : None, str or callable
        ``schedule(step) -> multiplier`` of the base learning rate, evaluated every iteration
        (``step`` counts iterations from 0), or a name from :data:`fastnn.optim.SCHEDULES`
        built over the whole run. Combines multiplicatively with ``lr_decay`` per epoch.
    grad_clip : float or None
        Rescale the gradients when their global L2 norm (over all parameters) exceeds this
        (:func:`fastnn.optim.clip_by_global_norm`).
    grad_clip_value : float or None
        Clip every gradient entry into ``[-grad_clip_value, grad_clip_value]`` first
        (:func:`fastnn.optim.clip_by_value`).
    early_stopping : int or None
        Stop when validation accuracy has not improved for this many evaluations (epochs).
    progress : bool or None
        Show a progress bar (None: only when stderr is a terminal).
    seed : int or None
        Seed of the Solver's random state (minibatches and accuracy subsampling).
    shuffle : bool
        False (CS231n): every minibatch is drawn with replacement. True: each epoch visits the
        training set once in a random order.
    epoch_callback : callable or None
        Called with each new ``history`` row (a dict) after every evaluation.
    augment : callable or None
        ``augment(X_batch) -> X_batch'`` applied to every training minibatch (never to the
        evaluation data), e.g. a :class:`fastnn.data.augment.Augmenter`. When it has an ``rng``
        attribute (a ``np.random.Generator``), that generator's state is snapshotted with the
        Solver's and stored in checkpoints, so a resumed run draws the same augmentations.

    Attributes
    ----------
    loss_history, train_acc_history, val_acc_history : list of float
    best_val_acc : float
        Validation accuracy of the best model (CS231n); with another ``selection_metric``, the
        ``val_acc`` of the row that was best, if the rows have one.
    best_score : float or None
        The best ``selection_metric`` score so far (None before any improvement).
    best_params : dict
    history : list of dict
        One row per evaluation (after the first iteration and after every epoch): ``epoch``,
        ``iteration``, ``loss`` (mean training loss since the previous row), ``train_acc``,
        ``val_acc`` (the :meth:`_epoch_scores` hook's keys), ``lr``, ``seconds`` (wall time
        since the previous row).
    stop_reason : str or None
        Why the last ``train()`` stopped before ``num_epochs`` (non-finite loss, early stopping).
    last_checkpoint : str or None
        Path of the most recent checkpoint written.
    metadata : dict
        Extra information stored in every checkpoint, as :func:`fastnn.serialization.save_model`
        stores its ``metadata`` (for example the preprocessing), so
        ``load_model(checkpoint, with_metadata=True)`` returns it.
    """

    def __init__(self, model: Any, data: Mapping[str, Any], **kwargs: Any):
        self.model = model
        self._check_model(model)
        self.X_train, self.y_train, self.X_val, self.y_val = self._check_data(data)

        unknown = set(kwargs) - set(_CS231N_KWARGS) - set(_EXTRA_KWARGS)
        if unknown:
            raise ValueError(f"Unrecognized arguments {', '.join(sorted(unknown))}")
        rule = kwargs.pop("update_rule", "sgd")
        if callable(rule):
            self.update_rule_name = getattr(rule, "__name__", "custom")
            self.update_rule = rule
        else:
            self.update_rule = optim.get_update_rule(rule)
            self.update_rule_name = rule
        self._rule_takes_out = self.update_rule in optim.UPDATE_RULES.values()
        self.optim_config = kwargs.pop("optim_config", {})
        if not isinstance(self.optim_config, Mapping):
            raise TypeError(f"optim_config must be a dict, got {type(self.optim_config).__name__}")
        if "learning_rate" in self.optim_config:
            check_float(self.optim_config["learning_rate"], "optim_config['learning_rate']",
                        minimum=0)
        self.lr_decay = check_float(kwargs.pop("lr_decay", 1.0), "lr_decay", minimum=0,
                                    min_inclusive=False)
        self.batch_size = check_int(kwargs.pop("batch_size", 100), "batch_size", minimum=1)
        # drawn with replacement (CS231n), so batch_size may exceed N, but must fit in memory
        row_bytes = self.X_train.itemsize * math.prod(self.X_train.shape[1:]) + 16
        check_fits_in_memory(self.batch_size * row_bytes, f"batch_size={self.batch_size}",
                             "a minibatch of data['X_train'] rows")
        self.num_epochs = check_int(kwargs.pop("num_epochs", 10), "num_epochs", minimum=0)
        for key, default in (("num_train_samples", 1000), ("num_val_samples", None)):
            value = kwargs.pop(key, default)  # None: every example
            setattr(self, key, None if value is None else check_int(value, key, minimum=1))
        self.checkpoint_name = kwargs.pop("checkpoint_name", None)
        self.print_every = check_int(kwargs.pop("print_every", 10), "print_every", minimum=1)
        self.verbose = bool(kwargs.pop("verbose", True))
        self.lr_schedule = kwargs.pop("lr_schedule", None)
        if (self.lr_schedule is not None and not callable(self.lr_schedule)
                and self.lr_schedule not in optim.SCHEDULES):
            raise ValueError(f"lr_schedule must be None, a callable or one of "
                             f"{', '.join(map(repr, optim.SCHEDULES))}; got {self.lr_schedule!r}")
        for key in ("grad_clip", "grad_clip_value"):
            value = kwargs.pop(key, None)
            setattr(self, key, None if value is None else check_float(
                value, key, minimum=0, min_inclusive=False))
        patience = kwargs.pop("early_stopping", None)
        self.early_stopping = None if patience is None else check_int(
            patience, "early_stopping", minimum=1)
        self.progress = kwargs.pop("progress", None)
        seed = kwargs.pop("seed", None)
        if seed is None:
            # drawn from the global state so np.random.seed(...) still makes runs repeatable
            seed = int(np.random.randint(0, 2**31 - 1))
        self.seed = check_int(seed, "seed", minimum=0, maximum=2**32 - 1)
        self.shuffle = bool(kwargs.pop("shuffle", False))
        self.epoch_callback = kwargs.pop("epoch_callback", None)
        if self.epoch_callback is not None and not callable(self.epoch_callback):
            raise TypeError("epoch_callback must be callable or None")
        self.augment = kwargs.pop("augment", None)
        if self.augment is not None and not callable(self.augment):
            raise TypeError(f"augment must be callable or None, got {type(self.augment).__name__}")

        self.metadata: dict[str, Any] = {}
        self._check_labels_against_model()
        self._reset()

    # ------------------------------------------------------------------ setup

    def _check_data(self, data: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
        """Hook: validate ``data``; returns ``(X_train, y_train, X_val, y_val)``."""
        return check_data_dict(data)

    @staticmethod
    def _check_model(model: Any) -> None:
        params = getattr(model, "params", None)
        if not isinstance(params, dict) or not callable(getattr(model, "loss", None)):
            raise TypeError(f"model must have a params dict and a loss(X, y=None) method; got "
                            f"{type(model).__name__}")
        get_model_state(model)  # a half-implemented state protocol fails here, not mid-training

    def _check_labels_against_model(self) -> None:
        """Hook: one tiny test-mode forward pass tells the number of classes; labels must fit."""
        scores = np.asarray(self.model.loss(self.X_val[:2]))
        if scores.ndim != 2:
            return
        num_classes = scores.shape[1]
        check_labels(self.y_train, "data['y_train']", num_classes=num_classes)
        check_labels(self.y_val, "data['y_val']", num_classes=num_classes)

    def _reset(self) -> None:
        """Book-keeping variables (CS231n ``_reset``) plus the extension state."""
        self.epoch = 0
        self.best_val_acc = 0
        self.best_score: float | None = None
        self.best_params: dict[str, np.ndarray] = {}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}
        default_lr = optim.DEFAULT_LEARNING_RATES.get(self.update_rule_name, 1e-2)
        self._base_lrs = {p: float(c.get("learning_rate", default_lr))
                          for p, c in self.optim_configs.items()}
        self.history: list[dict[str, Any]] = []
        self.stop_reason: str | None = None
        self.last_checkpoint: str | None = None
        self._best_state: dict[str, np.ndarray] = {}  # model state that goes with best_params
        self._unsaved_config_keys: set[str] = set()
        self._rng = np.random.Generator(np.random.PCG64(self.seed))
        self._iteration = 0  # parameter updates done so far (the schedule's step)
        self._loop_t = 0  # where train()'s loop continues (0 unless resuming)
        self._pending_eval = False  # an update is done but its evaluation is not
        self._bad_evals = 0  # evaluations without improvement (early stopping)
        self._order: np.ndarray | None = None  # this epoch's permutation (shuffle=True)
        self._row_start = (time.perf_counter(), 0)
        self._rng_snapshot: tuple[dict, tuple, dict | None] = ({}, (), None)
        self._snapshot_rng()

    def _augment_rng(self) -> np.random.Generator | None:
        """The ``augment`` callable's own generator, if it exposes one as ``rng``."""
        rng = getattr(self.augment, "rng", None)
        return rng if isinstance(rng, np.random.Generator) else None

    def _snapshot_rng(self) -> None:
        """Remember the random states at a consistent point (what a checkpoint stores)."""
        augment_rng = self._augment_rng()
        self._rng_snapshot = (self._rng.bit_generator.state, np.random.get_state(),
                              None if augment_rng is None else augment_rng.bit_generator.state)

    # ------------------------------------------------------------------ one iteration

    def _iterations_per_epoch(self) -> int:
        """Hook: parameter updates per epoch (default ``max(N_train // batch_size, 1)``)."""
        return max(self.X_train.shape[0] // self.batch_size, 1)

    def _minibatch(self, t: int) -> np.ndarray:
        """Row indices of loop position ``t``'s minibatch (with replacement unless shuffle)."""
        num_train = self.X_train.shape[0]
        if not self.shuffle:
            return self._rng.integers(0, num_train, self.batch_size)
        per_epoch = self._iterations_per_epoch()
        k = t % per_epoch
        if k == 0 or self._order is None:
            self._order = self._rng.permutation(num_train)
        return self._order[k * self.batch_size:(k + 1) * self.batch_size]

    def _batch(self, t: int) -> tuple[Any, Any]:
        """Hook: ``(X_batch, y_batch)`` of loop position ``t``, augmented when ``augment``."""
        batch_mask = self._minibatch(t)
        X_batch = self.X_train[batch_mask]
        if self.augment is not None:
            X_batch = self.augment(X_batch)
        return X_batch, self.y_train[batch_mask]

    def _learning_rates(self, schedule: Callable[[int], float] | None) -> None:
        if schedule is None:
            return
        factor = float(schedule(self._iteration)) * self.lr_decay**self.epoch
        for p, config in self.optim_configs.items():
            config["learning_rate"] = self._base_lrs[p] * factor

    def _step(self, t: int | None = None,
              schedule: Callable[[int], float] | None = None) -> bool:
        """One gradient update (CS231n ``_step``; ``t`` is the position in the epoch loop).

        Returns False (and updates nothing) on a non-finite loss.
        """
        if t is None:
            t = self._iteration
        X_batch, y_batch = self._batch(t)
        loss, grads = self.model.loss(X_batch, y_batch)
        loss = float(loss)
        if not math.isfinite(loss):
            self._stop_non_finite(loss)
            return False
        if not grads.keys() <= self.model.params.keys():
            raise ValueError(f"model.loss returned gradients for {sorted(grads)}, but the model's "
                             f"params are {sorted(self.model.params)}")
        # frozen parameters, and any the model gave no gradient for, are left as they are
        frozen = frozenset(getattr(self.model, "frozen", ()))
        grads = {p: g for p, g in grads.items() if p not in frozen}
        if self.grad_clip_value is not None:
            grads = optim.clip_by_value(grads, self.grad_clip_value)
        if self.grad_clip is not None:
            grads, _ = optim.clip_by_global_norm(grads, self.grad_clip)
        self._learning_rates(schedule)
        with deferred_interrupt():
            for p, w in self.model.params.items():
                if p not in grads:
                    continue
                config = self.optim_configs[p]
                if self._rule_takes_out and w.flags.writeable and w.dtype.kind == "f":
                    next_w, next_config = self.update_rule(w, grads[p], config, out=w)
                else:
                    next_w, next_config = self.update_rule(w, grads[p], config)
                self.model.params[p] = next_w
                self.optim_configs[p] = next_config
            self.loss_history.append(loss)
            self._iteration += 1
            self._pending_eval = True
            self._snapshot_rng()
        return True

    def _stop_non_finite(self, loss: float) -> None:
        self.stop_reason = (
            f"training stopped: the loss became {loss} at iteration {self._iteration + 1} "
            f"(epoch {self.epoch}); the learning rate is probably too high. The model keeps the "
            + ("best parameters so far" if self.best_params else
               "parameters of the last finite step (no evaluation had run yet)")
            + f" (best val_acc {self.best_val_acc:.4f})."
        )
        warnings.warn(self.stop_reason, RuntimeWarning, stacklevel=3)
        if self.verbose:
            print(self.stop_reason, file=sys.stderr)

    # ------------------------------------------------------------------ training loop

    def _resolve_schedule(self, num_iterations: int, per_epoch: int):
        if self.lr_schedule is None or callable(self.lr_schedule):
            return self.lr_schedule
        return optim.make_schedule(self.lr_schedule, total_steps=max(1, num_iterations),
                                   steps_per_epoch=per_epoch)

    def train(self) -> None:
        """Run ``num_epochs`` epochs of optimisation (or continue after :meth:`load_checkpoint`).

        With ``checkpoint_name`` set, Ctrl-C saves a checkpoint (``last_checkpoint``) before the
        KeyboardInterrupt propagates (a failed save only warns).
        At the end the model holds the best parameters seen.
        """
        per_epoch = self._iterations_per_epoch()
        num_iterations = self.num_epochs * per_epoch
        schedule = self._resolve_schedule(num_iterations, per_epoch)
        self.stop_reason = None
        t = self._loop_t
        if t == 0:
            self._row_start = (time.perf_counter(), len(self.loss_history))
        bar = _progress(total=num_iterations, desc="train", enabled=self.progress, unit="it")
        if t:
            bar.update(t)
        try:
            while t < num_iterations:
                if not self._pending_eval:
                    if not self._step(t, schedule):
                        break
                    if self.verbose and t % self.print_every == 0:
                        print(f"(Iteration {t + 1} / {num_iterations}) loss: "
                              f"{self.loss_history[-1]:f}")
                    bar.update(1)
                    if t % 10 == 0:
                        bar.set_postfix_str(f"loss {self.loss_history[-1]:.4f}")
                self._evaluate(t, num_iterations, per_epoch)
                t += 1
                if self.stop_reason is not None:
                    break
        except KeyboardInterrupt:
            # Only with a checkpoint_name (as documented): never litter the working directory.
            # A failing save must not replace the KeyboardInterrupt, so it only warns.
            if self.checkpoint_name is not None:
                try:
                    self.save_checkpoint(f"{self.checkpoint_name}_interrupted.npz")
                except Exception as exc:  # noqa: BLE001 - the interrupt is what must propagate
                    warnings.warn(f"training interrupted; saving the checkpoint failed: {exc}",
                                  RuntimeWarning, stacklevel=2)
                else:
                    print(f"\ntraining interrupted; checkpoint saved to {self.last_checkpoint} "
                          f"(continue with Solver.resume)", file=sys.stderr)
            raise
        finally:
            bar.close()
        self._loop_t = 0
        self._restore_best()

    def _save_checkpoint(self) -> None:
        """CS231n's hook: ``f"{checkpoint_name}_epoch_{epoch}.npz"`` when a name is set."""
        if self.checkpoint_name is not None:
            self.save_checkpoint(f"{self.checkpoint_name}_epoch_{self.epoch}.npz")

    def _restore_best(self) -> None:
        if not self.best_params:
            return
        # copies: training again must not overwrite the best snapshot in place
        self.model.params = {k: v.copy() for k, v in self.best_params.items()}
        if self._best_state:
            set_model_state(self.model, self._best_state)
