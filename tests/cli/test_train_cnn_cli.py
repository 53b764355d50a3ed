"""``fastnn train cnn`` end to end on the packaged sample (tiny network, few images), then
``fastnn evaluate`` on its model, resume, fine-tuning options and bad arguments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastnn.cli import main
from fastnn.serialization import load_model

TINY = ["--dataset", "sample", "--arch", "conv4-bn-relu-pool4,fc10", "--epochs", "1",
        "--batch-size", "50", "--train-per-class", "30", "--val-size", "50",
        "--num-train-samples", "100", "--no-progress"]


def _test_acc(text):
    return float(text.split("test accuracy ")[1].split(";")[0])


def test_train_cnn_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "cnn", *TINY, "--epochs", "3", "--lr", "3e-3", "--augment",
                 "flip,crop2", "--out", str(out),
                 "--filters-png", str(tmp_path / "filters.png")]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:4] == [
        "epoch", "loss", "train_acc", "val_acc"])
    assert [lines[header + k].split()[0] for k in (1, 2, 3, 4)] == ["0", "1", "2", "3"]
    assert "Augmenter('flip0.5,crop2')" in text and "ConvNet('conv4-bn-relu-pool4,fc10'" in text
    assert (out / "model.npz").is_file() and (out / "checkpoint_epoch_3.npz").is_file()
    history = json.loads((out / "history.json").read_text())
    assert len(history["history"]) == 4 and history["test"]["test accuracy"] == _test_acc(text)

    model, meta = load_model(out / "model.npz", with_metadata=True)
    assert meta["layout"] == "nchw" and meta["input_shape"] == [28, 28, 1]
    assert model.input_dim == (1, 28, 28)
    assert _test_acc(text) > 0.3  # ten classes (chance 0.1), 250 training images
    assert main(["evaluate", str(out / "model.npz"), "--dataset", "sample"]) == 0
    assert f"test accuracy on sample: {_test_acc(text):.4f}" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    assert (tmp_path / "filters.png").stat().st_size > 500
    assert (out / "training.png").stat().st_size > 1000


def test_resume_finishes_the_same_run(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "cnn", *TINY, "--epochs", "2", "--augment", "flip", "--out", str(out)]
    assert main(args) == 0
    full = json.loads((out / "history.json").read_text())["loss_history"]
    assert main([*args, "--resume", str(out / "checkpoint_epoch_2.npz")]) == 0
    assert json.loads((out / "history.json").read_text())["loss_history"] == full
    capsys.readouterr()


def test_fine_tune_a_saved_model_on_other_classes(tmp_path, capsys):
    base = tmp_path / "base"
    assert main(["train", "cnn", *TINY, "--classes", "0,1,2,3,4", "--arch",
                 "conv4-relu-pool4,fc8-relu,fc5", "--out", str(base)]) == 0
    tuned = tmp_path / "tuned"
    assert main(["train", "cnn", *TINY, "--classes", "5,6,7,8,9", "--init-from",
                 str(base / "model.npz"), "--replace-head", "--freeze", "features",
                 "--out", str(tuned)]) == 0
    text = capsys.readouterr().out
    assert "frozen ['W1', 'W2', 'b1', 'b2']" in text
    source, source_meta = load_model(base / "model.npz", with_metadata=True)
    model, meta = load_model(tuned / "model.npz", with_metadata=True)
    for k in ("W1", "b1", "W2", "b2"):  # frozen features kept exactly
        np.testing.assert_array_equal(model.params[k], source.params[k])
    assert model.params["W3"].shape == (8, 5)
    assert meta["class_names"] == source_meta["class_names"][:0] + meta["class_names"]
    np.testing.assert_array_equal(meta["mean"], source_meta["mean"])  # same preprocessing


@pytest.mark.parametrize(("extra", "message"), [
    (["--arch", "conv4-pool,fc10"], "spec token 2 'pool' cannot come after 'conv4'"),
    (["--arch", "conv4-relu,fc7"], "must have num_classes=10 units"),
    (["--augment", "rotate"], "augmentation token 'rotate'"),
    (["--classes", "3,12"], "--classes [12] do not exist"),
    (["--freeze", "W1"], "--replace-head and --freeze need --init-from"),
    (["--train-per-class", "5000"], "--train-per-class 5000: class 0 has only"),
])
def test_bad_arguments_are_clear_errors(tmp_path, capsys, extra, message):
    assert main(["train", "cnn", *TINY, *extra, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err or pytest.fail(capsys.readouterr().err)


def test_bad_classes_flag_is_an_argparse_error(tmp_path, capsys):
    assert main(["train", "cnn", *TINY, "--classes", "1,1", "--out", str(tmp_path)]) == 2
    assert "argument --classes: must be distinct" in capsys.readouterr().err


def test_shared_runner_with_a_solver_subclass(tmp_path, capsys):
    """The runner of every 'fastnn train MODEL' prints the Solver's own epoch scores and
    selection metric (as a language model's Solver subclass would use it)."""
    import argparse

    from fastnn.classifiers import ConvNet
    from fastnn.cli._training import add_training_options, images_to_model_layout, run_training
    from fastnn.solver import Solver

    class LossSolver(Solver):
        selection_metric = "val_loss"
        higher_is_better = False

        def _epoch_scores(self):
            return {"val_loss": float(self.model.loss(self.X_val, self.y_val)[0])}

    parser = argparse.ArgumentParser()
    add_training_options(parser, val_size=False)
    args = parser.parse_args(["--epochs", "2", "--batch-size", "10", "--out", str(tmp_path),
                              "--no-progress"])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    model = ConvNet("conv2-relu,fc3", input_dim=(1, 4, 4), num_classes=3, seed=0)
    solver = run_training(args, model, {"X_train": X[:30], "y_train": y[:30], "X_val": X[30:],
                                        "y_val": y[30:]},
                          metadata={"dataset": "toy"}, describe="data: toy",
                          evaluate_test=lambda m: {"test loss": 1.5}, solver_class=LossSolver)
    text = capsys.readouterr().out
    assert "epoch     loss  val_loss        lr  seconds" in text
    assert f"best val_loss {solver.best_score:.4f}; test loss 1.5000;" in text
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["selection_metric"] == "val_loss" and history["test"] == {"test loss": 1.5}
    flat = X.reshape(40, -1)  # (H, W, C) rows back to (N, C, H, W)
    meta = {"layout": "nchw", "input_shape": [4, 4, 1]}
    np.testing.assert_array_equal(images_to_model_layout(flat, meta), X)
    assert images_to_model_layout(flat, {}) is flat
    with pytest.raises(ValueError, match="layout"):
        images_to_model_layout(flat, {"layout": "nhwc"})
