import io
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn


def test_version_is_a_string():
    assert isinstance(fastnn.__version__, str) and fastnn.__version__.count(".") >= 1


def test_set_get_num_threads_roundtrip():
    old = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1
        top = fastnn.max_num_threads()
        fastnn.set_num_threads(top)
        assert fastnn.get_num_threads() == top
    finally:
        fastnn.set_num_threads(old)


@pytest.mark.parametrize("bad", [0, -2])
def test_set_num_threads_rejects_non_positive(bad):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        fastnn.set_num_threads(bad)


@pytest.mark.parametrize("bad", [1.5, "2", True, None])
def test_set_num_threads_rejects_non_integers(bad):
    with pytest.raises(TypeError, match="n must be a positive integer"):
        fastnn.set_num_threads(bad)


def test_env_var_sets_default_threads():
    code = "import fastnn; print(fastnn.get_num_threads())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "FASTNN_NUM_THREADS": "1"},
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "1"


def test_max_num_threads_is_the_cores_this_process_may_use():
    top = fastnn.max_num_threads()
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert top == expected >= 1
    assert fastnn.config_info()["max threads"] == top


def test_set_num_threads_rejects_more_than_the_cores():
    old = fastnn.get_num_threads()
    too_many = fastnn.max_num_threads() + 1
    with pytest.raises(ValueError, match=rf"n must be .* no larger than the {too_many - 1} cores.*"
                                         rf"got {too_many}"):
        fastnn.set_num_threads(too_many)
    with pytest.raises(ValueError, match="n must be"):
        fastnn.set_num_threads(10**6)
    assert fastnn.get_num_threads() == old  # unchanged after a refusal


@pytest.mark.parametrize("value", ["0", "-1", "too_many"])
def test_env_var_follows_the_same_rule(value):
    if value == "too_many":
        value = str(fastnn.max_num_threads() + 1)
    out = subprocess.run(
        [sys.executable, "-c", "import fastnn"],
        env={**os.environ, "FASTNN_NUM_THREADS": value},
        capture_output=True, text=True, check=False,
    )
    assert out.returncode != 0
    assert "FASTNN_NUM_THREADS must be a positive integer no larger than the" in out.stderr


def test_env_var_garbage_is_a_clear_error():
    code = "import fastnn"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "FASTNN_NUM_THREADS": "lots"},
        capture_output=True, text=True, check=False,
    )
    assert out.returncode != 0
    assert "FASTNN_NUM_THREADS must be a positive integer" in out.stderr


def test_show_config_reports_openmp_and_threads():
    buf = io.StringIO()
    fastnn.show_config(file=buf)
    text = buf.getvalue()
    for key in ("fastnn", "compiler", "OpenMP", "threads", "numpy BLAS"):
        assert key in text
    info = fastnn.config_info()
    assert info["threads"] == fastnn.get_num_threads()
    assert info["OpenMP"].startswith(("on", "off"))


def test_cli_info_runs():
    from fastnn.cli import main

    assert main(["info"]) == 0


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "fastnn", "--help"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0
    assert "info" in out.stdout


@pytest.mark.parametrize(("preset", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_wait_policy_defaults_to_passive_but_respects_the_user(preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset is not None:
        env["OMP_WAIT_POLICY"] = preset
    out = subprocess.run(
        [sys.executable, "-c", "import os, fastnn; print(os.environ['OMP_WAIT_POLICY'])"],
        env=env, capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == expected


_SPIN_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT")


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ({}, "PASSIVE 10000 16"),
        # a user's policy is left alone, and so is the spin count that goes with it
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE - 16"),
        ({"GOMP_SPINCOUNT": "5", "OPENBLAS_THREAD_TIMEOUT": "4"}, "PASSIVE 5 4"),
    ],
)
def test_idle_threads_spin_briefly_unless_the_user_chose(preset, expected):
    env = {k: v for k, v in os.environ.items() if k not in _SPIN_VARS}
    env.update(preset)
    code = ("import os, fastnn; print(' '.join(os.environ.get(k, '-') for k in "
            f"{_SPIN_VARS!r}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == expected


@pytest.mark.parametrize(
    "labels", [np.array([2**63], dtype=np.uint64), np.array([1e19]), np.array([-1e19])]
)
def test_labels_outside_int64_are_rejected_not_wrapped(labels):
    from fastnn._validation import check_labels

    with pytest.raises(ValueError, match="y must"):
        check_labels(labels, "y")


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ({}, "tuned"),
        ({"FASTNN_MALLOC_TUNING": "0"}, "off (FASTNN_MALLOC_TUNING=0)"),
        ({"MALLOC_TOP_PAD_": "0"}, "left to the user's MALLOC_* settings"),
    ],
)
def test_malloc_tuning_is_applied_once_unless_the_user_chose(preset, expected):
    import ctypes.util

    if expected == "tuned" and ctypes.util.find_library("c") != "libc.so.6":
        pytest.skip("glibc only")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "FASTNN_MALLOC_TUNING"}
    env.update(preset)
    code = "import fastnn; print(fastnn.config_info()['malloc'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == expected


def test_malloc_tuning_keeps_freed_blocks_without_page_faults():
    """After one warm-up, a step's worth of 4 MB arrays (ten at once, then all freed) costs no
    new page faults; by default glibc returns the freed top of the heap to the OS every time."""
    import ctypes.util

    if ctypes.util.find_library("c") != "libc.so.6":
        pytest.skip("glibc only")
    code = (
        "import fastnn, resource, numpy as np\n"
        "def churn():\n"
        "    for _ in range(20):\n"
        "        arrays = [np.ones(1 << 20, np.float32) for _ in range(10)]; del arrays\n"
        "churn()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "churn()\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    faults = {}
    for tuning in ("1", "0"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        env["FASTNN_MALLOC_TUNING"] = tuning
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        faults[tuning] = int(out.stdout)
    assert faults["1"] < 100 and faults["0"] > 1000, faults
