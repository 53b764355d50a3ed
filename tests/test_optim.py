"""Update rules against hand-computed textbook values, the in-place contract, the fused kernels
against their NumPy and looped twins, and the learning-rate schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastnn import optim

RULES = list(optim.UPDATE_RULES)


def _vec(*values):
    return np.array(values, dtype=np.float64)


# --------------------------------------------------------------------------- hand-computed steps


def test_sgd_two_steps_by_hand():
    w, cfg = _vec(1.0, -2.0), {"learning_rate": 0.1}
    w, cfg = optim.sgd(w, _vec(0.5, 1.0), cfg)
    np.testing.assert_allclose(w, [0.95, -2.1], rtol=0, atol=1e-15)
    w, cfg = optim.sgd(w, _vec(-1.0, 0.5), cfg)
    np.testing.assert_allclose(w, [1.05, -2.15], rtol=0, atol=1e-15)


def test_sgd_default_learning_rate_is_1e_2():
    w, cfg = optim.sgd(_vec(1.0), _vec(1.0))
    assert cfg["learning_rate"] == 1e-2
    np.testing.assert_allclose(w, [0.99], atol=1e-15)


def test_sgd_momentum_two_steps_by_hand():
    w, cfg = _vec(1.0, -2.0), {"learning_rate": 0.1, "momentum": 0.9}
    w, cfg = optim.sgd_momentum(w, _vec(0.5, 1.0), cfg)
    np.testing.assert_allclose(cfg["velocity"], [-0.05, -0.1], atol=1e-15)
    np.testing.assert_allclose(w, [0.95, -2.1], atol=1e-15)
    w, cfg = optim.sgd_momentum(w, _vec(0.5, 1.0), cfg)
    # v = 0.9 * [-0.05, -0.1] - 0.1 * [0.5, 1.0] = [-0.095, -0.19]
    np.testing.assert_allclose(cfg["velocity"], [-0.095, -0.19], atol=1e-15)
    np.testing.assert_allclose(w, [0.855, -2.29], atol=1e-15)


def test_nesterov_two_steps_by_hand():
    w, cfg = _vec(1.0, -2.0), {"learning_rate": 0.1, "momentum": 0.9}
    w, cfg = optim.nesterov_momentum(w, _vec(0.5, 1.0), cfg)
    # v_prev = 0, v = [-0.05, -0.1]; w += 1.9 v
    np.testing.assert_allclose(w, [0.905, -2.19], atol=1e-15)
    w, cfg = optim.nesterov_momentum(w, _vec(0.5, 1.0), cfg)
    # v_prev = [-0.05, -0.1], v = [-0.095, -0.19]; w += -0.9 v_prev + 1.9 v
    np.testing.assert_allclose(w, [0.905 + 0.045 - 0.1805, -2.19 + 0.09 - 0.361], atol=1e-14)
    np.testing.assert_allclose(w, [0.7695, -2.461], atol=1e-14)


def test_adagrad_two_steps_by_hand():
    w, cfg = _vec(1.0, -2.0), {"learning_rate": 0.1}
    w, cfg = optim.adagrad(w, _vec(0.5, 1.0), cfg)
    np.testing.assert_allclose(cfg["cache"], [0.25, 1.0], atol=1e-15)
    np.testing.assert_allclose(w, [1.0 - 0.05 / (0.5 + 1e-8), -2.0 - 0.1 / (1.0 + 1e-8)],
                               atol=1e-15)
    w, cfg = optim.adagrad(w, _vec(-1.0, 0.5), cfg)
    np.testing.assert_allclose(cfg["cache"], [1.25, 1.25], atol=1e-15)
    expect0 = 1.0 - 0.05 / (0.5 + 1e-8) + 0.1 / (math.sqrt(1.25) + 1e-8)
    expect1 = -2.0 - 0.1 / (1.0 + 1e-8) - 0.05 / (math.sqrt(1.25) + 1e-8)
    np.testing.assert_allclose(w, [expect0, expect1], atol=1e-15)
    np.testing.assert_allclose(w, [0.989442719, -2.144721360], atol=1e-8)


def test_rmsprop_two_steps_by_hand():
    w, cfg = _vec(1.0), {"learning_rate": 0.1, "decay_rate": 0.9}
    w, cfg = optim.rmsprop(w, _vec(2.0), cfg)
    # cache = 0.1 * 4 = 0.4; w = 1 - 0.2 / (sqrt(0.4) + 1e-8)
    np.testing.assert_allclose(cfg["cache"], [0.4], atol=1e-15)
    w1 = 1.0 - 0.2 / (math.sqrt(0.4) + 1e-8)
    np.testing.assert_allclose(w, [w1], atol=1e-15)
    w, cfg = optim.rmsprop(w, _vec(-1.0), cfg)
    # cache = 0.9 * 0.4 + 0.1 * 1 = 0.46
    np.testing.assert_allclose(cfg["cache"], [0.46], atol=1e-15)
    np.testing.assert_allclose(w, [w1 + 0.1 / (math.sqrt(0.46) + 1e-8)], atol=1e-15)
    np.testing.assert_allclose(w, [0.831214], atol=1e-6)


def test_adam_two_steps_by_hand_t_incremented_before_bias_correction():
    w, cfg = _vec(1.0, -2.0), {"learning_rate": 0.1}
    w, cfg = optim.adam(w, _vec(0.5, 1.0), cfg)
    assert cfg["t"] == 1
    # t=1: m = 0.1 dw, v = 0.001 dw^2, m_hat = dw, v_hat = dw^2 -> step = lr * dw / (|dw| + eps)
    np.testing.assert_allclose(cfg["m"], [0.05, 0.1], atol=1e-15)
    np.testing.assert_allclose(cfg["v"], [0.00025, 0.001], atol=1e-15)
    np.testing.assert_allclose(w, [1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 - 0.1 / (1 + 1e-8)],
                               atol=1e-12)
    w_before = w.copy()
    w, cfg = optim.adam(w, _vec(-1.0, 0.5), cfg)
    assert cfg["t"] == 2
    m = [0.9 * 0.05 + 0.1 * -1.0, 0.9 * 0.1 + 0.1 * 0.5]  # [-0.055, 0.14]
    v = [0.999 * 0.00025 + 0.001 * 1.0, 0.999 * 0.001 + 0.001 * 0.25]  # [0.00124975, 0.001249]
    np.testing.assert_allclose(cfg["m"], [-0.055, 0.14], atol=1e-15)
    np.testing.assert_allclose(cfg["v"], [0.00124975, 0.001249], atol=1e-15)
    bc1, bc2 = 1 - 0.9**2, 1 - 0.999**2
    expect = [w_before[i] - 0.1 * (m[i] / bc1) / (math.sqrt(v[i] / bc2) + 1e-8) for i in (0, 1)]
    np.testing.assert_allclose(w, expect, atol=1e-14)
    np.testing.assert_allclose(w, [0.9 + 0.036610, -2.1 - 0.093218], atol=1e-6)


# The CS231n assignment's own reference values (FullyConnectedNets notebook).
N, D = 4, 5
CS_W = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
CS_DW = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)


def test_cs231n_reference_sgd_momentum():
    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    next_w, cfg = optim.sgd_momentum(CS_W, CS_DW, {"learning_rate": 1e-3, "velocity": v})
    assert next_w[0, 0] == pytest.approx(0.1406)
    assert next_w[3, 4] == pytest.approx(1.4096)
    assert next_w[1, 2] == pytest.approx(0.60812632, abs=1e-8)
    assert cfg["velocity"][3, 4] == pytest.approx(0.9 * 0.9 - 1e-3 * 0.4)


def test_cs231n_reference_rmsprop():
    cache = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    next_w, _cfg = optim.rmsprop(CS_W, CS_DW, {"learning_rate": 1e-2, "cache": cache})
    expected_row0 = [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247]
    expected_row3 = [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619]
    np.testing.assert_allclose(next_w[0], expected_row0, atol=1e-8)
    np.testing.assert_allclose(next_w[3], expected_row3, atol=1e-8)


def test_cs231n_reference_adam():
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    cfg = {"learning_rate": 1e-2, "m": m, "v": v, "t": 5}
    next_w, cfg = optim.adam(CS_W, CS_DW, cfg)
    expected = np.array([
        [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
        [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
        [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
        [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459],
    ])
    np.testing.assert_allclose(next_w, expected, atol=1e-8)
    assert cfg["t"] == 6
    np.testing.assert_allclose(cfg["v"][0, :2], [0.69966, 0.68908382], atol=1e-8)


# --------------------------------------------------------------------------- in-place contract


@pytest.mark.parametrize("rule", RULES)
def test_functional_call_never_writes_callers_arrays(rule, rng):
    w = rng.standard_normal((7, 3))
    dw = rng.standard_normal((7, 3))
    state = rng.random((7, 3))
    cfg = {"velocity": state, "cache": state, "m": state, "v": state, "t": 3}
    copies = [w.copy(), dw.copy(), state.copy()]
    rule_fn = optim.UPDATE_RULES[rule]
    next_w, cfg = rule_fn(w, dw, cfg)
    assert next_w is not w and not np.shares_memory(next_w, w)
    for original, now in zip(copies, [w, dw, state]):
        np.testing.assert_array_equal(original, now)
    assert not np.array_equal(next_w, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", RULES)
def test_inplace_form_matches_functional_and_updates_w(rule, dtype, rng):
    """``out=w`` writes into w, leaves dw alone and gives the functional result over 3 steps."""
    rule_fn = optim.UPDATE_RULES[rule]
    shape = (33, 17)
    w0 = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]
    w_fun, cfg_fun = w0.copy(), {"learning_rate": 1e-2}
    w_inp, cfg_inp = w0.copy(), {"learning_rate": 1e-2}
    for dw in grads:
        dw_copy = dw.copy()
        w_fun, cfg_fun = rule_fn(w_fun, dw, cfg_fun)
        before = w_inp
        w_inp, cfg_inp = rule_fn(w_inp, dw, cfg_inp, out=w_inp)
        assert w_inp is before
        np.testing.assert_array_equal(dw, dw_copy)
    assert w_fun.dtype == dtype and w_inp.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(w_inp, w_fun, rtol=tol, atol=tol)
    for key in ("velocity", "cache", "m", "v"):
        if key in cfg_fun:
            assert cfg_inp[key].dtype == dtype
            np.testing.assert_allclose(cfg_inp[key], cfg_fun[key], rtol=tol, atol=tol)


def test_inplace_into_separate_out_leaves_w_alone(rng):
    w = rng.standard_normal(5)
    w_copy = w.copy()
    out = np.empty_like(w)
    res, _ = optim.adam(w, rng.standard_normal(5), {}, out=out)
    assert res is out
    np.testing.assert_array_equal(w, w_copy)


def test_state_dtype_follows_weights():
    w = np.ones(4, dtype=np.float32)
    _, cfg = optim.adam(w, np.ones(4, dtype=np.float32), {}, out=w)
    assert cfg["m"].dtype == np.float32 and cfg["v"].dtype == np.float32
    # a float64 state handed in by the caller is converted once, not written through
    v = np.zeros(4)
    _, cfg = optim.sgd_momentum(w, np.ones(4, dtype=np.float32), {"velocity": v}, out=w)
    assert cfg["velocity"].dtype == np.float32 and not np.any(v)


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_give_clear_errors():
    w = np.zeros(3)
    with pytest.raises(ValueError, match="dw must have the shape of w"):
        optim.sgd(w, np.zeros(4))
    with pytest.raises(TypeError, match="config must be a dict"):
        optim.adam(w, w, config=[1])
    with pytest.raises(ValueError, match="learning_rate"):
        optim.sgd(w, w, {"learning_rate": -1.0})
    with pytest.raises(TypeError, match="learning_rate"):
        optim.sgd(w, w, {"learning_rate": "fast"})
    with pytest.raises(TypeError, match="w must be a float ndarray"):
        optim.sgd(np.zeros(3, dtype=np.int64), w)  # an integer ndarray cannot hold the update
    with pytest.raises(TypeError, match="w must be a float ndarray"):
        optim.sgd([1.0, 2.0, 3.0], w, out=w)  # the in-place form keeps its ndarray requirement
    with pytest.raises(ValueError, match=r"config\['velocity'\] must have the shape"):
        optim.sgd_momentum(w, w, {"velocity": np.zeros(5)})
    with pytest.raises(ValueError, match="out must be"):
        optim.adam(w, w, {}, out=np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="update_rule must be one of"):
        optim.get_update_rule("adamw")


# --------------------------------------------------------------------------- strided gradients


def test_non_contiguous_dw_falls_back_to_numpy(rng):
    """The rule accepts a strided gradient (the fused path needs contiguity, NumPy does not)."""
    w = rng.standard_normal((6, 4))
    big = rng.standard_normal((6, 8))
    dw = big[:, ::2]
    w_ref, _ = optim.adam(w.copy(), np.ascontiguousarray(dw), {})
    w2 = w.copy()
    optim.adam(w2, dw, {}, out=w2)
    np.testing.assert_allclose(w2, w_ref, rtol=1e-14)


# --------------------------------------------------------------------------- issue 7: config checks


@pytest.mark.parametrize("rule", ["sgd_momentum", "rmsprop", "adam", "nesterov_momentum",
                                  "adagrad"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inplace_list_state_ends_up_in_config(rule, dtype, rng):
    """A list-valued state (e.g. restored from JSON) must be replaced by the updated array."""
    rule_fn = optim.UPDATE_RULES[rule]
    keys = {"sgd_momentum": ("velocity",), "nesterov_momentum": ("velocity",),
            "adagrad": ("cache",), "rmsprop": ("cache",), "adam": ("m", "v")}[rule]
    w = rng.standard_normal((3, 4)).astype(dtype)
    dw = rng.standard_normal((3, 4)).astype(dtype)
    start = {k: np.abs(rng.standard_normal((3, 4))).astype(dtype) for k in keys}
    cfg_fun = {"learning_rate": 1e-2, **{k: v.copy() for k, v in start.items()}}
    cfg_inp = {"learning_rate": 1e-2, **{k: v.tolist() for k, v in start.items()}}
    w_fun, cfg_fun = rule_fn(w.copy(), dw, cfg_fun)
    w_inp = w.copy()
    w_inp, cfg_inp = rule_fn(w_inp, dw, cfg_inp, out=w_inp)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    for k in keys:
        assert isinstance(cfg_inp[k], np.ndarray) and cfg_inp[k].dtype == dtype
        np.testing.assert_allclose(cfg_inp[k], cfg_fun[k], rtol=tol, atol=tol)
    np.testing.assert_allclose(w_inp, w_fun, rtol=tol, atol=tol)
    # the next step continues from the stored arrays
    rule_fn(w_inp, dw, cfg_inp, out=w_inp)
    rule_fn(w_fun, dw, cfg_fun)


BAD_CONFIGS = [
    ("adam", {"t": -1}, ValueError, "config\\['t'\\]"),
    ("adam", {"t": 2.5}, ValueError, "config\\['t'\\]"),
    ("adam", {"t": True}, ValueError, "config\\['t'\\]"),
    ("adam", {"beta1": 1.0}, ValueError, "config\\['beta1'\\]"),
    ("adam", {"beta2": -0.1}, ValueError, "config\\['beta2'\\]"),
    ("adam", {"epsilon": 0.0}, ValueError, "config\\['epsilon'\\]"),
    ("adam", {"epsilon": -1e-8}, ValueError, "config\\['epsilon'\\]"),
    ("sgd_momentum", {"momentum": -0.5}, ValueError, "config\\['momentum'\\]"),
    ("sgd_momentum", {"momentum": 1.0}, ValueError, "config\\['momentum'\\]"),
    ("nesterov_momentum", {"momentum": float("nan")}, ValueError, "config\\['momentum'\\]"),
    ("rmsprop", {"decay_rate": 1.5}, ValueError, "config\\['decay_rate'\\]"),
    ("rmsprop", {"decay_rate": -0.1}, ValueError, "config\\['decay_rate'\\]"),
    ("adagrad", {"epsilon": "small"}, TypeError, "config\\['epsilon'\\]"),
    ("sgd", {"learning_rate": float("inf")}, ValueError, "config\\['learning_rate'\\]"),
    ("sgd", {"learning_rate": -1e-3}, ValueError, "config\\['learning_rate'\\]"),
]


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize(("rule", "config", "error", "key"), BAD_CONFIGS)
def test_every_config_key_is_checked(rule, config, error, key, inplace):
    w, dw = np.ones(3), np.ones(3)
    w_before = w.copy()
    with pytest.raises(error, match=key):
        optim.UPDATE_RULES[rule](w, dw, dict(config), **({"out": w} if inplace else {}))
    np.testing.assert_array_equal(w, w_before)  # nothing written before the check


def test_boundary_values_are_accepted():
    w = np.ones(2)
    optim.sgd_momentum(w, w, {"momentum": 0.0})
    optim.rmsprop(w, w, {"decay_rate": 1.0})
    optim.rmsprop(w, w, {"decay_rate": 0})
    optim.adam(w, w, {"beta1": 0.0, "beta2": 0.0, "t": np.int64(3)})
    _, cfg = optim.sgd(w, w, {"learning_rate": 0.0})  # a schedule may reach 0: weights frozen
    assert cfg["learning_rate"] == 0.0


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize(("rule", "key"), [("sgd_momentum", "velocity"),
                                           ("nesterov_momentum", "velocity"),
                                           ("adagrad", "cache"), ("rmsprop", "cache"),
                                           ("adam", "m"), ("adam", "v")])
def test_state_of_wrong_shape_or_kind_names_the_key(rule, key, inplace):
    w = np.ones((2, 3))
    kwargs = {"out": w} if inplace else {}
    with pytest.raises(ValueError, match=rf"config\['{key}'\] must have the shape of w"):
        optim.UPDATE_RULES[rule](w, w.copy(), {key: np.zeros((3, 2))}, **kwargs)
    with pytest.raises(ValueError, match=rf"config\['{key}'\] must have the shape of w"):
        optim.UPDATE_RULES[rule](w, w.copy(), {key: [1.0, 2.0]}, **kwargs)
    with pytest.raises(TypeError, match=rf"config\['{key}'\] must be a real-valued array"):
        optim.UPDATE_RULES[rule](w, w.copy(), {key: np.full((2, 3), "a")}, **kwargs)


@pytest.mark.parametrize("rule", RULES)
def test_inplace_on_float16_and_strided_weights(rule, rng):
    """Weights the fused kernels cannot take (float16, a strided view) still update in place."""
    rule_fn = optim.UPDATE_RULES[rule]
    w16 = rng.standard_normal(6).astype(np.float16)
    dw16 = rng.standard_normal(6).astype(np.float16)
    expect, _ = rule_fn(w16.copy(), dw16, {})
    res, _ = rule_fn(w16, dw16, {}, out=w16)
    assert res is w16 and res.dtype == np.float16
    np.testing.assert_array_equal(w16, expect)

    big = rng.standard_normal((4, 6))
    w = big[:, ::2]
    dw = rng.standard_normal((4, 3))
    expect, cfg_fun = rule_fn(w.copy(), dw, {})
    res, cfg_inp = rule_fn(w, dw, {}, out=w)
    assert res is w
    np.testing.assert_allclose(big[:, ::2], expect, rtol=1e-14, atol=1e-15)
    for k in ("velocity", "cache", "m", "v"):
        if k in cfg_fun:
            np.testing.assert_allclose(cfg_inp[k], cfg_fun[k], rtol=1e-14, atol=1e-15)


def test_inplace_with_gradient_of_another_dtype(rng):
    w = rng.standard_normal(5).astype(np.float32)
    dw = rng.standard_normal(5)  # float64 gradient for float32 weights
    expect, _ = optim.adam(w.copy(), dw.astype(np.float32), {})
    optim.adam(w, dw, {}, out=w)
    np.testing.assert_allclose(w, expect, rtol=1e-6)


# --------------------------------------------------------------------------- bad input (fuzz)

_RULES = ["sgd", "sgd_momentum", "nesterov_momentum", "adagrad", "rmsprop", "adam"]


@pytest.mark.parametrize("name", _RULES)
def test_functional_form_accepts_lists_like_arrays(name):
    """w and dw as lists (functional form): converted, same result as the array call."""
    rule = optim.get_update_rule(name)
    w = np.array([[0.5, -1.0], [2.0, 0.25]])
    dw = np.array([[0.1, -0.2], [0.3, 0.4]])
    expected, cfg_a = rule(w, dw, {})
    got, cfg_l = rule(w.tolist(), dw.tolist(), {})
    np.testing.assert_allclose(got, expected)
    # a second step from the list call's config matches too
    np.testing.assert_allclose(rule(got.tolist(), dw.tolist(), cfg_l)[0],
                               rule(expected, dw, cfg_a)[0])
    # a non-contiguous gradient too
    big = np.repeat(dw, 2, axis=1)
    np.testing.assert_allclose(rule(w, big[:, ::2], {})[0], expected)


@pytest.mark.parametrize("name", _RULES)
@pytest.mark.parametrize("bad", [
    np.array([0.1, 0.2, 0.3]) + 0.5j,
    np.array([0.1, 0.2, 0.3], dtype=object),
    np.array(["0.1", "0.2", "0.3"]),
])
@pytest.mark.parametrize("inplace", [False, True])
def test_non_real_dw_is_a_type_error_naming_dw(name, bad, inplace):
    rule = optim.get_update_rule(name)
    w = np.zeros(3)
    with pytest.raises(TypeError, match=r"\bdw\b"):
        rule(w, bad, {}, out=w if inplace else None)
    np.testing.assert_array_equal(w, 0)


def test_ragged_lists_name_their_argument():
    w = np.zeros(2)
    with pytest.raises(ValueError, match=r"\bw\b"):
        optim.sgd([[1.0, 2.0], [3.0]], w)
    with pytest.raises(ValueError, match=r"\bdw\b"):
        optim.sgd(w, [[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("name,key", [("sgd_momentum", "velocity"), ("nesterov_momentum", "velocity"),
                                      ("adagrad", "cache"), ("rmsprop", "cache"), ("adam", "m"),
                                      ("adam", "v")])
@pytest.mark.parametrize("inplace", [False, True])
def test_ragged_state_names_its_config_key(name, key, inplace):
    rule = optim.get_update_rule(name)
    w = np.zeros(2)
    with pytest.raises(ValueError, match=rf"config\['{key}'\]"):
        rule(w, np.ones(2), {key: [[0.0, 0.0], [0.0]]}, out=w if inplace else None)


@pytest.mark.parametrize("bad", [None, "bogus", 3, "ADAM", ["adam"], b"adam"])
def test_unknown_update_rule_names_the_name_argument(bad):
    with pytest.raises(ValueError, match=r"update_rule must be one of.*got name="):
        optim.get_update_rule(bad)
