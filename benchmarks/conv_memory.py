"""Peak memory of a convolution forward+backward (including dx) with a batch of 1024.

x (1024, 3, 32, 32), w (32, 3, 7, 7), pad 3, float32, through ``fastnn.layers.conv_forward_fast``
and ``conv_backward_fast``. The compiled kernels im2col a chunk of images at a time into a fixed
workspace, so the peak is the arrays themselves (x, out, dout, dx: about 300 MB) plus the
workspaces, instead of the 600 MB column matrix of the whole batch (and its gradient).

Run: ``python benchmarks/conv_memory.py [--batch N] [--impl compiled|vectorized]``; prints the
peak resident set size (``resource.getrusage``) in MB.
"""

from __future__ import annotations

import argparse
import resource
import sys

import numpy as np

from fastnn.bench.conv import conv_problem
from fastnn.kernels import conv


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss: KiB on Linux, bytes on
    macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--impl", default=None, choices=["compiled", "vectorized"])
    args = parser.parse_args(argv)
    x, w, b, dout = conv_problem((args.batch, 3, 32, 32), (32, 3, 7, 7), 3)
    before = peak_rss_mb()
    out = conv.conv_forward(x, w, b, 1, 3, impl=args.impl)
    dx, dw, _ = conv.conv_backward(dout, x, w, 1, 3, impl=args.impl)
    assert out.shape == dout.shape and dx.shape == x.shape and np.isfinite(dw).all()
    peak = peak_rss_mb()
    print(f"conv forward+backward x{x.shape} w{w.shape} pad 3 float32 "
          f"(impl={args.impl or conv.CONV_FORWARD.default}): peak RSS {peak:.0f} MB "
          f"(inputs and dout allocated: {before:.0f} MB)")
    return peak


if __name__ == "__main__":
    main()
