"""Small helpers shared by the layer modules: reading ``bn_param``/``dropout_param`` dicts."""

from __future__ import annotations

from typing import Any

from fastnn._validation import check_float

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
