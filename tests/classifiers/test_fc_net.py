"""TwoLayerNet and FullyConnectedNet: CS231n reference numbers, numerical gradient checks of
whole networks, configuration round trips, dtypes, bad input, and overfitting a small set."""

import json

import numpy as np
import pytest

from fastnn.classifiers import FullyConnectedNet, TwoLayerNet
from fastnn.gradient_check import eval_numerical_gradient


def _relative_norm_error(num, ana):
    """||num - ana|| / (||num|| + ||ana||): one number per array, not swamped by the round-off
    of individual entries whose true gradient is ~0 (as ``rel_error``'s max would be)."""
    return np.linalg.norm(num - ana) / max(np.linalg.norm(num) + np.linalg.norm(ana), 1e-300)


def _check_model_gradients(model, X, y, tol=1e-6):
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name in sorted(grads):
        assert grads[name].shape == model.params[name].shape
        num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name],
                                      verbose=False)
        hidden_bias = name[0] == "b" and name[1:].isdigit() and name != f"b{model.num_layers}"
        if model.normalization == "batchnorm" and hidden_bias:
            # a bias right before batch norm is cancelled by the mean subtraction: its true
            # gradient is exactly 0, so compare absolutely (a relative error is noise)
            np.testing.assert_allclose(grads[name], 0, atol=1e-12)
            np.testing.assert_allclose(num, 0, atol=1e-8)
            continue
        err = _relative_norm_error(num, grads[name])
        assert err < tol, f"{name}: relative error {err:.2e}"
    return loss


# --------------------------------------------------------------------------- TwoLayerNet
def test_two_layer_net_cs231n_reference_numbers():
    # the FullyConnectedNets notebook's TwoLayerNet check (float64 params assigned by hand)
    N, D, H, C = 3, 5, 50, 7
    std = 1e-3
    np.random.seed(231)
    model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=std)
    assert abs(model.params["W1"].std() - std) < std / 10
    assert abs(model.params["W2"].std() - std) < std / 10
    assert np.all(model.params["b1"] == 0) and np.all(model.params["b2"] == 0)

    model.params["W1"] = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    model.params["b1"] = np.linspace(-0.1, 0.9, num=H)
    model.params["W2"] = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    model.params["b2"] = np.linspace(-0.9, 0.1, num=C)
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    scores = model.loss(X)
    correct_scores = np.asarray(
        [[11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434, 15.33206765, 16.09215096],
         [12.05769098, 12.74614105, 13.43459113, 14.1230412, 14.81149128, 15.49994135, 16.18839143],
         [12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506, 16.2846319]])
    np.testing.assert_allclose(scores, correct_scores, rtol=1e-8)
    y = np.asarray([0, 5, 1])
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(3.4702243556, abs=1e-10)
    model.reg = 1.0  # reg is a public attribute that may change after construction
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(26.5948426952, abs=1e-10)


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_net_gradients(rng, reg):
    np.random.seed(0)
    model = TwoLayerNet(input_dim=5, hidden_dim=12, num_classes=4, weight_scale=0.3, reg=reg,
                        dtype=np.float64)
    X = rng.standard_normal((6, 5))
    y = rng.integers(0, 4, size=6)
    _check_model_gradients(model, X, y)


def test_default_constructors_work():
    two = TwoLayerNet()
    assert two.params["W1"].shape == (3072, 100) and two.params["W2"].shape == (100, 10)
    fc = FullyConnectedNet()
    assert fc.num_layers == 3 and fc.params["W3"].shape == (100, 10)
    assert fc.dtype == np.float32 and fc.params["W1"].dtype == np.float32
    assert fc.reg == 0.0 and fc.bn_params == [] and fc.dropout_param == {}


# --------------------------------------------------------------------- FullyConnectedNet
@pytest.mark.parametrize("hidden_dims", [[6, 8], [6, 8, 7]], ids=["2hidden", "3hidden"])
@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
@pytest.mark.parametrize("keep", [1, 0.6], ids=["nodropout", "dropout"])
@pytest.mark.parametrize("reg", [0.0, 3.14])
def test_fc_net_gradient_check(hidden_dims, normalization, keep, reg):
    rs = np.random.RandomState(231)
    N, D, C = 6, 5, 4
    X = rs.randn(N, D)
    y = rs.randint(C, size=N)
    np.random.seed(231)
    model = FullyConnectedNet(hidden_dims, input_dim=D, num_classes=C, reg=reg,
                              weight_scale=5e-1, dtype=np.float64, normalization=normalization,
                              dropout_keep_ratio=keep, seed=123)
    # non-zero biases: with zero biases an example whose inputs were all dropped sits exactly
    # on the ReLU kink, where the centered difference sees half a derivative
    for i in range(1, model.num_layers + 1):
        model.params[f"b{i}"] = 0.1 * rs.randn(*model.params[f"b{i}"].shape)
    if normalization is not None:  # non-trivial scale and shift
        for i in range(1, len(hidden_dims) + 1):
            model.params[f"gamma{i}"] = 1 + 0.3 * rs.randn(hidden_dims[i - 1])
            model.params[f"beta{i}"] = 0.3 * rs.randn(hidden_dims[i - 1])
    loss = _check_model_gradients(model, X, y)
    assert np.isfinite(loss)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "elu"])
def test_fc_net_activations_gradient_check(activation):
    rs = np.random.RandomState(0)
    X = rs.randn(6, 5)
    y = rs.randint(3, size=6)
    np.random.seed(0)
    model = FullyConnectedNet([8, 7], input_dim=5, num_classes=3, reg=0.5, weight_scale=0.7,
                              dtype=np.float64, activation=activation)
    _check_model_gradients(model, X, y)


def test_initial_loss_is_log_num_classes():
    np.random.seed(0)
    model = FullyConnectedNet([50, 40], input_dim=30, num_classes=10, weight_scale=1e-3)
    X = np.random.randn(200, 30)
    y = np.random.randint(10, size=200)
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(np.log(10), abs=1e-3)


def test_reg_term_is_half_reg_sum_of_squared_weights(rng):
    np.random.seed(1)
    model = FullyConnectedNet([6, 5], input_dim=4, num_classes=3, dtype=np.float64,
                              normalization="batchnorm")
    X = rng.standard_normal((5, 4))
    y = rng.integers(0, 3, size=5)
    loss0, grads0 = model.loss(X, y)
    model.reg = 2.5
    loss1, grads1 = model.loss(X, y)
    weights = [model.params[f"W{i}"] for i in (1, 2, 3)]
    assert loss1 - loss0 == pytest.approx(0.5 * 2.5 * sum(np.sum(w * w) for w in weights))
    for i in (1, 2, 3):
        np.testing.assert_allclose(grads1[f"W{i}"] - grads0[f"W{i}"],
                                   2.5 * model.params[f"W{i}"], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(grads1[f"b{i}"], grads0[f"b{i}"])  # biases not regularised
    np.testing.assert_allclose(grads1["gamma1"], grads0["gamma1"])


@pytest.mark.parametrize(("scale", "factor"), [("xavier", 1.0), ("he", 2.0)])
def test_xavier_and_he_initialisation(scale, factor):
    np.random.seed(3)
    model = FullyConnectedNet([400, 300], input_dim=500, num_classes=10, weight_scale=scale)
    for i, fan_in in ((1, 500), (2, 400), (3, 300)):
        std = model.params[f"W{i}"].std()
        assert std == pytest.approx(np.sqrt(factor / fan_in), rel=0.02)


def test_parameter_names_and_shapes():
    model = FullyConnectedNet([4, 5, 6], input_dim=3, num_classes=2, normalization="layernorm")
    expected = {"W1": (3, 4), "b1": (4,), "gamma1": (4,), "beta1": (4,),
                "W2": (4, 5), "b2": (5,), "gamma2": (5,), "beta2": (5,),
                "W3": (5, 6), "b3": (6,), "gamma3": (6,), "beta3": (6,),
                "W4": (6, 2), "b4": (2,)}
    assert {k: v.shape for k, v in model.params.items()} == expected
    np.testing.assert_array_equal(model.params["gamma2"], 1)
    np.testing.assert_array_equal(model.params["beta2"], 0)
    assert model.bn_params == [{}, {}, {}]


def test_same_global_seed_gives_same_weights_as_cs231n_order():
    # CS231n draws W1, W2, ... from np.random.randn in order, scaled by weight_scale
    np.random.seed(5)
    model = FullyConnectedNet([4, 3], input_dim=6, num_classes=2, weight_scale=0.1,
                              dtype=np.float64)
    np.random.seed(5)
    expected = [0.1 * np.random.randn(6, 4), 0.1 * np.random.randn(4, 3),
                0.1 * np.random.randn(3, 2)]
    for i, w in enumerate(expected, start=1):
        np.testing.assert_array_equal(model.params[f"W{i}"], w)


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_float32_model_stays_float32(rng, normalization):
    model = FullyConnectedNet([16, 8], input_dim=12, num_classes=4, normalization=normalization,
                              dropout_keep_ratio=0.8, seed=0, weight_scale="he")
    X = rng.standard_normal((10, 3, 4))  # float64 input, flattened and cast
    y = rng.integers(0, 4, size=10)
    model.reg = np.float64(0.1)  # a NumPy float64 scalar must not upcast either
    loss, grads = model.loss(X, y)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert model.loss(X).dtype == np.float32
    for bn_param in model.bn_params:
        for key in ("running_mean", "running_var"):
            if key in bn_param:
                assert bn_param[key].dtype == np.float32

    # the same network in float64 agrees to float32 precision
    model64 = FullyConnectedNet(**{**model.get_config(), "dtype": "float64"})
    model64.params = {k: v.astype(np.float64) for k, v in model.params.items()}
    loss64, grads64 = model64.loss(X, y)
    assert loss == pytest.approx(loss64, rel=1e-5)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads64[k], rtol=1e-3, atol=1e-5)


def test_test_mode_uses_running_averages_and_no_dropout(rng):
    model = FullyConnectedNet([20], input_dim=5, num_classes=3, normalization="batchnorm",
                              dropout_keep_ratio=0.5, dtype=np.float64)
    X = rng.standard_normal((30, 5))
    y = rng.integers(0, 3, size=30)
    for _ in range(3):
        model.loss(X, y)
    assert model.bn_params[0]["mode"] == "train" and model.dropout_param["mode"] == "train"
    rm = model.bn_params[0]["running_mean"].copy()
    assert np.any(rm != 0)
    s1, s2 = model.loss(X), model.loss(X)
    np.testing.assert_array_equal(s1, s2)  # deterministic: no dropout, no batch statistics
    np.testing.assert_array_equal(model.bn_params[0]["running_mean"], rm)
    assert model.bn_params[0]["mode"] == "test" and model.dropout_param["mode"] == "test"
    # one example at a time gives the same scores as the whole batch (running statistics)
    np.testing.assert_allclose(model.loss(X[:1]), s1[:1], rtol=1e-12)


def test_dropout_seed_makes_training_loss_deterministic(rng):
    X = rng.standard_normal((10, 6))
    y = rng.integers(0, 3, size=10)
    model = FullyConnectedNet([30], input_dim=6, num_classes=3, dropout_keep_ratio=0.5, seed=9)
    assert model.dropout_param == {"mode": "train", "p": 0.5, "seed": 9}
    assert model.loss(X, y)[0] == model.loss(X, y)[0]


# ------------------------------------------------------------------------- config round trip
@pytest.mark.parametrize("kwargs", [
    {},
    {"hidden_dims": [7, 3], "input_dim": 9, "num_classes": 4, "dropout_keep_ratio": 0.5,
     "normalization": "batchnorm", "reg": 0.1, "weight_scale": "he", "dtype": np.float64,
     "seed": 4, "activation": "elu"},
    {"hidden_dims": (5,), "normalization": "layernorm", "weight_scale": "xavier",
     "activation": "tanh"},
])
def test_get_config_rebuilds_identical_architecture(kwargs):
    model = FullyConnectedNet(**kwargs)
    model.reg = 0.25
    config = model.get_config()
    assert json.loads(json.dumps(config)) == config
    clone = FullyConnectedNet(**json.loads(json.dumps(config)))
    assert clone.get_config() == config and model.config == config
    assert clone.reg == 0.25
    assert {k: (v.shape, v.dtype) for k, v in clone.params.items()} == \
        {k: (v.shape, v.dtype) for k, v in model.params.items()}
    assert clone.dropout_param == model.dropout_param
    assert [sorted(p) for p in clone.bn_params] == [sorted(p) for p in model.bn_params]
    assert repr(model).startswith("FullyConnectedNet(hidden_dims=")


def test_two_layer_net_config_round_trip():
    model = TwoLayerNet(input_dim=20, hidden_dim=7, num_classes=3, weight_scale="he", reg=0.5,
                        dtype=np.float64)
    config = json.loads(json.dumps(model.get_config()))
    clone = TwoLayerNet(**config)
    assert clone.get_config() == model.get_config()
    assert clone.params["W1"].shape == (20, 7) and clone.params["W1"].dtype == np.float64


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"hidden_dims": []}, ValueError, "hidden_dims must list at least one"),
    ({"hidden_dims": [10, 0]}, ValueError, r"hidden_dims\[1\] must be >= 1"),
    ({"hidden_dims": [-5]}, ValueError, r"hidden_dims\[0\] must be >= 1"),
    ({"hidden_dims": [2.5]}, TypeError, r"hidden_dims\[0\] must be an integer"),
    ({"hidden_dims": "100"}, TypeError, "hidden_dims must be a sequence"),
    ({"hidden_dims": 100}, TypeError, "hidden_dims must be a sequence"),
    ({"dropout_keep_ratio": 0}, ValueError, "dropout_keep_ratio must be > 0"),
    ({"dropout_keep_ratio": 1.2}, ValueError, "dropout_keep_ratio must be <= 1"),
    ({"dropout_keep_ratio": -0.5}, ValueError, "dropout_keep_ratio must be > 0"),
    ({"normalization": "groupnorm"}, ValueError, "normalization must be one of"),
    ({"activation": "swish"}, ValueError, "activation must be one of"),
    ({"weight_scale": "glorot"}, ValueError, "weight_scale must be one of"),
    ({"weight_scale": -1.0}, ValueError, "weight_scale must be >= 0"),
    ({"reg": -0.1}, ValueError, "reg must be >= 0"),
    ({"dtype": np.int32}, ValueError, "dtype must be float32 or float64"),
    ({"dtype": "nonsense"}, TypeError, "dtype must be float32 or float64"),
    ({"input_dim": 0}, ValueError, "input_dim must be >= 1"),
    ({"num_classes": 0}, ValueError, "num_classes must be >= 1"),
    ({"seed": -1}, ValueError, "seed must be >= 0"),
])
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        FullyConnectedNet(**kwargs)


def test_two_layer_net_bad_hidden_dim():
    with pytest.raises(ValueError, match="hidden_dim must be >= 1"):
        TwoLayerNet(hidden_dim=0)


def test_bad_loss_inputs(rng):
    model = FullyConnectedNet([5], input_dim=6, num_classes=3)
    with pytest.raises(ValueError, match="X must have input_dim=6 features per example"):
        model.loss(rng.standard_normal((4, 7)))
    with pytest.raises(ValueError, match="X must have input_dim=6"):
        model.loss(rng.standard_normal((4, 2, 2)), [0, 1, 2, 0])
    with pytest.raises(ValueError, match="X must have shape"):
        model.loss(rng.standard_normal(6))
    X = rng.standard_normal((4, 2, 3))  # 6 features once flattened: fine
    assert model.loss(X).shape == (4, 3)
    with pytest.raises(ValueError, match=r"y must be class indices in \[0, 3\)"):
        model.loss(X, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="y must be non-negative"):
        model.loss(X, [0, 1, -1, 2])
    with pytest.raises(ValueError, match="X has 4 examples, y has 3 labels"):
        model.loss(X, [0, 1, 2])
    with pytest.raises(ValueError, match="X has 1 examples, y has 2 labels"):
        model.loss(X[:1], [0, 1])  # names X too: either may be the wrong one


# --------------------------------------------------------------------------- overfitting
@pytest.mark.parametrize("normalization", [None, "batchnorm"])
def test_five_layer_net_overfits_50_examples_within_20_epochs(normalization):
    from fastnn.data import load_dataset

    data = load_dataset("sample")  # real Fashion-MNIST images packaged with fastnn
    X = data["X_train"][:50].reshape(50, -1) / 255.0
    X -= X.mean(axis=0)
    y = data["y_train"][:50]
    np.random.seed(0)
    model = FullyConnectedNet([100, 100, 100, 100], input_dim=X.shape[1], num_classes=10,
                              weight_scale="he", normalization=normalization)
    assert model.num_layers == 5
    order_rng = np.random.default_rng(0)
    learning_rate, batch_size = 0.1, 25
    train_acc = []
    for _epoch in range(20):  # plain minibatch SGD
        order = order_rng.permutation(50)
        for start in range(0, 50, batch_size):
            batch = order[start:start + batch_size]
            _, grads = model.loss(X[batch], y[batch])
            for name, grad in grads.items():
                model.params[name] -= learning_rate * grad
        train_acc.append(float(np.mean(model.loss(X).argmax(axis=1) == y)))
        if train_acc[-1] == 1.0:
            break
    assert train_acc[-1] == 1.0, train_acc


def test_five_layer_net_overfits_with_the_solver():
    """The same check through fastnn.solver.Solver (the CS231n notebook's workflow)."""
    from fastnn.data import load_dataset
    from fastnn.solver import Solver

    data = load_dataset("sample")
    X = data["X_train"][:50].reshape(50, -1) / 255.0
    X -= X.mean(axis=0)
    y = data["y_train"][:50]
    np.random.seed(0)
    model = FullyConnectedNet([100, 100, 100, 100], input_dim=X.shape[1], weight_scale="he")
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                    update_rule="sgd", optim_config={"learning_rate": 0.1}, batch_size=25,
                    num_epochs=20, seed=0, verbose=False, progress=False)
    solver.train()
    assert len(solver.train_acc_history) <= 21
    assert max(solver.train_acc_history) == 1.0, solver.train_acc_history


# --------------------------------------------------------------------------- absurd sizes
@pytest.mark.parametrize(("build", "match"), [
    (lambda: TwoLayerNet(hidden_dim=10**12), r"hidden_dim=1000000000000 with input_dim=3072"),
    (lambda: FullyConnectedNet([100, 10**12]), r"hidden_dims=\[100, 1000000000000\]"),
    (lambda: FullyConnectedNet([10], input_dim=10**13), r"input_dim=10000000000000"),
    (lambda: TwoLayerNet(num_classes=10**14), r"num_classes=100000000000000"),
])
def test_absurd_sizes_raise_before_allocating(monkeypatch, build, match):
    from fastnn.classifiers import fc_net

    def refuse(*args, **kwargs):
        raise AssertionError("weights were allocated")

    monkeypatch.setattr(fc_net, "_init_weight", refuse)
    with pytest.raises(ValueError, match=match + ".*more than this machine's memory"):
        build()


def test_size_limit_counts_every_parameter(monkeypatch):
    from fastnn.classifiers import fc_net

    # W1 10x20 + b1 20 + W2 20x10 + b2 10 = 430 parameters = 3440 bytes at 8 bytes each
    monkeypatch.setattr(fc_net, "memory_limit_bytes", lambda: 3440)
    assert FullyConnectedNet([20], input_dim=10, num_classes=10).params["W2"].shape == (20, 10)
    monkeypatch.setattr(fc_net, "memory_limit_bytes", lambda: 3439)
    with pytest.raises(ValueError, match="gives 430 parameters"):
        FullyConnectedNet([20], input_dim=10, num_classes=10)


def test_memory_limit_is_positive_and_plausible():
    from fastnn._validation import memory_limit_bytes

    assert 2**20 < memory_limit_bytes() <= 2**60


@pytest.mark.parametrize("build", [
    lambda: TwoLayerNet(input_dim=7, hidden_dim=5, num_classes=3),
    lambda: FullyConnectedNet([4, 6], input_dim=3, num_classes=2, normalization="layernorm"),
    lambda: FullyConnectedNet([4], input_dim=3, num_classes=2, normalization="batchnorm"),
])
def test_parameter_shapes_match_the_model_without_building_it(build):
    model = build()
    shapes = type(model).parameter_shapes(**model.get_config())
    assert shapes == {k: v.shape for k, v in model.params.items()}
    assert list(shapes) == list(model.params)
    with pytest.raises(TypeError, match="width"):
        type(model).parameter_shapes(**model.get_config(), width=3)


# --------------------------------------------------------------------------- model-state protocol
def test_state_is_the_batchnorm_running_averages(rng):
    model = FullyConnectedNet([4, 3], input_dim=5, num_classes=2, normalization="batchnorm",
                              dtype=np.float64)
    model.loss(rng.standard_normal((8, 5)), rng.integers(0, 2, 8))
    state = model.get_state()
    assert {k: v.shape for k, v in state.items()} == {
        "running_mean1": (4,), "running_var1": (4,), "running_mean2": (3,), "running_var2": (3,)}
    np.testing.assert_array_equal(state["running_mean1"], model.bn_params[0]["running_mean"])
    state["running_mean1"][:] = 99  # copies: changing them leaves the model alone
    assert not np.any(model.get_state()["running_mean1"] == 99)
    for kwargs in ({}, {"normalization": "layernorm"}, {"dropout_keep_ratio": 0.5}):
        assert FullyConnectedNet([4], input_dim=5, **kwargs).get_state() == {}
    assert TwoLayerNet(input_dim=3, hidden_dim=2).get_state() == {}


def test_set_state_restores_copies_in_the_model_dtype():
    model = FullyConnectedNet([3], input_dim=2, num_classes=2, normalization="batchnorm")
    new = {"running_mean1": np.arange(3.0), "running_var1": np.full(3, 2.0)}
    model.set_state(new)
    new["running_mean1"][:] = -1  # the model keeps its own copy
    assert model.bn_params[0]["running_mean"].dtype == np.float32
    np.testing.assert_array_equal(model.get_state()["running_mean1"], [0, 1, 2])
    np.testing.assert_array_equal(model.bn_params[0]["running_var"], 2)


@pytest.mark.parametrize(("state", "error", "match"), [
    ({"running_mean1": np.ones(3)}, ValueError, r"entries \['running_mean1', 'running_var1'\]"),
    ({"running_mean1": np.ones(3), "running_var1": np.ones(3), "x": np.ones(1)}, ValueError,
     "got \\['running_mean1', 'running_var1', 'x'\\]"),
    ({"running_mean1": np.ones(3), "running_var1": np.ones(4)}, ValueError,
     r"state\['running_var1'\] must have shape \(3,\)"),
    ({"running_mean1": np.ones(3), "running_var1": np.ones(3, complex)}, TypeError,
     r"state\['running_var1'\] must be a real floating array, got complex128"),
    ({"running_mean1": [1.0, 2.0, 3.0], "running_var1": np.ones(3)}, TypeError,
     "got list"),
    ([("running_mean1", np.ones(3))], TypeError, "state must be a dict"),
])
def test_set_state_checks_everything_before_changing_anything(state, error, match):
    model = FullyConnectedNet([3], input_dim=2, num_classes=2, normalization="batchnorm")
    before = model.get_state()
    with pytest.raises(error, match=match):
        model.set_state(state)
    for name, value in model.get_state().items():
        np.testing.assert_array_equal(value, before[name])
