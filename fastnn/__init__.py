"""fastnn: the CS231n toolkit for image classification and sequence models, made fast.

The compiled core (``csrc/`` -> ``fastnn._ext``) is reached through ``fastnn.kernels``; models,
layers, optimisers and the Solver are plain Python on top of it.
"""

from __future__ import annotations

import os
import sys

# Idle OpenMP workers spin briefly (GOMP_SPINCOUNT iterations, some microseconds: enough for the
# next region of the same kernel) and then sleep, so they do not hold the cores the next OpenBLAS
# product needs; unless the user chose a policy (see benchmarks/README.md). libgomp reads the
# variables once, when the first compiled module loads, so this runs first.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
# OpenBLAS's workers spin 2**28 cycles (about 0.1 s) after every threaded product by default,
# holding the cores the next compiled kernel's OpenMP threads need; 2**16 cycles (tens of
# microseconds) instead. Read when NumPy loads OpenBLAS: effective when fastnn is imported first
# (the fastnn command, the benchmarks), else set it in the environment.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

from fastnn._malloc import tune_malloc

# freed activation-sized blocks stay in the heap: no page faults every minibatch (glibc only)
tune_malloc()

from typing import TextIO

from fastnn._config import get_num_threads, max_num_threads, set_num_threads
from fastnn._version import __version__

__all__ = [
    "__version__",
    "config_info",
    "get_num_threads",
    "max_num_threads",
    "set_num_threads",
    "show_config",
]


def _blas_info() -> str:
    import numpy as np

    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        name = blas.get("name", "unknown")
        version = blas.get("version", "")
        return f"{name} {version}".strip()
    except (TypeError, ValueError, AttributeError):  # older NumPy without mode="dicts"
        return "unknown (see numpy.show_config())"


def config_info() -> dict[str, object]:
    """Build and runtime facts (what :func:`show_config` prints).

    Returns
    -------
    dict
        ``fastnn``, ``python``, ``platform``, ``numpy`` and ``numpy BLAS`` versions, the
        ``compiler``, ``OpenMP`` (on with its version, or off), ``threads`` (the current count),
        ``max threads`` (:func:`max_num_threads`) and ``malloc`` (whether
        :mod:`fastnn._malloc` tuned glibc's allocator).
    """
    import platform

    import numpy as np

    from fastnn import _malloc
    from fastnn.kernels import missing_extensions

    try:
        from fastnn._ext import _buildinfo
    except ImportError:  # a source tree without a build: everything runs on NumPy
        compiler, openmp = "not built", "off (not built)"
    else:
        compiler = _buildinfo.compiler()
        openmp = (f"on (version {_buildinfo.openmp_version()})" if _buildinfo.openmp_enabled()
                  else "off")
    return {
        "fastnn": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "numpy BLAS": _blas_info(),
        "compiler": compiler,
        "OpenMP": openmp,
        "missing compiled modules": ", ".join(missing_extensions()) or "none",
        "threads": get_num_threads(),
        "max threads": max_num_threads(),
        "malloc": _malloc.STATUS,
    }


def show_config(file: TextIO | None = None) -> None:
    """Print version, compiler, OpenMP on/off, thread count and the BLAS NumPy uses.

    Parameters
    ----------
    file : text stream, optional
        Where to print (default ``sys.stdout``).
    """
    out = file if file is not None else sys.stdout
    info = config_info()
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}} : {value}", file=out)
