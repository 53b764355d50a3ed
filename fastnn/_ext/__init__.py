"""Compiled modules built from ``csrc/*.pyx`` (one per kernel family). Private: use ``fastnn.kernels``."""
