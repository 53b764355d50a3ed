"""fastnn.cli._options: the options and argument types every data command shares."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from fastnn.cli import build_parser, main
from fastnn.cli._options import (
    dataset_name,
    non_negative_float,
    positive_float,
    positive_int,
    split_validation,
)
from fastnn.data import DATASETS

DATA_COMMANDS = (["knn"], ["linear"], ["train", "fc"], ["evaluate", "model.npz"])


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [(positive_int, "3", 3), (positive_int, "+7", 7), (positive_float, "2e-3", 2e-3),
     (non_negative_float, "0", 0.0), (non_negative_float, "0.5", 0.5)],
)
def test_types_accept_good_values(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (positive_int, "0", "must be a positive integer, got 0"),
        (positive_int, "-2", "must be a positive integer, got -2"),
        (positive_int, "1.5", "must be a positive integer, got 1.5"),
        (positive_int, "ten", "must be a positive integer, got 'ten'"),
        (positive_float, "0", "must be a finite number > 0, got 0"),
        (positive_float, "inf", "must be a finite number > 0, got inf"),
        (positive_float, "nan", "must be a finite number > 0, got nan"),
        (non_negative_float, "-0.1", "must be a finite number >= 0, got -0.1"),
        (non_negative_float, "x", "must be a finite number >= 0, got 'x'"),
    ],
)
def test_types_refuse_bad_values(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{message}$".replace("+", r"\+")):
        parse(text)


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_every_data_command_has_the_same_data_and_progress_options(command):
    parser = build_parser()
    args = parser.parse_args([*command, "--dataset", "CIFAR-10", "--data-dir", "here"])
    assert (args.dataset, args.data_dir) == ("cifar10", "here")
    assert parser.parse_args(command).dataset == "sample"
    assert parser.parse_args(command).progress is None
    assert parser.parse_args([*command, "--progress"]).progress is True
    assert parser.parse_args([*command, "--no-progress"]).progress is False


def test_dataset_choices_come_from_the_registry(capsys):
    assert main(["knn", "--dataset", "imagenet"]) == 2
    err = capsys.readouterr().err
    for name in DATASETS:
        assert repr(name) in err
    assert dataset_name("mnist3") == "mnist3"  # unknown: left for argparse to refuse
    assert dataset_name("Fashion_MNIST") == "fashion-mnist"


def test_download_shares_the_progress_and_data_dir_options():
    parser = build_parser()
    args = parser.parse_args(["download", "cifar10", "--data-dir", "d", "--no-progress"])
    assert (args.dir, args.progress) == ("d", False)
    args = parser.parse_args(["download", "cifar10", "--dir", "d", "--quiet"])
    assert (args.dir, args.progress) == ("d", False)  # the old spellings still work
    assert parser.parse_args(["download", "cifar10"]).progress is None


def test_main_returns_exit_codes_instead_of_raising(capsys):
    assert main(["--help"]) == 0
    assert "COMMAND" in capsys.readouterr().out
    assert main(["--threads", "0", "info"]) == 2
    assert "argument --threads: must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2


def test_split_validation_default_and_flag_message():
    X, y = np.zeros((30, 2)), np.arange(30)
    X_tr, _, X_val, _ = split_validation(X, y, None, seed=0)
    assert (X_tr.shape[0], X_val.shape[0]) == (27, 3)  # a tenth by default
    assert split_validation(X[:5], y[:5], None, seed=0)[2].shape[0] == 1  # never zero
    with pytest.raises(ValueError, match="--val-size must be between 1 and 29 .* got 30"):
        split_validation(X, y, 30, seed=0)


def test_threads_above_the_cores_is_a_usage_error_naming_the_flag(capsys):
    import fastnn
    from fastnn.cli import main

    assert main(["--threads", str(fastnn.max_num_threads() + 1), "info"]) == 2
    assert "--threads: must be at most" in capsys.readouterr().err
