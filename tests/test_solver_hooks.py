"""Solver hooks for subclasses (_check_data, _check_labels_against_model, _batch,
_iterations_per_epoch, _epoch_scores with selection_metric/higher_is_better), the augment
callable (applied per minibatch, its random state checkpointed) and frozen parameters."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.solver import Solver
from tests.test_solver import SoftmaxModel, _blobs


@pytest.fixture
def data():
    X, y = _blobs(360)
    return {"X_train": X[:300], "y_train": y[:300], "X_val": X[300:], "y_val": y[300:]}


def test_check_data_hook_replaces_the_data_check(data):
    class PairSolver(Solver):
        def _check_data(self, data):
            X, y = data["train"]
            Xv, yv = data["val"]
            return X, y, Xv, yv

    pairs = {"train": (data["X_train"], data["y_train"]), "val": (data["X_val"], data["y_val"])}
    solver = PairSolver(SoftmaxModel(), pairs, verbose=False, num_epochs=1, seed=0)
    solver.train()
    assert solver.X_train is data["X_train"] and solver.val_acc_history[-1] > 0.5


def test_check_labels_hook_can_be_overridden(data):
    calls = []

    class Quiet(Solver):
        def _check_labels_against_model(self):
            calls.append(True)

    bad = dict(data, y_val=data["y_val"] + 10)  # labels the 3-class model cannot produce
    with pytest.raises(ValueError, match="y_val"):
        Solver(SoftmaxModel(), bad, verbose=False)
    Quiet(SoftmaxModel(), bad, verbose=False)
    assert calls == [True]


def test_batch_and_iterations_per_epoch_hooks(data):
    seen = []

    class Sequential(Solver):
        def _iterations_per_epoch(self):
            return 3

        def _batch(self, t):
            rows = np.arange(t * 10, t * 10 + 10) % self.X_train.shape[0]
            seen.append(t)
            return self.X_train[rows], self.y_train[rows]

    solver = Sequential(SoftmaxModel(), data, verbose=False, num_epochs=2, seed=0)
    solver.train()
    assert seen == list(range(6)) and len(solver.loss_history) == 6 and solver.epoch == 2


def test_epoch_scores_hook_with_lower_is_better_selection(data):
    class LossSelected(Solver):
        selection_metric = "val_loss"
        higher_is_better = False

        def _epoch_scores(self):
            loss, _ = self.model.loss(self.X_val, self.y_val)
            return {"val_loss": float(loss)}

    model = SoftmaxModel()
    solver = LossSelected(model, data, verbose=False, num_epochs=3, seed=0, batch_size=50,
                          optim_config={"learning_rate": 0.5}, checkpoint_name=None)
    solver.train()
    rows = solver.history
    assert all("val_loss" in r and "val_acc" not in r for r in rows)
    best = min(r["val_loss"] for r in rows)
    assert solver.best_score == pytest.approx(best)
    # the model holds the best parameters: its validation loss is the best row's
    assert float(model.loss(data["X_val"], data["y_val"])[0]) == pytest.approx(best)
    assert np.isnan(solver.val_acc_history).all()


def test_custom_scores_survive_a_checkpoint_round_trip(data, tmp_path):
    class LossSelected(Solver):
        selection_metric = "val_loss"
        higher_is_better = False

        def _epoch_scores(self):
            return {"val_loss": float(self.model.loss(self.X_val, self.y_val)[0])}

    kwargs = {"verbose": False, "num_epochs": 3, "seed": 0, "batch_size": 50,
                  "checkpoint_name": str(tmp_path / "run")}
    ref = LossSelected(SoftmaxModel(), data, **kwargs)
    ref.train()
    resumed = LossSelected(SoftmaxModel(), data, **kwargs)
    resumed.resume(tmp_path / "run_epoch_1.npz")
    assert resumed.loss_history == ref.loss_history
    assert resumed.best_score == ref.best_score
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in ref.history]


def test_default_selection_keeps_cs231n_best_val_acc(data):
    solver = Solver(SoftmaxModel(), data, verbose=False, num_epochs=3, seed=0)
    solver.train()
    assert solver.best_val_acc == solver.best_score == max(solver.val_acc_history)
    assert Solver.selection_metric == "val_acc" and Solver.higher_is_better


def test_unknown_selection_metric_names_it(data):
    class Wrong(Solver):
        selection_metric = "val_bleu"

    with pytest.raises(KeyError, match="val_bleu"):
        Wrong(SoftmaxModel(), data, verbose=False, num_epochs=1).train()


class _Noise:
    """An augment callable with its own generator (the protocol the Solver checkpoints)."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def __call__(self, X):
        self.calls += 1
        return X + 0.1 * self.rng.standard_normal(X.shape)


def test_augment_is_applied_to_training_batches_only(data):
    seen = []

    def augment(X):
        seen.append(X.copy())
        return X * 0.0  # the model then learns nothing from X: only b moves

    model = SoftmaxModel()
    W0 = model.params["W"].copy()
    solver = Solver(model, data, verbose=False, num_epochs=1, batch_size=30, augment=augment,
                    seed=0)
    solver.train()
    assert len(seen) == 10 and all(x.shape == (30, 6) for x in seen)
    np.testing.assert_allclose(model.params["W"], W0)
    with pytest.raises(TypeError, match="augment"):
        Solver(SoftmaxModel(), data, augment=3)


def test_augment_random_state_is_checkpointed(data, tmp_path):
    kwargs = {"verbose": False, "num_epochs": 3, "seed": 0, "batch_size": 50, "shuffle": True,
                  "checkpoint_name": str(tmp_path / "run")}
    ref = Solver(SoftmaxModel(), data, augment=_Noise(5), **kwargs)
    ref.train()
    # a fresh augmenter with another seed: the checkpoint's state must take over
    resumed = Solver(SoftmaxModel(), data, augment=_Noise(99), **kwargs)
    resumed.resume(tmp_path / "run_epoch_1.npz")
    assert resumed.loss_history == ref.loss_history
    np.testing.assert_array_equal(resumed.model.params["W"], ref.model.params["W"])


def test_frozen_params_are_not_updated(data):
    model = SoftmaxModel()
    model.frozen = {"W"}
    W0 = model.params["W"].copy()
    b0 = model.params["b"].copy()
    solver = Solver(model, data, verbose=False, num_epochs=2, seed=0, update_rule="adam")
    solver.train()
    np.testing.assert_array_equal(model.params["W"], W0)
    assert not np.array_equal(model.params["b"], b0)
