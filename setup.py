"""Build the compiled core: every ``csrc/<name>.pyx`` becomes ``fastnn._ext.<name>``.

OpenMP is probed with a tiny test compile; where it is missing (for example Apple clang)
the kernels are built without it and their ``prange`` loops run serially.

Environment variables
---------------------
FASTNN_EXTENSIONS   comma-separated module names to build (default: all), handy while developing
FASTNN_NO_OPENMP    set to 1 to build without OpenMP even where it is available
FASTNN_CFLAGS       extra compiler flags, e.g. ``-march=native`` for a machine-tuned local build
FASTNN_DEBUG        set to 1 to keep debug information and symbols (for perf, gdb, py-spy --native)

Release builds (the default) compile with ``-g0`` and, on Linux, strip at link time (``-s``):
Python's own CFLAGS carry ``-g``, which made the five modules 7 MB instead of well under 1 MB.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent.resolve()
CSRC = "csrc"

OPENMP_PROBE = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


def _compiler() -> str:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return cc.split()[0]


def openmp_flags() -> tuple[list[str], list[str]]:
    """Return (compile_args, link_args) for OpenMP, or empty lists when it is unavailable."""
    if os.environ.get("FASTNN_NO_OPENMP") == "1" or sys.platform == "win32":
        return [], []
    cc = _compiler()
    if shutil.which(cc) is None:
        return [], []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(OPENMP_PROBE)
        try:
            result = subprocess.run(
                [cc, "-fopenmp", str(src), "-o", str(Path(tmp) / "probe")],
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return [], []
    if result.returncode != 0:
        print("fastnn: OpenMP not available, building serial kernels", file=sys.stderr)
        return [], []
    return ["-fopenmp"], ["-fopenmp"]


def debug_flags() -> tuple[list[str], list[str]]:
    """Return (compile_args, link_args): no debug information and stripped symbols unless
    FASTNN_DEBUG=1.  ``-g0`` comes after Python's ``-g`` in the command line, so it wins."""
    if sys.platform == "win32":
        return [], []
    if os.environ.get("FASTNN_DEBUG") == "1":
        return ["-g"], []
    # Apple's linker has no -s; its wheels are stripped by the packaging tools instead.
    link = ["-s"] if sys.platform.startswith("linux") else []
    return ["-g0"], link


def extensions() -> list[Extension]:
    omp_compile, omp_link = openmp_flags()
    debug_compile, debug_link = debug_flags()
    extra = os.environ.get("FASTNN_CFLAGS", "").split()
    wanted = {n.strip() for n in os.environ.get("FASTNN_EXTENSIONS", "").split(",") if n.strip()}
    # FASTNN_CFLAGS comes last so that it can override anything before it.
    compile_args = ["-O3", "-fno-math-errno", *debug_compile, *omp_compile, *extra]
    link_args = [*omp_link, *debug_link]
    if sys.platform == "win32":
        compile_args = ["/O2", *extra]
    exts = []
    for pyx in sorted(Path(CSRC).glob("*.pyx")):
        name = pyx.stem
        if wanted and name not in wanted:
            continue
        exts.append(
            Extension(
                f"fastnn._ext.{name}",
                [str(pyx)],
                include_dirs=[np.get_include(), CSRC],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=compile_args,
                extra_link_args=link_args,
            )
        )
    return exts


setup(
    ext_modules=cythonize(
        extensions(),
        language_level=3,
        include_path=[CSRC],   # csrc/sgemm.pxd, cimported by the modules sharing the product
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
        build_dir="build/cython",
    ),
)
