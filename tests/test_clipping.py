"""Gradient clipping (fastnn.optim): by global norm and by value, never in place."""

import numpy as np
import pytest

from fastnn.optim import clip_by_global_norm, clip_by_value


def _grads(rng):
    return {"W": rng.standard_normal((3, 4)) * 10, "b": rng.standard_normal(4) * 10}


def test_global_norm_rescales_every_gradient_by_the_same_factor(rng):
    grads = _grads(rng)
    originals = {k: v.copy() for k, v in grads.items()}
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
    clipped, reported = clip_by_global_norm(grads, 1.0)
    assert reported == pytest.approx(norm, rel=1e-12)
    after = np.sqrt(sum(np.sum(g ** 2) for g in clipped.values()))
    assert after == pytest.approx(1.0, rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(clipped[k], grads[k] / norm, rtol=1e-12)  # same direction
        np.testing.assert_array_equal(grads[k], originals[k])                # not in place
        assert clipped[k] is not grads[k]


def test_global_norm_below_the_limit_leaves_gradients_alone(rng):
    grads = _grads(rng)
    clipped, norm = clip_by_global_norm(grads, 1e6)
    assert norm < 1e6 and clipped is not grads
    for k in grads:
        np.testing.assert_array_equal(clipped[k], grads[k])


def test_global_norm_keeps_dtype_and_handles_empty_and_zero(rng):
    clipped, norm = clip_by_global_norm({"a": np.full(4, 3.0, np.float32)}, 1.0)
    assert clipped["a"].dtype == np.float32 and norm == pytest.approx(6.0)
    clipped, norm = clip_by_global_norm({"a": np.zeros(3), "e": np.zeros(0)}, 1.0)
    assert norm == 0.0 and np.all(clipped["a"] == 0)
    assert clip_by_global_norm({}, 1.0) == ({}, 0.0)


def test_clip_by_value_clips_each_entry_without_touching_the_input(rng):
    grads = _grads(rng)
    originals = {k: v.copy() for k, v in grads.items()}
    clipped = clip_by_value(grads, 2.5)
    for k in grads:
        np.testing.assert_array_equal(clipped[k], np.clip(originals[k], -2.5, 2.5))
        np.testing.assert_array_equal(grads[k], originals[k])
    assert clip_by_value({"i": [1, -7]}, 3)["i"].tolist() == [1.0, -3.0]


@pytest.mark.parametrize("clip", [clip_by_global_norm, clip_by_value])
def test_bad_input_names_the_argument(clip):
    limit = "max_norm" if clip is clip_by_global_norm else "limit"
    for bad in (0, -1.0, np.nan, np.inf, "1", None, True):
        with pytest.raises((ValueError, TypeError), match=limit):
            clip({"a": np.ones(2)}, bad)
    with pytest.raises(TypeError, match="grads"):
        clip([np.ones(2)], 1.0)
    with pytest.raises((ValueError, TypeError), match=r"grads\['a'\]"):
        clip({"a": np.array(["x"])}, 1.0)
