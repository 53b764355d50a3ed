"""affine_forward/backward: CS231n reference numbers, numerical gradients, dtypes, bad input."""

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient_array, rel_error
from fastnn.layers import affine_backward, affine_backward_params, affine_forward


def test_matches_cs231n_reference_output():
    # the FullyConnectedNets notebook's affine_forward check
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * np.prod(input_shape)
    weight_size = output_dim * np.prod(input_shape)
    x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, _ = affine_forward(x, w, b)
    correct_out = np.array([[1.49834967, 1.70660132, 1.91485297],
                            [3.25553199, 3.5141327, 3.77273342]])
    assert rel_error(out, correct_out) < 1e-8


def test_forward_equals_explicit_loops(rng):
    x = rng.standard_normal((3, 2, 2))
    w = rng.standard_normal((4, 5))
    b = rng.standard_normal(5)
    out, _ = affine_forward(x, w, b)
    for i in range(3):
        row = x[i].ravel()
        for j in range(5):
            assert out[i, j] == pytest.approx(sum(row[k] * w[k, j] for k in range(4)) + b[j])


@pytest.mark.parametrize("shape", [(1, 3), (2, 4, 5), (5, 3, 2, 2), (7, 1)])
@pytest.mark.parametrize("m", [1, 6])
def test_backward_matches_numerical_gradient(rng, shape, m):
    x = rng.standard_normal(shape)
    d = int(np.prod(shape[1:]))
    w = rng.standard_normal((d, m))
    b = rng.standard_normal(m)
    dout = rng.standard_normal((shape[0], m))
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    dx_num = eval_numerical_gradient_array(lambda x: affine_forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: affine_forward(x, w, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: affine_forward(x, w, b)[0], b, dout)
    assert rel_error(dx, dx_num) < 1e-7
    assert rel_error(dw, dw_num) < 1e-7
    assert rel_error(db, db_num) < 1e-7


def test_backward_params_skips_dx_but_agrees(rng):
    x = rng.standard_normal((6, 3, 4))
    w = rng.standard_normal((12, 5))
    b = rng.standard_normal(5)
    dout = rng.standard_normal((6, 5))
    _, cache = affine_forward(x, w, b)
    _, dw, db = affine_backward(dout, cache)
    dw2, db2 = affine_backward_params(dout, cache)
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


def test_non_contiguous_input(rng):
    x = rng.standard_normal((8, 6)).T  # (6, 8), Fortran order
    w = rng.standard_normal((8, 3))
    b = rng.standard_normal(3)
    out, cache = affine_forward(x, w, b)
    np.testing.assert_allclose(out, np.ascontiguousarray(x) @ w + b, rtol=1e-12)
    dx, _, _ = affine_backward(np.ones((6, 3)), cache)
    assert dx.shape == x.shape


def test_float32_preserved_and_close_to_float64(rng):
    x = rng.standard_normal((5, 2, 3))
    w = rng.standard_normal((6, 4))
    b = rng.standard_normal(4)
    dout = rng.standard_normal((5, 4))
    out64, cache64 = affine_forward(x, w, b)
    grads64 = affine_backward(dout, cache64)
    f32 = [a.astype(np.float32) for a in (x, w, b)]
    out32, cache32 = affine_forward(*f32)
    grads32 = affine_backward(dout.astype(np.float32), cache32)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-5)
    for g32, g64 in zip(grads32, grads64):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strided_w", [False, True])
def test_float32_compiled_products_match_float64(rng, strided_w):
    # D = 96 and M = 64 are whole 32-column tiles: every product of the layer runs compiled
    # (the input gradient on a compiled transposed copy of w)
    x = rng.standard_normal((7, 3, 32))
    w_full = rng.standard_normal((96, 128))
    w = w_full[:, ::2] if strided_w else w_full[:, :64].copy()
    b = rng.standard_normal(64)
    dout = rng.standard_normal((7, 64))
    grads64 = affine_backward(dout, affine_forward(x, w, b)[1])
    w32 = w_full.astype(np.float32)[:, ::2] if strided_w else w.astype(np.float32)
    _, cache32 = affine_forward(x.astype(np.float32), w32, b.astype(np.float32))
    grads32 = affine_backward(dout.astype(np.float32), cache32)
    for g32, g64 in zip(grads32, grads64, strict=True):
        assert g32.dtype == np.float32 and g32.shape == g64.shape
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4 * np.abs(g64).max())


def test_bad_shapes_are_clear_errors(rng):
    x = rng.standard_normal((4, 6))
    with pytest.raises(ValueError, match="w must have shape"):
        affine_forward(x, np.zeros((5, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="b must have shape"):
        affine_forward(x, np.zeros((6, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="x must have shape"):
        affine_forward(np.zeros(6), np.zeros((6, 2)), np.zeros(2))
    _, cache = affine_forward(x, np.zeros((6, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="dout must have shape"):
        affine_backward(np.zeros((4, 3)), cache)
    with pytest.raises(TypeError, match="w must be"):
        affine_forward(x, np.array([["a"] * 2] * 6), np.zeros(2))


def test_cache_is_x_w_b_like_cs231n(rng):
    x = rng.standard_normal((3, 2, 2))
    w = rng.standard_normal((4, 5))
    b = rng.standard_normal(5)
    out, cache = affine_forward(x, w, b)
    x_c, w_c, b_c = cache  # what CS231n code unpacks in its own backward passes
    assert x_c is x and w_c is w and b_c is b
    dout = rng.standard_normal(out.shape)
    dx, dw, db = affine_backward(dout, cache)
    np.testing.assert_allclose(dx, (dout @ w.T).reshape(x.shape), rtol=1e-12)
    np.testing.assert_allclose(dw, x.reshape(3, 4).T @ dout, rtol=1e-12)
    np.testing.assert_allclose(db, dout.sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("shape", [(128, 64, 7, 7), (32, 96), (33, 64), (7, 3, 5)])
@pytest.mark.parametrize("m", [128, 32, 10])
@pytest.mark.parametrize("blas_only", [False, True])
def test_float32_products_agree_with_float64_on_both_product_paths(rng, monkeypatch, shape, m,
                                                                    blas_only):
    """Widths that are multiples of 32 run on fastnn's AVX-512 product (where the CPU has it),
    the others and ``blas_only`` on BLAS: both agree with float64, in C order, non-contiguous x
    included."""
    from fastnn.kernels import _gemm

    if blas_only:
        monkeypatch.setattr(_gemm, "AVAILABLE", False)
    x64 = rng.standard_normal(shape)
    d = int(np.prod(shape[1:]))
    w64 = rng.standard_normal((d, m)) / np.sqrt(d)
    b64 = rng.standard_normal(m)
    dout64 = rng.standard_normal((shape[0], m))
    for x in (x64.astype(np.float32), np.asfortranarray(x64).astype(np.float32, order="F")):
        out, cache = affine_forward(x, w64.astype(np.float32), b64.astype(np.float32))
        dx, dw, db = affine_backward(dout64.astype(np.float32), cache)
        assert out.dtype == dx.dtype == dw.dtype == np.float32
        assert out.flags.c_contiguous and dw.flags.c_contiguous and dx.shape == shape
        ref_out = x64.reshape(shape[0], d) @ w64 + b64
        ref_dx = (dout64 @ w64.T).reshape(shape)
        ref_dw = x64.reshape(shape[0], d).T @ dout64
        for got, ref in ((out, ref_out), (dx, ref_dx), (dw, ref_dw)):
            # float32 rounding of sums of up to 3136 terms: 1e-5 of the largest entry
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
