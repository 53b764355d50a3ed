"""ThreeLayerConvNet and ConvNet: gradients, initial loss, overfitting, spec parsing, state,
save/load, checkpoint resume, freezing, replace_classifier, and real CIFAR-10 overfitting."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.classifiers import ConvNet, ThreeLayerConvNet
from fastnn.gradient_check import eval_numerical_gradient, rel_error
from fastnn.serialization import load_model, save_model
from fastnn.solver import Solver


def _batch(rng, n=4, shape=(3, 8, 8), classes=5, dtype=np.float64):
    return rng.standard_normal((n, *shape)).astype(dtype), rng.integers(0, classes, n)


def _grad_check(model, X, y, tol=1e-6):
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params) - model.__dict__.get("frozen", set())
    for name in grads:
        num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name],
                                      verbose=False, h=1e-6)
        err = rel_error(grads[name], num)
        assert err < tol or np.abs(grads[name] - num).max() < 1e-8, (name, err)
    return loss


# --------------------------------------------------------------------------- ThreeLayerConvNet


def test_three_layer_gradients_float64(rng):
    np.random.seed(0)
    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=3, filter_size=3, hidden_dim=7,
                              num_classes=5, weight_scale=1e-1, reg=0.3, dtype=np.float64)
    X, y = _batch(rng)
    _grad_check(model, X, y)


def test_three_layer_initial_loss_is_log_classes_and_cs231n_shapes(rng):
    np.random.seed(231)
    model = ThreeLayerConvNet()
    assert {k: v.shape for k, v in model.params.items()} == {
        "W1": (32, 3, 7, 7), "b1": (32,), "W2": (32 * 16 * 16, 100), "b2": (100,),
        "W3": (100, 10), "b3": (10,)}
    assert all(v.dtype == np.float32 for v in model.params.values())
    X, y = _batch(rng, n=20, shape=(3, 32, 32), classes=10, dtype=np.float32)
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(np.log(10), abs=0.02)
    assert model.loss(X).shape == (20, 10)
    # CS231n's draw order: W1 first from the global state
    np.random.seed(231)
    np.testing.assert_array_equal(model.params["W1"],
                                  (1e-3 * np.random.randn(32, 3, 7, 7)).astype(np.float32))


def test_three_layer_overfits_a_small_batch(rng):
    np.random.seed(0)
    X, y = _batch(rng, n=20, shape=(3, 8, 8), classes=4, dtype=np.float32)
    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=8, filter_size=3, hidden_dim=32,
                              num_classes=4, weight_scale=1e-2)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                    update_rule="adam", optim_config={"learning_rate": 5e-3}, batch_size=10,
                    num_epochs=40, verbose=False, seed=0)
    solver.train()
    assert solver.best_val_acc == 1.0 and solver.loss_history[-1] < 0.1


def test_three_layer_bad_sizes_are_named():
    with pytest.raises(ValueError, match="filter_size=4 .* cannot tile"):
        ThreeLayerConvNet(input_dim=(3, 8, 8), filter_size=4)
    with pytest.raises(ValueError, match="num_filters"):
        ThreeLayerConvNet(num_filters=0)
    with pytest.raises(ValueError, match="input_dim"):
        ThreeLayerConvNet(input_dim=(3, 32))
    model = ThreeLayerConvNet(input_dim=(1, 4, 4), num_filters=2, filter_size=3, hidden_dim=3)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 1, 4, 4\)"):
        model.loss(np.zeros((2, 3, 4, 4)))


# --------------------------------------------------------------------------- ConvNet specs


@pytest.mark.parametrize(("spec", "shapes"), [
    ("conv4-relu-pool,fc5", {"W1": (4, 3, 3, 3), "W2": (4 * 4 * 4, 5)}),
    (["conv4k5-bn-relu", "conv6k4s2p1-gn2-relu-avgpool", "fc7-bn-relu-dropout0.5", "fc5"],
     {"W1": (4, 3, 5, 5), "gamma1": (4,), "W2": (6, 4, 4, 4), "gamma2": (1, 6, 1, 1),
      "W3": (6 * 2 * 2, 7), "gamma3": (7,), "W4": (7, 5)}),
    ("conv4k1p0-relu-gap-fc5", {"W1": (4, 3, 1, 1), "W2": (4, 5)}),
    ("fc5", {"W1": (3 * 8 * 8, 5)}),
    ("CONV4-RELU-POOL4S2 fc5", {"W2": (4 * 3 * 3, 5)}),
])
def test_good_specs_give_their_parameters(spec, shapes):
    model = ConvNet(spec, input_dim=(3, 8, 8), num_classes=5, seed=0)
    for name, shape in shapes.items():
        assert model.params[name].shape == shape, name
    assert ConvNet.parameter_shapes(**model.get_config()) == {
        k: v.shape for k, v in model.params.items()}
    rebuilt = ConvNet(**model.get_config())
    assert rebuilt.spec == model.spec and rebuilt.layers[-1].out_shape == (5,)


@pytest.mark.parametrize(("spec", "match"), [
    ("conv4-pool,fc5", r"token 2 'pool' cannot come after 'conv4': expected bn or gn or relu"),
    ("conv4-bn-pool,fc5", r"'pool' cannot come after 'bn': expected relu"),
    ("conv4-relu,fc6", r"'fc6' must have num_classes=5"),
    ("conv4-relu,fc5-relu", r"must end with the classifier fc<num_classes> \(fc5\)"),
    ("conv4-relu,fc5,dropout0.5", r"'dropout0.5' cannot come after 'fc5'"),
    ("conv4-gn3-relu,fc5", r"'gn3': 3 groups do not divide the 4 channels"),
    ("conv4k9p0-relu,fc5", r"'conv4k9p0' does not fit its input"),
    ("conv4s3-relu,fc5", r"'conv4s3' does not fit its input"),
    ("conv4-relu-pool3,fc5", r"'pool3' does not fit"),
    ("conv0-relu,fc5", r"'conv0': the number of filters must be >= 1"),
    ("conv4-relu-gap-conv4", r"'conv4' cannot come after 'gap': expected fc"),
    ("fc8-relu-dropout1.5,fc5", r"'dropout1.5': the keep probability must be in \(0, 1\]"),
    ("conv4-relu-maxout,fc5", r"token 3 'maxout' is not a layer: expected one of conv<F>"),
    ("", "at least one layer"),
    ("relu,fc5", r"'relu' cannot come at the start: expected conv or fc"),
])
def test_bad_specs_name_the_token(spec, match):
    with pytest.raises(ValueError, match=match):
        ConvNet(spec, input_dim=(3, 8, 8), num_classes=5)


def test_bad_constructor_arguments_are_named():
    with pytest.raises(TypeError, match="spec must be a string"):
        ConvNet(3)
    with pytest.raises(ValueError, match="weight_scale"):
        ConvNet("fc10", weight_scale="lecun")
    with pytest.raises(ValueError, match="dtype"):
        ConvNet("fc10", dtype=np.int32)
    with pytest.raises(ValueError, match="input_dim"):
        ConvNet("fc10", input_dim=(3, 32, 32, 1))
    with pytest.raises(ValueError, match="parameters, more than this machine's memory"):
        ConvNet("fc100000000-relu,fc10", input_dim=(3, 1000, 1000))


def test_he_init_and_seed():
    a = ConvNet("conv16-relu-pool,fc10", seed=3)
    b = ConvNet("conv16-relu-pool,fc10", seed=3)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert a.params["W1"].std() == pytest.approx(np.sqrt(2 / 27), rel=0.1)
    assert a.params["W2"].std() == pytest.approx(np.sqrt(2 / (16 * 16 * 16)), rel=0.05)
    assert "conv16-relu-pool,fc10" in repr(a) and "parameters" in repr(a)


@pytest.mark.parametrize("spec", [
    "conv3-bn-relu-pool,fc6-bn-relu,fc4",
    "conv4-gn2-relu,conv4k2s2p0-relu-avgpool3,fc4",
    "conv3k1p0-relu-gap-fc4",
])
def test_convnet_gradients_float64(rng, spec):
    model = ConvNet(spec, input_dim=(2, 6, 6), num_classes=4, reg=0.1, dtype=np.float64,
                    seed=1)
    for name, p in model.params.items():  # non-trivial affine parameters
        if name.startswith(("gamma", "beta", "b")):
            model.params[name] = p + 0.1 * rng.standard_normal(p.shape)
    X, y = _batch(rng, n=5, shape=(2, 6, 6), classes=4)
    _grad_check(model, X, y)


def _spec_order_loss(model, X, y):
    """Loss and gradients of ``model`` run layer by layer in spec order (CS231n's order)."""
    from fastnn.classifiers._conv_ops import layer_backward, layer_forward
    from fastnn.layers.losses import softmax_loss

    for rt in model._runtime:
        if "mode" in rt:
            rt["mode"] = "train"
    h, caches = X, []
    for layer, rt in zip(model.layers, model._runtime):
        h, cache = layer_forward(layer, h, model.params, rt)
        caches.append(cache)
    loss, dout = softmax_loss(h, y)
    grads = {}
    for pos in range(len(model.layers) - 1, -1, -1):
        dout, g = layer_backward(model.layers[pos], dout, caches[pos], need_dx=pos > 0)
        grads.update(g)
    return loss, grads


@pytest.mark.parametrize("spec, size, swapped", [
    ("conv6-bn-relu-pool,conv5-relu-pool3s1,fc7-relu,fc4", 10, [(2, 3), (5, 6)]),
    ("conv4-relu-pool3s2,fc4", 9, [(1, 2)]),
    ("conv4-relu-avgpool,conv3-relu-gap-fc4", 10, []),  # average pooling does not commute
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_before_max_pool_runs_after_it_with_identical_results(rng, spec, size, swapped,
                                                                   dtype):
    from fastnn.classifiers.cnn import execution_order

    model = ConvNet(spec, input_dim=(2, size, size), num_classes=4, dtype=dtype, seed=2)
    order = execution_order(model.layers)
    assert sorted(order) == list(range(len(model.layers)))
    assert [(order[i], order[i + 1]) for i in range(len(order) - 1)
            if order[i] > order[i + 1]] == [(b, a) for a, b in swapped]
    # small integers: many exact ties inside pool windows, zeros and negatives at the ReLU
    X = rng.integers(-2, 3, size=(3, 2, size, size)).astype(dtype)
    model.params["W1"] = rng.integers(-1, 2, size=model.params["W1"].shape).astype(dtype)
    y = rng.integers(0, 4, size=3)
    loss, grads = model.loss(X, y)
    ref_loss, ref_grads = _spec_order_loss(model, X, y)
    assert loss == ref_loss
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        np.testing.assert_array_equal(grads[name], ref_grads[name], err_msg=name)


def test_convnet_initial_loss_and_dropout_modes(rng):
    model = ConvNet("conv8-bn-relu-pool,fc16-relu-dropout0.5,fc10", input_dim=(3, 8, 8),
                    seed=0, weight_scale=1e-3)
    X, y = _batch(rng, n=50, shape=(3, 8, 8), classes=10, dtype=np.float32)
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(np.log(10), abs=0.05)
    s1, s2 = model.loss(X), model.loss(X)  # test mode: no dropout, deterministic
    np.testing.assert_array_equal(s1, s2)


def test_state_protocol_round_trip(rng):
    model = ConvNet("conv4-bn-relu,fc6-bn-relu,fc3", input_dim=(2, 4, 4), num_classes=3, seed=0)
    X, y = _batch(rng, n=6, shape=(2, 4, 4), classes=3, dtype=np.float32)
    model.loss(X, y)
    state = model.get_state()
    assert set(state) == {"running_mean1", "running_var1", "running_mean2", "running_var2"}
    assert state["running_mean1"].shape == (4,) and state["running_var2"].shape == (6,)
    other = ConvNet(**model.get_config())
    other.params = {k: v.copy() for k, v in model.params.items()}
    other.set_state(state)
    np.testing.assert_array_equal(other.loss(X), model.loss(X))
    with pytest.raises(ValueError, match="running_mean1"):
        other.set_state({**state, "running_mean1": np.zeros(5)})
    with pytest.raises(ValueError, match="entries"):
        other.set_state({})


def test_save_load_round_trip(tmp_path, rng):
    model = ConvNet("conv4-gn2-relu-pool,conv4-bn-relu,fc5", input_dim=(1, 6, 6),
                    num_classes=5, reg=0.01, seed=2)
    X, y = _batch(rng, n=4, shape=(1, 6, 6), classes=5, dtype=np.float32)
    model.loss(X, y)
    save_model(tmp_path / "m.npz", model)
    loaded = load_model(tmp_path / "m.npz")
    assert isinstance(loaded, ConvNet) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.loss(X), model.loss(X))
    three = ThreeLayerConvNet(input_dim=(1, 6, 6), num_filters=2, filter_size=3, hidden_dim=4)
    save_model(tmp_path / "t.npz", three)
    np.testing.assert_array_equal(load_model(tmp_path / "t.npz").loss(X), three.loss(X))


def _toy_images(rng, n=60, shape=(1, 6, 6), classes=3):
    y = rng.integers(0, classes, n)
    X = rng.standard_normal((n, *shape)).astype(np.float32) * 0.5
    X[:, :, :2, :2] += y[:, None, None, None]  # the class shows in one corner
    return X, y


def test_checkpoint_resume_reproduces_the_run(tmp_path, rng):
    from fastnn.data.augment import Augmenter

    X, y = _toy_images(rng)
    data = {"X_train": X[:48], "y_train": y[:48], "X_val": X[48:], "y_val": y[48:]}

    def run(resume_from=None):
        np.random.seed(0)
        model = ConvNet("conv4-bn-relu-pool,fc8-relu-dropout0.7,fc3", input_dim=(1, 6, 6),
                        num_classes=3)
        solver = Solver(model, data, update_rule="adam", batch_size=12, num_epochs=3,
                        verbose=False, seed=1, shuffle=True, augment=Augmenter("flip,crop1", 4),
                        checkpoint_name=str(tmp_path / "run"))
        if resume_from:
            solver.resume(resume_from)
        else:
            solver.train()
        return solver

    full = run()
    resumed = run(tmp_path / "run_epoch_1.npz")
    assert resumed.loss_history == full.loss_history
    for k in full.model.params:
        np.testing.assert_array_equal(resumed.model.params[k], full.model.params[k])
    for k, v in full.model.get_state().items():
        np.testing.assert_array_equal(resumed.model.get_state()[k], v)


# --------------------------------------------------------------------------- transfer learning


def test_freeze_gives_no_gradient_and_stops_backprop(rng, monkeypatch):
    import fastnn.classifiers._conv_ops as ops

    model = ConvNet("conv4-bn-relu,conv4-relu-pool,fc6-relu,fc3", input_dim=(2, 4, 4),
                    num_classes=3, seed=0, dtype=np.float64)
    X, y = _batch(rng, n=4, shape=(2, 4, 4), classes=3)
    calls = []
    real = ops.layer_backward
    monkeypatch.setattr(ops, "layer_backward", lambda layer, dout, cache, need_dx: calls.append(
        (layer.kind, layer.index, need_dx)) or real(layer, dout, cache, need_dx))
    monkeypatch.setattr("fastnn.classifiers.cnn.layer_backward", ops.layer_backward)

    model.loss(X, y)  # nothing frozen: the first conv still skips dx
    assert calls[-1] == ("conv", 1, False)
    calls.clear()
    assert model.freeze("features") == {"W1", "b1", "gamma1", "beta1", "W2", "b2", "W3", "b3"}
    _, grads = model.loss(X, y)
    assert set(grads) == {"W4", "b4"}
    assert calls == [("fc", 4, False)]  # the head only, without its input gradient
    calls.clear()
    model.unfreeze(["W3", "b3"])
    _, grads = model.loss(X, y)
    assert set(grads) == {"W3", "b3", "W4", "b4"}
    assert [c[:2] for c in calls] == [("fc", 4), ("relu", None), ("fc", 3)]
    assert calls[-1][2] is False
    model.unfreeze("features")
    assert model.freeze("conv") == {"W1", "b1", "gamma1", "beta1", "W2", "b2"}
    model.unfreeze("conv")
    model.freeze(["W2", "b"])  # W2 exactly; prefix "b": every bias
    assert model.frozen == {"W2", "b1", "b2", "b3", "b4"}
    with pytest.raises(ValueError, match="'W9' matches no parameter"):
        model.freeze("W9")
    model.frozen = set(model.params)
    assert model.loss(X, y)[1] == {}


def test_frozen_params_unchanged_by_the_solver(rng):
    X, y = _toy_images(rng)
    data = {"X_train": X[:48], "y_train": y[:48], "X_val": X[48:], "y_val": y[48:]}
    model = ConvNet("conv4-bn-relu-pool,fc8-relu,fc3", input_dim=(1, 6, 6), num_classes=3,
                    seed=0)
    model.freeze("features")
    before = {k: v.copy() for k, v in model.params.items()}
    Solver(model, data, update_rule="adam", batch_size=12, num_epochs=2, verbose=False,
           seed=0).train()
    for k in model.frozen:
        np.testing.assert_array_equal(model.params[k], before[k])
    assert not np.array_equal(model.params["W3"], before["W3"])


def test_replace_classifier(rng):
    model = ConvNet("conv4-relu-pool,fc8-relu,fc3", input_dim=(1, 6, 6), num_classes=3, seed=0)
    W1 = model.params["W1"].copy()
    model.freeze("features")
    model.freeze("W3")
    model.replace_classifier(7, seed=5)
    assert model.params["W3"].shape == (8, 7) and model.params["b3"].shape == (7,)
    assert model.num_classes == 7 and model.spec.endswith("fc7")
    assert "W3" not in model.frozen and "W1" in model.frozen
    np.testing.assert_array_equal(model.params["W1"], W1)
    X, _ = _batch(rng, n=3, shape=(1, 6, 6), dtype=np.float32)
    assert model.loss(X).shape == (3, 7)
    assert ConvNet(**model.get_config()).params["W3"].shape == (8, 7)
    with pytest.raises(ValueError, match="num_classes"):
        model.replace_classifier(0)


# --------------------------------------------------------------------------- real data


@pytest.mark.data
@pytest.mark.heavy
def test_three_layer_overfits_100_cifar_images(data_dir, require_data):
    """CS231n's sanity check on real images: 100 CIFAR-10 training images are learnt by heart
    (about 30 s on 2 cores)."""
    from fastnn.data import load_dataset

    try:
        data = load_dataset("cifar10", root=data_dir)
    except Exception as exc:  # noqa: BLE001 - a missing data set is a skip (or CI failure)
        require_data(f"CIFAR-10 not found below {data_dir}: {exc}")
    X = data["X_train"][:100].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    X -= X.mean(axis=0)
    y = data["y_train"][:100]
    np.random.seed(231)
    model = ThreeLayerConvNet(weight_scale=1e-2)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X[:50], "y_val": y[:50]},
                    num_epochs=20, batch_size=25, update_rule="adam", shuffle=True,
                    optim_config={"learning_rate": 4e-3}, verbose=False, seed=0)
    solver.train()
    assert max(solver.train_acc_history) == 1.0
