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
