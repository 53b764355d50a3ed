import contextlib

import pytest

from fastnn.bench import BenchRow, format_table, time_call, time_interleaved


def test_time_call_returns_positive_median():
    calls = []
    t = time_call(lambda: calls.append(1), repeat=3, min_time=0.01)
    assert t > 0 and len(calls) >= 5


def test_time_interleaved_samples_round_by_round_inside_each_context():
    log = []

    def make(name):
        return lambda: log.append(name)

    @contextlib.contextmanager
    def limited():
        log.append("enter")
        yield
        log.append("exit")

    medians = time_interleaved([make("a"), make("b")], repeat=3, min_time=0.0,
                               contexts=[None, limited])
    assert len(medians) == 2 and all(m > 0 for m in medians)
    # warm-ups (two calls each, b inside its context), then rounds a, b, a, b, a, b
    assert log[:6] == ["a", "a", "enter", "b", "b", "exit"]
    rounds = log[6:]
    assert rounds == ["a", "enter", "b", "exit"] * 3
    with pytest.raises(ValueError, match="one entry per function"):
        time_interleaved([make("a")], contexts=[None, None])


def test_format_table_speedup_relative_to_slowest():
    rows = [
        BenchRow("op", "10x10", "naive", 2.0),
        BenchRow("op", "10x10", "compiled", 0.5, flops=1e9),
    ]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["operation", "shape", "implementation"]
    assert "4.0x" in lines[3] and "2.0" in lines[3]  # 1e9 flops / 0.5 s = 2 GFLOP/s
    assert "1.0x" in lines[2]


def test_every_bench_suite_runs_and_reports_every_kernel(capsys):
    """`fastnn bench all --quick` runs end to end (timings are not checked, only that every
    suite produces its table and no suite names an operation the registry does not know)."""
    from fastnn.cli import main

    assert main(["bench", "all", "--quick"]) == 0
    out = capsys.readouterr().out
    for suite in ("[distances]", "[hog]", "[layers]", "[linear]", "[mlp]"):
        assert suite in out
    for row in ("svm_loss", "softmax_loss", "kernel batchnorm_forward_train", "adam step"):
        assert row in out
