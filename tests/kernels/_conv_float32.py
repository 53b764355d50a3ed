"""What the tests of the float32 convolution paths (Winograd, direct) share: a random problem
at unit scale and the check of a float32 result against the exact float64 one."""

from __future__ import annotations

import numpy as np


def conv_problem(shape, f, ksize, pad, seed=0):
    """float64 ``x`` (``shape``), filters ``(f, C, *ksize)`` scaled by 1/sqrt(fan-in), bias
    ``(f,)`` and an upstream gradient of the stride-1 output shape, drawn in that order."""
    rng = np.random.default_rng(seed)
    n, c, h, w = shape
    x = rng.standard_normal(shape)
    wt = rng.standard_normal((f, c, *ksize)) / np.sqrt(c * ksize[0] * ksize[1])
    b = rng.standard_normal(f)
    dout = rng.standard_normal((n, f, h + 2 * pad - ksize[0] + 1, w + 2 * pad - ksize[1] + 1))
    return x, wt, b, dout


def check_float32(got, want, what, tol, scale=None):
    """``got`` is float32 and within ``tol`` of ``want``, relative to ``want``'s largest
    magnitude, or to ``scale``'s where given: the same result computed on the absolute values
    of every operand, i.e. the sums of |terms|. A float32 sum that cancels (a bias gradient
    of one filter, a one-element output: the fuzzed shapes) is only as accurate as its terms,
    whose float32 rounding alone is ~1e-7 of them."""
    assert got.dtype == np.float32, what
    ref = np.abs(want if scale is None else scale).max()
    err = np.abs(got.astype(np.float64) - want).max() / max(ref, 1e-30)
    assert err <= tol, f"{what}: max relative error {err:.2e} > {tol:g}"
