"""Saving and loading models and training checkpoints as NumPy ``.npz`` files, without pickle.

File layout (shared by :func:`save_model` and the Solver's checkpoints)
---------------------------------------------------------------------
- ``params/<name>``: every array of ``model.params``;
- ``bn_params/<i>/<key>``: array entries of ``model.bn_params[i]`` (batchnorm running averages),
  whose scalar entries go into the JSON header;
- ``metadata/<key>``: array-valued metadata (for example the training-set mean image);
- ``__fastnn__``: a 0-d unicode array holding a JSON header: the format name and version, the
  model's class name and its ``get_config()`` (architecture hyperparameters), and scalar metadata.

Every file is written atomically: to a temporary file in the target directory, flushed and
fsync'ed, then moved over the target with ``os.replace``. A crash or error mid-write leaves the
previous file intact. Files are read with ``allow_pickle=False``; a model class is rebuilt only
if its name is in a whitelist (:data:`MODEL_CLASSES`, extended with :func:`register_model_class`).
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "MODEL_CLASSES",
    "CheckpointError",
    "atomic_savez",
    "load_model",
    "model_header",
    "model_state_arrays",
    "read_npz",
    "register_model_class",
    "restore_model_state",
    "save_model",
]

FORMAT_VERSION = 1
HEADER_KEY = "__fastnn__"

#: Model classes :func:`load_model` may construct: name -> "module:attribute" (imported lazily).
MODEL_CLASSES: dict[str, str] = {
    "TwoLayerNet": "fastnn.classifiers.fc_net:TwoLayerNet",
    "FullyConnectedNet": "fastnn.classifiers.fc_net:FullyConnectedNet",
    "ThreeLayerConvNet": "fastnn.classifiers.cnn:ThreeLayerConvNet",
}
_REGISTERED: dict[str, type] = {}


class CheckpointError(ValueError):
    """A file is not a readable fastnn model/checkpoint (corrupted, truncated, or foreign)."""


def register_model_class(cls: type, name: str | None = None) -> type:
    """Allow :func:`load_model` to rebuild instances of ``cls`` (usable as a decorator).

    The class must accept its ``get_config()`` dict as keyword arguments.
    """
    if not isinstance(cls, type):
        raise TypeError(f"cls must be a class, got {type(cls).__name__}")
    _REGISTERED[name or cls.__name__] = cls
    return cls


def _model_class(name: str, path: str | os.PathLike) -> type:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in MODEL_CLASSES:
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


# --------------------------------------------------------------------------- writing


def _npz_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def atomic_savez(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                 compress: bool = False) -> Path:
    """Write ``arrays`` to ``path`` (``.npz`` appended when missing) atomically.

    The data go to a temporary file in the same directory, which is flushed, fsync'ed and then
    renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows). If anything fails,
    the temporary file is removed and ``path`` keeps its previous content.

    Returns
    -------
    Path
        The path written.
    """
    path = _npz_path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in arrays.items():
        if isinstance(value, np.ndarray) and value.dtype == object:
            raise TypeError(f"array {key!r} has dtype object, which cannot be saved without pickle")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            (np.savez_compressed if compress else np.savez)(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON-serialisable")


def header_array(header: Mapping[str, Any]) -> np.ndarray:
    """The JSON header as a 0-d unicode array (loadable with ``allow_pickle=False``)."""
    return np.array(json.dumps(header, default=_json_default, sort_keys=True))


def model_header(model: Any) -> dict[str, Any]:
    """Class name, architecture config and scalar batchnorm settings of ``model``."""
    get_config = getattr(model, "get_config", None)
    config = get_config() if callable(get_config) else {}
    try:
        json.dumps(config, default=_json_default)
    except TypeError as exc:
        raise TypeError(f"model.get_config() must be JSON-serialisable: {exc}") from None
    bn_scalars = []
    for bn in getattr(model, "bn_params", None) or []:
        bn_scalars.append({k: v for k, v in bn.items() if not isinstance(v, np.ndarray)})
    return {"class": type(model).__name__, "config": config, "bn_params": bn_scalars}


def model_state_arrays(model: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """``params/<name>`` and ``bn_params/<i>/<key>`` arrays of ``model`` (not copied)."""
    params = getattr(model, "params", None)
    if not isinstance(params, Mapping):
        raise TypeError(f"model must have a params dict, got {type(model).__name__} without one")
    arrays: dict[str, np.ndarray] = {}
    for name, value in params.items():
        if "/" in name:
            raise ValueError(f"parameter names must not contain '/', got {name!r}")
        arrays[f"{prefix}params/{name}"] = np.asarray(value)
    for i, bn in enumerate(getattr(model, "bn_params", None) or []):
        for key, value in bn.items():
            if isinstance(value, np.ndarray):
                arrays[f"{prefix}bn_params/{i}/{key}"] = value
    return arrays


def save_model(path: str | os.PathLike, model: Any, *,
               metadata: Mapping[str, Any] | None = None) -> Path:
    """Save ``model`` (its ``params``, batchnorm running averages and architecture) to ``path``.

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


def read_npz(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a fastnn ``.npz`` eagerly with ``allow_pickle=False``: ``(header, arrays)``.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    CheckpointError
        When it is not a complete fastnn file (truncated, corrupted, foreign, or pickled data).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {os.fspath(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            # read every member now: a truncated zip fails here, not later in the caller
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{os.fspath(path)!r} is not a readable fastnn .npz file (corrupted or truncated?): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if HEADER_KEY not in arrays:
        raise CheckpointError(f"{os.fspath(path)!r} is not a fastnn file (no {HEADER_KEY} header)")
    try:
        header = json.loads(str(arrays.pop(HEADER_KEY)))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{os.fspath(path)!r} has a damaged header: {exc}") from None
    version = header.get("version", 0) if isinstance(header, dict) else None
    # a damaged version (a string, a list) is as unreadable as a newer one, not a TypeError
    if (not isinstance(version, int) or isinstance(version, bool)
            or version > FORMAT_VERSION):
        raise CheckpointError(
            f"{os.fspath(path)!r} has an unknown header or a newer format version "
            f"({header.get('version') if isinstance(header, dict) else header!r})"
        )
    return header, arrays


def restore_model_state(model: Any, arrays: Mapping[str, np.ndarray], header_model: Mapping,
                        path: str | os.PathLike, prefix: str = "") -> None:
    """Copy ``params/`` and ``bn_params/`` arrays into ``model``, checking names and shapes."""
    stored = {k[len(prefix) + 7:]: v for k, v in arrays.items() if k.startswith(prefix + "params/")}
    expected = set(model.params)
    if set(stored) != expected:
        raise CheckpointError(
            f"{os.fspath(path)!r}: stored parameters {sorted(stored)} do not match the model's "
            f"{sorted(expected)}"
        )
    for name, value in stored.items():
        current = np.asarray(model.params[name])
        if value.shape != current.shape:
            raise CheckpointError(
                f"{os.fspath(path)!r}: parameter {name!r} has shape {value.shape}, the model "
                f"expects {current.shape}"
            )
        model.params[name] = value.astype(current.dtype, copy=True)
    bn_params = getattr(model, "bn_params", None)
    bn_scalars = header_model.get("bn_params") or []
    if bn_params is not None:
        for i, scalars in enumerate(bn_scalars[: len(bn_params)]):
            bn_params[i].update(scalars)
        bn_prefix = prefix + "bn_params/"
        for key, value in arrays.items():
            if key.startswith(bn_prefix):
                index, name = key[len(bn_prefix):].split("/", 1)
                if int(index) >= len(bn_params):
                    raise CheckpointError(
                        f"{os.fspath(path)!r}: batchnorm state for layer {index} but the model "
                        f"has {len(bn_params)} normalisation layers"
                    )
                # the model's dtype, not the stored one: float64 running averages in a file
                # must not make a float32 model compute in float64
                bn_params[int(index)][name] = value.astype(_bn_dtype(model, bn_params[int(index)],
                                                                     name, value), copy=True)


def _bn_dtype(model: Any, bn_param: Mapping, name: str, value: np.ndarray) -> np.dtype:
    """dtype for a restored batchnorm array: the model's (its ``dtype`` or the current array)."""
    model_dtype = getattr(model, "dtype", None)
    if model_dtype is not None:
        try:
            dtype = np.dtype(model_dtype)
        except TypeError:
            dtype = None
        if dtype is not None and dtype.kind == "f" and value.dtype.kind == "f":
            return dtype
    current = bn_param.get(name)
    if isinstance(current, np.ndarray) and current.dtype.kind == "f" and value.dtype.kind == "f":
        return current.dtype
    return value.dtype


def load_model(path: str | os.PathLike, *, with_metadata: bool = False) -> Any:
    """Rebuild a model saved by :func:`save_model` (or from a Solver checkpoint).

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
    FileNotFoundError, CheckpointError
        Missing file; corrupted/truncated file, unknown model class, or mismatched parameters.
    """
    header, arrays = read_npz(path)
    if "model" not in header:
        raise CheckpointError(f"{os.fspath(path)!r} holds no model description")
    header_model = header["model"]
    cls = _model_class(header_model.get("class", "?"), path)
    config = header_model.get("config") or {}
    # constructors draw initial weights from NumPy's global random state; loading must not
    # disturb the caller's random stream
    global_state = np.random.get_state()
    try:
        model = cls(**config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{os.fspath(path)!r}: cannot rebuild {cls.__name__}(**{config}): {exc}"
        ) from None
    finally:
        np.random.set_state(global_state)
    restore_model_state(model, arrays, header_model, path)
    if not with_metadata:
        return model
    metadata = dict(header.get("metadata") or {})
    for key, value in arrays.items():
        if key.startswith("metadata/"):
            metadata[key[len("metadata/"):]] = value
    return model, metadata
