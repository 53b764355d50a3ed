"""Learning-rate schedules: values by hand, warm-up composition, construction by name."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastnn import optim, schedules


def test_schedules_are_reexported_from_optim():
    for name in schedules.__all__:
        assert getattr(optim, name) is getattr(schedules, name)
    from fastnn.optim import CosineSchedule, make_schedule  # noqa: F401  (the old import path)



def test_step_schedule_values():
    s = schedules.StepSchedule(step_size=3, gamma=0.5)
    assert [s(i) for i in range(8)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_cosine_schedule_values():
    s = schedules.CosineSchedule(total_steps=4, min_factor=0.0)
    expected = [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4)),
                0.0, 0.0]
    np.testing.assert_allclose([s(i) for i in range(6)], expected, atol=1e-15)
    s = schedules.CosineSchedule(total_steps=2, min_factor=0.1)
    np.testing.assert_allclose([s(0), s(1), s(2)], [1.0, 0.55, 0.1], atol=1e-15)


def test_linear_schedule_values():
    s = schedules.LinearSchedule(total_steps=4, end_factor=0.2)
    np.testing.assert_allclose([s(i) for i in range(6)], [1.0, 0.8, 0.6, 0.4, 0.2, 0.2],
                               atol=1e-15)


def test_inverse_sqrt_schedule_values():
    s = schedules.InverseSqrtSchedule(timescale=4)
    np.testing.assert_allclose([s(0), s(4), s(16), s(64)], [1.0, 1.0, 0.5, 0.25], atol=1e-15)


def test_linear_warmup_composes_with_any_schedule():
    s = schedules.LinearWarmup(schedules.StepSchedule(2, 0.1), warmup_steps=4)
    np.testing.assert_allclose([s(i) for i in range(8)],
                               [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 0.1, 0.1], atol=1e-15)
    s = schedules.LinearWarmup(schedules.CosineSchedule(2), warmup_steps=2)
    np.testing.assert_allclose([s(i) for i in range(5)], [0.5, 1.0, 1.0, 0.5, 0.0], atol=1e-15)
    s = schedules.LinearWarmup(None, warmup_steps=2)
    assert [s(0), s(1), s(50)] == [0.5, 1.0, 1.0]


def test_make_schedule_by_name():
    s = schedules.make_schedule("cosine", total_steps=110, warmup_steps=10)
    assert isinstance(s, schedules.LinearWarmup)
    assert s(9) == 1.0 and s(10) == 1.0 and s(60) == pytest.approx(0.5) and s(110) == 0.0
    s = schedules.make_schedule("step", total_steps=100, steps_per_epoch=10, step_epochs=3, gamma=0.5)
    assert s(29) == 1.0 and s(30) == 0.5
    s = schedules.make_schedule("inverse_sqrt", total_steps=100, steps_per_epoch=10)
    assert s(10) == 1.0 and s(40) == 0.5
    assert schedules.make_schedule("constant", total_steps=5)(4) == 1.0
    assert schedules.make_schedule("linear", total_steps=10)(5) == 0.5
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        schedules.make_schedule("exponential", total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        schedules.CosineSchedule(0)
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        schedules.ConstantSchedule()(-1)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_schedule_rejects_bad_steps(bad):
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        schedules.StepSchedule(2)(bad)


# --------------------------------------------------------------------------- bad input (fuzz)


@pytest.mark.parametrize("gamma", [math.inf, math.nan])
def test_gamma_must_be_finite(gamma):
    with pytest.raises(ValueError, match="gamma must be finite"):
        schedules.StepSchedule(3, gamma=gamma)
    with pytest.raises(ValueError, match="gamma must be finite"):
        schedules.make_schedule("step", total_steps=10, gamma=gamma)


@pytest.mark.parametrize("bad,exc", [(math.inf, ValueError), (math.nan, ValueError),
                                     (0, ValueError), (-1.0, ValueError), ("2", TypeError),
                                     (True, TypeError), (2 + 1j, TypeError), ([2], TypeError),
                                     (np.array([1.0, 2.0]), TypeError)])
def test_bad_step_epochs_names_step_epochs(bad, exc):
    with pytest.raises(exc, match="step_epochs"):
        schedules.make_schedule("step", total_steps=100, steps_per_epoch=10, step_epochs=bad)


def test_step_epochs_integer_or_fraction():
    """Integers and fractions of an epoch (the CLI's --step-epochs 1.5) both work."""
    assert schedules.make_schedule("step", total_steps=100, steps_per_epoch=10,
                                   step_epochs=2).step_size == 20
    assert schedules.make_schedule("step", total_steps=100, steps_per_epoch=10,
                                   step_epochs=np.int64(2)).step_size == 20
    assert schedules.make_schedule("step", total_steps=100, steps_per_epoch=10,
                                   step_epochs=1.5).step_size == 15


@pytest.mark.parametrize("bad", [None, "bogus", 3, "STEP", ["step"], b"step"])
def test_unknown_schedule_names_the_name_argument(bad):
    with pytest.raises(ValueError, match=r"lr_schedule must be one of.*got name="):
        schedules.make_schedule(bad, total_steps=10)
