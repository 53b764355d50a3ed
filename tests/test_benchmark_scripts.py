"""Smoke tests of the real-data experiment scripts in ``benchmarks/`` (tiny subsets, seconds).

Each script's ``main(argv)`` runs on a few hundred images for one epoch and returns the results
dict its ``--out`` JSON holds; the tests check that the numbers are sane (accuracies in [0, 1],
times positive, one row per epoch, frozen parameters as asked, augmentation share in [0, 1]).
The PyTorch twin of a ConvNet spec is also checked against fastnn's own loss and gradients.
Fashion-MNIST runs use the packaged sample (always available); CIFAR-10 needs ``FASTNN_DATA``.
The scripts live in the source tree, so these tests skip when it is not there (wheel tests).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SMALL_ARCH = "conv4-bn-relu-pool,fc16-relu-dropout0.5,fc10"

pytestmark = pytest.mark.skipif(not (BENCHMARKS / "_experiment.py").is_file(),
                                reason="the benchmark scripts are not next to these tests")


@pytest.fixture
def script(monkeypatch):
    """``script(name)``: the module ``benchmarks/<name>.py``, its helpers importable."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"_bench_script_{name}",
                                                      BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def _check_rows(rows: list[dict], epochs: int) -> None:
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    seconds = [r["train_seconds"] for r in rows]
    assert all(s > 0 for s in seconds) and seconds == sorted(seconds)
    assert all(0.0 <= r["test_acc"] <= 1.0 and np.isfinite(r["loss"]) for r in rows)


def test_fashion_both_sides_in_process(script, tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "fashion.json"
    report = script("fashion_cnn_vs_torch").main(
        ["--dataset", "sample", "--limit", "128", "--epochs", "2", "--batch-size", "32",
         "--arch", SMALL_ARCH, "--target", "0.0", "--in-process", "--out", str(out)])
    text = capsys.readouterr().out
    assert "python benchmarks/fashion_cnn_vs_torch.py --dataset sample --limit 128" in text
    assert set(report["sides"]) == {"fastnn", "torch"}
    for side in ("fastnn", "torch"):
        result = report["sides"][side]
        _check_rows(result["rows"], 2)
        assert result["epochs_run"] == 2 and result["stopped"] is None
        # target 0.0 is reached at the first epoch, at its training time
        assert result["reached_target"]["epoch"] == 1
        assert result["reached_target"]["train_seconds"] == result["rows"][0]["train_seconds"]
        assert result["final_test_acc"] == result["rows"][-1]["test_acc"]
    assert report["comparison"]["torch_over_fastnn_time_to_target"] > 0
    saved = json.loads(out.read_text())
    assert saved["sides"]["torch"]["rows"] == report["sides"]["torch"]["rows"]


def test_fashion_child_processes_and_budget(script, tmp_path):
    """The default path: each side in its own process; a zero budget stops after epoch 1."""
    pytest.importorskip("torch")
    report = script("fashion_cnn_vs_torch").main(
        ["--dataset", "sample", "--limit", "64", "--epochs", "3", "--batch-size", "32",
         "--arch", SMALL_ARCH, "--max-minutes", "0", "--out", str(tmp_path / "r.json")])
    for side in ("fastnn", "torch"):
        result = report["sides"][side]
        assert result["epochs_run"] == 1 and "time budget" in result["stopped"]
        assert result["threads"] >= 1 and result["version"]


def test_fashion_several_seeds_stop_at_the_target(script, capsys):
    pytest.importorskip("torch")
    report = script("fashion_cnn_vs_torch").main(
        ["--dataset", "sample", "--limit", "64", "--epochs", "3", "--batch-size", "32",
         "--arch", SMALL_ARCH, "--target", "0.0", "--stop-at-target", "--seeds", "3,5",
         "--in-process"])
    assert [run["seed"] for run in report["runs"]] == [3, 5] and "sides" not in report
    for run in report["runs"]:
        for side in ("fastnn", "torch"):
            result = run["sides"][side]
            assert result["epochs_run"] == 1 and result["stopped"].startswith("stopped at epoch 1")
    overall = report["overall"]
    assert overall["seeds"] == [3, 5]
    for side in ("fastnn", "torch"):
        assert overall[side]["epochs_to_target"] == [1, 1]
        assert all(s > 0 for s in overall[side]["seconds_to_target"])
    # a seed counts when fastnn's seconds to the target are at most PyTorch's
    first = [run["seed"] for run in report["runs"]
             if run["sides"]["fastnn"]["reached_target"]["train_seconds"]
             <= run["sides"]["torch"]["reached_target"]["train_seconds"]]
    assert overall["fastnn_first"] == first
    assert f"in {len(first)} of 2 seeds" in capsys.readouterr().out


def test_torch_training_augments_every_minibatch(script):
    torch = pytest.importorskip("torch")
    script("fashion_cnn_vs_torch")
    from _torch_convnet import build_torch_convnet, train_torch

    seen = []

    def augment(X):
        seen.append((type(X), X.shape, X.dtype))
        return X[:, :, ::-1, :]  # a flipped view: training must copy it before PyTorch

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    net = build_torch_convnet("conv2-relu-pool,fc3", (1, 6, 6), 3, torch.float32)
    result = train_torch(net, X, y, lambda n: 0.5, epochs=2, batch_size=8, learning_rate=1e-3,
                         augment=augment, verbose=False)
    assert len(result["rows"]) == 2
    assert seen == [(np.ndarray, (8, 1, 6, 6), np.float32)] * 4  # 20 // 8 batches, 2 epochs


def test_fashion_script_passes_the_augmenter_to_both_sides(script, monkeypatch):
    pytest.importorskip("torch")
    module = script("fashion_cnn_vs_torch")
    import _experiment
    import _torch_convnet

    got = {}
    for mod, name in ((_experiment, "train_fastnn"), (_torch_convnet, "train_torch")):
        real = getattr(mod, name)

        def spy(*args, real=real, name=name, **kwargs):
            got[name] = kwargs.get("augment")
            return real(*args, **kwargs)

        monkeypatch.setattr(mod, name, spy)
    module.main(["--dataset", "sample", "--limit", "64", "--epochs", "1", "--batch-size", "32",
                 "--arch", SMALL_ARCH, "--augment", "flip,crop2", "--in-process"])
    assert set(got) == {"train_fastnn", "train_torch"}
    assert [op for op, _ in got["train_fastnn"].ops] == ["flip", "crop"]
    assert got["train_torch"].ops == got["train_fastnn"].ops


@pytest.mark.parametrize("text", ["", "1,x", "2,2"])
def test_seed_list_rejects_bad_text(script, text):
    import argparse

    script("fashion_cnn_vs_torch")
    from _experiment import seed_list

    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated"):
        seed_list(text)


def test_fashion_one_side_without_torch_import(script):
    report = script("fashion_cnn_vs_torch").main(
        ["--dataset", "sample", "--limit", "128", "--epochs", "1", "--arch", SMALL_ARCH,
         "--side", "fastnn", "--target", "1.01"])
    result = report["sides"]["fastnn"]
    assert list(report["sides"]) == ["fastnn"] and report["comparison"] == {}
    assert result["reached_target"] is None
    _check_rows(result["rows"], 1)


def test_torch_twin_matches_fastnn_loss_and_gradients(script):
    """Same weights, same batch: the PyTorch module computes fastnn's loss and gradients."""
    torch = pytest.importorskip("torch")
    script("fashion_cnn_vs_torch")  # puts the helpers on sys.path
    from _torch_convnet import build_torch_convnet, copy_fastnn_weights

    from fastnn.classifiers import ConvNet

    spec = "conv4k3-bn-relu-pool,conv6k5s1p2-gn3-relu-avgpool,fc12-bn-relu,fc5"
    model = ConvNet(spec, input_dim=(2, 8, 8), num_classes=5, dtype=np.float64, seed=3)
    net = copy_fastnn_weights(build_torch_convnet(spec, (2, 8, 8), 5, torch.float64), model)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 2, 8, 8))
    y = rng.integers(0, 5, 7)
    loss, grads = model.loss(X, y)
    torch_loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(X)), torch.from_numpy(y))
    torch_loss.backward()
    assert abs(loss - torch_loss.item()) < 1e-10
    modules = dict(net.named_children())
    assert grads.keys() == model.params.keys()
    for name, grad in grads.items():
        kind, i = re.fullmatch(r"(W|b|gamma|beta)(\d+)", name).groups()
        if kind in ("gamma", "beta"):
            module = modules[f"norm{i}"]
        else:
            module = modules.get(f"conv{i}", modules.get(f"fc{i}"))
        expected = (module.weight if kind in ("W", "gamma") else module.bias).grad.numpy()
        if isinstance(module, torch.nn.Linear) and kind == "W":
            expected = expected.T  # fastnn's W is (D, M), PyTorch's weight (M, D)
        np.testing.assert_allclose(grad.reshape(expected.shape), expected, rtol=1e-7, atol=1e-10)


def test_copy_weights_rejects_a_mismatched_model(script):
    torch = pytest.importorskip("torch")
    script("fashion_cnn_vs_torch")
    from _torch_convnet import build_torch_convnet, copy_fastnn_weights

    from fastnn.classifiers import ConvNet

    net = build_torch_convnet("conv4-relu,fc10", (1, 6, 6), 10, torch.float32)
    other = ConvNet("conv5-relu,fc10", input_dim=(1, 6, 6), num_classes=10)
    with pytest.raises(ValueError, match="W1"):
        copy_fastnn_weights(net, other)


def test_transfer_learning_smoke(script, tmp_path):
    model_path = tmp_path / "pre.npz"
    report = script("transfer_learning").main(
        ["--dataset", "sample", "--per-class", "10", "--pretrain-epochs", "1",
         "--finetune-epochs", "2", "--finetune-batch-size", "10", "--lr-grid", "1e-3,3e-3",
         "--arch", "conv4-bn-relu-pool,fc16-relu,fc5", "--model-path", str(model_path),
         "--also-unfrozen"])
    assert model_path.is_file() and report["pretrain"]["model_bytes"] > 0
    assert report["labelled_images"] == 50
    assert report["test_images_classes_5_9"] == 250  # the packaged sample: 50 per class
    fine, scratch, everything = report["fine_tune"], report["scratch"], report["fine_tune_all"]
    assert fine["frozen"] == ["W1", "b1", "beta1", "gamma1"]
    assert scratch["frozen"] == [] and everything["frozen"] == []
    for result in (fine, scratch, everything):
        assert 0.0 <= result["test_acc"] <= 1.0 and result["train_seconds"] > 0
        assert set(result["lr_search"]) == {1e-3, 3e-3}
        assert result["learning_rate"] in (1e-3, 3e-3)
        _check_rows(result["rows"], 2)
        assert result["test_acc"] == result["rows"][-1]["test_acc"]


def test_feature_parameters_name_the_conv_layers(script):
    module = script("transfer_learning")
    from fastnn.classifiers import ConvNet

    model = ConvNet("conv3-bn-relu,conv4-relu-pool,fc8-bn-relu,fc5", input_dim=(1, 6, 6),
                    num_classes=5, seed=0)
    assert module.feature_parameters(model, "conv") == ["W1", "W2", "b1", "b2", "beta1",
                                                        "gamma1"]
    assert module.feature_parameters(model, "all-but-head") == sorted(
        set(model.params) - {"W4", "b4"})


def test_select_per_class_is_seeded_and_checks_counts(script):
    module = script("transfer_learning")
    y = np.repeat(np.arange(10), 20)
    a = module.select_per_class(y, (5, 6), 7, seed=1)
    assert np.array_equal(a, module.select_per_class(y, (5, 6), 7, seed=1))
    assert np.bincount(y[a], minlength=10).tolist() == [0] * 5 + [7, 7] + [0] * 3
    with pytest.raises(ValueError, match="--per-class 21"):
        module.select_per_class(y, (5,), 21, seed=0)
    fit, held = module.stratified_split(y[a], 0.2, seed=0)
    assert len(held) == 2 * round(0.2 * 7) and not set(fit) & set(held)


def test_cifar_augment_smoke(script, data_dir):
    report = script("cifar_augment").main(
        ["--data-dir", str(data_dir), "--limit", "200", "--epochs", "1", "--batch-size", "50",
         "--arch", SMALL_ARCH, "--overfit-samples", "20", "--overfit-epochs", "2"])
    part1, part2 = report["convnet"], report["overfit"]
    _check_rows(part1["rows"], 1)
    assert part1["augment_calls"] == 200 // 50  # one call per training minibatch
    assert 0.0 < part1["augment_share"] < 1.0
    # one epoch: its share is the whole run's (up to the instant after the last epoch end)
    assert part1["rows"][0]["aug_share"] == pytest.approx(part1["augment_share"], rel=0.01)
    assert part2["images"] == 20 and 0.0 <= part2["train_acc"] <= 1.0
    assert part2["iterations"] >= 1 and part2["rows"][-1]["iteration"] == part2["iterations"]


def test_timed_augment_forwards_rng_and_counts(script):
    module = script("cifar_augment")
    from fastnn.data.augment import Augmenter

    inner = Augmenter("flip", seed=0)
    timed = module.TimedAugment(inner)
    x = np.arange(2 * 1 * 2 * 3, dtype=np.float32).reshape(2, 1, 2, 3)
    out = timed(x)
    assert timed.rng is inner.rng and timed.calls == 1 and timed.seconds >= 0
    assert out.shape == x.shape and not np.shares_memory(out, x)


@pytest.mark.parametrize("name", ["fashion_cnn_vs_torch", "transfer_learning", "cifar_augment"])
def test_scripts_show_help_and_refuse_bad_numbers(script, capsys, name):
    module = script(name)
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0 and "--limit" in capsys.readouterr().out
    for bad in (["--limit", "0"], ["--threads", "-1"], ["--batch-size", "x"]):
        with pytest.raises(SystemExit) as exc:
            module.main(bad)
        assert exc.value.code == 2
        message = capsys.readouterr().err
        assert f"argument {bad[0]}: must be a positive integer, got {bad[1]!r}" in message


def test_thread_handoff_prints_one_row_per_timeout(script, capsys):
    script("thread_handoff").main()
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    assert [r.split()[0] for r in rows] == ["16", "28"]
    for row in rows:
        times = [float(v) for v in row.split()[1:]]
        assert len(times) == 3 and all(t > 0 for t in times)


def test_step_faults_prints_both_rounds(script, capsys):
    script("step_faults").main()
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("malloc: ")
    rows = [line for line in lines[1:] if "faults/step" in line]
    assert len(rows) in (2, 4) and all(" median " in r for r in rows)
