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


# --------------------------------------------------------------------------- bad input (fuzz)


def _square_sum(x):
    return float(np.sum(np.asarray(x, dtype=np.float64) ** 2))


def _double(x):
    return np.asarray(x) * 2.0


@pytest.mark.parametrize("f", [None, 3, "f"])
def test_f_must_be_callable(f):
    x = np.ones((2, 2))
    with pytest.raises(TypeError, match=r"\bf must be callable"):
        eval_numerical_gradient(f, x, verbose=False)
    with pytest.raises(TypeError, match=r"\bf must be callable"):
        eval_numerical_gradient_array(f, x, np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"\bf must be callable"):
        grad_check_sparse(f, x, 2 * x, verbose=False)


def test_read_only_x_is_a_value_error_naming_x():
    x = np.ones((2, 2))
    x.flags.writeable = False
    for call in (lambda: eval_numerical_gradient(_square_sum, x, verbose=False),
                 lambda: eval_numerical_gradient_array(_double, x, np.ones((2, 2))),
                 lambda: grad_check_sparse(_square_sum, x, 2 * x, seed=0, verbose=False)):
        with pytest.raises(ValueError, match=r"x must be a writeable array"):
            call()


def test_ragged_inputs_name_their_argument():
    ragged = [[1.0, 2.0], [3.0]]
    x = np.ones((2, 2))
    with pytest.raises(ValueError, match=r"\bx\b"):
        eval_numerical_gradient(_square_sum, ragged, verbose=False)
    with pytest.raises(ValueError, match=r"\bdf\b"):
        eval_numerical_gradient_array(_double, x, ragged)
    with pytest.raises(ValueError, match=r"\banalytic_grad\b"):
        grad_check_sparse(_square_sum, x, ragged, verbose=False)
    with pytest.raises(ValueError, match=r"\by\b"):
        rel_error(x, ragged)


def test_empty_x_gives_an_empty_gradient():
    x = np.zeros((0, 3))
    assert eval_numerical_gradient(_square_sum, x, verbose=False).shape == (0, 3)
    assert eval_numerical_gradient_array(_double, x, np.zeros((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("df_shape", [(), (0, 2), (2, 2, 1), (2,), (2, 3), (3, 2)])
def test_df_must_have_the_shape_of_f_of_x(df_shape):
    """No broadcasting: a df of another shape (or an x of another shape) names df and f(x)."""
    x = np.ones((2, 2))
    with pytest.raises(ValueError, match=r"df must have the shape of f\(x\)"):
        eval_numerical_gradient_array(_double, x, np.ones(df_shape))
    with pytest.raises(ValueError, match=r"df must have the shape of f\(x\)"):
        eval_numerical_gradient_array(_double, np.ones((3, 2)), np.ones((2, 2)))


@pytest.mark.parametrize("dtype", [np.complex128, object, str])
def test_non_real_df_and_analytic_grad_are_type_errors(dtype):
    x = np.ones((2, 2))
    bad = np.ones((2, 2)).astype(dtype)
    with pytest.raises(TypeError, match=r"\bdf\b"):
        eval_numerical_gradient_array(_double, x, bad)
    with pytest.raises(TypeError, match=r"\banalytic_grad\b"):
        grad_check_sparse(_square_sum, x, bad, verbose=False)
    with pytest.raises(TypeError, match=r"\bx\b"):
        rel_error(bad, x)
    with pytest.raises(TypeError, match=r"\by\b"):
        rel_error(x, bad)


def test_list_analytic_grad_and_df_equal_the_array_call(rng):
    x = rng.standard_normal((3, 2))
    df = rng.standard_normal((3, 2))
    np.testing.assert_allclose(eval_numerical_gradient_array(_double, x, df.tolist()),
                               eval_numerical_gradient_array(_double, x, df))
    np.testing.assert_allclose(
        grad_check_sparse(_square_sum, x, (2 * x).tolist(), num_checks=4, seed=1, verbose=False),
        grad_check_sparse(_square_sum, x, 2 * x, num_checks=4, seed=1, verbose=False))


@pytest.mark.parametrize("seed,exc", [(-1, ValueError), (2.5, TypeError), (0.0, TypeError),
                                      (float("nan"), TypeError), ("0", TypeError),
                                      (True, TypeError), (1j, TypeError)])
def test_bad_seed_names_seed(seed, exc):
    x = np.ones((2, 2))
    with pytest.raises(exc, match=r"\bseed\b"):
        grad_check_sparse(_square_sum, x, 2 * x, seed=seed, verbose=False)


def test_integer_seeds_and_generators_are_accepted():
    x = np.ones((2, 2))
    a = grad_check_sparse(_square_sum, x, 2 * x, num_checks=3, seed=np.int64(7), verbose=False)
    b = grad_check_sparse(_square_sum, x, 2 * x, num_checks=3, seed=np.array(7), verbose=False)
    c = grad_check_sparse(_square_sum, x, 2 * x, num_checks=3,
                          seed=np.random.default_rng(7), verbose=False)
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(a, c)


def test_closure_over_an_integer_array_is_refused_not_a_silent_zero_gradient():
    # CS231n's style: f ignores its argument and reads the caller's array. An integer array
    # cannot be perturbed in place, so the gradient would silently be zero.
    x_int = np.array([1, 2, 3])

    def reads_caller(_):
        return float(np.sum(x_int.astype(np.float64) ** 2))

    for call in (lambda: eval_numerical_gradient(reads_caller, x_int, verbose=False),
                 lambda: eval_numerical_gradient_array(lambda _: x_int * 2.0, x_int,
                                                       np.ones(3)),
                 lambda: grad_check_sparse(reads_caller, x_int, 2.0 * x_int, num_checks=3,
                                           seed=0, verbose=False)):
        with pytest.raises(ValueError, match="x must be a writeable float array"):
            call()
    # the same integer x with an f that computes from its argument is differentiated correctly
    np.testing.assert_allclose(
        eval_numerical_gradient(lambda v: float(np.sum(v**2)), x_int, verbose=False),
        [2.0, 4.0, 6.0], rtol=1e-6)


def test_empty_x_still_checks_df_against_f():
    x = np.zeros((0, 3))
    assert eval_numerical_gradient_array(lambda v: v * 2.0, x, np.ones((0, 3))).shape == (0, 3)
    with pytest.raises(ValueError, match="df must have the shape of f"):
        eval_numerical_gradient_array(lambda v: v * 2.0, x, np.ones((2, 3)))
