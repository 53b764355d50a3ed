"""First-order update rules (CS231n ``optim.py``, extended).

Update rules
------------
Every rule has the CS231n signature ``rule(w, dw, config=None) -> (next_w, config)``:

- ``w``: the current weights; ``dw``: the gradient of the loss with respect to ``w`` (real-valued;
  in the functional form both may be lists or other array-likes, converted as arrays);
- ``config``: a dict of hyperparameters (``learning_rate``, ``momentum``, ...) and of the state the
  rule carries from step to step (``velocity``, ``cache``, ``m``, ``v``, ``t``). Missing keys are
  filled with the defaults below; the same dict is returned, updated, and must be passed back on
  the next step. Every key is checked: ``learning_rate`` finite and >= 0 (0 freezes the weights,
  as a schedule or ``lr_decay`` may), ``momentum``, ``beta1`` and ``beta2`` in [0, 1),
  ``decay_rate`` in [0, 1], ``epsilon`` > 0, ``t`` a non-negative integer, state arrays of
  ``w``'s shape; a bad value raises a ValueError or TypeError naming the key.

Who may be overwritten (the in-place rule)
------------------------------------------
``rule(w, dw, config)`` (the CS231n call) is *functional*: it never writes into ``w``, ``dw`` or any
array the caller put into ``config``; it returns a new ``next_w`` and stores new state arrays in
``config``. (CS231n's own ``sgd`` happens to overwrite ``w``; fastnn's does not.)

``rule(w, dw, config, out=w)`` is the opt-in *in-place* form: the new weights are written into
``out`` (usually ``w`` itself, which is then the returned array) and the state arrays in
``config`` are updated in place (a state that is not a writeable C-contiguous array of ``out``'s
dtype, such as a list, is converted once and the converted array is stored in ``config``). It
saves the temporaries of the NumPy formulas, and for Adam, momentum and RMSProp on float32/float64
C-contiguous weights it runs the one-pass kernels of :mod:`fastnn.kernels.optim`. The
:class:`fastnn.solver.Solver` owns its parameters and configs and uses this form. ``dw`` is never
written in either form.

Defaults (CS231n): ``learning_rate`` 1e-2 (adam 1e-3), ``momentum`` 0.9, ``decay_rate`` 0.99,
``epsilon`` 1e-8, ``beta1`` 0.9, ``beta2`` 0.999; state arrays start at zero and ``t`` at 0.

The learning-rate schedules live in :mod:`fastnn.schedules` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fastnn._validation import check_array, check_float
from fastnn.kernels import optim as kernels
from fastnn.schedules import (
    SCHEDULES,
    ConstantSchedule,
    CosineSchedule,
    InverseSqrtSchedule,
    LinearSchedule,
    LinearWarmup,
    Schedule,
    StepSchedule,
    make_schedule,
)

__all__ = [
    "DEFAULT_LEARNING_RATES",
    "RULE_STATE",
    "SCHEDULES",
    "UPDATE_RULES",
    "ConstantSchedule",
    "CosineSchedule",
    "InverseSqrtSchedule",
    "LinearSchedule",
    "LinearWarmup",
    "Schedule",
    "StepSchedule",
    "adagrad",
    "adam",
    "clip_by_global_norm",
    "clip_by_value",
    "get_update_rule",
    "make_schedule",
    "nesterov_momentum",
    "rmsprop",
    "sgd",
    "sgd_momentum",
]

DEFAULT_LEARNING_RATES = {
    "sgd": 1e-2,
    "sgd_momentum": 1e-2,
    "nesterov_momentum": 1e-2,
    "adagrad": 1e-2,
    "rmsprop": 1e-2,
    "adam": 1e-3,
}

#: The state each rule keeps in a parameter's config, set at its first step: names of arrays of
#: the parameter's shape, and names of integer step counters (checkpoints check both).
RULE_STATE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sgd": ((), ()),
    "sgd_momentum": (("velocity",), ()),
    "nesterov_momentum": (("velocity",), ()),
    "adagrad": (("cache",), ()),
    "rmsprop": (("cache",), ()),
    "adam": (("m", "v"), ("t",)),
}


# --------------------------------------------------------------------------- helpers

# key -> (lowest, highest, lowest allowed?, highest allowed?) for the float hyperparameters
_BOUNDS: dict[str, tuple[float, float | None, bool, bool]] = {
    "learning_rate": (0.0, None, True, True),
    "momentum": (0.0, 1.0, True, False),
    "decay_rate": (0.0, 1.0, True, True),
    "beta1": (0.0, 1.0, True, False),
    "beta2": (0.0, 1.0, True, False),
    "epsilon": (0.0, None, False, True),
}


def _hyper(config: dict, key: str) -> float:
    """``config[key]`` checked against its bounds."""
    low, high, low_ok, high_ok = _BOUNDS[key]
    return check_float(config[key], f"config[{key!r}]", minimum=low, maximum=high,
                       min_inclusive=low_ok, max_inclusive=high_ok)


def _prepare(w: Any, dw: Any, config: Any, out: Any, rule: str,
             **defaults: float) -> tuple[np.ndarray, np.ndarray, dict, list[float]]:
    """Validate the call and the config (defaults filled in).

    Returns ``w`` and ``dw`` (array-likes converted, in the functional form only), the config
    and the values of ``learning_rate`` and of the keys of ``defaults`` (except ``t``), in that
    order.
    """
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    if out is None and not isinstance(w, np.ndarray):
        # the functional form reads w only: a list (or other array-like) is converted, to float64
        # when it holds no float dtype of its own
        w = check_array(w, "w", dtype="float", allow_empty=True, finite=False)
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
        raise TypeError(f"w must be a float ndarray, got {type(w).__name__} "
                        f"{getattr(w, 'dtype', '')}".rstrip())
    if not isinstance(dw, np.ndarray):
        if out is not None:
            raise TypeError(f"dw must be an ndarray, got {type(dw).__name__}")
        dw = check_array(dw, "dw", dtype=None, allow_empty=True, finite=False)
    if dw.dtype.kind not in "fiub":
        raise TypeError(f"dw must be a real-valued (float, integer or bool) array, got dtype "
                        f"{dw.dtype}")
    if dw.shape != w.shape:
        raise ValueError(f"dw must have the shape of w {w.shape}, got {dw.shape}")
    if out is not None:
        if not isinstance(out, np.ndarray) or out.shape != w.shape or out.dtype != w.dtype:
            raise ValueError(
                f"out must be an ndarray with the shape {w.shape} and dtype {w.dtype} of w, got "
                f"{getattr(out, 'shape', type(out).__name__)} {getattr(out, 'dtype', '')}"
            )
        if not out.flags.writeable:
            raise ValueError("out must be writeable")
    config.setdefault("learning_rate", DEFAULT_LEARNING_RATES[rule])
    for key, value in defaults.items():
        config.setdefault(key, value)
    values = [_hyper(config, "learning_rate")]
    values += [_hyper(config, key) for key in defaults if key != "t"]
    if "t" in defaults:
        config["t"] = _step_count(config["t"])
    return w, dw, config, values


def _step_count(t: Any) -> int:
    """Adam's ``t``: a non-negative integer (numpy integers too; bools and 2.5 are not)."""
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError(f"config['t'] must be a non-negative integer (steps taken), got {t!r}")
    return int(t)


def _state(config: dict, key: str, w: np.ndarray, inplace: bool) -> np.ndarray:
    """The state array ``config[key]`` (zeros on the first step), checked against ``w``.

    In the in-place form the array is updated where it lies, so it must be a writeable
    C-contiguous array of ``w``'s dtype; anything else (a list, another dtype) is converted
    once and the converted array is stored back in ``config``.
    """
    s = config.get(key)
    if s is None:
        s = np.zeros_like(w, order="C")
        config[key] = s
        return s
    if not isinstance(s, np.ndarray):
        s = check_array(s, f"config[{key!r}]", dtype=None, allow_empty=True, finite=False)
    if s.shape != w.shape:
        raise ValueError(f"config[{key!r}] must have the shape of w {w.shape}, got {s.shape}")
    if s.dtype.kind not in "fiub":
        raise TypeError(f"config[{key!r}] must be a real-valued array, got dtype {s.dtype}")
    if inplace:
        if s.dtype != w.dtype or not s.flags.c_contiguous or not s.flags.writeable:
            s = np.array(s, dtype=w.dtype, order="C")
        config[key] = s  # a list converted by asarray must not be lost
    return s


def _weights_out(w: np.ndarray, out: np.ndarray) -> np.ndarray:
    if out is not w:
        np.copyto(out, w)
    return out


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _kernel_ready(out: np.ndarray | None) -> bool:
    """Whether the in-place kernels of :mod:`fastnn.kernels.optim` can update ``out``."""
    return out is not None and out.dtype in _KERNEL_DTYPES and out.flags.c_contiguous


def _finish(next_w: np.ndarray, config: dict, out: np.ndarray | None) -> tuple[np.ndarray, dict]:
    """Return the functional result, written into ``out`` when one was given."""
    if out is None:
        return next_w, config
    np.copyto(out, next_w)
    return out, config


#: The numpydoc sections every update rule shares, appended to each rule's own docstring.
_RULE_SECTIONS = """
    Parameters
    ----------
    w : ndarray of float
        The current weights (without ``out``, any array-like: a list is converted).
    dw : ndarray
        The gradient, shape of ``w``, real-valued (without ``out``, any array-like).
    config : dict, optional
        Hyperparameters and state (listed above); updated and returned.
    out : ndarray, optional
        Write the new weights here (usually ``w`` itself) and update the state arrays in place.

    Returns
    -------
    next_w : ndarray
        The new weights (``out`` when given).
    config : dict
        The updated config, to pass to the next step.
"""


def _rule_doc(func: Callable[..., Any]) -> Callable[..., Any]:
    """Append the shared Parameters/Returns sections to an update rule's docstring."""
    if func.__doc__ is not None:  # None under python -OO
        func.__doc__ = f"{func.__doc__.rstrip()}\n{_RULE_SECTIONS}"
    return func


# --------------------------------------------------------------------------- update rules

@_rule_doc
def sgd(w: np.ndarray, dw: np.ndarray, config: dict | None = None, *,
        out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Vanilla stochastic gradient descent: ``w <- w - learning_rate * dw``.

    config: ``learning_rate`` (1e-2).
    """
    w, dw, config, (lr,) = _prepare(w, dw, config, out, "sgd")
    if out is None:
        return w - lr * dw, config
    w = _weights_out(w, out)
    w -= lr * dw
    return w, config


@_rule_doc
def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: dict | None = None, *,
                 out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """SGD with momentum::

        v <- momentum * v - learning_rate * dw
        w <- w + v

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), ``velocity`` (zeros like w).
    """
    w, dw, config, (lr, mu) = _prepare(w, dw, config, out, "sgd_momentum", momentum=0.9)
    if not _kernel_ready(out):
        v = mu * _state(config, "velocity", w, False) - lr * dw
        config["velocity"] = v
        return _finish(w + v, config, out)
    w = _weights_out(w, out)
    v = _state(config, "velocity", w, True)
    kernels.sgd_momentum_update(w, np.ascontiguousarray(dw, dtype=w.dtype), v, lr, mu)
    return w, config


@_rule_doc
def nesterov_momentum(w: np.ndarray, dw: np.ndarray, config: dict | None = None, *,
                      out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Nesterov momentum in the CS231n notes' form (gradient at the current ``w``)::

        v_prev <- v
        v <- momentum * v - learning_rate * dw
        w <- w - momentum * v_prev + (1 + momentum) * v

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), ``velocity`` (zeros like w).
    """
    w, dw, config, (lr, mu) = _prepare(w, dw, config, out, "nesterov_momentum", momentum=0.9)
    if out is None:
        v_prev = _state(config, "velocity", w, False)
        v = mu * v_prev - lr * dw
        config["velocity"] = v
        return w - mu * v_prev + (1 + mu) * v, config
    w = _weights_out(w, out)
    v = _state(config, "velocity", w, True)
    w -= mu * v
    v *= mu
    v -= lr * dw
    w += (1 + mu) * v
    return w, config


@_rule_doc
def adagrad(w: np.ndarray, dw: np.ndarray, config: dict | None = None, *,
            out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Adagrad: per-parameter rates from the running sum of squared gradients::

        cache <- cache + dw**2
        w <- w - learning_rate * dw / (sqrt(cache) + epsilon)

    config: ``learning_rate`` (1e-2), ``epsilon`` (1e-8), ``cache`` (zeros like w).
    """
    w, dw, config, (lr, eps) = _prepare(w, dw, config, out, "adagrad", epsilon=1e-8)
    if out is None:
        cache = _state(config, "cache", w, False) + dw**2
        config["cache"] = cache
        return w - lr * dw / (np.sqrt(cache) + eps), config
    w = _weights_out(w, out)
    cache = _state(config, "cache", w, True)
    cache += dw * dw
    denom = np.sqrt(cache)
    denom += eps
    w -= lr * dw / denom
    return w, config


@_rule_doc
def rmsprop(w: np.ndarray, dw: np.ndarray, config: dict | None = None, *,
            out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """RMSProp: a moving average of squared gradients sets per-parameter rates::

        cache <- decay_rate * cache + (1 - decay_rate) * dw**2
        w <- w - learning_rate * dw / (sqrt(cache) + epsilon)

    config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8), ``cache``.
    """
    w, dw, config, (lr, rho, eps) = _prepare(w, dw, config, out, "rmsprop", decay_rate=0.99,
                                             epsilon=1e-8)
    if not _kernel_ready(out):
        cache = rho * _state(config, "cache", w, False) + (1 - rho) * dw**2
        config["cache"] = cache
        return _finish(w - lr * dw / (np.sqrt(cache) + eps), config, out)
    w = _weights_out(w, out)
    cache = _state(config, "cache", w, True)
    kernels.rmsprop_update(w, np.ascontiguousarray(dw, dtype=w.dtype), cache, lr, rho, eps)
    return w, config


@_rule_doc
def adam(w: np.ndarray, dw: np.ndarray, config: dict | None = None, *,
         out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Adam (Kingma & Ba) with bias correction; ``t`` is incremented *before* it is used::

        t <- t + 1
        m <- beta1 * m + (1 - beta1) * dw
        v <- beta2 * v + (1 - beta2) * dw**2
        m_hat <- m / (1 - beta1**t)
        v_hat <- v / (1 - beta2**t)
        w <- w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999), ``epsilon`` (1e-8),
    ``m``, ``v`` (zeros like w), ``t`` (0).
    """
    w, dw, config, (lr, b1, b2, eps) = _prepare(w, dw, config, out, "adam", beta1=0.9,
                                                beta2=0.999, epsilon=1e-8, t=0)
    config["t"] = t = config["t"] + 1
    if not _kernel_ready(out):
        m = b1 * _state(config, "m", w, False) + (1 - b1) * dw
        v = b2 * _state(config, "v", w, False) + (1 - b2) * (dw**2)
        config["m"], config["v"] = m, v
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        return _finish(w - lr * m_hat / (np.sqrt(v_hat) + eps), config, out)
    w = _weights_out(w, out)
    m = _state(config, "m", w, True)
    v = _state(config, "v", w, True)
    kernels.adam_update(w, np.ascontiguousarray(dw, dtype=w.dtype), m, v, lr, b1, b2, eps, t)
    return w, config


UPDATE_RULES: dict[str, Callable[..., tuple[np.ndarray, dict]]] = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "nesterov_momentum": nesterov_momentum,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
}


def get_update_rule(name: str) -> Callable[..., tuple[np.ndarray, dict]]:
    """The update rule called ``name``.

    Parameters
    ----------
    name : str
        One of the keys of :data:`UPDATE_RULES`.

    Returns
    -------
    callable
        ``rule(w, dw, config=None, *, out=None) -> (next_w, config)``.

    Raises
    ------
    ValueError
        ``name`` is not a known rule; the message lists the choices.
    """
    if not isinstance(name, str) or name not in UPDATE_RULES:
        raise ValueError(
            f"update_rule must be one of {', '.join(map(repr, UPDATE_RULES))} (or a callable "
            f"rule(w, dw, config)); got name={name!r}"
        )
    return UPDATE_RULES[name]


# ------------------------------------------------------------------------- gradient clipping
def _check_grads(grads: Any) -> dict[str, np.ndarray]:
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict of name -> gradient array; got {type(grads).__name__}")
    return {name: check_array(g, f"grads[{name!r}]", finite=False, allow_empty=True)
            for name, g in grads.items()}


def clip_by_global_norm(grads: dict, max_norm: float) -> tuple[dict, float]:
    """Rescale all gradients together so their joint L2 norm is at most ``max_norm``.

    With ``norm = sqrt(sum of squares of every entry of every gradient)``, each gradient is
    multiplied by ``max_norm / norm`` when ``norm > max_norm`` (the direction is kept; only the
    step length is capped), as the course notes describe for exploding RNN gradients.

    Not in place: a new dict is returned; clipped gradients are new arrays, unclipped ones are the
    caller's arrays (the caller's dict and arrays are never written).

    Parameters
    ----------
    grads : dict of str -> array_like
    max_norm : float
        Finite and > 0.

    Returns
    -------
    clipped : dict of str -> ndarray
    norm : float
        The global norm before clipping (NaN if a gradient holds NaN: nothing is scaled then).
    """
    max_norm = check_float(max_norm, "max_norm", minimum=0.0, min_inclusive=False)
    grads = _check_grads(grads)
    norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    if not norm > max_norm:
        return dict(grads), norm
    scale = max_norm / norm
    return {name: g * np.asarray(scale, dtype=g.dtype) for name, g in grads.items()}, norm


def clip_by_value(grads: dict, limit: float) -> dict:
    """Clip every gradient entry into ``[-limit, limit]`` (element-wise; changes the direction).

    Not in place: returns a new dict of new arrays; the caller's dict and arrays are never written.

    Parameters
    ----------
    grads : dict of str -> array_like
    limit : float
        Finite and > 0.

    Returns
    -------
    dict of str -> ndarray
    """
    limit = check_float(limit, "limit", minimum=0.0, min_inclusive=False)
    return {name: np.clip(g, -limit, limit) for name, g in _check_grads(grads).items()}
