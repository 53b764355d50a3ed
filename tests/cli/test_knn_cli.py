"""``fastnn knn`` end to end (packaged sample; CIFAR-10 subset when FASTNN_DATA is set)."""

from __future__ import annotations

import re

import pytest

from fastnn.cli import main


def run_cli(capsys, *argv):
    code = main(["knn", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_default_runs_on_packaged_sample(capsys):
    code, out, _ = run_cli(capsys, "--num-test", "200", "--no-progress")
    assert code == 0
    acc = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert 0.7 < acc <= 1.0  # 1-NN on real Fashion-MNIST images
    assert "k=1, metric=l2" in out
    assert re.search(r"timings: load .*predict .*queries/s", out)


def test_cross_validation_chooses_k_and_metric(capsys):
    code, out, _ = run_cli(
        capsys, "--num-train", "600", "--num-test", "100", "--cv", "3",
        "--k-choices", "1,3,7", "--metric", "both", "--no-progress",
    )
    assert code == 0
    assert "3-fold cross-validation, L2, 600 examples" in out
    assert "3-fold cross-validation, L1, 600 examples" in out
    assert out.count("<- best") == 2
    chosen = re.search(r"chosen: k=(\d+), metric=(l1|l2)", out)
    assert chosen and int(chosen.group(1)) in (1, 3, 7)
    assert f"k={chosen.group(1)}, metric={chosen.group(2)}" in out.split("test accuracy")[1]
    assert "cross-validation" in out.split("timings:")[1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--k", "0"], "argument --k: must be a positive integer, got 0"),
        (["--num-test", "-5"], "argument --num-test: must be a positive integer, got -5"),
        (["--cv-num-train", "x"], "argument --cv-num-train: must be a positive integer, got 'x'"),
        (["--num-train", "10", "--k", "11"], "--k must be <= the number of training examples"),
        (["--metric", "both"], "--metric both needs --cv"),
        (["--k-choices", "1,x", "--cv", "3"], "--k-choices must be comma-separated integers"),
        (["--num-test", "999999"], "--num-test must be <="),
        (["--cv", "1"], "num_folds must be >= 2"),
        (["--dataset", "imagenet"], "argument --dataset: invalid choice: 'imagenet'"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv, "--no-progress")
    assert code == 2
    assert "fastnn knn: error:" in err and message in err


def test_cifar_cross_validation_from_the_cli(capsys, data_dir):
    code, out, _ = run_cli(
        capsys, "--dataset", "cifar10", "--data-dir", str(data_dir), "--num-train", "5000",
        "--num-test", "500", "--cv", "5", "--no-progress",
    )
    assert code == 0
    assert "5-fold cross-validation, L2, 5000 examples" in out
    for k in (1, 3, 5, 8, 10, 12, 15, 20, 50, 100):
        assert re.search(rf"^\s*{k}\s+0\.\d{{4}}\s+0\.\d{{4}}", out, re.MULTILINE), k
    acc = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert 0.24 <= acc < 0.35  # raw-pixel k-NN on CIFAR-10 (k=1 alone gives 0.244)


def test_dataset_aliases_and_case_are_accepted(capsys):
    from fastnn.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["knn", "--dataset", "CIFAR-10"]).dataset == "cifar10"
    assert parser.parse_args(["knn", "--dataset", "fmnist"]).dataset == "fashion-mnist"
    code, out, _ = run_cli(capsys, "--dataset", "Sample", "--num-test", "20", "--no-progress")
    assert code == 0 and out.startswith("data: sample,")
