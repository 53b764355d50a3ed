"""First-order update rules and learning-rate schedules (CS231n ``optim.py``, extended).

Update rules
------------
Every rule has the CS231n signature ``rule(w, dw, config=None) -> (next_w, config)``:

- ``w``: the current weights; ``dw``: the gradient of the loss with respect to ``w``;
- ``config``: a dict of hyperparameters (``learning_rate``, ``momentum``, ...) and of the state the
  rule carries from step to step (``velocity``, ``cache``, ``m``, ``v``, ``t``). Missing keys are
  filled with the defaults below; the same dict is returned, updated, and must be passed back on
  the next step.

Who may be overwritten (the in-place rule)
------------------------------------------
``rule(w, dw, config)`` (the CS231n call) is *functional*: it never writes into ``w``, ``dw`` or any
array the caller put into ``config``; it returns a new ``next_w`` and stores new state arrays in
``config``. (CS231n's own ``sgd`` happens to overwrite ``w``; fastnn's does not.)

``rule(w, dw, config, out=w)`` is the opt-in *in-place* form: the new weights are written into
``out`` (usually ``w`` itself, which is then the returned array) and the state arrays in ``config``
are updated in place too. This saves the allocation of ~2-10 temporaries per parameter per step,
and for Adam/momentum/RMSprop it runs a fused one-pass compiled kernel
(:mod:`fastnn.kernels.optim`). The :class:`fastnn.solver.Solver` owns its parameters and configs
and uses this form. ``dw`` is never written in either form.

Defaults (CS231n): ``learning_rate`` 1e-2 (adam 1e-3), ``momentum`` 0.9, ``decay_rate`` 0.99,
``epsilon`` 1e-8, ``beta1`` 0.9, ``beta2`` 0.999; state arrays start at zero and ``t`` at 0.

Learning-rate schedules
-----------------------
A schedule is any callable ``schedule(step) -> multiplier`` (``step`` = 0-based iteration); the
Solver uses ``learning_rate = base_lr * schedule(step)``. Provided: :class:`ConstantSchedule`,
:class:`StepSchedule`, :class:`CosineSchedule`, :class:`LinearSchedule`,
:class:`InverseSqrtSchedule`, and :class:`LinearWarmup`, which wraps any of them.
:func:`make_schedule` builds them by name with epoch-based arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_LEARNING_RATES",
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


# --------------------------------------------------------------------------- helpers


def _prepare(w, dw, config, out, rule: str, **defaults) -> tuple[dict, np.ndarray | None]:
    """Validate the call and fill config defaults; returns ``(config, out)``."""
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
        raise TypeError(f"w must be a float ndarray, got {type(w).__name__} "
                        f"{getattr(w, 'dtype', '')}".rstrip())
    if not isinstance(dw, np.ndarray):
        raise TypeError(f"dw must be an ndarray, got {type(dw).__name__}")
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
    lr = config["learning_rate"]
    # a plain float (the common case) skips the slower checks
    if type(lr) is not float and (
        isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer))
    ):
        raise TypeError(f"config['learning_rate'] must be a real number, got {lr!r}")
    if not 0 <= lr < math.inf:
        raise ValueError(f"config['learning_rate'] must be finite and >= 0, got {lr}")
    return config, out


def _state(config: dict, key: str, w: np.ndarray, inplace: bool) -> np.ndarray:
    """The state array ``config[key]`` (zeros on the first step).

    In the in-place form the array is updated where it lies, so it must be a writeable
    C-contiguous array of ``w``'s dtype; anything else is converted once (a copy).
    """
    s = config.get(key)
    if s is None:
        s = np.zeros_like(w, order="C")
        config[key] = s
        return s
    s = np.asarray(s)
    if s.shape != w.shape:
        raise ValueError(f"config[{key!r}] must have the shape of w {w.shape}, got {s.shape}")
    if inplace and (s.dtype != w.dtype or not s.flags.c_contiguous or not s.flags.writeable):
        s = np.array(s, dtype=w.dtype, order="C")
        config[key] = s
    return s


def _weights_out(w: np.ndarray, out: np.ndarray) -> np.ndarray:
    if out is not w:
        np.copyto(out, w)
    return out


_KERNELS: dict | None = None


def _fused(name: str):
    """The compiled fused kernel for ``name`` or None when the extension is not built."""
    global _KERNELS
    if _KERNELS is None:  # imported on first use: fastnn.kernels imports this package's siblings
        from fastnn.kernels import optim as kernels_optim

        _KERNELS = {op: kernels_optim.compiled_or_none(op) for op in
                    ("adam_update", "sgd_momentum_update", "rmsprop_update")}
    return _KERNELS[name]


_FUSABLE = (np.dtype(np.float32), np.dtype(np.float64))


def _can_fuse(w: np.ndarray, *others: np.ndarray) -> bool:
    dtype = w.dtype
    if dtype not in _FUSABLE or not w.flags.c_contiguous:
        return False
    for a in others:
        if a.dtype != dtype or not a.flags.c_contiguous:
            return False
    return True


# --------------------------------------------------------------------------- update rules


def sgd(w: np.ndarray, dw: np.ndarray, config: dict | None = None, *,
        out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Vanilla stochastic gradient descent: ``w <- w - learning_rate * dw``.

    config: ``learning_rate`` (1e-2).
    """
    config, out = _prepare(w, dw, config, out, "sgd")
    lr = config["learning_rate"]
    if out is None:
        return w - lr * dw, config
    w = _weights_out(w, out)
    w -= lr * dw
    return w, config


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: dict | None = None, *,
                 out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """SGD with momentum::

        v <- momentum * v - learning_rate * dw
        w <- w + v

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), ``velocity`` (zeros like w).
    """
    config, out = _prepare(w, dw, config, out, "sgd_momentum", momentum=0.9)
    lr, mu = config["learning_rate"], config["momentum"]
    if out is None:
        v = mu * _state(config, "velocity", w, False) - lr * dw
        config["velocity"] = v
        return w + v, config
    w = _weights_out(w, out)
    v = _state(config, "velocity", w, True)
    kernel = _fused("sgd_momentum_update")
    if kernel is not None and _can_fuse(w, dw, v):
        kernel(w, dw, v, lr, mu)
    else:
        v *= mu
        v -= lr * dw
        w += v
    return w, config


def nesterov_momentum(w: np.ndarray, dw: np.ndarray, config: dict | None = None, *,
                      out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Nesterov momentum in the CS231n notes' form (gradient taken at the current ``w``)::

        v_prev <- v
        v <- momentum * v - learning_rate * dw
        w <- w - momentum * v_prev + (1 + momentum) * v

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), ``velocity`` (zeros like w).
    """
    config, out = _prepare(w, dw, config, out, "nesterov_momentum", momentum=0.9)
    lr, mu = config["learning_rate"], config["momentum"]
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


def adagrad(w: np.ndarray, dw: np.ndarray, config: dict | None = None, *,
            out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Adagrad: per-parameter rates from the running sum of squared gradients::

        cache <- cache + dw**2
        w <- w - learning_rate * dw / (sqrt(cache) + epsilon)

    config: ``learning_rate`` (1e-2), ``epsilon`` (1e-8), ``cache`` (zeros like w).
    """
    config, out = _prepare(w, dw, config, out, "adagrad", epsilon=1e-8)
    lr, eps = config["learning_rate"], config["epsilon"]
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


def rmsprop(w: np.ndarray, dw: np.ndarray, config: dict | None = None, *,
            out: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """RMSProp: a moving average of squared gradients sets per-parameter rates::

        cache <- decay_rate * cache + (1 - decay_rate) * dw**2
        w <- w - learning_rate * dw / (sqrt(cache) + epsilon)

    config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8), ``cache``.
    """
    config, out = _prepare(w, dw, config, out, "rmsprop", decay_rate=0.99, epsilon=1e-8)
    lr, rho, eps = config["learning_rate"], config["decay_rate"], config["epsilon"]
    if out is None:
        cache = rho * _state(config, "cache", w, False) + (1 - rho) * dw**2
        config["cache"] = cache
        return w - lr * dw / (np.sqrt(cache) + eps), config
    w = _weights_out(w, out)
    cache = _state(config, "cache", w, True)
    kernel = _fused("rmsprop_update")
    if kernel is not None and _can_fuse(w, dw, cache):
        kernel(w, dw, cache, lr, rho, eps)
    else:
        cache *= rho
        cache += (1 - rho) * (dw * dw)
        denom = np.sqrt(cache)
        denom += eps
        w -= lr * dw / denom
    return w, config


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
    config, out = _prepare(w, dw, config, out, "adam", beta1=0.9, beta2=0.999, epsilon=1e-8,
                           t=0)
    lr, b1, b2, eps = (config["learning_rate"], config["beta1"], config["beta2"],
                       config["epsilon"])
    config["t"] = t = int(config["t"]) + 1
    if out is None:
        m = b1 * _state(config, "m", w, False) + (1 - b1) * dw
        v = b2 * _state(config, "v", w, False) + (1 - b2) * (dw**2)
        config["m"], config["v"] = m, v
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        return w - lr * m_hat / (np.sqrt(v_hat) + eps), config
    w = _weights_out(w, out)
    m = _state(config, "m", w, True)
    v = _state(config, "v", w, True)
    kernel = _fused("adam_update")
    if kernel is not None and _can_fuse(w, dw, m, v):
        kernel(w, dw, m, v, lr, b1, b2, eps, t)
    else:
        m *= b1
        m += (1 - b1) * dw
        v *= b2
        v += (1 - b2) * (dw * dw)
        denom = np.sqrt(v / (1 - b2**t))
        denom += eps
        w -= lr * (m / (1 - b1**t)) / denom
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
    """The update rule called ``name``; a ValueError naming the choices otherwise."""
    if not isinstance(name, str) or name not in UPDATE_RULES:
        raise ValueError(
            f"update_rule must be one of {', '.join(map(repr, UPDATE_RULES))} (or a callable "
            f"rule(w, dw, config)); got {name!r}"
        )
    return UPDATE_RULES[name]


# --------------------------------------------------------------------------- schedules


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _factor(value: Any, name: str, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not (low <= value <= high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def _step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    return int(step)


class Schedule:
    """Base class: ``schedule(step) -> learning-rate multiplier`` for the 0-based ``step``."""

    def __call__(self, step: int) -> float:
        return self.factor(_step(step))

    def factor(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class ConstantSchedule(Schedule):
    """Multiplier 1 at every step."""

    def factor(self, step: int) -> float:
        return 1.0


class StepSchedule(Schedule):
    """``gamma ** (step // step_size)``: multiply the rate by ``gamma`` every ``step_size`` steps."""

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = _positive_int(step_size, "step_size")
        self.gamma = _factor(gamma, "gamma", 0.0, math.inf)

    def factor(self, step: int) -> float:
        return self.gamma ** (step // self.step_size)


class CosineSchedule(Schedule):
    """Cosine annealing from 1 to ``min_factor`` over ``total_steps`` (then held)::

        min_factor + (1 - min_factor) * (1 + cos(pi * min(step, total_steps) / total_steps)) / 2
    """

    def __init__(self, total_steps: int, min_factor: float = 0.0):
        self.total_steps = _positive_int(total_steps, "total_steps")
        self.min_factor = _factor(min_factor, "min_factor")

    def factor(self, step: int) -> float:
        progress = min(step, self.total_steps) / self.total_steps
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


class LinearSchedule(Schedule):
    """Linear decay from 1 to ``end_factor`` over ``total_steps`` (then held)."""

    def __init__(self, total_steps: int, end_factor: float = 0.0):
        self.total_steps = _positive_int(total_steps, "total_steps")
        self.end_factor = _factor(end_factor, "end_factor")

    def factor(self, step: int) -> float:
        progress = min(step, self.total_steps) / self.total_steps
        return 1.0 - (1.0 - self.end_factor) * progress


class InverseSqrtSchedule(Schedule):
    """``sqrt(timescale / max(step, timescale))``: 1 up to ``timescale``, then ``1/sqrt(step)``
    decay (the Transformer schedule without its warm-up; wrap it in :class:`LinearWarmup`)."""

    def __init__(self, timescale: int = 1):
        self.timescale = _positive_int(timescale, "timescale")

    def factor(self, step: int) -> float:
        return math.sqrt(self.timescale / max(step, self.timescale))


class LinearWarmup(Schedule):
    """Linear warm-up before any schedule.

    For ``step < warmup_steps`` the multiplier is ``(step + 1) / warmup_steps`` (so the first step
    already moves and step ``warmup_steps - 1`` reaches 1); afterwards it is
    ``schedule(step - warmup_steps)``: the wrapped schedule starts its own clock when the warm-up
    ends (give it ``total_steps - warmup_steps``).
    """

    def __init__(self, schedule: Callable[[int], float] | None, warmup_steps: int):
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule must be callable or None, got {type(schedule).__name__}")
        self.schedule = schedule if schedule is not None else ConstantSchedule()
        self.warmup_steps = _positive_int(warmup_steps, "warmup_steps")

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        return float(self.schedule(step - self.warmup_steps))


SCHEDULES = ("constant", "step", "cosine", "linear", "inverse_sqrt")


def make_schedule(
    name: str,
    *,
    total_steps: int,
    steps_per_epoch: int = 1,
    warmup_steps: int = 0,
    step_epochs: float | None = None,
    gamma: float = 0.1,
    min_factor: float = 0.0,
) -> Schedule:
    """Build a schedule by name for a run of ``total_steps`` iterations.

    Parameters
    ----------
    name : {"constant", "step", "cosine", "linear", "inverse_sqrt"}
    total_steps : int
        Iterations in the whole run (warm-up included).
    steps_per_epoch : int
        Iterations per epoch (converts ``step_epochs``).
    warmup_steps : int
        Linear warm-up length; 0 for none.
    step_epochs : float, optional
        For ``"step"``: decay every ``step_epochs`` epochs (default: a third of the run).
    gamma : float
        For ``"step"``: the decay factor.
    min_factor : float
        For ``"cosine"`` / ``"linear"``: the final multiplier.
    """
    if name not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(map(repr, SCHEDULES))}; "
                         f"got {name!r}")
    total_steps = _positive_int(total_steps, "total_steps")
    steps_per_epoch = _positive_int(steps_per_epoch, "steps_per_epoch")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)) or (
        warmup_steps < 0
    ):
        raise ValueError(f"warmup_steps must be a non-negative integer, got {warmup_steps!r}")
    remaining = max(1, total_steps - warmup_steps)
    schedule: Schedule
    if name == "constant":
        schedule = ConstantSchedule()
    elif name == "step":
        if step_epochs is None:
            size = max(1, remaining // 3)
        else:
            if not step_epochs > 0:
                raise ValueError(f"step_epochs must be > 0, got {step_epochs!r}")
            size = max(1, round(step_epochs * steps_per_epoch))
        schedule = StepSchedule(size, gamma)
    elif name == "cosine":
        schedule = CosineSchedule(remaining, min_factor)
    elif name == "linear":
        schedule = LinearSchedule(remaining, min_factor)
    else:
        # decays as 1/sqrt(epoch): flat through the first epoch, then 1/sqrt(step/steps_per_epoch)
        schedule = InverseSqrtSchedule(steps_per_epoch)
    if warmup_steps > 0:
        schedule = LinearWarmup(schedule, warmup_steps)
    return schedule
