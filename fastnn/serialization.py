"""Saving and loading models as NumPy ``.npz`` files without pickle, and the model-state protocol.

File layout (shared by :func:`save_model` and the Solver's checkpoints, :mod:`fastnn.checkpoint`)
-------------------------------------------------------------------------------------------
- ``params/<name>``: every array of ``model.params``;
- ``state/<name>``: every array of ``model.get_state()`` (state that is not a parameter);
- ``metadata/<key>``: array-valued metadata (for example the training-set mean image);
- ``__fastnn__``: a 0-d unicode array holding a JSON header: the format name and version, the
  model's class name and its ``get_config()`` (architecture hyperparameters), scalar metadata.

Version 1 files (which kept batch-norm averages as ``bn_params/<i>/<key>``, layer ``i`` from 0)
are still read: those entries become the state entries ``<key><i+1>`` of ``FullyConnectedNet``.

The model-state protocol
------------------------
State that is not a parameter (batch-norm running averages) is reached only through two methods,
which the Solver, its checkpoints and :func:`save_model` use (none reads a model's private dicts):

- ``model.get_state() -> dict[str, np.ndarray]``: copies of every state array, under names without
  ``"/"``; the same names and shapes for the model's whole life (created at construction).
- ``model.set_state(state)``: takes exactly those names and shapes (any dtype of the same kind,
  cast to the model's; arrays copied), checks everything before changing anything, and raises
  ``ValueError``/``TypeError`` naming the offending entry.

A model without these methods (only ``params`` and ``loss``) has no extra state. Dropout needs
none: its keep ratio and seed belong to the architecture (``get_config()``), its train/test mode
follows each ``loss`` call, and NumPy's global random state, which unseeded dropout draws from, is
saved and restored by the Solver itself. Optionally a class may offer
``parameter_shapes(**config)`` (the shapes ``cls(**config)`` would build, without allocating):
:func:`load_model` then rejects a file whose arrays do not fit before building the model.

Every file is written atomically: to a temporary file in the target directory, flushed and
fsync'ed, then moved over the target with ``os.replace``. Files are read with
``allow_pickle=False``, and every member's declared shape and dtype is checked before its data
are read; a model class is rebuilt only if its name is in a whitelist (:data:`MODEL_CLASSES`,
extended with :func:`register_model_class`).
"""

from __future__ import annotations

import importlib
import json
import os
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fastnn._npz import (
    FORMAT_VERSION,
    HEADER_KEY,
    CheckpointError,
    Member,
    NpzFile,
    atomic_savez,
    check_arrays_like,
    header_array,
    json_default,
    read_npz,
)

__all__ = [  # the file-format names are re-exported from fastnn._npz
    "FORMAT_VERSION",
    "MODEL_CLASSES",
    "CheckpointError",
    "StatefulModel",
    "atomic_savez",
    "check_arrays_like",
    "get_model_state",
    "header_array",
    "load_model",
    "model_header",
    "model_state_arrays",
    "read_npz",
    "register_model_class",
    "save_model",
    "set_model_state",
]

#: Model classes :func:`load_model` may construct: name -> "module:attribute" (imported lazily).
MODEL_CLASSES: dict[str, str] = {
    "TwoLayerNet": "fastnn.classifiers.fc_net:TwoLayerNet",
    "FullyConnectedNet": "fastnn.classifiers.fc_net:FullyConnectedNet",
    "ThreeLayerConvNet": "fastnn.classifiers.cnn:ThreeLayerConvNet",
    "ConvNet": "fastnn.classifiers.cnn:ConvNet",
    "CaptioningRNN": "fastnn.classifiers.captioning_rnn:CaptioningRNN",
    "SequenceClassifier": "fastnn.classifiers.sequence:SequenceClassifier",
    "CharRNN": "fastnn.classifiers.char_rnn:CharRNN",
}
_REGISTERED: dict[str, type] = {}
_FORMATS = ("fastnn-model", "fastnn-solver-checkpoint")


class StatefulModel(Protocol):
    """A model with state that is not a parameter (see the module docstring)."""

    params: dict[str, np.ndarray]

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of every state array."""

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned, all-or-nothing."""


def register_model_class(cls: type, name: str | None = None) -> type:
    """Allow :func:`load_model` to rebuild instances of ``cls`` (usable as a decorator).

    Parameters
    ----------
    cls : type
        A class accepting its ``get_config()`` dict as keyword arguments.
    name : str, optional
        The name stored in files (default ``cls.__name__``).

    Returns
    -------
    type
        ``cls`` itself.
    """
    if not isinstance(cls, type):
        raise TypeError(f"cls must be a class, got {type(cls).__name__}")
    _REGISTERED[name or cls.__name__] = cls
    return cls


def _model_class(name: Any, path: str | os.PathLike) -> type:
    if isinstance(name, str) and name in _REGISTERED:
        return _REGISTERED[name]
    if not isinstance(name, str) or name not in MODEL_CLASSES:
        known = ", ".join(sorted({*MODEL_CLASSES, *_REGISTERED}))
        raise CheckpointError(
            f"{os.fspath(path)!r}: model class {name!r} is not one fastnn may load (known: {known};"
            " add others with fastnn.serialization.register_model_class)"
        )
    module_name, attr = MODEL_CLASSES[name].split(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"{os.fspath(path)!r}: cannot import model class {name!r}: {exc}")

# --------------------------------------------------------------------------- model state


def _has_state_protocol(model: Any) -> bool:
    get_state, set_state = getattr(model, "get_state", None), getattr(model, "set_state", None)
    if get_state is None and set_state is None:
        return False
    if not (callable(get_state) and callable(set_state)):
        raise TypeError(f"model {type(model).__name__} must define both get_state() and "
                        f"set_state(state) (the model-state protocol), or neither")
    return True


def get_model_state(model: Any) -> dict[str, np.ndarray]:
    """``model.get_state()``, checked; ``{}`` for a model without the protocol.

    Parameters
    ----------
    model : object
        Any model.

    Returns
    -------
    dict of str -> ndarray
    """
    if not _has_state_protocol(model):
        return {}
    state = model.get_state()
    if not isinstance(state, Mapping):
        raise TypeError(f"model.get_state() must return a dict, got {type(state).__name__}")
    for name, value in state.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"model.get_state() names must be non-empty strings without '/', "
                             f"got {name!r}")
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise TypeError(f"model.get_state()[{name!r}] must be a numeric ndarray, got "
                            f"{type(value).__name__}")
    return dict(state)


def set_model_state(model: Any, state: Mapping[str, np.ndarray]) -> None:
    """``model.set_state(state)``; a model without the protocol accepts only an empty ``state``.

    Parameters
    ----------
    model : object
        Any model.
    state : mapping of str -> ndarray
        As ``get_model_state(model)`` returned it.
    """
    if _has_state_protocol(model):
        model.set_state(dict(state))
    elif state:
        raise ValueError(f"state has entries {sorted(state)} but the model "
                         f"{type(model).__name__} has no set_state method")



# --------------------------------------------------------------------------- writing


def model_header(model: Any) -> dict[str, Any]:
    """Class name and architecture config (``get_config()``, if any) of ``model``.

    Parameters
    ----------
    model : object
        Any model.

    Returns
    -------
    dict
    """
    get_config = getattr(model, "get_config", None)
    config = get_config() if callable(get_config) else {}
    try:
        json.dumps(config, default=json_default)
    except TypeError as exc:
        raise TypeError(f"model.get_config() must be JSON-serialisable: {exc}") from None
    return {"class": type(model).__name__, "config": config}


def model_state_arrays(model: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """``params/<name>`` (not copied) and ``state/<name>`` arrays of ``model``.

    Parameters
    ----------
    model : object
        A model with a ``params`` dict.
    prefix : str
        Put in front of every key.

    Returns
    -------
    dict of str -> ndarray
    """
    params = getattr(model, "params", None)
    if not isinstance(params, Mapping):
        raise TypeError(f"model must have a params dict, got {type(model).__name__} without one")
    arrays: dict[str, np.ndarray] = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"parameter names must be non-empty strings without '/', got {name!r}")
        arrays[f"{prefix}params/{name}"] = np.asarray(value)
    for name, value in get_model_state(model).items():
        arrays[f"{prefix}state/{name}"] = value
    return arrays


def save_model(path: str | os.PathLike, model: Any, *,
               metadata: Mapping[str, Any] | None = None) -> Path:
    """Save ``model`` (its ``params``, ``get_state()`` and architecture) to ``path``.

    Parameters
    ----------
    path : str or PathLike
        Target file; ``.npz`` is appended when missing. Written atomically.
    model : object
        Any model with a ``params`` dict of arrays. Its ``get_config()`` (if any) must return the
        keyword arguments that rebuild the architecture, as JSON-serialisable values.
    metadata : mapping, optional
        Extra information (for example preprocessing); arrays are stored as arrays, everything
        else must be JSON-serialisable.

    Returns
    -------
    Path
        The file written.
    """
    header = {"format": "fastnn-model", "version": FORMAT_VERSION, "model": model_header(model)}
    arrays = model_state_arrays(model)
    meta_scalars: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        if isinstance(value, np.ndarray):
            arrays[f"metadata/{key}"] = value
        else:
            meta_scalars[key] = value
    header["metadata"] = meta_scalars
    arrays[HEADER_KEY] = header_array(header)
    return atomic_savez(path, arrays)



# --------------------------------------------------------------------------- reading


def load_model(path: str | os.PathLike, *, with_metadata: bool = False) -> Any:
    """Rebuild a model saved by :func:`save_model` (or from a Solver checkpoint).

    Checked before the model or any array is allocated: the header (a JSON object of a known
    version), the class (whitelisted), the member names, every member's declared size against
    the file, the parameters' dtypes (real floating) and, for classes with ``parameter_shapes``,
    the parameters' names and shapes against the architecture (which also bounds its size). The
    state entries are checked against the model once it is built, before any data are read.

    Parameters
    ----------
    path : str or PathLike
        The ``.npz`` file.
    with_metadata : bool
        Also return the metadata dict given to :func:`save_model` (arrays included).

    Returns
    -------
    model, or (model, metadata)

    Raises
    ------
    TypeError
        ``path`` is not a str or PathLike.
    FileNotFoundError, CheckpointError
        Missing file; corrupted/truncated file, unknown model class, or mismatched parameters.
    """
    npz = NpzFile(path)
    try:
        model, metadata = _load_model(npz)
    finally:
        npz.close()
    return (model, metadata) if with_metadata else model


def _load_model(npz: NpzFile) -> tuple[Any, dict[str, Any]]:
    header, label = npz.header, npz.label
    if header.get("format") not in _FORMATS:
        raise CheckpointError(f"{label}: header 'format' must be one of {_FORMATS}, got "
                              f"{header.get('format')!r}")
    if header["format"] == "fastnn-model":  # a Solver checkpoint's other arrays are its own
        for key in npz.members:
            if not key.startswith(("params/", "state/", "metadata/")):
                raise CheckpointError(f"{label}: unexpected array {key!r} in a model file")
    header_model = header.get("model")
    if not isinstance(header_model, dict):
        raise CheckpointError(f"{label} holds no model description (header 'model' must be a "
                              f"dict, got {type(header_model).__name__})")
    cls = _model_class(header_model.get("class"), npz.path)
    config = header_model.get("config", {})
    if not isinstance(config, dict):
        raise CheckpointError(f"{label}: header 'model.config' must be a dict, got "
                              f"{type(config).__name__}")
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{label}: header 'metadata' must be a dict, got "
                              f"{type(metadata).__name__}")
    params, state = npz.group("params/"), npz.group("state/")
    metadata_arrays = npz.group("metadata/", plain=False)
    for name, member in params.items():
        if member.dtype.kind != "f":
            raise CheckpointError(f"{label}: parameter {name!r} has dtype {member.dtype}; "
                                  f"expected real floating point")
    for name, member in state.items():
        if member.dtype.kind not in "fiu":
            raise CheckpointError(f"{label}: state {name!r} has dtype {member.dtype}; "
                                  f"expected real numbers")
    try:
        if callable(getattr(cls, "parameter_shapes", None)):
            shapes = cls.parameter_shapes(**config)
            float_shapes = {k: Member(k, tuple(s), np.dtype(float)) for k, s in shapes.items()}
            check_arrays_like(params, float_shapes, "parameter")
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{label}: the file does not fit {cls.__name__}"
                              f"(**{reprlib.repr(config)}): {exc}") from None
    # constructors draw initial weights from NumPy's global random state; loading must not
    # disturb the caller's random stream
    global_state = np.random.get_state()
    try:
        model = cls(**config)
        check_arrays_like(params, model.params, "parameter")
        check_arrays_like(state, get_model_state(model), "state")
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{label}: cannot rebuild {cls.__name__}"
                              f"(**{reprlib.repr(config)}): {exc}") from None
    finally:
        np.random.set_state(global_state)
    values = npz.read([f"params/{name}" for name in params])
    new_params = {name: values[f"params/{name}"].astype(np.asarray(model.params[name]).dtype)
                  for name in params}
    try:
        set_model_state(model, {k[len("state/"):]: v for k, v in npz.read(
            [f"state/{name}" for name in state]).items()})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{label}: {exc}") from None
    model.params.update(new_params)
    metadata = dict(metadata)
    for key, value in npz.read([f"metadata/{name}" for name in metadata_arrays]).items():
        metadata[key[len("metadata/"):]] = value
    return model, metadata
