"""fastnn.checkpoint: the Solver's checkpoint format, checked all-or-nothing loading, the
version-1 layout, and the .npz container's checks before reading data."""

from __future__ import annotations

import copy
import io
import math
import re
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npformat

from fastnn.checkpoint import CheckpointError, atomic_savez, header_array, read_npz
from fastnn.classifiers import FullyConnectedNet
from fastnn.solver import Solver


def _data(n_train=120, n_val=30, d=8, c=3, seed=0):
    g = np.random.default_rng(seed)
    centers = 3 * g.standard_normal((c, d))
    y = g.integers(0, c, n_train + n_val)
    X = (centers[y] + g.standard_normal((len(y), d))).astype(np.float32)
    return {"X_train": X[:n_train], "y_train": y[:n_train], "X_val": X[n_train:],
            "y_val": y[n_train:]}


def _solver(data, **kw):
    np.random.seed(0)
    model = FullyConnectedNet([6], input_dim=8, num_classes=3, normalization="batchnorm",
                              dropout_keep_ratio=0.9, weight_scale="he")
    settings = {"update_rule": "adam", "optim_config": {"learning_rate": 1e-2}, "batch_size": 20,
                "num_epochs": 2, "verbose": False, "seed": 1, "shuffle": True}
    settings.update(kw)
    return Solver(model, data, **settings)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint with every kind of field: model state, best state, Adam arrays, order."""
    path = tmp_path_factory.mktemp("ck") / "run"
    solver = _solver(_data(), checkpoint_name=str(path))
    solver.metadata = {"mean": np.arange(3.0), "note": "x"}
    solver.train()
    return path.with_name("run_epoch_2.npz")


def _snapshot(solver):
    """Everything load_checkpoint may change, as deep copies."""
    return {
        "params": {k: v.copy() for k, v in solver.model.params.items()},
        "model_state": solver.model.get_state(),
        "optim": copy.deepcopy(solver.optim_configs),
        "best": ({k: v.copy() for k, v in solver.best_params.items()},
                 copy.deepcopy(solver._best_state)),
        "histories": (list(solver.loss_history), list(solver.train_acc_history),
                      list(solver.val_acc_history), copy.deepcopy(solver.history)),
        "counters": (solver.epoch, solver.best_val_acc, solver._iteration, solver._loop_t,
                     solver._pending_eval, solver._bad_evals, dict(solver._base_lrs)),
        "order": None if solver._order is None else solver._order.copy(),
        "rng": copy.deepcopy(solver._rng.bit_generator.state),
        "global_rng": np.random.get_state(),
        "metadata": copy.deepcopy(solver.metadata),
        "last": solver.last_checkpoint,
    }


def _assert_same(a, b, where="snapshot"):
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        nan = isinstance(a, float) and math.isnan(a)  # NaN losses compare equal here
        assert a == b or (nan and isinstance(b, float) and math.isnan(b)), where


def _set(mapping_path, value):
    def edit(header, arrays):
        *parents, last = mapping_path
        target = header
        for key in parents:
            target = target[key]
        target[last] = value
    return edit


def _del(*mapping_path):
    def edit(header, arrays):
        *parents, last = mapping_path
        target = header
        for key in parents:
            target = target[key]
        del target[last]
    return edit


def _array(key, value=None):
    def edit(header, arrays):
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value(arrays.get(key)) if callable(value) else value
    return edit


def _row_without_lr(header, arrays):
    del header["state"]["history"][0]["lr"]


# (field edit, text the error must contain)
DAMAGES = {
    "format": (_set(["format"], "fastnn-model"), "not a Solver checkpoint"),
    "version-new": (_set(["version"], 3), "unknown format version 3"),
    "version-negative": (_set(["version"], -1), "unknown format version -1"),
    "version-string": (_set(["version"], "2"), "unknown format version '2'"),
    "model-list": (_set(["model"], []), "'model'"),
    "model-class": (_set(["model", "class"], "TwoLayerNet"), "'model.class'"),
    "solver": (_set(["solver"], "nonsense"), "'solver'"),
    "metadata": (_set(["metadata"], [1, 2]), "'metadata'"),
    "state": (_del("state"), "'state'"),
    "epoch-negative": (_set(["state", "epoch"], -1), "'state.epoch'"),
    "iteration-string": (_set(["state", "iteration"], "12"), "'state.iteration'"),
    "loop_t-null": (_set(["state", "loop_t"], None), "'state.loop_t'"),
    "bad_evals-bool": (_set(["state", "bad_evals"], True), "'state.bad_evals'"),
    "pending_eval-int": (_set(["state", "pending_eval"], 1), "'state.pending_eval'"),
    "best_val_acc": (_set(["state", "best_val_acc"], 2.0), "'state.best_val_acc'"),
    "base_lrs-list": (_set(["state", "base_lrs"], [1, 2]), "'state.base_lrs'"),
    "base_lrs-missing": (_del("state", "base_lrs", "W1"), "'state.base_lrs'"),
    "base_lrs-negative": (_set(["state", "base_lrs", "W1"], -1.0), "'state.base_lrs.W1'"),
    "optim-missing": (_del("state", "optim_configs"), "'state.optim_configs'"),
    "optim-param-missing": (_del("state", "optim_configs", "b2"), "'state.optim_configs'"),
    "optim-not-scalars": (_set(["state", "optim_configs", "W1", "t"], [1]),
                          "'state.optim_configs.W1'"),
    "optim-lr": (_set(["state", "optim_configs", "W1", "learning_rate"], -1.0),
                 "'state.optim_configs.W1.learning_rate'"),
    "optim-lists": (_set(["state", "optim_lists"], "m"), "'state.optim_lists'"),
    "history-list": (_set(["state", "history"], {}), "'state.history'"),
    "history-row": (_row_without_lr, "'state.history'"),
    "rng": (_set(["state", "rng"], {"bit_generator": "MT19937"}), "'state.rng'"),
    "global-rng": (_set(["state", "global_rng", "pos"], 9999), "'state.global_rng'"),
    "params-shape": (_array("params/W1", np.zeros((3, 3), np.float32)), "'params'"),
    "params-complex": (_array("params/W1", lambda w: w.astype(np.complex64)), "'params'"),
    "params-missing": (_array("params/b1"), "'params'"),
    "params-extra": (_array("params/W9", np.zeros(2, np.float32)), "'params'"),
    "params-malformed": (_array("params/W1/x", np.zeros(2, np.float32)), "'params/W1/x'"),
    "state-shape": (_array("state/running_mean1", np.zeros(7, np.float32)), "'state'"),
    "state-missing": (_array("state/running_var1"), "'state'"),
    "best-params": (_array("best_params/W2", np.zeros((2, 2), np.float32)), "'best_params'"),
    "best-state-bool": (_array("best_state/running_var1", np.ones(6, bool)), "'best_state'"),
    "optim-shape": (_array("optim/W1/m", np.zeros(5)), "'optim/W1/m'"),
    "optim-unknown-param": (_array("optim/W7/m", np.zeros(5)), "'optim/W7/m'"),
    "loss-history-2d": (_array("loss_history", lambda h: h.reshape(1, -1)), "'loss_history'"),
    "loss-history-short": (_array("loss_history", lambda h: h[:-1]), "'loss_history'"),
    "train-acc-missing": (_array("train_acc_history"), "'train_acc_history'"),
    "val-acc-length": (_array("val_acc_history", lambda h: h[:1]), "'val_acc_history'"),
    "order-not-permutation": (_array("order", lambda o: np.zeros_like(o)), "'order'"),
    "order-length": (_array("order", lambda o: o[:-1]), "'order'"),
    "global-keys-length": (_array("global_rng/keys", lambda k: k[:10]), "'global_rng/keys'"),
    "global-keys-float": (_array("global_rng/keys", lambda k: k.astype(float)),
                          "'global_rng/keys'"),
    "unknown-array": (_array("junk", np.zeros(1)), "'junk'"),
    # the optimiser's state must be complete and well typed, or resuming would restart Adam
    # from zeros (a missing array) or fail at the first step (a string step counter)
    "optim-t-string": (_set(["state", "optim_configs", "W1", "t"], "3"),
                       "'state.optim_configs.W1.t'"),
    "optim-t-negative": (_set(["state", "optim_configs", "b1", "t"], -1),
                         "'state.optim_configs.b1.t'"),
    "optim-t-bool": (_set(["state", "optim_configs", "W1", "t"], True),
                     "'state.optim_configs.W1.t'"),
    "optim-t-missing": (_del("state", "optim_configs", "W2", "t"), "'state.optim_configs.W2.t'"),
    "optim-array-missing": (_array("optim/W1/m"), "'optim/W1/m'"),
    "optim-array-v-missing": (_array("optim/b2/v"), "'optim/b2/v'"),
}


def _damage(src, dst, edit):
    header, arrays = read_npz(src)
    edit(header, arrays)
    arrays["__fastnn__"] = header_array(header)
    atomic_savez(dst, arrays)


@pytest.mark.parametrize("field", list(DAMAGES))
def test_each_damaged_field_is_named_and_changes_nothing(checkpoint, tmp_path, field):
    edit, text = DAMAGES[field]
    bad = tmp_path / f"damaged_{field}.npz"
    _damage(checkpoint, bad, edit)
    data = _data()
    solver = _solver(data)
    solver.train()  # some state of its own, different from the checkpoint's
    np.random.seed(77)
    before = _snapshot(solver)
    with pytest.raises(CheckpointError) as info:
        solver.load_checkpoint(bad)
    message = str(info.value)
    assert bad.name in message and text in message, message
    _assert_same(before, _snapshot(solver))


def test_undamaged_checkpoint_loads(checkpoint):
    # the control for the loop above: the same steps without damage succeed
    solver = _solver(_data())
    solver.load_checkpoint(checkpoint)
    assert solver.epoch == 2 and solver.metadata["note"] == "x"
    np.testing.assert_array_equal(solver.metadata["mean"], np.arange(3.0))
    header, arrays = read_npz(checkpoint)
    for name, value in solver.model.get_state().items():
        np.testing.assert_array_equal(value, arrays[f"state/{name}"])
    assert solver._best_state.keys() == {"running_mean1", "running_var1"}
    assert header["version"] == 2


def test_version_1_checkpoint_with_bn_params_layout_still_loads(checkpoint, tmp_path):
    def to_v1(header, arrays):
        header["version"] = 1
        for old, new in (("state/", "bn_params/0/"), ("best_state/", "best_bn_params/0/")):
            for key in [k for k in arrays if k.startswith(old)]:
                arrays[new + key[len(old):-1]] = arrays.pop(key)  # running_mean1 -> layer 0

    old = tmp_path / "v1.npz"
    _damage(checkpoint, old, to_v1)
    solver = _solver(_data())
    solver.load_checkpoint(old)
    _, arrays = read_npz(checkpoint)
    for name, value in solver.model.get_state().items():
        np.testing.assert_array_equal(value, arrays[f"state/{name}"])
    for name, value in solver._best_state.items():
        np.testing.assert_array_equal(value, arrays[f"best_state/{name}"])


@pytest.mark.parametrize("key", ["bn_params/-1/running_mean", "bn_params/00/running_mean",
                                 "bn_params/x/running_mean", "bn_params/0/", "bn_params/0/a/b"])
def test_version_1_malformed_layer_keys_are_refused(checkpoint, tmp_path, key):
    def edit(header, arrays):
        header["version"] = 1
        arrays[key] = np.zeros(6, np.float32)

    bad = tmp_path / "v1bad.npz"
    _damage(checkpoint, bad, edit)
    with pytest.raises(CheckpointError, match=re.escape(f"malformed batch-norm key {key!r}")):
        read_npz(bad)


def test_version_1_keys_that_collide_are_refused(tmp_path):
    # layer 10's "a" and layer 0's "a1" would both become the state entry "a11"
    arrays = {"bn_params/10/a": np.zeros(1), "bn_params/0/a1": np.zeros(1),
              "__fastnn__": header_array({"version": 1})}
    path = atomic_savez(tmp_path / "collide.npz", arrays)
    with pytest.raises(CheckpointError, match="would both become 'state/a11'"):
        read_npz(path)


def _npy_member(shape, dtype="<f8", payload=b""):
    buffer = io.BytesIO()
    npformat.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False,
                                             "shape": shape})
    return buffer.getvalue() + payload


def test_member_declaring_more_data_than_it_holds_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__fastnn__.npy", _npy_member((), "<U2", "{}".encode("utf-32-le")))
        zf.writestr("params/W1.npy", _npy_member((10**12,), payload=bytes(64)))
    with pytest.raises(CheckpointError, match=r"'params/W1' declares shape \(1000000000000,\)"):
        read_npz(path)


def test_non_npy_members_and_object_arrays_are_refused(tmp_path):
    path = tmp_path / "foreign.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("notes.txt", b"hello")
    with pytest.raises(CheckpointError, match="foreign.npz"):
        read_npz(path)
    evil = tmp_path / "evil.npz"
    np.savez(evil, __fastnn__=np.array('{"version": 2}'), x=np.array([{}], dtype=object))
    with pytest.raises(CheckpointError, match="Python objects"):
        read_npz(evil)


@pytest.mark.parametrize("header", ["[1, 2]", '"text"', "{", '{"version": true}', "{}"])
def test_bad_headers_are_checkpoint_errors(tmp_path, header):
    path = atomic_savez(tmp_path / "h.npz", {"__fastnn__": np.array(header)})
    with pytest.raises(CheckpointError, match="h.npz"):
        read_npz(path)


def test_checkpoint_of_another_setup_is_a_value_error_and_changes_nothing(checkpoint):
    solver = _solver(_data(), batch_size=30)
    before = _snapshot(solver)
    with pytest.raises(ValueError, match="batch_size=20 but this Solver has batch_size=30"):
        solver.load_checkpoint(checkpoint)
    _assert_same(before, _snapshot(solver))


def test_state_the_model_refuses_is_a_checkpoint_error_and_changes_nothing(checkpoint):
    def set_state(self, state):  # a model-specific rule beyond names and shapes
        if any(np.any(v != 0) for v in state.values()):
            raise ValueError("this model only takes zero running averages")
        FullyConnectedNet.set_state(self, state)

    # a subclass under the name the checkpoint records
    picky = type("FullyConnectedNet", (FullyConnectedNet,), {"set_state": set_state})
    np.random.seed(0)
    model = picky([6], input_dim=8, num_classes=3, normalization="batchnorm",
                  dropout_keep_ratio=0.9, weight_scale="he")
    solver = Solver(model, _data(), update_rule="adam", batch_size=20, num_epochs=2,
                    verbose=False, seed=1, shuffle=True)
    before = _snapshot(solver)
    with pytest.raises(CheckpointError,
                       match="the model refused the stored state: this model only takes zero"):
        solver.load_checkpoint(checkpoint)
    _assert_same(before, _snapshot(solver))


def test_checkpoint_before_any_update_needs_no_optimiser_state(tmp_path):
    # Adam creates m, v and t at its first step: a checkpoint taken before it has none
    solver = _solver(_data())
    path = solver.save_checkpoint(tmp_path / "fresh.npz")
    other = _solver(_data())
    other.load_checkpoint(path)
    assert other.optim_configs == solver.optim_configs
