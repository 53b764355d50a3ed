"""Page faults, system time and wall time of a ThreeLayerConvNet training step, fastnn and
PyTorch alternately in one process (batch 64, Adam, 2 threads each; torch optional).

Run it as is (fastnn's allocator settings, see fastnn/_malloc.py) and with
``FASTNN_MALLOC_TUNING=0`` (glibc's defaults)::

    python benchmarks/step_faults.py
    FASTNN_MALLOC_TUNING=0 python benchmarks/step_faults.py
"""

from __future__ import annotations

import resource
import time

import fastnn  # first: its thread and allocator settings apply to what follows

from fastnn.bench.cnn import fastnn_step


def measure(step, calls: int = 40) -> str:
    """Quartiles of the wall time and the faults / CPU time per call after one warm-up."""
    step()
    times = []
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(calls):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    after = resource.getrusage(resource.RUSAGE_SELF)
    times.sort()
    q = [times[0], times[calls // 4], times[calls // 2], times[3 * calls // 4], times[-1]]
    return ("ms min %.1f p25 %.1f median %.1f p75 %.1f max %.1f | minor faults/step %d, user "
            "%.1f ms/step, sys %.1f ms/step" % (
                *q, (after.ru_minflt - before.ru_minflt) / calls,
                (after.ru_utime - before.ru_utime) / calls * 1e3,
                (after.ru_stime - before.ru_stime) / calls * 1e3))


def main() -> None:
    fastnn.set_num_threads(2)
    steps = {"fastnn": fastnn_step()}
    try:
        import torch

        from fastnn.bench.cnn import torch_step

        torch.set_num_threads(2)
        steps["torch"] = torch_step()
    except ImportError:
        pass
    print(f"malloc: {fastnn.config_info()['malloc']}")
    for _ in range(2):
        for name, step in steps.items():
            print(f"{name:7s} {measure(step)}")


if __name__ == "__main__":
    main()
