"""The fastnn file format and the Solver's checkpoints.

Every fastnn file is a ``.npz`` of plain arrays plus a JSON header, written atomically and read
without pickle (:mod:`fastnn._npz`); :mod:`fastnn.serialization` stores models in it. A Solver
checkpoint (:class:`TrainingState`) holds:

- ``params/<name>``, ``state/<name>``: the model (``params`` and ``get_state()``);
- ``best_params/<name>``, ``best_state/<name>``: the best model so far (none before evaluating);
- ``optim/<param>/<key>``: optimiser state arrays (scalars are in the header);
- ``loss_history``, ``train_acc_history``, ``val_acc_history``, ``order`` (this epoch's
  permutation with ``shuffle``), ``global_rng/keys``, ``metadata/<key>``;
- header: ``format``, ``version``, ``model`` (class, config), ``solver`` (settings), ``metadata``
  (scalars) and ``state`` (counters, optimiser scalars, history rows, random states).

:func:`read_training_state` checks every field against the model before returning, so a Solver
can restore a checkpoint all-or-nothing.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastnn._checkpoint_fields import Fields as _Fields
from fastnn._checkpoint_fields import check_rule_state as _check_rule_state
from fastnn._npz import (
    FORMAT_VERSION,
    HEADER_KEY,
    CheckpointError,
    atomic_savez,
    check_arrays_like,
    header_array,
    read_npz,
)
from fastnn.serialization import get_model_state, model_header, set_model_state

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "CheckpointingMixin",
    "TrainingState",
    "atomic_savez",
    "check_arrays_like",
    "header_array",
    "read_npz",
    "read_training_state",
    "write_training_state",
]

CHECKPOINT_FORMAT = "fastnn-solver-checkpoint"


# --------------------------------------------------------------------------- Solver checkpoints


@dataclass
class TrainingState:
    """Everything a Solver checkpoint holds besides the model's architecture.

    ``rng`` is the Solver generator's ``bit_generator.state`` (PCG64), ``global_rng`` NumPy's
    ``np.random.get_state()``, ``augment_rng`` the augmenter's generator state (or None);
    ``best_score`` the best ``selection_metric`` score (None before any); ``settings`` are the Solver's keyword arguments that a resume must
    match; ``optim_configs`` maps each parameter to its update rule's config.
    """

    params: dict[str, np.ndarray]
    model_state: dict[str, np.ndarray]
    best_params: dict[str, np.ndarray]
    best_state: dict[str, np.ndarray]
    optim_configs: dict[str, dict[str, Any]]
    base_lrs: dict[str, float]
    epoch: int
    iteration: int
    loop_t: int
    pending_eval: bool
    best_val_acc: float
    bad_evals: int
    history: list[dict[str, Any]]
    loss_history: list[float]
    train_acc_history: list[float]
    val_acc_history: list[float]
    order: np.ndarray | None
    rng: dict[str, Any]
    global_rng: tuple
    metadata: dict[str, Any]
    settings: dict[str, Any]
    best_score: float | None = None
    augment_rng: dict[str, Any] | None = None


_COUNTERS = ("epoch", "iteration", "loop_t", "bad_evals")
# every history row has these; the Solver's _epoch_scores hook adds its own numbers
_HISTORY_KEYS = {"epoch", "iteration", "loss", "lr", "seconds"}
_SCALARS = (bool, int, float, str, type(None))
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _numeric_array_or_none(value: Any) -> np.ndarray | None:
    """``value`` (a list/tuple of numbers) as a numeric array, or None if it is not one."""
    try:
        array = np.asarray(value) if isinstance(value, (list, tuple)) else None
    except (ValueError, TypeError):  # ragged nesting
        return None
    return array if array is not None and array.dtype.kind in "biuf" else None


def write_training_state(path: str | os.PathLike, state: TrainingState,
                         model: Mapping[str, Any], warned: set[str]) -> str:
    """Write ``state`` to ``path`` atomically and return the path written.

    Parameters
    ----------
    path : str or PathLike
        Target file (``.npz`` appended when missing).
    state : TrainingState
        What to store.
    model : mapping
        The model's header entry (class name and config).
    warned : set of str
        Optimiser config keys already reported as unstorable (updated): an unstorable value (not a
        scalar, array, or list of numbers) is left out with one ``RuntimeWarning`` per key.

    Returns
    -------
    str
    """
    arrays: dict[str, np.ndarray] = {}
    for prefix, group in (("params", state.params), ("state", state.model_state),
                          ("best_params", state.best_params), ("best_state", state.best_state)):
        arrays.update({f"{prefix}/{k}": np.asarray(v) for k, v in group.items()})
    configs: dict[str, dict[str, Any]] = {}
    as_list: dict[str, list[str]] = {}
    for p, config in state.optim_configs.items():
        configs[p] = {}
        for k, v in config.items():
            if isinstance(v, np.ndarray):
                arrays[f"optim/{p}/{k}"] = v
            elif isinstance(v, (*_SCALARS, np.generic)):
                configs[p][k] = v.item() if isinstance(v, np.generic) else v
            elif (stored := _numeric_array_or_none(v)) is not None:
                arrays[f"optim/{p}/{k}"] = stored  # restored as a list
                as_list.setdefault(p, []).append(k)
            elif k not in warned:  # a checkpoint must never abort training
                warned.add(k)
                warnings.warn(f"optim_config[{k!r}] ({type(v).__name__}) cannot be stored in a "
                              f"checkpoint; it is left out (resuming starts it afresh)",
                              RuntimeWarning, stacklevel=4)
    name, keys, pos, has_gauss, cached = state.global_rng
    arrays["global_rng/keys"] = np.asarray(keys, dtype=np.uint32)
    for key in ("loss_history", "train_acc_history", "val_acc_history"):
        arrays[key] = np.asarray(getattr(state, key), dtype=np.float64)
    if state.order is not None:
        arrays["order"] = state.order
    meta_scalars = {}
    for key, value in state.metadata.items():
        if isinstance(value, np.ndarray):
            arrays[f"metadata/{key}"] = value
        else:
            meta_scalars[key] = value
    counters = {key: getattr(state, key) for key in _COUNTERS}
    arrays[HEADER_KEY] = header_array({
        "format": CHECKPOINT_FORMAT, "version": FORMAT_VERSION, "model": dict(model),
        "solver": state.settings, "metadata": meta_scalars,
        "state": {**counters, "pending_eval": state.pending_eval,
                  "best_val_acc": float(state.best_val_acc), "base_lrs": state.base_lrs,
                  "optim_configs": configs, "optim_lists": as_list, "history": state.history,
                  "best_score": state.best_score, "augment_rng": state.augment_rng,
                  "rng": state.rng, "global_rng": {"name": name, "pos": int(pos),
                                                  "has_gauss": int(has_gauss),
                                                  "cached": float(cached)}},
    })
    return str(atomic_savez(path, arrays))


def read_training_state(path: str | os.PathLike, *, params: Mapping[str, np.ndarray],
                        model_state: Mapping[str, np.ndarray], model_class: str,
                        num_train: int, optim_shapes: bool) -> TrainingState:
    """Read a Solver checkpoint and check every field against the model, changing nothing.

    Parameters
    ----------
    path : str or PathLike
        The checkpoint.
    params, model_state : mapping of str -> ndarray
        The model's ``params`` and ``get_state()``: stored arrays must match their names, shapes
        and dtype kinds (parameters are returned in the model's dtypes).
    model_class : str
        The model's class name, which the checkpoint must name.
    num_train : int
        Training-set size (the stored permutation must be one of it).
    optim_shapes : bool
        Whether optimiser state arrays must have their parameter's shape (built-in rules).

    Returns
    -------
    TrainingState

    Raises
    ------
    FileNotFoundError, CheckpointError
        A missing file; an unreadable file, or a damaged field (named in the message).
    """
    header, arrays = read_npz(path)
    f = _Fields(repr(os.fspath(path)))
    if header.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{f.label} is not a Solver checkpoint (format "
                              f"{header.get('format')!r}); load models with load_model")
    f.expect(f.mapping(header, "model", "model").get("class") == model_class, "model.class",
             f"{model_class!r}, this Solver's model", header["model"].get("class"))
    settings = f.mapping(header, "solver", "solver")
    metadata = dict(f.mapping(header, "metadata", "metadata"))
    st = f.mapping(header, "state", "state")

    groups: dict[str, dict[str, np.ndarray]] = {}
    rest: dict[str, np.ndarray] = {}
    singles = ("loss_history", "train_acc_history", "val_acc_history", "order", "global_rng/keys")
    for key, value in arrays.items():
        prefix = next((p for p in ("params/", "state/", "best_params/", "best_state/", "optim/",
                                   "metadata/") if key.startswith(p)), None)
        if prefix is None:
            rest[f.expect(key in singles, key, "one of the arrays a checkpoint holds", key)] = value
            continue
        name = key[len(prefix):]
        f.expect(bool(name) and (prefix in ("optim/", "metadata/") or "/" not in name), key,
                 f"{prefix}<name>", key)
        groups.setdefault(prefix, {})[name] = value

    def like(prefix: str, reference: Mapping[str, np.ndarray], what: str) -> dict:
        try:
            check_arrays_like(groups.get(prefix, {}), reference, what)
        except (TypeError, ValueError) as exc:
            raise f.fail(prefix.rstrip("/"), str(exc)) from None
        return {k: v.astype(np.asarray(reference[k]).dtype, copy=False)
                for k, v in groups.get(prefix, {}).items()}

    new_params = like("params/", params, "parameter")
    new_state = like("state/", model_state, "state")
    best_params = like("best_params/", params, "parameter") if "best_params/" in groups else {}
    best_state = like("best_state/", model_state, "state") if best_params else {}
    f.expect(bool(best_params) or "best_state/" not in groups, "best_state",
             "nothing before best_params exist", sorted(groups.get("best_state/", {})))

    configs_h = f.mapping(st, "optim_configs", "state.optim_configs")
    f.expect(set(configs_h) == set(params), "state.optim_configs",
             f"one config per parameter {sorted(params)}", sorted(configs_h))
    lists = st.get("optim_lists", {})
    f.expect(isinstance(lists, dict) and all(isinstance(v, list) for v in lists.values()),
             "state.optim_lists", "a dict of lists", lists)
    configs = {}
    for p, scalars in configs_h.items():
        field = f"state.optim_configs.{p}"
        f.expect(isinstance(scalars, dict) and all(isinstance(v, _SCALARS)
                                                   for v in scalars.values()),
                 field, "a dict of scalars", scalars)
        if "learning_rate" in scalars:
            f.real(scalars["learning_rate"], f"{field}.learning_rate")
        configs[p] = dict(scalars)
    for key, value in groups.get("optim/", {}).items():
        p, _, name = key.rpartition("/")
        f.expect(p in params, f"optim/{key}", f"optim/<parameter>/<key> with a parameter in "
                 f"{sorted(params)}", key)
        if name in lists.get(p, ()):
            configs[p][name] = value.tolist()
            continue
        shape = np.shape(params[p])
        f.expect(not optim_shapes or (value.shape == shape and value.dtype.kind == "f"),
                 f"optim/{key}", f"a float array of shape {shape}", f"{value.dtype} {value.shape}")
        configs[p][name] = value

    base_lrs = f.mapping(st, "base_lrs", "state.base_lrs")
    f.expect(set(base_lrs) == set(params), "state.base_lrs", f"keys {sorted(params)}",
             sorted(base_lrs))
    counters = {}
    for key in _COUNTERS:
        counters[key] = f.expect(type(st.get(key)) is int and st[key] >= 0, f"state.{key}",
                                 "an int >= 0", st.get(key))
    pending = f.expect(isinstance(st.get("pending_eval"), bool), "state.pending_eval", "a bool",
                       st.get("pending_eval"))
    if optim_shapes:
        _check_rule_state(f, settings.get("update_rule"), configs, params, counters["iteration"])
    history = st.get("history")
    f.expect(isinstance(history, list) and all(
        isinstance(row, dict) and _HISTORY_KEYS <= set(row) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in row.values())
        for row in history), "state.history", f"a list of rows of numbers with keys "
        f"{sorted(_HISTORY_KEYS)} and the epoch scores", history)
    loss_history = f.vector(rest.get("loss_history"), "loss_history", counters["iteration"])
    train_acc = f.vector(rest.get("train_acc_history"), "train_acc_history", len(history))
    val_acc = f.vector(rest.get("val_acc_history"), "val_acc_history", len(history))
    order = rest.get("order")
    if order is not None:
        f.expect(f.vector(order, "order", num_train, "iu") is not None and np.array_equal(
            np.sort(order), np.arange(num_train)), "order", f"a permutation of {num_train}", order)

    rng = f.mapping(st, "rng", "state.rng")
    try:
        np.random.PCG64().state = rng  # a scratch generator: nothing of the Solver changes
    except (TypeError, ValueError, KeyError) as exc:
        raise f.fail("state.rng", f"not a PCG64 state: {exc}") from None
    best_score = st.get("best_score")
    f.expect(best_score is None or (isinstance(best_score, (int, float))
                                    and not isinstance(best_score, bool)
                                    and math.isfinite(best_score)),
             "state.best_score", "None or a finite number", best_score)
    augment_rng = st.get("augment_rng")
    if augment_rng is not None:
        kind = f.mapping(st, "augment_rng", "state.augment_rng").get("bit_generator")
        f.expect(kind in _BIT_GENERATORS, "state.augment_rng.bit_generator",
                 f"one of {_BIT_GENERATORS}", kind)
        try:  # a scratch generator of the stored kind: nothing of the Solver changes
            getattr(np.random, kind)().state = augment_rng
        except (TypeError, ValueError, KeyError) as exc:
            raise f.fail("state.augment_rng", f"not a bit generator state: {exc}") from None
    g = f.mapping(st, "global_rng", "state.global_rng")
    keys = f.vector(rest.get("global_rng/keys"), "global_rng/keys", 624, "u")
    f.expect(g.get("name") == "MT19937" and type(g.get("pos")) is int and 0 <= g["pos"] <= 624
             and g.get("has_gauss") in (0, 1) and isinstance(g.get("cached"), (int, float)),
             "state.global_rng", "MT19937 name, pos, has_gauss and cached", g)
    global_rng = ("MT19937", keys.astype(np.uint32), g["pos"], int(g["has_gauss"]),
                  float(g["cached"]))
    for key, value in groups.get("metadata/", {}).items():
        metadata[key] = value
    return TrainingState(
        params=new_params, model_state=new_state, best_params=best_params, best_state=best_state,
        optim_configs=configs, base_lrs={p: f.real(v, f"state.base_lrs.{p}")
                                         for p, v in base_lrs.items()},
        **counters, pending_eval=pending,
        best_val_acc=f.real(st.get("best_val_acc"), "state.best_val_acc", 1.0), history=history,
        loss_history=loss_history.tolist(), train_acc_history=train_acc.tolist(),
        val_acc_history=val_acc.tolist(), order=order, rng=rng, global_rng=global_rng,
        metadata=metadata, settings=settings,
        best_score=None if best_score is None else float(best_score), augment_rng=augment_rng,
    )


# --------------------------------------------------------------------------- the Solver's methods


class CheckpointingMixin:
    """``save_checkpoint``, ``load_checkpoint`` and ``resume`` of :class:`fastnn.solver.Solver`.

    Kept beside the format they write. They read and restore the Solver's book-keeping: ``model``,
    ``epoch``, ``best_val_acc``, ``best_params``, ``optim_configs``, the histories, ``metadata``,
    and the private ``_iteration``, ``_loop_t``, ``_pending_eval``, ``_bad_evals``, ``_order``,
    ``_base_lrs``, ``_best_state``, ``_rng``, ``_rng_snapshot`` the Solver defines.
    """

    def _settings(self) -> dict[str, Any]:
        return {
            "update_rule": self.update_rule_name, "batch_size": self.batch_size,
            "num_epochs": self.num_epochs, "lr_decay": self.lr_decay,
            "num_train_samples": self.num_train_samples, "num_val_samples": self.num_val_samples,
            "shuffle": self.shuffle, "seed": self.seed, "num_train": int(self.X_train.shape[0]),
            "lr_schedule": self.lr_schedule if isinstance(self.lr_schedule, str)
            else repr(self.lr_schedule), "grad_clip": self.grad_clip,
            "early_stopping": self.early_stopping,
        }

    def save_checkpoint(self, path: str | os.PathLike) -> str:
        """Write the complete training state to ``path`` (``.npz``, atomically) and return it.

        Holds the model (params, ``get_state()``, architecture), the best params and state,
        every optimiser state array, the random states, counters and histories; nothing is
        pickled (the layout is described in :mod:`fastnn.checkpoint`).

        Parameters
        ----------
        path : str or PathLike
            Target file (``.npz`` appended when missing).

        Returns
        -------
        str
            The path written (also ``last_checkpoint``).
        """
        rng_state, global_state, augment_state = self._rng_snapshot
        state = TrainingState(
            params=self.model.params, model_state=get_model_state(self.model),
            best_params=self.best_params, best_state=self._best_state,
            optim_configs=self.optim_configs, base_lrs=self._base_lrs, epoch=self.epoch,
            iteration=self._iteration, loop_t=self._loop_t, pending_eval=self._pending_eval,
            best_val_acc=float(self.best_val_acc), bad_evals=self._bad_evals,
            history=self.history, loss_history=self.loss_history,
            train_acc_history=self.train_acc_history, val_acc_history=self.val_acc_history,
            order=self._order, rng=rng_state, global_rng=global_state,
            metadata=self.metadata, settings=self._settings(), best_score=self.best_score,
            augment_rng=augment_state,
        )
        self.last_checkpoint = write_training_state(path, state, model_header(self.model),
                                                    self._unsaved_config_keys)
        return self.last_checkpoint

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore the training state saved by :meth:`save_checkpoint` into this Solver.

        The Solver must have been built with the same model architecture, training set size,
        batch size and update rule; ``train()`` then continues where the checkpoint was taken.
        NumPy's global random state and ``metadata`` are restored as well (dropout without a
        seed draws from the global state). All or nothing: every field is checked first.

        Parameters
        ----------
        path : str or PathLike
            A checkpoint written by :meth:`save_checkpoint`.

        Raises
        ------
        FileNotFoundError
            No such file.
        CheckpointError
            A damaged or foreign file, naming the file and the field.
        ValueError
            A checkpoint of another setup (batch size, update rule, training set size, shuffle).
            In every case the Solver and the model are unchanged.
        """
        loaded = read_training_state(
            path, params=self.model.params, model_state=get_model_state(self.model),
            model_class=type(self.model).__name__, num_train=int(self.X_train.shape[0]),
            optim_shapes=self._rule_takes_out)
        now = self._settings()
        for key in ("update_rule", "batch_size", "num_train", "shuffle"):
            if loaded.settings.get(key) != now[key]:
                raise ValueError(
                    f"cannot resume {str(path)!r}: it was written with "
                    f"{key}={loaded.settings.get(key)!r} but this Solver has {key}={now[key]!r}"
                )
        try:  # the first change, all-or-nothing by the protocol; nothing after it can fail
            set_model_state(self.model, loaded.model_state)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{str(path)!r}: the model refused the stored state: "
                                  f"{exc}") from None
        self.model.params.update(loaded.params)
        self.best_params, self._best_state = loaded.best_params, loaded.best_state
        self.optim_configs, self._base_lrs = loaded.optim_configs, loaded.base_lrs
        for name in ("epoch", "best_val_acc", "history", "loss_history", "train_acc_history",
                     "val_acc_history", "metadata"):
            setattr(self, name, getattr(loaded, name))
        self._iteration, self._loop_t = loaded.iteration, loaded.loop_t
        self._pending_eval, self._bad_evals = loaded.pending_eval, loaded.bad_evals
        self._order = loaded.order
        self._rng.bit_generator.state = loaded.rng
        np.random.set_state(loaded.global_rng)
        self.best_score = loaded.best_score
        if self.best_score is None and loaded.best_params and self.selection_metric == "val_acc":
            self.best_score = loaded.best_val_acc  # a checkpoint from before best_score existed
        augment_rng = self._augment_rng()
        if augment_rng is not None and loaded.augment_rng is not None:
            augment_rng.bit_generator.state = loaded.augment_rng
        self._snapshot_rng()
        self._row_start = (time.perf_counter(), len(self.loss_history))
        self.last_checkpoint = str(path)

    def resume(self, path: str | os.PathLike) -> None:
        """Load the checkpoint at ``path`` and continue training to ``num_epochs``.

        Parameters
        ----------
        path : str or PathLike
            As for :meth:`load_checkpoint`.
        """
        self.load_checkpoint(path)
        self.train()
