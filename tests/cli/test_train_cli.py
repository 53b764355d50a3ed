"""``fastnn train fc`` / ``fastnn evaluate`` on the packaged sample (tiny and fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastnn.cli import main
from fastnn.serialization import load_model

TINY = ["--dataset", "sample", "--hidden", "32", "--epochs", "1", "--batch-size", "100",
        "--num-train-samples", "200"]


def test_train_then_evaluate_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "fc", *TINY, "--normalization", "batchnorm", "--dropout", "0.9",
                 "--lr-schedule", "cosine", "--warmup-epochs", "0.5", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["epoch", "loss",
                                                                           "train_acc"])
    assert [lines[header + 1].split()[0], lines[header + 2].split()[0]] == ["0", "1"]
    assert "test accuracy" in text
    assert (out / "model.npz").is_file() and (out / "checkpoint_epoch_1.npz").is_file()
    assert not (out / "checkpoint_epoch_0.npz").exists()  # only the newest checkpoint is kept
    history = json.loads((out / "history.json").read_text())
    assert len(history["history"]) == 2 and len(history["loss_history"]) == 18
    pytest.importorskip("matplotlib")
    assert (out / "training.png").stat().st_size > 1000

    model, meta = load_model(out / "model.npz", with_metadata=True)
    assert meta["dataset"] == "sample" and meta["mean"].shape == (784,)
    assert model.get_config()["normalization"] == "batchnorm"
    test_acc = float(text.split("test accuracy ")[1].split(";")[0])
    assert test_acc > 0.3  # ten classes: well above chance after one epoch

    assert main(["evaluate", str(out / "model.npz"), "--dataset", "sample"]) == 0
    reported = capsys.readouterr().out
    assert f"test accuracy on sample: {test_acc:.4f}" in reported


def test_resume_continues_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "fc", *TINY[:-6], "--epochs", "2", "--batch-size", "200",
            "--num-train-samples", "100", "--out", str(out)]
    assert main(args) == 0
    full = json.loads((out / "history.json").read_text())["loss_history"]
    ckpt = out / "checkpoint_epoch_2.npz"
    assert ckpt.is_file()
    # resuming from the last checkpoint only finishes the bookkeeping: the losses are the same
    assert main([*args, "--resume", str(ckpt)]) == 0
    assert json.loads((out / "history.json").read_text())["loss_history"] == full
    capsys.readouterr()


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    assert main(["train", "fc", *TINY, "--hidden", "0,5", "--out", str(tmp_path)]) == 2
    assert ("argument --hidden: must be comma-separated positive integers, got '0,5'"
            in capsys.readouterr().err)
    assert main(["train", "fc", *TINY, "--dropout", "1.5", "--out", str(tmp_path)]) == 2
    assert "dropout_keep_ratio" in capsys.readouterr().err
    assert main(["train", "fc", *TINY, "--weight-scale", "big", "--out", str(tmp_path)]) == 2
    assert ("argument --weight-scale: must be a finite number > 0, 'he' or 'xavier'; got 'big'"
            in capsys.readouterr().err)
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert main(["evaluate", str(bad)]) == 2
    assert "broken.npz" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "none.npz")]) == 2
    assert "none.npz" in capsys.readouterr().err


def test_evaluate_refuses_a_model_without_preprocessing_or_of_other_images(tmp_path, capsys):
    from fastnn.classifiers import FullyConnectedNet
    from fastnn.serialization import save_model

    net = FullyConnectedNet([4], input_dim=784, num_classes=10)
    save_model(tmp_path / "bare.npz", net)
    assert main(["evaluate", str(tmp_path / "bare.npz")]) == 2
    assert "bare.npz: metadata must describe a 'scale_and_center'" in capsys.readouterr().err
    meta = {"preprocessing": "scale_and_center", "pixel_scale": 1 / 255, "input_shape": [8, 8, 3],
            "mean": np.zeros(192, dtype=np.float32)}
    save_model(tmp_path / "rgb.npz", FullyConnectedNet([4], input_dim=192), metadata=meta)
    assert main(["evaluate", str(tmp_path / "rgb.npz")]) == 2
    assert ("the model was trained on images of shape (8, 8, 3); sample has images of shape "
            "(28, 28, 1)") in capsys.readouterr().err


@pytest.mark.data
def test_fashion_mnist_two_epochs_then_evaluate(data_dir, tmp_path, capsys):
    """Real data: a small net reaches well over 80% test accuracy in two epochs, and
    ``evaluate`` reproduces the number from the saved model file."""
    out = tmp_path / "fm"
    assert main(["train", "fc", "--dataset", "fashion-mnist", "--data-dir", str(data_dir),
                 "--hidden", "100", "--epochs", "2", "--lr", "2e-3", "--num-train-samples",
                 "1000", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    test_acc = float(text.split("test accuracy ")[1].split(";")[0])
    assert test_acc > 0.84
    assert main(["evaluate", str(out / "model.npz"), "--dataset", "fashion-mnist",
                 "--data-dir", str(data_dir)]) == 0
    assert f"test accuracy on fashion-mnist: {test_acc:.4f}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--batch-size", "0", "argument --batch-size: must be a positive integer, got 0"),
        ("--epochs", "-1", "argument --epochs: must be a positive integer, got -1"),
        ("--epochs", "1.5", "argument --epochs: must be a positive integer, got 1.5"),
        ("--warmup-epochs", "-1", "argument --warmup-epochs: must be a finite number >= 0, got -1"),
        ("--num-train-samples", "0", "argument --num-train-samples: must be a positive integer"),
        ("--val-size", "0", "argument --val-size: must be a positive integer, got 0"),
        ("--early-stopping", "0", "argument --early-stopping: must be a positive integer"),
        ("--lr", "0", "argument --lr: must be a finite number > 0, got 0"),
        ("--lr", "nan", "argument --lr: must be a finite number > 0, got nan"),
        ("--gamma", "inf", "argument --gamma: must be a finite number > 0, got inf"),
        ("--grad-clip", "-2", "argument --grad-clip: must be a finite number > 0, got -2"),
        ("--dataset", "imagenet", "argument --dataset: invalid choice: 'imagenet'"),
    ],
)
def test_bad_numeric_flags_name_the_flag(tmp_path, capsys, flag, value, message):
    assert main(["train", "fc", *TINY, flag, value, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "fastnn train fc: error: " + message in err
    assert not any(tmp_path.iterdir())  # rejected before any work


def test_val_size_beyond_the_data_names_the_flag(tmp_path, capsys):
    assert main(["train", "fc", *TINY, "--val-size", "2000", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "fastnn train: error: --val-size must be between 1 and 1999" in err
    assert not any(tmp_path.iterdir())


def test_progress_flags(tmp_path, capsys):
    from fastnn.cli import build_parser

    parser = build_parser()
    for argv, expected in (([], None), (["--progress"], True), (["--no-progress"], False)):
        assert parser.parse_args(["train", "fc", *argv]).progress is expected
    assert main(["train", "fc", *TINY, "--no-progress", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""
