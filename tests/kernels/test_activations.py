"""ReLU kernels: looped, NumPy and compiled agree bit for bit, and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn.kernels import activations, available_impls
from fastnn.layers import relu_backward, relu_forward

IMPLS = available_impls("relu_forward")
SHAPES = [(1,), (7,), (1, 1, 1, 1), (3, 5), (2, 3, 4, 5), (1, 32, 28, 28)]


def _inputs(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:: 7] = 0.0                                   # ties at the kink
    if flat.size > 3:
        flat[1], flat[2], flat[3] = np.nan, -np.inf, np.inf
    dout = rng.standard_normal(shape).astype(dtype)
    if dout.size > 4:
        dout.reshape(-1)[4] = np.inf                     # inf * 0 where x <= 0 gives NaN
    return x, dout


def test_compiled_kernel_is_registered():
    assert "compiled" in IMPLS and IMPLS.index("naive") >= 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_all_implementations_agree_bit_for_bit(rng, shape, dtype):
    x, dout = _inputs(rng, shape, dtype)
    fwd = [activations.relu_forward(x, impl=i) for i in IMPLS]
    bwd = [activations.relu_backward(dout, x, impl=i) for i in IMPLS]
    for out, dx in zip(fwd, bwd):
        assert out.dtype == dx.dtype == dtype and out.shape == dx.shape == shape
        np.testing.assert_array_equal(out, np.maximum(x, 0))
        np.testing.assert_array_equal(dx, dout * (x > 0))


def test_hand_worked_values():
    x = np.array([-2.0, -0.0, 0.0, 0.5, np.nan, 3.0])
    dout = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.inf])
    for impl in IMPLS:
        np.testing.assert_array_equal(activations.relu_forward(x, impl=impl),
                                      [0.0, 0.0, 0.0, 0.5, np.nan, 3.0])
        np.testing.assert_array_equal(activations.relu_backward(dout, x, impl=impl),
                                      [0.0, 0.0, 0.0, 4.0, 0.0, np.inf])


@pytest.mark.parametrize("threads", [1, 2])
def test_threaded_pass_over_a_large_array(rng, threads):
    x, dout = _inputs(rng, (64, 32, 28, 28), np.float32)   # 1.6M elements: several threads
    previous = fastnn.get_num_threads()
    fastnn.set_num_threads(threads)
    try:
        out = activations.relu_forward(x, impl="compiled")
        dx = activations.relu_backward(dout, x, impl="compiled")
    finally:
        fastnn.set_num_threads(previous)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(dx, dout * (x > 0))


def test_non_contiguous_and_mixed_dtypes(rng):
    x64 = rng.standard_normal((6, 8))
    x64[0, 0] = 1e-300                      # positive in float64, 0 in float32
    dout32 = rng.standard_normal((6, 8)).astype(np.float32)
    for impl in IMPLS:
        view = x64[:, ::2]
        np.testing.assert_array_equal(activations.relu_forward(view, impl=impl),
                                      np.maximum(view, 0))
        dx = activations.relu_backward(dout32, x64, impl=impl)
        assert dx.dtype == np.float32
        np.testing.assert_array_equal(dx, dout32 * (x64 > 0))
        assert dx[0, 0] == dout32[0, 0]


def test_layer_entries_use_the_kernels_and_keep_cs231n_numbers(rng):
    x = rng.standard_normal((4, 5, 6))
    out, cache = relu_forward(x)
    assert cache is x
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(relu_backward(dout, cache), dout * (x > 0))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: activations.relu_forward(np.zeros((0, 3))), "x"),
        (lambda: activations.relu_forward([["a"]]), "x"),
        (lambda: activations.relu_backward(np.ones((2, 3)), np.ones((3, 2))), "dout must have"),
        (lambda: activations.relu_backward(None, np.ones(3)), "dout"),
        (lambda: activations.relu_forward(np.ones(3), impl="fast"), "impl must be"),
    ],
)
def test_bad_input_is_a_clear_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_extension_refuses_mismatched_lengths_and_zero_threads():
    ext = pytest.importorskip("fastnn._ext._activations")
    with pytest.raises(ValueError, match="out must have 3 elements, got 2"):
        ext.relu_forward(np.ones(3), np.empty(2), 1)
    with pytest.raises(ValueError, match="dx must have 3 elements"):
        ext.relu_backward(np.ones(3), np.ones(3), np.empty(4), 1)
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        ext.relu_forward(np.ones(3), np.empty(3), 0)
    with pytest.raises(ValueError):
        ext.relu_forward(np.ones(3), np.empty(3, dtype=np.float32), 1)   # dtype mix: no match


@settings(max_examples=60, deadline=None, derandomize=True)
@given(size=st.integers(1, 300), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**32 - 1), threads=st.integers(1, 4))
def test_fuzz_compiled_entry_agrees_with_the_loop(size, dtype, seed, threads):
    ext = pytest.importorskip("fastnn._ext._activations")
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(size) * rng.choice([0, 1, 1e30], size)).astype(dtype)
    dout = rng.standard_normal(size).astype(dtype)
    out, dx = np.empty_like(x), np.empty_like(x)
    ext.relu_forward(x, out, threads)
    ext.relu_backward(dout, x, dx, threads)
    np.testing.assert_array_equal(out, activations.relu_forward(x, impl="naive"))
    np.testing.assert_array_equal(dx, activations.relu_backward(dout, x, impl="naive"))
