"""Keep large freed blocks in the process heap instead of returning them to the OS (glibc).

A training step allocates and frees the same few-megabyte arrays (activations, gradients,
workspaces) every minibatch. glibc maps each block above its mmap threshold fresh from the OS
and unmaps it on free, so every step touched new pages: ~3,800 page faults and 12.8 ms of system
time per ThreeLayerConvNet step on the project's 2-core machine (see benchmarks/README.md). With
the mmap threshold at its 32 MB maximum, a 256 MB trim threshold and a 64 MB top pad, the
freed blocks are reused and the faults disappear.

Applied once, at ``import fastnn``, only on Linux with glibc, and not when the user set any of
glibc's ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or
``FASTNN_MALLOC_TUNING=0``. The cost: up to 256 MB of freed memory may stay with the process.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["MALLOC_SETTINGS", "tune_malloc"]

# mallopt parameter numbers from glibc's <malloc.h>, and the values set
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
MALLOC_SETTINGS = {
    "M_MMAP_THRESHOLD": (_M_MMAP_THRESHOLD, 32 << 20),
    "M_TRIM_THRESHOLD": (_M_TRIM_THRESHOLD, 256 << 20),
    "M_TOP_PAD": (_M_TOP_PAD, 64 << 20),
}
_USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

#: What :func:`tune_malloc` did: "tuned", or why not (reported by ``fastnn.config_info``)
STATUS = "not applied"


def tune_malloc() -> str:
    """Apply :data:`MALLOC_SETTINGS` with glibc's ``mallopt`` where allowed; returns (and keeps
    in :data:`STATUS`) "tuned" or the reason it was not."""
    global STATUS
    if os.environ.get("FASTNN_MALLOC_TUNING", "1") == "0":
        STATUS = "off (FASTNN_MALLOC_TUNING=0)"
    elif any(name in os.environ for name in _USER_VARIABLES):
        STATUS = "left to the user's MALLOC_* settings"
    elif not sys.platform.startswith("linux"):
        STATUS = "not glibc"
    else:
        try:
            mallopt = ctypes.CDLL("libc.so.6").mallopt
        except (OSError, AttributeError):   # musl and other C libraries
            STATUS = "not glibc"
        else:
            mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
            mallopt.restype = ctypes.c_int
            ok = all(mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS.values())
            STATUS = "tuned" if ok else "mallopt refused"
    return STATUS
