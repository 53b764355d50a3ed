"""save_model/load_model round trips, the whitelist, atomic writes and damaged files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.lib import format as npformat

from fastnn import serialization
from fastnn.classifiers import FullyConnectedNet, TwoLayerNet
from fastnn.serialization import CheckpointError, atomic_savez, load_model, save_model


class TinyModel:
    def __init__(self, width=3):
        self.width = width
        self.params = {"W": np.arange(2.0 * width).reshape(2, width)}

    def get_config(self):
        return {"width": self.width}

    def loss(self, X, y=None):
        return X @ self.params["W"]


def test_fully_connected_round_trip_with_batchnorm(tmp_path, rng):
    np.random.seed(0)
    model = FullyConnectedNet([7, 5], input_dim=6, num_classes=3, normalization="batchnorm",
                              dropout_keep_ratio=0.5, activation="tanh", dtype=np.float64)
    X = rng.standard_normal((10, 6))
    y = rng.integers(0, 3, 10)
    model.loss(X, y)  # one training pass fills the batchnorm running averages
    path = save_model(tmp_path / "model", model, metadata={"mean": np.arange(6.0), "scale": 0.5})
    assert path.name == "model.npz"

    state = np.random.get_state()[1].copy()
    loaded, meta = load_model(path, with_metadata=True)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched
    assert type(loaded) is FullyConnectedNet
    assert loaded.get_config() == model.get_config()
    for k, v in model.params.items():
        np.testing.assert_array_equal(loaded.params[k], v)
        assert loaded.params[k].dtype == v.dtype
    for a, b in zip(model.bn_params, loaded.bn_params):
        np.testing.assert_array_equal(a["running_mean"], b["running_mean"])
        np.testing.assert_array_equal(a["running_var"], b["running_var"])
    np.testing.assert_array_equal(loaded.loss(X), model.loss(X))
    assert meta["scale"] == 0.5
    np.testing.assert_array_equal(meta["mean"], np.arange(6.0))


def test_two_layer_net_round_trip_float32(tmp_path):
    model = TwoLayerNet(input_dim=5, hidden_dim=4, num_classes=3, weight_scale=0.1)
    loaded = load_model(save_model(tmp_path / "two.npz", model))
    assert type(loaded) is TwoLayerNet
    for k in model.params:
        np.testing.assert_array_equal(loaded.params[k], model.params[k])


def test_files_load_without_pickle(tmp_path):
    path = save_model(tmp_path / "m.npz", TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=2))
    with np.load(path, allow_pickle=False) as f:
        header = json.loads(str(f["__fastnn__"]))
        assert all(f[k].dtype != object for k in f.files)
    assert header["model"]["class"] == "TwoLayerNet"
    assert header["model"]["config"]["hidden_dim"] == 3


def test_unknown_classes_are_refused_until_registered(tmp_path):
    path = save_model(tmp_path / "tiny.npz", TinyModel(width=4))
    with pytest.raises(CheckpointError, match="model class 'TinyModel' is not one fastnn may load"):
        load_model(path)
    serialization.register_model_class(TinyModel)
    try:
        loaded = load_model(path)
        assert loaded.width == 4
        np.testing.assert_array_equal(loaded.params["W"], np.arange(8.0).reshape(2, 4))
    finally:
        serialization._REGISTERED.pop("TinyModel")


def test_mismatched_architecture_is_a_clear_error(tmp_path):
    model = TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=2)
    path = save_model(tmp_path / "m.npz", model)
    header, arrays = serialization.read_npz(path)
    arrays["params/W1"] = np.zeros((9, 3), dtype=np.float32)
    arrays["__fastnn__"] = serialization.header_array(header)
    atomic_savez(path, arrays)
    with pytest.raises(CheckpointError, match=r"'W1' has shape \(9, 3\)"):
        load_model(path)


def test_truncated_and_corrupted_files_name_the_file(tmp_path):
    path = save_model(tmp_path / "m.npz", TwoLayerNet(input_dim=40, hidden_dim=30, num_classes=5))
    raw = path.read_bytes()
    for cut in (10, len(raw) // 3, len(raw) - 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match=f"cut{cut}.npz"):
            load_model(bad)
    flipped = bytearray(raw)
    middle = len(raw) // 2
    flipped[middle:middle + 64] = bytes(64)
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="flipped.npz"):
        load_model(bad)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(CheckpointError, match="no __fastnn__ header"):
        load_model(foreign)
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        load_model(tmp_path / "nothing.npz")


def test_pickled_arrays_are_rejected(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __fastnn__=np.array("{}"), obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="evil.npz"):
        load_model(path)


def test_failure_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    model = TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=2)
    path = save_model(tmp_path / "m.npz", model)
    before = path.read_bytes()
    saved_w1 = model.params["W1"].copy()

    original_write = npformat.write_array
    calls = {"n": 0}

    def failing_write_array(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # some members already written to the temporary file
            raise OSError("disk full (simulated)")
        return original_write(*args, **kwargs)

    monkeypatch.setattr(npformat, "write_array", failing_write_array)
    model.params["W1"] += 1
    with pytest.raises(OSError, match="disk full"):
        save_model(path, model)
    monkeypatch.undo()
    assert calls["n"] >= 3
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary left behind
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.params["W1"], saved_w1)


def test_interrupt_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = atomic_savez(tmp_path / "a.npz", {"x": np.zeros(3)})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_savez(path, {"x": np.ones(3)})
    monkeypatch.undo()
    with np.load(path) as f:
        np.testing.assert_array_equal(f["x"], np.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


def test_save_rejects_bad_models(tmp_path):
    with pytest.raises(TypeError, match="params dict"):
        save_model(tmp_path / "x.npz", object())

    class Unserialisable(TinyModel):
        def get_config(self):
            return {"fn": print}

    with pytest.raises(TypeError, match="JSON-serialisable"):
        save_model(tmp_path / "x.npz", Unserialisable())


def test_float64_batchnorm_state_loads_in_the_model_dtype(tmp_path, rng):
    np.random.seed(0)
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, normalization="batchnorm",
                              dtype=np.float32)
    # a file whose running averages were written in float64
    model.bn_params[0]["running_mean"] = rng.standard_normal(5)
    model.bn_params[0]["running_var"] = rng.random(5) + 0.5
    path = save_model(tmp_path / "m", model)
    loaded = load_model(path)
    for key in ("running_mean", "running_var"):
        assert loaded.bn_params[0][key].dtype == np.float32
        np.testing.assert_allclose(loaded.bn_params[0][key], model.bn_params[0][key], rtol=1e-6)
    scores = loaded.loss(rng.standard_normal((3, 4)).astype(np.float32))
    assert scores.dtype == np.float32


# --------------------------------------------------------------------------- model-state protocol


def test_saved_model_holds_get_state_and_load_restores_it(tmp_path, rng):
    np.random.seed(0)
    model = FullyConnectedNet([5, 4], input_dim=3, num_classes=2, normalization="batchnorm")
    model.set_state({k: rng.random(v.shape).astype(np.float32)
                     for k, v in model.get_state().items()})
    path = save_model(tmp_path / "m", model)
    with np.load(path, allow_pickle=False) as f:
        names = set(f.files)
    assert {"state/running_mean1", "state/running_var2"} <= names
    assert not any(name.startswith("bn_params") for name in names)
    loaded = load_model(path)
    for name, value in model.get_state().items():
        np.testing.assert_array_equal(loaded.get_state()[name], value)


def test_model_with_half_the_state_protocol_is_refused(tmp_path):
    class OnlySet(TinyModel):
        def set_state(self, state):
            pass

    with pytest.raises(TypeError, match="must define both get_state"):
        save_model(tmp_path / "x.npz", OnlySet())


# --------------------------------------------------------------------------- damaged model files


def _rewrite(path, edit):
    header, arrays = serialization.read_npz(path)
    edit(header, arrays)
    arrays["__fastnn__"] = serialization.header_array(header)
    atomic_savez(path, arrays)


@pytest.fixture
def saved(tmp_path):
    return save_model(tmp_path / "m.npz", TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=2))


@pytest.fixture
def no_allocation(monkeypatch):
    """Fail the test if a model's weights are allocated (the constructor draws them)."""
    from fastnn.classifiers import fc_net

    def refuse(*args, **kwargs):
        raise AssertionError("a model was allocated before the file was checked")

    monkeypatch.setattr(fc_net, "_init_weight", refuse)


@pytest.mark.parametrize(("header", "match"), [
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"version": -1, "model": {}}', "unknown format version -1"),
    ('{"version": 7, "model": {}}', "unknown format version 7"),
    ('{"version": false, "model": {}}', "unknown format version False"),
    ('{"model": {}}', "unknown format version None"),
])
def test_bad_header_or_version_is_refused(saved, header, match, no_allocation):
    _, arrays = serialization.read_npz(saved)
    arrays["__fastnn__"] = np.array(header)
    atomic_savez(saved, arrays)
    with pytest.raises(CheckpointError, match=match):
        load_model(saved)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda h, a: h.update(model="TwoLayerNet"), "header 'model' must be a dict, got str"),
    (lambda h, a: h.update(model=None), "header 'model' must be a dict"),
    (lambda h, a: h["model"].update(config=[4, 3]), "'model.config' must be a dict"),
    (lambda h, a: h.update(metadata=[1]), "'metadata' must be a dict"),
    (lambda h, a: h["model"]["config"].update(hidden_dim=5),
     r"parameter 'W1' has shape \(4, 3\), the model expects \(4, 5\)"),
    (lambda h, a: h["model"]["config"].update(hidden_dim=10**12),
     "hidden_dim=1000000000000 with input_dim=4 .* more than this machine's memory"),
    (lambda h, a: h["model"]["config"].update(width=3), "unexpected keyword argument 'width'"),
    (lambda h, a: a.update({"params/W1": a["params/W1"].astype(np.complex64)}),
     "parameter 'W1' has dtype complex64; expected real floating point"),
    (lambda h, a: a.update({"params/b1": np.ones(3, dtype=bool)}), "'b1' has dtype bool"),
    (lambda h, a: a.update({"params/b2": np.array(["a", "b"])}), "'b2' has dtype <U1"),
    (lambda h, a: a.update({"params/": np.zeros(3)}), "malformed array name 'params/'"),
    (lambda h, a: a.update({"params/W1/x": np.zeros(3)}), "malformed array name 'params/W1/x'"),
    (lambda h, a: a.update({"state/": np.zeros(3)}), "malformed array name 'state/'"),
    (lambda h, a: a.update({"state/x": np.array(["s"])}), "state 'x' has dtype <U1"),
    (lambda h, a: a.pop("params/b2"), "stored parameter entries"),
])
def test_damaged_model_file_is_refused_before_allocating(saved, edit, match, no_allocation):
    _rewrite(saved, edit)
    with pytest.raises(CheckpointError, match=match) as info:
        load_model(saved)
    assert "m.npz" in str(info.value)


def test_state_the_model_does_not_have_is_refused(saved):
    # caught once the model is built: its size was checked against the file's own parameters
    _rewrite(saved, lambda h, a: a.update({"state/running_mean1": np.zeros(3, np.float32)}))
    with pytest.raises(CheckpointError, match=r"stored state entries \['running_mean1'\] do not"):
        load_model(saved)


def test_version_1_model_file_with_bn_params_layout_loads(tmp_path):
    np.random.seed(0)
    model = FullyConnectedNet([3], input_dim=2, num_classes=2, normalization="batchnorm")
    model.set_state({"running_mean1": np.arange(3, dtype=np.float32),
                     "running_var1": np.ones(3, dtype=np.float32)})
    path = save_model(tmp_path / "old.npz", model)

    def to_v1(header, arrays):
        header["version"] = 1
        header["model"]["bn_params"] = [{"mode": "train"}]
        for key in ("running_mean", "running_var"):
            arrays[f"bn_params/0/{key}"] = arrays.pop(f"state/{key}1")

    _rewrite(path, to_v1)
    np.testing.assert_array_equal(load_model(path).get_state()["running_mean1"], np.arange(3))
    _rewrite(path, lambda h, a: a.update({"bn_params/-1/running_mean": np.zeros(3)}))
    with pytest.raises(CheckpointError, match="malformed batch-norm key 'bn_params/-1/"):
        load_model(path)


def test_a_class_outside_the_whitelist_is_refused(saved):
    assert "ThreeLayerConvNet" in serialization.MODEL_CLASSES  # listed once it exists
    assert "UnknownNet" not in serialization.MODEL_CLASSES
    _rewrite(saved, lambda h, a: h["model"].update({"class": "UnknownNet"}))
    with pytest.raises(CheckpointError, match="'UnknownNet' is not one fastnn may load"):
        load_model(saved)


@pytest.mark.parametrize("path", [None, 3, ["m.npz"]])
def test_path_of_the_wrong_type_is_a_type_error_naming_it(path):
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got"):
        load_model(path)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda h, a: a.update({"bn_params/x/running_mean": np.ones(3)}),
     "unexpected array 'bn_params/x/running_mean' in a model file"),
    (lambda h, a: a.update({"best_params/W1": np.ones((4, 3))}), "unexpected array"),
    (lambda h, a: h.update(format="something-else"), "header 'format' must be one of"),
    (lambda h, a: h.pop("format"), "header 'format' must be one of"),
])
def test_unknown_members_and_formats_are_refused(saved, edit, match):
    _rewrite(saved, edit)
    with pytest.raises(CheckpointError, match=match):
        load_model(saved)


def test_load_model_reads_the_model_from_a_solver_checkpoint(tmp_path):
    from fastnn.solver import Solver

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 2, 40)
    model = TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=2)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, num_epochs=1,
                    batch_size=20, verbose=False, seed=0, checkpoint_name=str(tmp_path / "c"))
    solver.metadata = {"note": "n"}
    solver.train()
    loaded, meta = load_model(tmp_path / "c_epoch_1.npz", with_metadata=True)
    _, arrays = serialization.read_npz(tmp_path / "c_epoch_1.npz")
    assert type(loaded) is TwoLayerNet and set(loaded.params) == set(model.params)
    for k, v in loaded.params.items():  # the parameters of the moment, not best_params
        np.testing.assert_array_equal(v, arrays[f"params/{k}"])
    assert meta == {"note": "n"}
