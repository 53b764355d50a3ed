"""The compiled entry points refuse inconsistent sizes before releasing the GIL.

Users reach the kernels through ``fastnn.kernels`` (which validates everything); these checks are
the last line for code that calls the private extension modules directly.
"""

from __future__ import annotations

import numpy as np
import pytest

optim = pytest.importorskip("fastnn._ext._optim")
norm = pytest.importorskip("fastnn._ext._normalization")

HP = (1e-3, 0.9, 0.999, 1e-8, 1)


def test_optim_kernels_refuse_short_state_and_zero_threads():
    w = np.ones(5)
    with pytest.raises(ValueError, match="m must have 5 elements like w, got 2"):
        optim.adam_update(w, np.ones(5), np.zeros(2), np.zeros(5), *HP, 1)
    with pytest.raises(ValueError, match="velocity must have 5 elements"):
        optim.sgd_momentum_update(w, np.ones(5), np.zeros(4), 0.1, 0.9, 1)
    with pytest.raises(ValueError, match="dw must have 5 elements"):
        optim.rmsprop_update(w, np.ones(6), np.zeros(5), 0.1, 0.9, 1e-8, 1)
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        optim.sgd_momentum_update(w, np.ones(5), np.zeros(5), 0.1, 0.9, 0)
    np.testing.assert_array_equal(w, np.ones(5))


def _outs(n, d):
    return np.empty((n, d)), np.empty((n, d))


def test_normalization_kernels_refuse_mismatched_shapes():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="gamma must have 3 elements, got 1"):
        norm.batchnorm_forward_train(x, np.ones(1), np.ones(1), 1e-5, *_outs(2, 3),
                                     np.empty(3), np.empty(3), np.empty(3), 1)
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\)"):
        norm.layernorm_forward(x, np.ones(3), np.ones(3), 1e-5, np.empty((2, 3)),
                               np.empty((1, 3)), np.empty(2), 1)
    with pytest.raises(ValueError, match="inv_std must have 2 elements, got 3"):
        norm.layernorm_backward(x, x, np.ones(3), np.ones(3), np.empty((2, 3)), np.empty(3),
                                np.empty(3), 1)
    with pytest.raises(ValueError, match="N >= 1 rows"):
        norm.batchnorm_backward(np.ones((0, 3)), np.ones((0, 3)), np.ones(3), np.ones(3),
                                np.empty((0, 3)), np.empty(3), np.empty(3), 1)
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        norm.batchnorm_backward(x, x, np.ones(3), np.ones(3), np.empty((2, 3)), np.empty(3),
                                np.empty(3), 0)
