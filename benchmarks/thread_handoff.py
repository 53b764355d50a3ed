"""OpenMP kernels and OpenBLAS products in turn: how long the idle threads of one pool spin.

A ConvNet step alternates fastnn's OpenMP kernels (a convolution) with BLAS products (a float64
affine layer here; float32 ones whose width is a multiple of 32 run on fastnn's own product). Each
pool's idle workers spin before sleeping, holding a core the other pool needs. This script times
a convolution followed by a BLAS product (2 threads each) in child processes that differ only in
``OPENBLAS_THREAD_TIMEOUT`` (OpenBLAS workers spin 2**value cycles; fastnn's default is 16,
OpenBLAS's own 28)::

    python benchmarks/thread_handoff.py
"""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = r"""
import time
import fastnn
import numpy as np
from fastnn.kernels import conv
fastnn.set_num_threads(2)
rng = np.random.default_rng(0)
xc = rng.standard_normal((64, 64, 16, 16)).astype(np.float32)
wc = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
bc = np.zeros(64, np.float32)
x = rng.standard_normal((128, 3136))
w = rng.standard_normal((3136, 128))

def median_ms(f, n=30):
    f()
    times = []
    for _ in range(n):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return sorted(times)[n // 2] * 1e3

both = median_ms(lambda: (conv.conv_forward(xc, wc, bc, 1, 1), x @ w))
product = median_ms(lambda: x @ w)
convolution = median_ms(lambda: conv.conv_forward(xc, wc, bc, 1, 1))
print(f"{both:8.2f} {convolution:8.2f} {product:8.2f}")
"""


def main() -> None:
    print("OPENBLAS_THREAD_TIMEOUT  conv+product ms  conv ms  product ms")
    for timeout in ("16", "28"):
        env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT=timeout, OPENBLAS_NUM_THREADS="2")
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                             text=True, check=True)
        print(f"{timeout:>23}  {out.stdout.strip()}")


if __name__ == "__main__":
    main()
