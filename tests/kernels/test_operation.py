"""The Operation pattern itself: registration, default choice, validation, thread counts."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn._validation import check_array
from fastnn.kernels import _operation
from fastnn.kernels._operation import MIN_WORK_PER_THREAD, Operation, threads_for


@pytest.fixture
def toy():
    """A throwaway operation (removed from the registry afterwards)."""

    def check(impl, x, scale=1.0):
        x = check_array(x, "x", ndim=1)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        return x, float(scale)

    op = Operation("toy_scale", check)
    calls = []

    @op.register("naive")
    def naive(x, scale):
        calls.append("naive")
        return np.array([v * scale for v in x])

    @op.register("vectorized")
    def vectorized(x, scale):
        calls.append("vectorized")
        return x * scale

    @op.register("compiled", available=False)
    def compiled(x, scale):  # an extension that did not import
        raise AssertionError("never registered, never called")

    yield op, calls
    del _operation._OPERATIONS["toy_scale"]


def test_default_is_best_available_and_unavailable_impl_is_not_registered(toy):
    op, calls = toy
    assert op.impls == ("naive", "vectorized")
    assert op.default == "vectorized"
    np.testing.assert_array_equal(op([1.0, 2.0], 3.0), [3.0, 6.0])
    assert calls == ["vectorized"]
    assert fastnn.kernels.available_impls("toy_scale") == ("naive", "vectorized")


def test_every_path_validates(toy):
    op, calls = toy
    with pytest.raises(ValueError, match="x must be a 1-D"):
        op(np.ones((2, 2)))
    with pytest.raises(ValueError, match="scale must be > 0"):
        fastnn.kernels.get_impl("toy_scale", "naive")([1.0], -1.0)
    assert calls == []
    assert op.is_usable_for([1.0, 2.0]) and not op.is_usable_for([[1.0]])
    with pytest.raises(ValueError, match="impl must be one of 'naive', 'vectorized'"):
        op([1.0], impl="compiled")


def test_registering_twice_is_an_error(toy):
    op, _ = toy
    with pytest.raises(RuntimeError, match="registered twice"):
        op.register("naive")(lambda x, scale: x)
    with pytest.raises(RuntimeError, match="defined twice"):
        Operation("toy_scale", lambda impl, x: (x,))


def test_threads_follow_the_work():
    assert threads_for(0, num_threads=8) == 1
    assert threads_for(MIN_WORK_PER_THREAD, num_threads=8) == 1
    assert threads_for(3 * MIN_WORK_PER_THREAD, num_threads=8) == 3
    assert threads_for(1e12, num_threads=8) == 8
    assert threads_for(1e12) == fastnn.get_num_threads()
    assert threads_for(50, min_work_per_thread=10, num_threads=4) == 4
