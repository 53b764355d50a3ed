"""``fastnn linear`` end to end on the packaged real sample (offline) and its error paths."""

from __future__ import annotations

import re

import pytest

from fastnn.cli import main

QUICK = ["--dataset", "sample", "--num-iters", "150", "--batch-size", "100"]


def _accuracies(out: str) -> dict[str, float]:
    line = next(ln for ln in out.splitlines() if ln.startswith("fastnn "))
    return {k: float(v) for k, v in re.findall(r"(train|val|test) acc (\d\.\d+)", line)}


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_trains_and_reports_accuracy_and_time(capsys, loss):
    assert main(["linear", *QUICK, "--loss", loss]) == 0
    out = capsys.readouterr().out
    assert "sample: 1800 train / 200 val / 500 test, features pixels: 784 + bias" in out
    acc = _accuracies(out)
    assert set(acc) == {"train", "val", "test"}
    # real Fashion-MNIST images: a linear model is far above chance (0.1) even this briefly
    assert acc["test"] > 0.7 and acc["train"] > 0.7
    assert re.search(r"train time \d+\.\d+ s", out)


def test_random_search_and_pictures(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    templates, loss_png = tmp_path / "templates.png", tmp_path / "loss.png"
    argv = [
        "linear", *QUICK, "--loss", "softmax", "--search", "random", "--trials", "3",
        "--save-templates", str(templates), "--save-loss", str(loss_png),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "random search, 3 trials" in out
    assert re.search(r"best: learning_rate=\S+ reg=\S+", out)
    header = next(ln for ln in out.splitlines() if "val_acc" in ln)
    assert header.split()[:2] == ["learning_rate", "reg"]
    for path in (templates, loss_png):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hog_features(capsys):
    assert main(["linear", *QUICK, "--loss", "svm", "--features", "hog,pixels"]) == 0
    out = capsys.readouterr().out
    # 28x28 images, 4-pixel cells: 7 x 7 cells x 9 orientations = 441 HOG values + 784 pixels
    assert "features hog+pixels (HOG 4px cells): 1225 + bias" in out
    assert _accuracies(out)["test"] > 0.7


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--features", "color"], "--features color needs RGB images"),
        (["--features", "sift"], "argument --features: must be a comma list of pixels, hog, co"),
        (["--features", "hog,hog"], "argument --features: lists a feature twice"),
        (["--features", "hog", "--save-templates", "x.png"], "--save-templates needs --features"),
        (["--val-size", "5000"], "--val-size must be between 1 and 1999"),
        (["--num-iters", "0"], "argument --num-iters: must be a positive integer, got 0"),
        (["--batch-size", "0"], "argument --batch-size: must be a positive integer, got 0"),
        (["--trials", "-1"], "argument --trials: must be a positive integer, got -1"),
        (["--hog-cell", "2.5"], "argument --hog-cell: must be a positive integer, got 2.5"),
        (["--learning-rate", "0"], "argument --learning-rate: must be a finite number > 0"),
        (["--dataset", "mnist3"], "argument --dataset: invalid choice: 'mnist3'"),
        (["--num-train", "1"], "--num-train must be >= 2"),
        (["--batch-size", "5000"], "batch_size must be at most the number of training examples"),
        (["--reg", "-1"], "reg must be >= 0"),
        (["--search", "random", "--lr-range", "1e-1", "1e-3"], "LogUniform needs low < high"),
    ],
)
def test_bad_arguments_give_clear_errors(capsys, extra, message):
    assert main(["linear", *QUICK, *extra]) == 2
    err = capsys.readouterr().err
    assert "fastnn linear: error: " in err and message in err


def test_progress_flag_draws_the_feature_and_search_bars(capsys):
    argv = ["linear", *QUICK, "--num-iters", "20", "--features", "hog", "--search", "random",
            "--trials", "2"]
    assert main([*argv, "--progress"]) == 0
    assert "random search" in capsys.readouterr().err
    assert main([*argv, "--no-progress", "--verbose"]) == 0
    captured = capsys.readouterr()
    assert "random search" not in captured.err
    assert captured.out.count("trial ") == 2  # --verbose: one line per trial


def test_missing_data_set_names_the_file(capsys, tmp_path):
    assert main(["linear", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastnn linear: error:")
    assert "train-images-idx3-ubyte.gz" in err


@pytest.mark.data
def test_cifar10_subset_with_hog_and_color(capsys, data_dir):
    argv = [
        "linear", "--dataset", "cifar10", "--data-dir", str(data_dir), "--loss", "svm",
        "--features", "hog,color", "--num-iters", "300",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cifar10: 4500 train / 500 val / 1000 test, features hog+color (HOG 8px cells)" in out
    assert _accuracies(out)["test"] > 0.25  # chance is 0.10


def test_colour_and_hog_features_on_the_cifar_sample(capsys, samples_dir):
    argv = ["linear", "--dataset", "cifar10", "--data-dir", str(samples_dir), "--features",
            "hog,color", "--num-iters", "20", "--batch-size", "20", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # 32x32 RGB, 8-pixel cells: 4 x 4 cells x 9 orientations + 10 hue bins
    assert "cifar10: 90 train / 10 val / 20 test, features hog+color (HOG 8px cells): 154" in out
    assert set(_accuracies(out)) == {"train", "val", "test"}
