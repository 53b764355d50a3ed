"""Learning-rate schedules: ``schedule(step) -> multiplier`` for the 0-based iteration ``step``.

The Solver uses ``learning_rate = base_lr * schedule(step)``. Provided: :class:`ConstantSchedule`,
:class:`StepSchedule`, :class:`CosineSchedule`, :class:`LinearSchedule`,
:class:`InverseSqrtSchedule`, and :class:`LinearWarmup`, which wraps any of them (or any callable).
:func:`make_schedule` builds them by name with epoch-based arguments. Everything here is also
importable from :mod:`fastnn.optim`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from fastnn._validation import check_float

__all__ = [
    "SCHEDULES",
    "ConstantSchedule",
    "CosineSchedule",
    "InverseSqrtSchedule",
    "LinearSchedule",
    "LinearWarmup",
    "Schedule",
    "StepSchedule",
    "make_schedule",
]


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _factor(value: Any, name: str, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) or (
        isinstance(value, (complex, np.complexfloating))
    ):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
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
        """The multiplier at ``step`` (a non-negative integer; a ValueError otherwise).

        Parameters
        ----------
        step : int
            0-based iteration.

        Returns
        -------
        float
            The learning-rate multiplier.
        """
        return self.factor(_step(step))

    def factor(self, step: int) -> float:  # pragma: no cover - abstract
        """The multiplier at a validated ``step``; subclasses implement it."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class ConstantSchedule(Schedule):
    """Multiplier 1 at every step."""

    def factor(self, step: int) -> float:
        """Always 1."""
        return 1.0


class StepSchedule(Schedule):
    """``gamma ** (step // step_size)``: multiply the rate by ``gamma`` every ``step_size`` steps."""

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = _positive_int(step_size, "step_size")
        self.gamma = _factor(gamma, "gamma", 0.0, math.inf)  # finite: inf**0 would be 1

    def factor(self, step: int) -> float:
        """``gamma ** (step // step_size)``."""
        return self.gamma ** (step // self.step_size)


class CosineSchedule(Schedule):
    """Cosine annealing from 1 to ``min_factor`` over ``total_steps`` (then held)::

        min_factor + (1 - min_factor) * (1 + cos(pi * min(step, total_steps) / total_steps)) / 2
    """

    def __init__(self, total_steps: int, min_factor: float = 0.0):
        self.total_steps = _positive_int(total_steps, "total_steps")
        self.min_factor = _factor(min_factor, "min_factor")

    def factor(self, step: int) -> float:
        """The cosine multiplier (see the class docstring)."""
        progress = min(step, self.total_steps) / self.total_steps
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


class LinearSchedule(Schedule):
    """Linear decay from 1 to ``end_factor`` over ``total_steps`` (then held)."""

    def __init__(self, total_steps: int, end_factor: float = 0.0):
        self.total_steps = _positive_int(total_steps, "total_steps")
        self.end_factor = _factor(end_factor, "end_factor")

    def factor(self, step: int) -> float:
        """``1 - (1 - end_factor) * min(step, total_steps) / total_steps``."""
        progress = min(step, self.total_steps) / self.total_steps
        return 1.0 - (1.0 - self.end_factor) * progress


class InverseSqrtSchedule(Schedule):
    """``sqrt(timescale / max(step, timescale))``: 1 up to ``timescale``, then ``1/sqrt(step)``
    decay (the Transformer schedule without its warm-up; wrap it in :class:`LinearWarmup`)."""

    def __init__(self, timescale: int = 1):
        self.timescale = _positive_int(timescale, "timescale")

    def factor(self, step: int) -> float:
        """``sqrt(timescale / max(step, timescale))``."""
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
        """The warm-up ramp, then the wrapped schedule (see the class docstring)."""
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
        The schedule.
    total_steps : int
        Iterations in the whole run (warm-up included).
    steps_per_epoch : int
        Iterations per epoch (converts ``step_epochs``).
    warmup_steps : int
        Linear warm-up length; 0 for none.
    step_epochs : float, optional
        For ``"step"``: decay every ``step_epochs`` epochs, a finite number > 0 (fractions are
        rounded to whole steps; default: a third of the run).
    gamma : float
        For ``"step"``: the decay factor.
    min_factor : float
        For ``"cosine"`` / ``"linear"``: the final multiplier.

    Returns
    -------
    Schedule
        The schedule, wrapped in :class:`LinearWarmup` when ``warmup_steps > 0``.
    """
    if not isinstance(name, str) or name not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(map(repr, SCHEDULES))}; "
                         f"got name={name!r}")
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
            step_epochs = check_float(step_epochs, "step_epochs", minimum=0.0,
                                      min_inclusive=False)
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
