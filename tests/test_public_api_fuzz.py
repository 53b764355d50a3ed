"""Property-based bad-input suite over fastnn's public API (issue 7, item 9).

A catalogue of VALID calls (``tests/_fuzz_catalog.py``) is mutated ONE argument at a time: wrong
shapes, empty arrays, NaN/inf, odd dtypes, non-contiguous views, 0-d arrays, None, nested lists,
zero/negative/huge/fractional hyperparameters, wrong types, damaged files. Hypothesis draws the
configuration of every valid call (sizes, dtype, seed) with ``derandomize=True``, so the set of
cases is the same on every run.

Every case must end in one of:

- a *clear error*: ValueError/TypeError (fastnn's DatasetError and CheckpointError are
  ValueErrors; a missing file may raise FileNotFoundError) whose message names the mutated
  argument (for a dict key: the key; for a damaged file: the file);
- acceptance, when the mutation is valid (``SAME``: then with the result of the valid call; ``ANY``:
  any result).

Failures are: *unclear error* (another exception class such as IndexError, MemoryError,
OverflowError, or a message that does not name the argument), *silent acceptance* of invalid
input, *rejected valid* input / *wrong result* for an equivalent input, *crash* and *hang*.

The calls run in a worker subprocess (``--worker``) so that a segfault in compiled code cannot
take the test process down: a crash or a hang is recorded, the worker restarted, and the run
continues with the next case. The worker runs one thread, under an address-space limit (a huge
allocation fails fast with MemoryError instead of swapping), with a per-case alarm.

Running it
----------
``pytest tests/test_public_api_fuzz.py``: one test per catalogue entry (strict: any failing case
fails that test); a summary table is printed at the end of the session.
``python -m tests.test_public_api_fuzz --report`` (or ``python tests/test_public_api_fuzz.py
--report``): runs everything and prints the counts overall and per function plus the list of
failing cases. Options: ``--only SUBSTRING``, ``--examples K``, ``--json FILE``.
Environment: ``FASTNN_FUZZ_EXAMPLES`` (configurations per entry, default 2),
``FASTNN_FUZZ_TIMEOUT`` (seconds per case, default 10), ``FASTNN_FUZZ_REPORT_JSON`` (write the
results of a pytest run as JSON).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _fuzz_catalog as cat

EXAMPLES = int(os.environ.get("FASTNN_FUZZ_EXAMPLES", "2"))
SOFT_TIMEOUT = float(os.environ.get("FASTNN_FUZZ_TIMEOUT", "10"))
HARD_TIMEOUT = SOFT_TIMEOUT + 20  # the worker did not come back (e.g. stuck in nogil code)
MEMORY_HEADROOM = 3 * 2**30  # address space the worker may add to what it uses after imports

PASS = ("clear_error", "accepted", "same")
FAIL = ("unclear_error", "silent_acceptance", "rejected_valid", "wrong_result", "crash", "hang",
        "catalogue_bug")
COLUMNS = ("cases", "clear_error", "accepted", "same", *FAIL)


# ================================================================================ configs


def configs_for(entry: cat.Entry, k: int = EXAMPLES) -> list[dict]:
    """``k`` configurations of the valid call, drawn by hypothesis (deterministically)."""
    from hypothesis import HealthCheck, Phase, given, settings

    out: list[dict] = []

    @settings(max_examples=max(k * 3, 5), derandomize=True, database=None,
              phases=[Phase.generate], deadline=None, suppress_health_check=list(HealthCheck))
    @given(entry.config)
    def collect(cfg):
        if cfg not in out and len(out) < k:
            out.append(cfg)

    collect()
    return out


def case_list(entry: cat.Entry, n_configs: int) -> list[tuple[int, str, str, str]]:
    return [(c, path, mut, exp) for c in range(n_configs) for path, mut, exp in cat.cases(entry)]


# ================================================================================ worker


class _Hang(BaseException):
    """Raised by the alarm: not an Exception, so the code under test cannot swallow it."""


def _alarm(signum, frame):
    raise _Hang


def _names_in(message: str, names: list[str], plain: bool) -> bool:
    for n in names:
        if not n:
            continue
        if plain:
            if n in message:
                return True
        elif re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message):
            return True
    return False


def _same(a, b, rtol: float) -> bool:
    import numpy as np

    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(_same(a[k], b[k], rtol) for k in a))
    if (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b)
            and all(_same(x, y, rtol) for x, y in zip(a, b))):
        return True
        # (a list may also be a numeric sequence compared with an array)
    if a is None or b is None or isinstance(a, (str, bytes)) or isinstance(b, (str, bytes)):
        return a == b
    try:
        x, y = np.asarray(a), np.asarray(b)
    except Exception:  # noqa: BLE001 - not array-like: compare types only
        return type(a) is type(b)
    if x.dtype == object or y.dtype == object:
        if isinstance(a, (list, tuple)):
            return False
        return type(a) is type(b)
    if x.shape != y.shape:
        return False
    if x.dtype.kind in "biu" and y.dtype.kind in "biu":
        return bool(np.array_equal(x, y))
    if x.dtype.kind not in "biufc" or y.dtype.kind not in "biufc":
        return bool(np.array_equal(x, y))
    tol = rtol if x.dtype == y.dtype else max(rtol, 1e-3)
    return bool(np.allclose(x, y, rtol=tol, atol=tol, equal_nan=True))


def _mutate(entry, spec, mut, value, rng, args):
    import numpy as np

    if spec.kind == "labels" and mut == "too_large":
        y = np.asarray(value).astype(np.int64)
        if entry.num_classes is not None:
            y[0] = entry.num_classes(args)
        else:
            y[0] = int(y.max()) + 1
        return y
    if value is None and spec.kind not in ("callable",):
        raise cat.NotApplicable
    return cat.mutation_function(spec.kind, mut)(value, rng)


def _describe(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg[:200]}"


class _Executor:
    """Runs cases of one entry inside the worker."""

    def __init__(self, tmp_root: Path):
        self.tmp_root = tmp_root
        self.entries = cat.by_name()
        self.baselines: dict = {}

    def _timed(self, fn):
        import faulthandler

        # the alarm interrupts Python code; code that never returns to Python (a nogil loop)
        # leaves a traceback in the worker's stderr for the parent's hang report
        faulthandler.dump_traceback_later(SOFT_TIMEOUT + 3)
        signal.setitimer(signal.ITIMER_REAL, SOFT_TIMEOUT)
        try:
            return fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            faulthandler.cancel_dump_traceback_later()

    def _fresh(self, entry, cfg, tmp):
        import numpy as np

        np.random.seed(1234)
        return entry.make(cfg, tmp)

    def baseline(self, entry, cfg_index, cfg):
        key = (entry.name, cfg_index, json.dumps(cfg, sort_keys=True))
        if key not in self.baselines:
            import numpy as np

            tmp = Path(tempfile.mkdtemp(dir=self.tmp_root))
            try:
                args = self._fresh(entry, cfg, tmp)
                np.random.seed(99)
                self.baselines[key] = ("ok", self._timed(lambda: entry.call(args)))
            except _Hang:
                self.baselines[key] = ("error", "hang of the valid call")
            except BaseException as exc:  # noqa: BLE001 - reported as a catalogue bug
                self.baselines[key] = ("error", _describe(exc))
            finally:
                _rmtree(tmp)
        return self.baselines[key]

    def run(self, entry_name, cfg_index, cfg, path, mut, expect) -> dict:
        import numpy as np

        entry = self.entries[entry_name]
        status, base = self.baseline(entry, cfg_index, cfg)
        if status != "ok":
            return {"outcome": "catalogue_bug", "detail": f"valid call failed: {base}"}
        tmp = Path(tempfile.mkdtemp(dir=self.tmp_root))
        try:
            args = self._fresh(entry, cfg, tmp)
            arg, key, key_spec = cat.find_spec(entry, path)
            rng = np.random.default_rng([cfg.get("seed", 0), zlib.crc32(f"{path}:{mut}".encode())])
            names, plain = [key if key is not None else arg.name], False
            if (key_spec or arg).kind == "cache":
                names += list(cat.CACHE_PARTS)
            try:
                if mut.startswith("damage:"):
                    args, names = cat.damage(entry, arg, mut[len("damage:"):], args, rng)
                    plain = True
                elif key is not None:
                    d = dict(args[arg.name])
                    if mut == "missing":
                        if key not in d:
                            raise cat.NotApplicable
                        del d[key]
                    else:
                        d[key] = _mutate(entry, key_spec, mut, d.get(key), rng, args)
                    args[arg.name] = d
                else:
                    args[arg.name] = _mutate(entry, arg, mut, args[arg.name], rng, args)
            except cat.NotApplicable:
                return {"outcome": "n/a"}
            np.random.seed(99)
            try:
                result = self._timed(lambda: entry.call(args))
                exc = None
            except _Hang:
                return {"outcome": "hang", "detail": f"no answer within {SOFT_TIMEOUT:g} s"}
            except BaseException as e:  # noqa: BLE001 - classified below
                exc = e
        finally:
            _rmtree(tmp)

        if exc is None:
            if expect == cat.ERROR:
                return {"outcome": "silent_acceptance", "detail": "accepted without error"}
            if expect in (cat.SAME, cat.SAME_OR_ERROR):
                if _same(result, base, entry.rtol):
                    return {"outcome": "same"}
                return {"outcome": "wrong_result", "detail": "result differs from the valid call"}
            return {"outcome": "accepted"}
        detail = _describe(exc)
        if expect == cat.SAME:
            return {"outcome": "rejected_valid", "detail": detail}
        allowed = (ValueError, TypeError)
        if mut.startswith("damage:"):
            allowed = (ValueError, TypeError, FileNotFoundError)
        if not isinstance(exc, allowed):
            return {"outcome": "unclear_error", "detail": detail, "why": "class"}
        if not _names_in(str(exc), names, plain):
            others = [a.name for a in entry.args
                      if a.name != arg.name and not a.name.startswith("_")
                      and _names_in(str(exc), [a.name], False)]
            why = f"does not name {names[0]!r}" + (
                f", names {', '.join(map(repr, others))} instead" if others else "")
            return {"outcome": "unclear_error", "detail": detail, "why": why}
        return {"outcome": "clear_error", "detail": detail}


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _vm_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def worker_main() -> None:
    import faulthandler
    import resource
    import warnings

    proto = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # printing functions (verbose=True, grad_check_sparse) go nowhere
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the worker's lifetime
    faulthandler.enable()  # a crash leaves its traceback in the worker's stderr file
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, _alarm)

    import numpy as np  # noqa: F401

    import fastnn

    fastnn.set_num_threads(1)
    cat.build()
    vm = _vm_bytes()
    if vm:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = vm + MEMORY_HEADROOM
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    tmp_root = Path(tempfile.mkdtemp(prefix="fastnn-fuzz-"))
    os.chdir(tmp_root)
    executor = _Executor(tmp_root)
    proto.write(json.dumps({"ready": True, "tmp": str(tmp_root)}) + "\n")
    try:
        for line in sys.stdin:
            req = json.loads(line)
            entry = cat.by_name()[req["entry"]]
            configs = req["configs"]
            cases = case_list(entry, len(configs))
            for i in range(req["start"], len(cases)):
                c, path, mut, exp = cases[i]
                res = executor.run(entry.name, c, configs[c], path, mut, exp)
                proto.write(json.dumps({"i": i, **res}) + "\n")
            proto.write(json.dumps({"done": True}) + "\n")
    finally:
        _rmtree(tmp_root)


# ================================================================================ parent side


class Runner:
    """Feeds catalogue entries to a worker subprocess, restarting it after a crash or a hang."""

    def __init__(self, examples: int = EXAMPLES, soft_timeout: float = SOFT_TIMEOUT,
                 hard_timeout: float = HARD_TIMEOUT):
        self.examples = examples
        self.soft_timeout = soft_timeout
        self.hard_timeout = hard_timeout
        self.proc = None
        self.restarts = 0
        self.results: dict[str, list[dict]] = {}

    def _start(self):
        env = dict(os.environ)
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   FASTNN_NUM_THREADS="1", PYTHONFAULTHANDLER="1",
                   FASTNN_FUZZ_TIMEOUT=str(self.soft_timeout))
        root = str(HERE.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the worker's stderr
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env,
            cwd=tempfile.gettempdir())
        self.buf = b""
        line = self._readline(self.hard_timeout + 120)  # imports, catalogue
        if not line or not json.loads(line).get("ready"):
            self._kill()
            raise RuntimeError(f"the fuzz worker did not start: {self._stderr_tail(raw=True)}")
        self.worker_tmp = json.loads(line).get("tmp")

    def close(self):
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def _kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        self._remove_worker_tmp()

    def _remove_worker_tmp(self):
        """A killed or crashed worker leaves its scratch folder behind."""
        if getattr(self, "worker_tmp", None):
            _rmtree(Path(self.worker_tmp))
            self.worker_tmp = None

    def _readline(self, timeout: float):
        """A line from the worker, None on EOF, "" on timeout."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return ""
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return ""
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def _stderr_tail(self, raw: bool = False) -> str:
        try:
            self.stderr.seek(0)
            text = self.stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""
        if raw:
            return text[-2000:]
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        # the innermost frame of faulthandler's dump is the most useful line
        frames = [ln for ln in lines if ln.startswith("File ")]
        head = [ln for ln in lines if "Fatal Python error" in ln or ln.startswith("Segmentation")]
        return " | ".join((head[:1] + frames[:2]) or lines[-2:])[:300]

    def run(self, entry_name: str) -> list[dict]:
        entry = cat.by_name()[entry_name]
        configs = configs_for(entry, self.examples)
        cases = case_list(entry, len(configs))
        out: dict[int, dict] = {}
        start = 0
        while start < len(cases):
            if self.proc is None:
                self._start()
            req = {"entry": entry_name, "configs": configs, "start": start}
            try:
                self.proc.stdin.write((json.dumps(req) + "\n").encode())
                self.proc.stdin.flush()
            except BrokenPipeError:
                self._kill()
                self._start()
                continue
            while True:
                line = self._readline(self.hard_timeout)
                if line == "":  # hang in code the alarm cannot interrupt
                    self._kill()
                    out[start] = {"outcome": "hang",
                                  "detail": f"worker unresponsive for {self.hard_timeout:g} s: "
                                            f"{self._stderr_tail()}"}
                    start += 1
                    self.restarts += 1
                    break
                if line is None:  # the worker died: a crash of case `start`
                    code = self.proc.wait()
                    tail = self._stderr_tail()
                    self.proc = None
                    self._remove_worker_tmp()
                    out[start] = {"outcome": "crash", "detail": f"worker exit {code}: {tail}"}
                    start += 1
                    self.restarts += 1
                    break
                msg = json.loads(line)
                if msg.get("done"):
                    start = len(cases)
                    break
                out[msg["i"]] = {k: v for k, v in msg.items() if k != "i"}
                start = msg["i"] + 1
        results = []
        for i, (c, path, mut, exp) in enumerate(cases):
            r = out.get(i, {"outcome": "catalogue_bug", "detail": "no result"})
            if r["outcome"] == "n/a":
                continue
            results.append({"function": entry_name, "module": entry.module, "config": c,
                            "argument": path, "mutation": mut, "expect": exp, **r})
        self.results[entry_name] = results
        return results


# ================================================================================ reporting


def tally(results: list[dict]) -> collections.Counter:
    c = collections.Counter(r["outcome"] for r in results)
    c["cases"] = len(results)
    return c


def format_report(all_results: dict[str, list[dict]], per_function: bool = True,
                  failures: bool = True) -> str:
    rows = []
    flat = [r for res in all_results.values() for r in res]
    total = tally(flat)
    short = {"clear_error": "clear", "accepted": "acc", "same": "same",
             "unclear_error": "UNCLEAR", "silent_acceptance": "SILENT",
             "rejected_valid": "REJECT", "wrong_result": "WRONG", "crash": "CRASH",
             "hang": "HANG", "catalogue_bug": "CATBUG"}
    head = f"{'function':<62}" + "".join(f"{short.get(k, k):>8}" for k in COLUMNS)
    rows.append("fastnn public-API fuzz: counts per function (failures in capitals)")
    rows.append(head)
    if per_function:
        for name, res in all_results.items():
            t = tally(res)
            rows.append(f"{name:<62}" + "".join(f"{t.get(k, 0):>8}" for k in COLUMNS))
    modules: dict[str, list] = collections.defaultdict(list)
    for r in flat:
        modules[r["module"]].append(r)
    for module in sorted(modules):
        t = tally(modules[module])
        rows.append(f"{'module ' + module:<62}" + "".join(f"{t.get(k, 0):>8}" for k in COLUMNS))
    rows.append(f"{'TOTAL':<62}" + "".join(f"{total.get(k, 0):>8}" for k in COLUMNS))
    n_fail = sum(total.get(k, 0) for k in FAIL)
    why = collections.Counter(
        "wrong exception class" if r.get("why") == "class"
        else "names another argument instead" if "instead" in r.get("why", "")
        else "names no argument" for r in flat if r["outcome"] == "unclear_error")
    rows.append(f"cases run: {total['cases']}; passing: {total['cases'] - n_fail}; failing: {n_fail} "
                f"(unclear errors {total.get('unclear_error', 0)}, silent acceptances "
                f"{total.get('silent_acceptance', 0)}, rejected valid {total.get('rejected_valid', 0)}, "
                f"wrong results {total.get('wrong_result', 0)}, crashes {total.get('crash', 0)}, "
                f"hangs {total.get('hang', 0)}, catalogue bugs {total.get('catalogue_bug', 0)})")
    if why:
        rows.append("unclear errors: " + ", ".join(f"{k} {v}" for k, v in why.most_common()))
    if failures and n_fail:
        rows.append("")
        rows.append("failing cases, by module (function | argument | mutation -> outcome: detail);"
                    " identical (function, argument, mutation, outcome) over configurations merged")
        by_module: dict[str, dict] = collections.defaultdict(dict)
        for r in flat:
            if r["outcome"] in FAIL:
                k = (r["function"], r["argument"], r["mutation"], r["outcome"])
                by_module[r["module"]].setdefault(k, r)
        for module in sorted(by_module):
            rows.append(f"[{module}]")
            for (fn, arg, mut, outcome), r in by_module[module].items():
                rows.append(f"  {fn} | {arg} | {mut} -> {outcome}: {r.get('detail', '')[:160]}"
                            + (f" ({r['why']})" if r.get("why", "").startswith("does not") else ""))
    return "\n".join(rows)


def _problem(r: dict) -> str:
    if r["outcome"] != "unclear_error":
        return r["outcome"]
    why = r.get("why", "")
    if why == "class":
        return "unclear_error (" + r.get("detail", "").split(":")[0] + ")"
    return "unclear_error (" + why + ")"


def format_compact(all_results: dict[str, list[dict]]) -> str:
    """Failing cases grouped by module, function, argument and kind of problem, listing the
    mutations and one example message per group."""
    groups: dict[str, dict] = collections.defaultdict(dict)
    for res in all_results.values():
        for r in res:
            if r["outcome"] not in FAIL:
                continue
            k = (r["function"].replace("fastnn.", ""), r["argument"], _problem(r))
            g = groups[r["module"]].setdefault(k, {"mutations": [], "example": r.get("detail", "")})
            if r["mutation"] not in g["mutations"]:
                g["mutations"].append(r["mutation"])
    lines = []
    for module in sorted(groups):
        lines.append(f"[{module}]")
        for (fn, arg, problem), g in groups[module].items():
            lines.append(f"  {fn} | {arg} | {', '.join(g['mutations'])} -> {problem}; "
                         f"e.g. {g['example'][:110]}")
    return "\n".join(lines)


def format_failures(results: list[dict]) -> str:
    lines = []
    seen = set()
    for r in results:
        if r["outcome"] in FAIL:
            k = (r["argument"], r["mutation"], r["outcome"])
            if k in seen:
                continue
            seen.add(k)
            why = f" ({r['why']})" if r.get("why", "").startswith("does not") else ""
            lines.append(f"{r['argument']} | {r['mutation']} (expected {r['expect']}) -> "
                         f"{r['outcome']}: {r.get('detail', '')[:200]}{why}")
    return "\n".join(lines)


# ================================================================================ pytest


try:
    import pytest
except ImportError:  # script mode without pytest
    pytest = None

if pytest is not None and __name__ != "__main__":
    _ENTRY_NAMES = [e.name for e in cat.build()]

    class _ReportPlugin:
        def __init__(self, runner: Runner):
            self.runner = runner

        def pytest_terminal_summary(self, terminalreporter):
            if not self.runner.results:
                return
            terminalreporter.section("fastnn public-API fuzz")
            text = format_report(self.runner.results, per_function=True, failures=False)
            for line in text.splitlines():
                terminalreporter.write_line(line)
            out = os.environ.get("FASTNN_FUZZ_REPORT_JSON")
            if out:
                Path(out).write_text(json.dumps(self.runner.results, indent=1))

    @pytest.fixture(scope="module")
    def fuzz_runner(request):
        runner = Runner()
        request.config.pluginmanager.register(_ReportPlugin(runner), "fastnn-fuzz-report")
        yield runner
        runner.close()

    @pytest.mark.parametrize("function", _ENTRY_NAMES)
    def test_bad_input_gives_clear_errors(function, fuzz_runner):
        results = fuzz_runner.run(function)
        assert results, f"no cases ran for {function}"
        failing = [r for r in results if r["outcome"] in FAIL]
        assert not failing, (
            f"{len(failing)} of {len(results)} mutated calls of {function} failed "
            f"({dict(collections.Counter(r['outcome'] for r in failing))}):\n"
            f"{format_failures(failing)}"
        )

    def test_harness_records_crash_and_hang():
        """The harness itself: a segfault and two kinds of hang are recorded, the run goes on."""
        runner = Runner(examples=1, soft_timeout=1, hard_timeout=5)
        try:
            results = runner.run(cat.SELFTEST.name)
        finally:
            runner.close()
        got = {r["mutation"]: r["outcome"] for r in results}
        assert got["zero"] == "crash"  # SIGSEGV
        assert got["negative"] == "hang"  # Python-level: the worker's alarm
        assert got["huge"] == "hang"  # alarm blocked: the parent kills the worker
        assert got["None"] == "clear_error"
        assert got["fraction"] == "silent_acceptance"
        assert got["str"] == "unclear_error"  # a message not naming x
        assert got["np_int"] == "same"
        assert runner.restarts == 2

    def test_catalogue_covers_enough_cases():
        """The default run must execute at least 5,000 mutated cases (deterministically)."""
        n = sum(len(cat.cases(e)) * EXAMPLES for e in cat.build())
        assert n >= 5000, n
        e = cat.by_name()["fastnn.layers.affine_forward"]
        assert configs_for(e) == configs_for(e)  # derandomized


# ================================================================================ script


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report", action="store_true", help="run everything, print the report")
    parser.add_argument("--only", default="", help="only functions whose name contains this")
    parser.add_argument("--examples", type=int, default=EXAMPLES,
                        help="configurations per function")
    parser.add_argument("--json", default="", help="also write all results to this JSON file")
    parser.add_argument("--full", action="store_true",
                        help="list every failing (function, argument, mutation) separately")
    args = parser.parse_args(argv)
    if args.worker:
        worker_main()
        return 0
    runner = Runner(args.examples)
    t0 = time.monotonic()
    try:
        for entry in cat.build():
            if args.only and args.only not in entry.name:
                continue
            runner.run(entry.name)
    finally:
        runner.close()
    print(format_report(runner.results, failures=args.full))
    if not args.full:
        print("\nfailing cases, grouped (module / function | argument | mutations -> problem):")
        print(format_compact(runner.results))
    print(f"\n{time.monotonic() - t0:.1f} s, worker restarts: {runner.restarts}")
    if args.json:
        Path(args.json).write_text(json.dumps(runner.results, indent=1))
    flat = [r for res in runner.results.values() for r in res]
    return 1 if any(r["outcome"] in FAIL for r in flat) else 0


if __name__ == "__main__":
    sys.exit(main())
