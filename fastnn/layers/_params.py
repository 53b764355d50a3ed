"""Small helpers shared by the layer modules: reading ``bn_param``/``dropout_param`` dicts and
the running statistics of the batch-norm layers (vanilla and spatial)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastnn._validation import check_array, check_float

MODES = ("train", "test")


def check_param_dict(param: Any, name: str) -> dict:
    """``param`` must be a dict (the CS231n ``bn_param``/``dropout_param`` convention).

    Parameters
    ----------
    param : dict
        The parameter dict.
    name : str
        Its argument name, for the error message.

    Returns
    -------
    dict
        ``param`` itself.
    """
    if not isinstance(param, dict):
        raise TypeError(f"{name} must be a dict, got {type(param).__name__}")
    return param


def get_mode(param: dict, name: str) -> str:
    """The required ``mode`` key: ``"train"`` or ``"test"``.

    Parameters
    ----------
    param : dict
        The parameter dict.
    name : str
        Its argument name, for the error message.

    Returns
    -------
    str
        The mode.
    """
    if "mode" not in param:
        raise ValueError(f"{name} must contain the key 'mode' ('train' or 'test'); got keys "
                         f"{sorted(param)}")
    mode = param["mode"]
    if mode not in MODES:
        raise ValueError(f"{name}['mode'] must be 'train' or 'test'; got {mode!r}")
    return mode


def get_eps(param: dict, name: str, default: float = 1e-5) -> float:
    """``eps`` as a Python float (so it never upcasts float32 arrays); it must be > 0, since a
    constant feature would otherwise divide by ``sqrt(0)``.

    Parameters
    ----------
    param : dict
        The parameter dict.
    name : str
        Its argument name, for the error message.
    default : float
        Used when ``param`` has no ``eps``.

    Returns
    -------
    float
        ``eps``, finite and > 0.
    """
    return check_float(param.get("eps", default), f"{name}['eps']", minimum=0.0,
                       min_inclusive=False)


def get_momentum(param: dict, name: str, default: float = 0.9) -> float:
    """``momentum`` of the running averages as a Python float in [0, 1).

    Parameters
    ----------
    param : dict
        The parameter dict.
    name : str
        Its argument name, for the error message.
    default : float
        Used when ``param`` has no ``momentum``.

    Returns
    -------
    float
        ``momentum``.
    """
    return check_float(param.get("momentum", default), f"{name}['momentum']", minimum=0.0,
                       maximum=1.0, max_inclusive=False)


def _running(param: dict, name: str, key: str, d: int, dtype: np.dtype) -> np.ndarray:
    value = param.get(key)
    if value is None:
        return np.zeros(d, dtype=dtype)
    value = check_array(value, f"{name}[{key!r}]", ndim=1, finite=False)
    if value.shape != (d,):
        raise ValueError(f"{name}[{key!r}] must have shape ({d},); got {value.shape}")
    return value


def get_running_stats(param: dict, name: str, d: int,
                      dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``running_mean`` and ``running_var`` of a batch-norm parameter dict.

    Parameters
    ----------
    param : dict
        The parameter dict.
    name : str
        Its argument name, for the error message.
    d : int
        Number of features (channels): both must have shape (d,).
    dtype : numpy dtype
        Dtype of the zeros used for a missing (or None) entry.

    Returns
    -------
    running_mean, running_var : ndarray, shape (d,)
        The variances are checked to be non-negative.
    """
    running_mean = _running(param, name, "running_mean", d, dtype)
    running_var = _running(param, name, "running_var", d, dtype)
    if np.any(running_var < 0):
        raise ValueError(f"{name}['running_var'] must hold non-negative variances; got "
                         f"minimum {running_var.min()}")
    return running_mean, running_var


def blend_running_stats(
    running_mean: np.ndarray, running_var: np.ndarray, mean: np.ndarray, var: np.ndarray,
    momentum: float,
) -> tuple[np.ndarray, np.ndarray]:
    """CS231n's update of the running averages (new arrays)::

        running = momentum * running + (1 - momentum) * batch

    with the biased batch variance (PyTorch's ``momentum`` is our ``1 - momentum``, and it
    blends in the unbiased variance).
    """
    return (momentum * running_mean + (1 - momentum) * mean,
            momentum * running_var + (1 - momentum) * var)
