"""Solver: CS231n behaviour, exact resume, checkpoints, NaN stop, clipping, early stopping,
Ctrl-C, schedules and bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from fastnn.classifiers import FullyConnectedNet
from fastnn.serialization import CheckpointError, atomic_savez, header_array, read_npz
from fastnn.solver import Solver


class SoftmaxModel:
    """A small model with the CS231n model protocol: linear scores + softmax loss."""

    def __init__(self, input_dim=6, num_classes=3, reg=0.0, seed=0):
        g = np.random.default_rng(seed)
        self.params = {"W": 0.1 * g.standard_normal((input_dim, num_classes)),
                       "b": np.zeros(num_classes)}
        self.reg = reg
        self.calls = 0
        self.fail_at = None  # raise KeyboardInterrupt on this training call
        self.nan_at = None  # return a NaN loss from this training call on

    def loss(self, X, y=None):
        X = X.reshape(len(X), -1)
        scores = X @ self.params["W"] + self.params["b"]
        if y is None:
            return scores
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt
        shifted = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        p /= p.sum(axis=1, keepdims=True)
        n = len(X)
        loss = -np.log(p[np.arange(n), y]).mean() + 0.5 * self.reg * np.sum(self.params["W"]**2)
        if self.nan_at is not None and self.calls >= self.nan_at:
            loss = float("nan")
        d = p
        d[np.arange(n), y] -= 1
        d /= n
        return loss, {"W": X.T @ d + self.reg * self.params["W"], "b": d.sum(axis=0)}


def _blobs(n=300, d=6, c=3, seed=0):
    g = np.random.default_rng(seed)
    centers = 3 * g.standard_normal((c, d))
    y = g.integers(0, c, n)
    X = centers[y] + g.standard_normal((n, d))
    return X, y


@pytest.fixture
def data():
    X, y = _blobs(360)
    return {"X_train": X[:300], "y_train": y[:300], "X_val": X[300:], "y_val": y[300:]}


def _fc_data(n_train=200, n_val=50, d=20, c=4, seed=1):
    X, y = _blobs(n_train + n_val, d, c, seed)
    return {"X_train": X[:n_train].astype(np.float32), "y_train": y[:n_train],
            "X_val": X[n_train:].astype(np.float32), "y_val": y[n_train:]}


# --------------------------------------------------------------------------- CS231n behaviour


def test_trains_and_keeps_cs231n_attributes(data, capsys):
    model = SoftmaxModel()
    solver = Solver(model, data, update_rule="sgd_momentum",
                    optim_config={"learning_rate": 0.1}, lr_decay=0.5, batch_size=30,
                    num_epochs=3, print_every=5, seed=0)
    solver.train()
    out = capsys.readouterr().out
    assert "(Iteration 1 / 30) loss:" in out and "(Epoch 3 / 3) train acc:" in out
    assert len(solver.loss_history) == 30
    # one evaluation after the first iteration and one per epoch
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4
    assert solver.best_val_acc == max(solver.val_acc_history) > 0.8
    assert solver.epoch == 3
    assert solver.optim_configs["W"]["learning_rate"] == pytest.approx(0.1 * 0.5**3)
    for k, v in solver.best_params.items():
        np.testing.assert_array_equal(model.params[k], v)
    assert [row["epoch"] for row in solver.history] == [0, 1, 2, 3]
    assert set(solver.history[0]) == {"epoch", "iteration", "loss", "train_acc", "val_acc",
                                      "lr", "seconds"}
    assert solver.history[1]["lr"] == pytest.approx(0.1)


def test_same_seed_same_run_and_global_seed_also_fixes_it(data):
    def run(**kw):
        solver = Solver(SoftmaxModel(), data, update_rule="adam", batch_size=20, num_epochs=2,
                        verbose=False, **kw)
        solver.train()
        return solver.loss_history

    assert run(seed=3) == run(seed=3)
    assert run(seed=3) != run(seed=4)
    np.random.seed(11)
    a = run()
    np.random.seed(11)
    assert run() == a


def test_data_is_never_written(data):
    copies = {k: v.copy() for k, v in data.items()}
    Solver(SoftmaxModel(), data, num_epochs=1, verbose=False, seed=0).train()
    for k in data:
        np.testing.assert_array_equal(data[k], copies[k])


def test_check_accuracy_batches_and_subsamples(data):
    solver = Solver(SoftmaxModel(), data, verbose=False, seed=0)
    full = solver.check_accuracy(data["X_val"], data["y_val"], batch_size=7)
    pred = np.argmax(SoftmaxModel().loss(data["X_val"]), axis=1)
    assert full == pytest.approx(np.mean(pred == data["y_val"]))
    sub = solver.check_accuracy(data["X_train"], data["y_train"], num_samples=50)
    assert 0 <= sub <= 1 and (sub * 50) == pytest.approx(round(sub * 50))


def test_shuffle_visits_every_example_once_per_epoch(data):
    seen = []

    class Recorder(SoftmaxModel):
        def loss(self, X, y=None):
            if y is not None:
                seen.append(X.copy())
            return super().loss(X, y)

    Solver(Recorder(), data, batch_size=30, num_epochs=1, shuffle=True, verbose=False,
           seed=0).train()
    rows = np.concatenate(seen)
    assert rows.shape == data["X_train"].shape
    np.testing.assert_array_equal(np.sort(rows[:, 0]), np.sort(data["X_train"][:, 0]))


# --------------------------------------------------------------------------- resume


def _fc_solver(data, **kw):
    np.random.seed(0)
    model = FullyConnectedNet([16, 12], input_dim=20, num_classes=4, normalization="batchnorm",
                              dropout_keep_ratio=0.8, weight_scale="he", dtype=np.float32)
    settings = {"update_rule": "adam", "optim_config": {"learning_rate": 3e-3}, "batch_size": 25,
                "num_epochs": 4, "verbose": False, "seed": 5, "lr_schedule": "cosine",
                "num_train_samples": 100}
    settings.update(kw)
    return model, Solver(model, data, **settings)


@pytest.mark.parametrize("shuffle", [False, True])
def test_resume_from_epoch_checkpoint_equals_uninterrupted_run(tmp_path, shuffle):
    data = _fc_data()
    model_a, solver_a = _fc_solver(data, shuffle=shuffle,
                                   checkpoint_name=str(tmp_path / "run"))
    solver_a.train()
    final_a = {k: v.copy() for k, v in model_a.params.items()}
    assert (tmp_path / "run_epoch_2.npz").is_file()

    # a fresh process would start from another global random state; resume restores it
    np.random.seed(12345)
    model_b, solver_b = _fc_solver(data, shuffle=shuffle)
    solver_b.resume(tmp_path / "run_epoch_2.npz")
    assert solver_b.loss_history == solver_a.loss_history
    assert solver_b.val_acc_history == solver_a.val_acc_history
    assert [r["lr"] for r in solver_b.history] == [r["lr"] for r in solver_a.history]
    for k, value in final_a.items():
        np.testing.assert_array_equal(model_b.params[k], value)
    for bn_a, bn_b in zip(model_a.bn_params, model_b.bn_params):
        np.testing.assert_array_equal(bn_a["running_mean"], bn_b["running_mean"])
        np.testing.assert_array_equal(bn_a["running_var"], bn_b["running_var"])


def test_ctrl_c_saves_checkpoint_and_resume_finishes_identically(tmp_path):
    data = _fc_data()
    _, reference = _fc_solver(data)
    reference.train()

    model, solver = _fc_solver(data, checkpoint_name=str(tmp_path / "run"))
    original_loss = model.loss
    calls = {"n": 0}

    def interrupting_loss(X, y=None):
        if y is not None:
            calls["n"] += 1
            if calls["n"] == 19:  # in the middle of epoch 3
                raise KeyboardInterrupt
        return original_loss(X, y)

    model.loss = interrupting_loss
    with pytest.raises(KeyboardInterrupt):
        solver.train()
    path = tmp_path / "run_interrupted.npz"
    assert path.is_file() and solver.last_checkpoint == str(path)
    header, arrays = read_npz(path)
    assert header["state"]["iteration"] == 18
    assert len(arrays["loss_history"]) == 18

    np.random.seed(999)
    model_b, resumed = _fc_solver(data)
    resumed.resume(path)
    assert resumed.loss_history == reference.loss_history
    for k in model_b.params:
        np.testing.assert_array_equal(model_b.params[k], reference.model.params[k])


def test_ctrl_c_without_checkpoint_name_writes_nothing(data, tmp_path, monkeypatch):
    # documented: checkpoint_name=None writes no file, not even on Ctrl-C
    monkeypatch.chdir(tmp_path)
    model = SoftmaxModel()
    model.fail_at = 3
    solver = Solver(model, data, verbose=False, seed=0)
    with pytest.raises(KeyboardInterrupt):
        solver.train()
    assert list(tmp_path.iterdir()) == []
    assert solver.last_checkpoint is None


def test_ctrl_c_with_failing_save_warns_and_still_raises_keyboard_interrupt(data, tmp_path):
    model = SoftmaxModel()
    model.fail_at = 3
    solver = Solver(model, data, verbose=False, seed=0, checkpoint_name=str(tmp_path / "c"))

    save = solver.save_checkpoint

    def failing_save(path):
        if str(path).endswith("_interrupted.npz"):
            raise OSError("disk full")
        return save(path)

    solver.save_checkpoint = failing_save
    with (pytest.warns(RuntimeWarning, match="saving the checkpoint failed: disk full"),
          pytest.raises(KeyboardInterrupt)):
        solver.train()


def test_custom_update_rule_with_list_and_dict_config_checkpoints(data, tmp_path):
    def sgd_with_history(w, dw, config=None):
        config = {} if config is None else config
        config.setdefault("learning_rate", 1e-2)
        config["history"] = [*config.get("history", []), float(np.abs(dw).max())][-3:]
        config["pair"] = (1, 2.5)
        config["notes"] = {"kind": "custom"}
        return w - config["learning_rate"] * dw, config

    solver = Solver(SoftmaxModel(), data, update_rule=sgd_with_history, batch_size=30,
                    num_epochs=2, verbose=False, seed=0, checkpoint_name=str(tmp_path / "c"))
    with pytest.warns(RuntimeWarning, match="optim_config\\['notes'\\]") as record:
        solver.train()
    assert sum("notes" in str(w.message) for w in record) == 1  # warned once, not per epoch
    assert (tmp_path / "c_epoch_2.npz").is_file()
    other = Solver(SoftmaxModel(), data, update_rule=sgd_with_history, batch_size=30,
                   num_epochs=2, verbose=False, seed=0)
    other.load_checkpoint(tmp_path / "c_epoch_2.npz")
    for p in ("W", "b"):
        assert other.optim_configs[p]["history"] == solver.optim_configs[p]["history"]
        assert other.optim_configs[p]["pair"] == [1, 2.5]
        assert "notes" not in other.optim_configs[p]


class CountingModel(SoftmaxModel):
    """SoftmaxModel with state outside ``params`` (the model-state protocol): a step counter."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.steps = np.zeros(1)

    def loss(self, X, y=None):
        if y is not None:
            self.steps = self.steps + 1
        return super().loss(X, y)

    def get_state(self):
        return {"steps": self.steps.copy()}

    def set_state(self, state):
        if set(state) != {"steps"} or np.shape(state["steps"]) != (1,):
            raise ValueError(f"state must be {{'steps': (1,)}}, got {sorted(state)}")
        self.steps = np.array(state["steps"], dtype=float)


def test_model_state_goes_with_best_params_and_through_checkpoints(data, tmp_path):
    # learning rate 0: the first evaluation stays the best, taken after one step
    solver = Solver(CountingModel(), data, batch_size=30, num_epochs=1, verbose=False, seed=0,
                    optim_config={"learning_rate": 0.0}, checkpoint_name=str(tmp_path / "c"))
    solver.train()
    assert solver.model.steps[0] == 1  # the best state (after step 1), not the last (10)
    other = Solver(CountingModel(), data, batch_size=30, num_epochs=1, verbose=False, seed=0)
    other.load_checkpoint(tmp_path / "c_epoch_1.npz")
    assert other.model.steps[0] == 10  # the state when the checkpoint was written
    other._restore_best()
    assert other.model.steps[0] == 1


def test_half_implemented_state_protocol_is_refused(data):
    class OnlyGet(SoftmaxModel):
        def get_state(self):
            return {}

    with pytest.raises(TypeError, match="must define both get_state"):
        Solver(OnlyGet(), data)


def test_resume_refuses_a_different_setup(tmp_path, data):
    solver = Solver(SoftmaxModel(), data, batch_size=30, num_epochs=1, verbose=False, seed=0,
                    checkpoint_name=str(tmp_path / "c"))
    solver.train()
    other = Solver(SoftmaxModel(), data, batch_size=20, num_epochs=1, verbose=False, seed=0)
    with pytest.raises(ValueError, match="batch_size=30"):
        other.resume(tmp_path / "c_epoch_1.npz")


def test_checkpoint_is_plain_npz_without_pickle(tmp_path, data):
    solver = Solver(SoftmaxModel(), data, update_rule="adam", batch_size=30, num_epochs=1,
                    verbose=False, seed=0, checkpoint_name=str(tmp_path / "c"))
    solver.train()
    with np.load(tmp_path / "c_epoch_1.npz", allow_pickle=False) as f:
        names = set(f.files)
        assert all(f[k].dtype != object for k in f.files)
    assert {"params/W", "params/b", "best_params/W", "optim/W/m", "optim/W/v",
            "global_rng/keys", "loss_history", "__fastnn__"} <= names
    header, _ = read_npz(tmp_path / "c_epoch_1.npz")
    assert header["state"]["optim_configs"]["W"]["t"] == 10
    assert header["state"]["epoch"] == 1


def test_corrupted_checkpoint_gives_clear_error(tmp_path, data):
    solver = Solver(SoftmaxModel(), data, num_epochs=1, verbose=False, seed=0,
                    checkpoint_name=str(tmp_path / "c"))
    solver.train()
    good = tmp_path / "c_epoch_1.npz"
    raw = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated.npz"):
        solver.load_checkpoint(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="garbage.npz"):
        solver.load_checkpoint(garbage)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        solver.load_checkpoint(tmp_path / "missing.npz")


# --------------------------------------------------------------------------- stopping rules


def test_nan_loss_stops_with_message_and_keeps_best_params(data):
    model = SoftmaxModel()
    model.nan_at = 25  # iterations 1..24 fine (10 per epoch), then NaN in epoch 3
    solver = Solver(model, data, batch_size=30, num_epochs=5, verbose=False, seed=0)
    with pytest.warns(RuntimeWarning, match=r"loss became nan at iteration 25"):
        solver.train()
    assert "learning rate" in solver.stop_reason
    assert len(solver.loss_history) == 24
    for k, v in solver.best_params.items():
        np.testing.assert_array_equal(model.params[k], v)
        assert np.isfinite(model.params[k]).all()


def test_divergence_with_huge_learning_rate_stops_cleanly(data):
    X = data["X_train"] * 1e3
    d = {**data, "X_train": X}
    solver = Solver(SoftmaxModel(), d, optim_config={"learning_rate": 1e30}, batch_size=30,
                    num_epochs=5, verbose=False, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solver.train()
    assert solver.stop_reason is not None and "loss became" in solver.stop_reason


def test_grad_clip_bounds_the_global_norm(data):
    seen = []

    def spy(w, dw, config):
        seen.append(float(np.sum(dw * dw)))
        config.setdefault("learning_rate", 1e-2)
        return w - config["learning_rate"] * dw, config

    model = SoftmaxModel()
    model.params["W"] *= 100  # large scores -> large gradients
    solver = Solver(model, data, update_rule=spy, grad_clip=0.01, batch_size=30, num_epochs=1,
                    verbose=False, seed=0)
    solver.train()
    # one W and one b gradient per step; their joint norm is clipped to 0.01
    norms = [math.sqrt(seen[i] + seen[i + 1]) for i in range(0, len(seen), 2)]
    assert len(norms) == 10
    assert max(norms) == pytest.approx(0.01, rel=1e-9)


def test_grad_clip_leaves_small_gradients_alone(data):
    a = Solver(SoftmaxModel(), data, batch_size=30, num_epochs=1, verbose=False, seed=0)
    b = Solver(SoftmaxModel(), data, batch_size=30, num_epochs=1, verbose=False, seed=0,
               grad_clip=1e6)
    a.train()
    b.train()
    assert a.loss_history == b.loss_history


def test_grad_clip_value_bounds_every_entry_before_the_norm_clip(data):
    seen = []

    def spy(w, dw, config):
        seen.append(np.abs(dw).max())
        return w - 1e-2 * dw, config

    model = SoftmaxModel()
    model.params["W"] *= 100
    solver = Solver(model, data, update_rule=spy, grad_clip_value=1e-3, batch_size=30,
                    num_epochs=1, verbose=False, seed=0)
    solver.train()
    assert len(seen) == 20 and max(seen) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="grad_clip_value"):
        Solver(SoftmaxModel(), data, grad_clip_value=0.0)


def test_solver_module_exports_every_solver():
    from fastnn import solver
    from fastnn.captioning_solver import CaptioningSolver
    from fastnn.sequence_solver import LanguageModelSolver

    assert solver.CaptioningSolver is CaptioningSolver  # API.md: fastnn.solver.CaptioningSolver
    assert solver.LanguageModelSolver is LanguageModelSolver
    assert issubclass(CaptioningSolver, solver.Solver)


def test_early_stopping_on_validation_accuracy(data):
    # learning rate 0: validation accuracy never improves after the first evaluation
    solver = Solver(SoftmaxModel(), data, optim_config={"learning_rate": 0.0}, batch_size=30,
                    num_epochs=20, early_stopping=3, verbose=False, seed=0)
    solver.train()
    assert "early stopping" in solver.stop_reason
    assert solver.epoch == 3 and len(solver.val_acc_history) == 4


def test_lr_schedule_sets_learning_rate_every_step(data):
    rates = []

    def spy(w, dw, config):
        rates.append(config["learning_rate"])
        return w - config["learning_rate"] * dw, config

    solver = Solver(SoftmaxModel(), data, update_rule=spy, optim_config={"learning_rate": 1.0},
                    batch_size=30, num_epochs=2, lr_schedule=lambda step: 1 / (1 + step),
                    verbose=False, seed=0)
    solver.train()
    np.testing.assert_allclose(rates[::2], [1 / (1 + s) for s in range(20)])


def test_named_schedule_and_lr_decay_combine(data):
    solver = Solver(SoftmaxModel(), data, update_rule="sgd", optim_config={"learning_rate": 0.5},
                    batch_size=30, num_epochs=2, lr_schedule="linear", lr_decay=0.5,
                    verbose=False, seed=0)
    solver.train()
    # last step: linear factor (1 - 19/20), epoch 1 -> lr_decay**1
    assert solver.optim_configs["W"]["learning_rate"] == pytest.approx(0.5 * (1 / 20) * 0.5)


def test_epoch_callback_receives_each_row(data):
    rows = []
    Solver(SoftmaxModel(), data, batch_size=30, num_epochs=2, verbose=False, seed=0,
           epoch_callback=rows.append).train()
    assert [r["epoch"] for r in rows] == [0, 1, 2]


# --------------------------------------------------------------------------- bad input


def test_bad_input_gives_clear_errors(data):
    model = SoftmaxModel()
    with pytest.raises(ValueError, match="update_rule must be one of"):
        Solver(model, data, update_rule="adamw")
    with pytest.raises(ValueError, match="Unrecognized arguments learning_rate"):
        Solver(model, data, learning_rate=0.1)
    with pytest.raises(ValueError, match="missing the key"):
        Solver(model, {"X_train": data["X_train"], "y_train": data["y_train"]})
    with pytest.raises(ValueError, match=r"data\['X_train'\] has 300 rows but data\['y_train'\] has 10 labels"):
        Solver(model, {**data, "y_train": data["y_train"][:10]})
    with pytest.raises(ValueError, match=r"X_val'\] examples must have the shape"):
        Solver(model, {**data, "X_val": data["X_val"][:, :4]})
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\), got maximum 7"):
        Solver(model, {**data, "y_train": np.full(300, 7)})
    with pytest.raises(ValueError, match="non-negative"):
        Solver(model, {**data, "y_val": -np.ones(60, dtype=int)})
    with pytest.raises(ValueError, match=r"optim_config\['learning_rate'\] must be >= 0"):
        Solver(model, data, optim_config={"learning_rate": -0.1})
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Solver(model, data, batch_size=0)
    with pytest.raises(ValueError, match="lr_schedule must be None"):
        Solver(model, data, lr_schedule="exponential")
    with pytest.raises(ValueError, match="grad_clip"):
        Solver(model, data, grad_clip=-1.0)
    with pytest.raises(TypeError, match="params dict"):
        Solver(object(), data)
    with pytest.raises(ValueError, match="contains NaN"):
        Solver(model, {**data, "X_train": np.full((300, 6), np.nan)})


def test_cs231n_private_hooks_still_work(data, tmp_path):
    model = SoftmaxModel()
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 0.5},
                    verbose=False, seed=0, checkpoint_name=str(tmp_path / "hook"))
    before = model.params["W"].copy()
    assert solver._step() is True
    assert len(solver.loss_history) == 1 and not np.array_equal(model.params["W"], before)
    solver._save_checkpoint()
    assert (tmp_path / "hook_epoch_0.npz").is_file()
    solver._reset()
    assert solver.loss_history == [] and solver.epoch == 0


def test_gradients_must_name_params(data):
    class Unknown(SoftmaxModel):
        def loss(self, X, y=None):
            out = super().loss(X, y)
            if y is None:
                return out
            return out[0], {**out[1], "V": out[1]["W"]}

    solver = Solver(Unknown(), data, verbose=False, seed=0)
    with pytest.raises(ValueError, match=r"gradients for \['V', 'W', 'b'\], but the model's "
                                         r"params are"):
        solver.train()


def test_params_without_gradient_are_not_updated(data):
    class Missing(SoftmaxModel):
        def loss(self, X, y=None):
            out = super().loss(X, y)
            if y is None:
                return out
            return out[0], {"W": out[1]["W"]}

    model = Missing()
    b_before = model.params["b"].copy()
    W_before = model.params["W"].copy()
    solver = Solver(model, data, verbose=False, seed=0, num_epochs=2, lr_decay=0.5)
    solver.train()
    np.testing.assert_array_equal(model.params["b"], b_before)
    assert not np.array_equal(model.params["W"], W_before)


def _rewrite_header(path, edit):
    header, arrays = read_npz(path)
    edit(header)
    arrays["__fastnn__"] = header_array(header)
    atomic_savez(path, arrays)


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h.pop("state"),
        lambda h: h["state"].pop("optim_configs"),
        lambda h: h["state"].update(epoch=None),
        lambda h: h["state"].update(base_lrs=[1, 2]),
        lambda h: h.update(solver="nonsense"),
    ],
    ids=["no-state", "no-optim", "epoch-null", "base-lrs-list", "solver-str"],
)
def test_damaged_checkpoint_raises_checkpoint_error_naming_file(data, tmp_path, edit):
    solver = Solver(SoftmaxModel(), data, batch_size=30, num_epochs=1, verbose=False, seed=0,
                    checkpoint_name=str(tmp_path / "c"))
    solver.train()
    path = tmp_path / "c_epoch_1.npz"
    _rewrite_header(path, edit)
    model = SoftmaxModel(seed=7)
    before = {k: v.copy() for k, v in model.params.items()}
    other = Solver(model, data, batch_size=30, num_epochs=1, verbose=False, seed=0)
    with pytest.raises(CheckpointError, match="c_epoch_1.npz"):
        other.load_checkpoint(path)
    for k, value in before.items():  # nothing was changed
        np.testing.assert_array_equal(model.params[k], value)


def test_newer_or_damaged_version_in_header_is_a_checkpoint_error(data, tmp_path):
    solver = Solver(SoftmaxModel(), data, batch_size=30, num_epochs=1, verbose=False, seed=0,
                    checkpoint_name=str(tmp_path / "c"))
    solver.train()
    path = tmp_path / "c_epoch_1.npz"
    _rewrite_header(path, lambda h: h.update(version="2"))
    with pytest.raises(CheckpointError, match="c_epoch_1.npz"):
        read_npz(path)


def test_load_checkpoint_restores_metadata(data, tmp_path):
    solver = Solver(SoftmaxModel(), data, batch_size=30, num_epochs=1, verbose=False, seed=0,
                    checkpoint_name=str(tmp_path / "c"))
    solver.metadata = {"mean": np.arange(3.0), "note": "scaled"}
    solver.train()
    other = Solver(SoftmaxModel(), data, batch_size=30, num_epochs=1, verbose=False, seed=0)
    other.load_checkpoint(tmp_path / "c_epoch_1.npz")
    assert other.metadata["note"] == "scaled"
    np.testing.assert_array_equal(other.metadata["mean"], np.arange(3.0))


@pytest.mark.parametrize("key", ["X_train", "X_val"])
def test_data_arrays_of_the_wrong_rank_name_their_key(data, key):
    model = SoftmaxModel()
    for bad in (np.float64(1.0), data[key][:, 0]):
        with pytest.raises(ValueError, match=rf"data\['{key}'\] must"):
            Solver(model, {**data, key: bad})
    y_key = "y" + key[1:]
    n = len(data[y_key])
    with pytest.raises(ValueError, match=rf"data\['{key}'\] has {n - 1} rows but "
                                         rf"data\['{y_key}'\] has {n} labels"):
        Solver(model, {**data, key: data[key][:-1]})


def test_absurd_batch_size_is_a_value_error_not_a_memory_error(data):
    with pytest.raises(ValueError, match=r"^batch_size=1000000000000 is too large"):
        Solver(SoftmaxModel(), data, batch_size=10**12)
    # larger than the training set is fine: minibatches are drawn with replacement (CS231n)
    solver = Solver(SoftmaxModel(), data, batch_size=400, num_epochs=1, verbose=False, seed=0)
    solver.train()
    assert len(solver.loss_history) == 1


def test_check_accuracy_validates_x_and_y_and_accepts_lists(data):
    solver = Solver(SoftmaxModel(), data, num_epochs=0, verbose=False, seed=0)
    X, y = data["X_val"], data["y_val"]
    expected = solver.check_accuracy(X, y)
    assert solver.check_accuracy(X.tolist(), y.tolist()) == expected
    assert solver.check_accuracy(np.asfortranarray(X), y) == expected
    for bad_x, error, message in [
        (None, TypeError, "^X must"), (np.float64(1.0), ValueError, "^X must"),
        ([[1.0, 2.0], [3.0]], (TypeError, ValueError), "^X must"),
        (X[:0], ValueError, "^X must not be empty"), (np.full_like(X, np.nan), ValueError,
                                                        "^X contains NaN"),
        (X[:, :4], ValueError, "^X must be"), (np.full(X.shape, "a"), TypeError, "^X must"),
    ]:
        with pytest.raises(error, match=message):
            solver.check_accuracy(bad_x, y)
    with pytest.raises(ValueError, match=f"X has {len(X) - 1} rows but y has {len(y)} labels"):
        solver.check_accuracy(X[:-1], y)
    for bad_y, error, message in [
        (None, TypeError, "^y must"), (y + 0.5, ValueError, "^y must hold integers"),
        (-np.ones_like(y), ValueError, "^y must be non-negative"),
        (y[:, None], ValueError, "^y must be a 1-D"), (y.astype(complex), TypeError, "^y must"),
    ]:
        with pytest.raises(error, match=message):
            solver.check_accuracy(X, bad_y)
    with pytest.raises(ValueError, match="^num_samples must be >= 0"):
        solver.check_accuracy(X, y, num_samples=-1)
