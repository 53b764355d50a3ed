import numpy as np
import pytest

from fastnn.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)


def test_scalar_gradient_of_quadratic_is_exact(rng):
    A = rng.standard_normal((4, 4))
    x = rng.standard_normal((4, 4))
    x_before = x.copy()
    grad = eval_numerical_gradient(lambda z: np.sum(A * z**2), x, verbose=False)
    assert rel_error(grad, 2 * A * x) < 1e-8
    np.testing.assert_array_equal(x, x_before)  # restored


def test_array_gradient_contracts_with_upstream(rng):
    W = rng.standard_normal((3, 5))
    x = rng.standard_normal((2, 3))
    df = rng.standard_normal((2, 5))
    grad = eval_numerical_gradient_array(lambda z: np.tanh(z @ W), x, df)
    expected = (df * (1 - np.tanh(x @ W) ** 2)) @ W.T
    assert rel_error(grad, expected) < 1e-8


def test_grad_check_sparse_flags_wrong_gradient(rng, capsys):
    x = rng.standard_normal((5, 6))
    f = lambda z: float(np.sum(np.sin(z)))
    good = grad_check_sparse(f, x, np.cos(x), num_checks=8, seed=0)
    bad = grad_check_sparse(f, x, np.cos(x) + 0.1, num_checks=8, seed=0)
    assert good.max() < 1e-7
    assert bad.min() > 1e-4
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 16 and lines[0].startswith("numerical: ") and "relative error: " in lines[0]


def test_grad_check_sparse_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="analytic_grad"):
        grad_check_sparse(lambda z: 0.0, np.zeros((2, 2)), np.zeros(3))


# ------------------------------------------------------------------------------- issue 7
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_integer_input_is_differentiated_in_float64(dtype):
    x = np.array([1, 3, 5], dtype=dtype)
    grad = eval_numerical_gradient(lambda z: float(np.sum(z**2)), x, verbose=False)
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, [2.0, 6.0, 10.0], rtol=1e-8)
    np.testing.assert_array_equal(x, [1, 3, 5])  # the caller's array is untouched
    grad = eval_numerical_gradient_array(lambda z: z**2, x, np.ones(3))
    np.testing.assert_allclose(grad, [2.0, 6.0, 10.0], rtol=1e-8)
    grad = eval_numerical_gradient(lambda z: float(np.sum(z**2)), [1, 3, 5], verbose=False)
    np.testing.assert_allclose(grad, [2.0, 6.0, 10.0], rtol=1e-8)


def test_integer_input_for_sparse_check(capsys):
    x = np.arange(6).reshape(2, 3)
    errors = grad_check_sparse(lambda z: float(np.sum(z**2)), x, 2.0 * x, num_checks=5, seed=1)
    assert errors.max() < 1e-8


@pytest.mark.parametrize("h", [0, 0.0, -1e-5, float("nan"), float("inf")])
def test_non_positive_step_is_refused(h):
    x = np.ones(3)
    with pytest.raises(ValueError, match="h must"):
        eval_numerical_gradient(np.sum, x, verbose=False, h=h)
    with pytest.raises(ValueError, match="h must"):
        eval_numerical_gradient_array(lambda z: z, x, np.ones(3), h=h)
    with pytest.raises(ValueError, match="h must"):
        grad_check_sparse(np.sum, x, np.ones(3), h=h)


def test_rel_error_refuses_mismatched_shapes():
    assert rel_error(np.ones((2, 3)), np.ones((2, 3))) == 0.0
    assert rel_error(1.0, np.float64(1.0)) == 0.0
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3\).*\(3, 2\)"):
        rel_error(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="same shape"):
        rel_error(np.ones(3), 1.0)  # broadcasting used to hide this


@pytest.mark.parametrize("num_checks", [10**12, -1])
def test_num_checks_out_of_range_is_refused_before_allocating(num_checks):
    with pytest.raises(ValueError, match="num_checks"):
        grad_check_sparse(np.sum, np.ones(3), np.ones(3), num_checks=num_checks)


def test_num_checks_must_be_an_integer():
    with pytest.raises(TypeError, match="num_checks"):
        grad_check_sparse(np.sum, np.ones(3), np.ones(3), num_checks=2.5)


def test_zero_checks_give_an_empty_result():
    assert grad_check_sparse(np.sum, np.ones(3), np.ones(3), num_checks=0).shape == (0,)
