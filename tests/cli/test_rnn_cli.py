"""``fastnn train lstm|charrnn|caption``, ``fastnn sample`` and ``fastnn caption`` end to end on
the packaged samples (tiny sizes), plus their errors."""

from __future__ import annotations

import json

import pytest

from fastnn.cli import main
from fastnn.serialization import load_model


@pytest.fixture(scope="module")
def text_path(samples_dir):
    return samples_dir / "text" / "fortunes-sample.txt"


def test_train_lstm_then_evaluate(tmp_path, capsys):
    out = tmp_path / "lstm"
    code = main(["train", "lstm", "--dataset", "sample", "--hidden", "16", "--epochs", "1",
                 "--batch-size", "100", "--num-train-samples", "100", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "read row by row (28 steps of 28 values)" in text and "test accuracy" in text
    model, meta = load_model(out / "model.npz", with_metadata=True)
    assert type(model).__name__ == "SequenceClassifier" and meta["layout"] == "nchw"
    acc = float(text.split("test accuracy ")[1].split(";")[0])
    assert acc > 0.15  # above chance (0.1) after one tiny epoch
    assert main(["evaluate", str(out / "model.npz"), "--dataset", "sample"]) == 0
    assert f"test accuracy on sample: {acc:.4f}" in capsys.readouterr().out


def test_train_charrnn_sample_and_resume(tmp_path, capsys, text_path):
    out = tmp_path / "char"
    args = ["train", "charrnn", "--text", str(text_path), "--epochs", "2", "--batch-size", "8",
            "--seq-length", "25", "--embed", "8", "--hidden", "16", "--sample-length", "40",
            "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "val_loss" in text and "unigram baseline" in text
    assert "--- sample at temperature 0.8:" in text and "--- sample at temperature 1:" in text
    history = json.loads((out / "history.json").read_text())
    assert history["selection_metric"] == "val_loss"
    assert history["history"][-1]["val_loss"] < history["history"][0]["val_loss"]

    assert main(["sample", str(out / "model.npz"), "--length", "60", "--prefix", "The ",
                 "--seed", "3", "--temperature", "0.5"]) == 0
    sampled = capsys.readouterr().out
    assert sampled.startswith("The ") and len(sampled.rstrip("\n")) >= 60
    assert main(["sample", str(out / "model.npz"), "--length", "60", "--prefix", "The ",
                 "--seed", "3", "--temperature", "0.5"]) == 0
    assert capsys.readouterr().out == sampled  # seeded: reproducible

    # resume from the kept checkpoint: a third epoch
    assert main([*args[:4], "--epochs", "3", *args[6:], "--resume",
                 str(out / "checkpoint_epoch_2.npz")]) == 0
    history = json.loads((out / "history.json").read_text())
    assert history["history"][-1]["epoch"] == 3


def test_sample_errors(tmp_path, capsys, text_path):
    out = tmp_path / "char"
    assert main(["train", "charrnn", "--text", str(text_path), "--epochs", "1", "--batch-size",
                 "4", "--seq-length", "20", "--embed", "4", "--hidden", "8", "--out",
                 str(out)]) == 0
    capsys.readouterr()
    assert main(["sample", str(out / "model.npz"), "--prefix", "caf\u00e9"]) == 2
    err = capsys.readouterr().err
    assert "--prefix" in err and "'\u00e9'" in err and "position 3" in err
    assert main(["sample", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz" in capsys.readouterr().err
    assert main(["sample", str(out / "model.npz"), "--temperature", "0"]) == 2
    assert "--temperature" in capsys.readouterr().err


def test_train_charrnn_bad_text(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert main(["train", "charrnn", "--text", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "empty.txt" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc\xff\xfe")
    assert main(["train", "charrnn", "--text", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.txt: not valid UTF-8" in capsys.readouterr().err
    short = tmp_path / "short.txt"
    short.write_text("hello world " * 20, encoding="utf-8")
    assert main(["train", "charrnn", "--text", str(short), "--out", str(tmp_path / "o")]) == 2
    assert "--val-fraction" in capsys.readouterr().err
    assert main(["train", "charrnn", "--val-fraction", "1.5"]) == 2
    assert "--val-fraction" in capsys.readouterr().err


def test_train_caption_then_caption(tmp_path, capsys):
    out = tmp_path / "cap"
    assert main(["train", "caption", "--dataset", "sample", "--num-train", "300", "--num-val",
                 "50", "--features", "pca", "--feature-dim", "16", "--wordvec", "8",
                 "--hidden", "16", "--epochs", "2", "--batch-size", "50", "--out",
                 str(out)]) == 0
    text = capsys.readouterr().out
    assert "class-word accuracy" in text and "BLEU-1" in text and "val_bleu1" in text
    assert main(["caption", str(out / "model.npz"), "--num", "4"]) == 0
    shown = capsys.readouterr().out
    lines = shown.splitlines()
    assert sum("generated:" in line and "truth: a " in line for line in lines) == 4
    assert "held-out images: 50" in lines[-1] and "BLEU-1" in lines[-1]


def test_caption_errors(tmp_path, capsys, text_path):
    assert main(["train", "caption", "--dataset", "cifar10", "--out", str(tmp_path)]) == 2
    assert "--dataset" in capsys.readouterr().err
    out = tmp_path / "char"
    assert main(["train", "charrnn", "--text", str(text_path), "--epochs", "1", "--batch-size",
                 "4", "--seq-length", "20", "--embed", "4", "--hidden", "8", "--out",
                 str(out)]) == 0
    capsys.readouterr()
    assert main(["caption", str(out / "model.npz")]) == 2
    assert "CaptioningRNN" in capsys.readouterr().err


@pytest.mark.data
@pytest.mark.heavy
def test_charrnn_on_real_fortunes_default_text(tmp_path, capsys, data_dir, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(data_dir))
    out = tmp_path / "char"
    # one pass over the real text with a small model: a few seconds on 2 cores
    assert main(["train", "charrnn", "--epochs", "1", "--batch-size", "64", "--hidden", "32",
                 "--embed", "16", "--seq-length", "50", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fortunes.txt" in text
    history = json.loads((out / "history.json").read_text())
    assert history["history"][-1]["val_loss"] < 2.6  # unigram baseline 3.38
