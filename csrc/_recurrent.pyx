# cython: language_level=3
"""Fused recurrent cells: the LSTM and vanilla-RNN element-wise work of one time step.

A step of an LSTM is one matrix product (``prev_h @ Wh``, on BLAS) plus a dozen element-wise
operations over the (N, 4H) pre-activations: three sigmoids, two tanh, the cell update and the
hidden output. NumPy runs each of them as its own pass with its own temporary; these kernels do
all of them in ONE pass per row (threads over rows), forward and backward:

- forward: ``a = a_in (+ addend) (+ bias)``; ``i, f, o = sigmoid(a[:, :3H])``,
  ``g = tanh(a[:, 3H:])``; ``next_c = f * prev_c + i * g``; ``next_h = o * tanh(next_c)``;
  stores the activated gates and ``tanh(next_c)`` (all that backward needs);
- backward: ``dh = dnext_h (+ addend)``; ``dc = dnext_c + dh * o * (1 - tanh_c**2)``;
  ``da = [dc*g*i*(1-i), dc*prev_c*f*(1-f), dh*tanh_c*o*(1-o), dc*i*(1-g**2)]``;
  ``dprev_c = dc * f``.

The optional ``addend``/``bias`` let the whole-sequence code add ``prev_h @ Wh`` and ``b`` to the
precomputed input projection inside the same pass (no extra pass over the (N, 4H) block). Outputs
may alias inputs element for element (each element is read before it is written): the sequence
code activates the gates in place and updates the carried ``dc`` in place.

Sigmoid is the stable form (``exp`` of a non-positive number only) and tanh is computed from
``expm1(-2|x|)`` (no cancellation near 0), both with the branch-free exp below so the loops
vectorise.
The wrapper (``fastnn.kernels.recurrent``) validates everything and allocates every output; these
entry points still refuse mismatched shapes, empty arrays and thread counts below 1 before
releasing the GIL.
"""

from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

# The row kernels (C, picked by CPU feature at load time) are in recurrent_cells.h.
cdef extern from "recurrent_cells.h":
    void fnn_lstm_forward_row_f(const float*, const float*, const float*, const float*, float*,
                                float*, float*, float*, Py_ssize_t) noexcept nogil
    void fnn_lstm_forward_row_d(const double*, const double*, const double*, const double*,
                                double*, double*, double*, double*, Py_ssize_t) noexcept nogil
    void fnn_lstm_backward_row_f(const float*, const float*, const float*, const float*,
                                 const float*, const float*, float*, float*,
                                 Py_ssize_t) noexcept nogil
    void fnn_lstm_backward_row_d(const double*, const double*, const double*, const double*,
                                 const double*, const double*, double*, double*,
                                 Py_ssize_t) noexcept nogil
    void fnn_rnn_forward_row_f(const float*, const float*, const float*, float*,
                               Py_ssize_t) noexcept nogil
    void fnn_rnn_forward_row_d(const double*, const double*, const double*, double*,
                               Py_ssize_t) noexcept nogil
    void fnn_rnn_backward_row_f(const float*, const float*, const float*, float*,
                                Py_ssize_t) noexcept nogil
    void fnn_rnn_backward_row_d(const double*, const double*, const double*, double*,
                                Py_ssize_t) noexcept nogil
    void fnn_add_rows_fd(const float*, Py_ssize_t, Py_ssize_t, double*,
                         Py_ssize_t) noexcept nogil

# The float32 AVX-512 product (shared with fastnn._ext._gemm, whose sgemm/sgemm_jobs are the
# Python-callable products); the step loops below call it from C.
from sgemm cimport (
    fnn_sgemm,
    fnn_sgemm_available,
    fnn_sgemm_long,
    fnn_sgemm_pack_row,
    fnn_sgemm_bpanels,
    fnn_sgemm_pair,
)
from transpose cimport fnn_transpose   # csrc/transpose.h, shared with _gemm.transpose

ctypedef fused floating:
    float
    double


cdef int _check_shapes(Py_ssize_t n, Py_ssize_t h, int num_threads, arrays) except -1:
    """Every (rows, cols) shape in ``arrays`` equals its wanted shape; N, H >= 1; threads >= 1."""
    if n < 1 or h < 1:
        raise ValueError(f"arrays must have N >= 1 rows and H >= 1 hidden units, got ({n}, {h})")
    for name, (shape, want) in arrays.items():
        if shape[0] != want[0] or shape[1] != want[1]:
            raise ValueError(f"{name} must have shape {want}, got ({shape[0]}, {shape[1]})")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return 0


# ------------------------------------------------------------------------------ row kernels
# (the loops are the C functions above; these pick the dtype's version)
cdef inline void _lstm_forward_row(
    const floating* a, const floating* add, const floating* bias, const floating* prev_c,
    floating* gates, floating* next_c, floating* tanh_c, floating* next_h, Py_ssize_t h,
) noexcept nogil:
    """One example: pre-activations a (+ add) (+ bias) of length 4H -> gates, c, tanh(c), h."""
    if floating is float:
        fnn_lstm_forward_row_f(a, add, bias, prev_c, gates, next_c, tanh_c, next_h, h)
    else:
        fnn_lstm_forward_row_d(a, add, bias, prev_c, gates, next_c, tanh_c, next_h, h)


cdef inline void _lstm_backward_row(
    const floating* dnext_h, const floating* add, const floating* dnext_c,
    const floating* gates, const floating* tanh_c, const floating* prev_c,
    floating* da, floating* dprev_c, Py_ssize_t h,
) noexcept nogil:
    """One example: (dnext_h (+ add), dnext_c) -> da (4H) and dprev_c (H)."""
    if floating is float:
        fnn_lstm_backward_row_f(dnext_h, add, dnext_c, gates, tanh_c, prev_c, da, dprev_c, h)
    else:
        fnn_lstm_backward_row_d(dnext_h, add, dnext_c, gates, tanh_c, prev_c, da, dprev_c, h)


cdef inline void _rnn_forward_row(
    const floating* a, const floating* add, const floating* bias, floating* next_h, Py_ssize_t h,
) noexcept nogil:
    """next_h = tanh(a (+ add) (+ bias))"""
    if floating is float:
        fnn_rnn_forward_row_f(a, add, bias, next_h, h)
    else:
        fnn_rnn_forward_row_d(a, add, bias, next_h, h)


cdef inline void _rnn_backward_row(
    const floating* dnext_h, const floating* add, const floating* next_h, floating* da,
    Py_ssize_t h,
) noexcept nogil:
    """da = (dnext_h (+ add)) * (1 - next_h**2)"""
    if floating is float:
        fnn_rnn_backward_row_f(dnext_h, add, next_h, da, h)
    else:
        fnn_rnn_backward_row_d(dnext_h, add, next_h, da, h)


# -------------------------------------------------------------------------- entry points
def lstm_cell_forward(
    const floating[:, ::1] a,         # IN  (N, 4H) pre-activations (input projection)
    const floating[:, ::1] addend,    # IN  (N, 4H) or None: added to a (prev_h @ Wh)
    const floating[::1] bias,         # IN  (4H,) or None: added to a
    const floating[:, ::1] prev_c,    # IN  (N, H)
    floating[:, ::1] gates,           # OUT (N, 4H) activated i, f, o, g (may alias a)
    floating[:, ::1] next_c,          # OUT (N, H)
    floating[:, ::1] tanh_c,          # OUT (N, H) tanh(next_c)
    floating[:, ::1] next_h,          # OUT (N, H)
    int num_threads,
):
    """Fused LSTM cell forward (gate order i, f, o, g), threads over rows."""
    cdef Py_ssize_t n = prev_c.shape[0], h = prev_c.shape[1], i
    shapes = {"a": (a.shape, (n, 4 * h)), "gates": (gates.shape, (n, 4 * h)),
              "next_c": (next_c.shape, (n, h)), "tanh_c": (tanh_c.shape, (n, h)),
              "next_h": (next_h.shape, (n, h))}
    if addend is not None:
        shapes["addend"] = (addend.shape, (n, 4 * h))
    if bias is not None:
        shapes["bias"] = ((1, bias.shape[0]), (1, 4 * h))
    _check_shapes(n, h, num_threads, shapes)
    cdef const floating* add = NULL
    cdef const floating* b = NULL
    cdef Py_ssize_t add_stride = 0
    if addend is not None:
        add = &addend[0, 0]
        add_stride = 4 * h
    if bias is not None:
        b = &bias[0]
    with nogil, parallel(num_threads=num_threads):
        for i in prange(n, schedule="static"):
            _lstm_forward_row(&a[i, 0], (add + i * add_stride) if add != NULL else NULL, b,
                              &prev_c[i, 0], &gates[i, 0], &next_c[i, 0], &tanh_c[i, 0],
                              &next_h[i, 0], h)


def lstm_cell_backward(
    const floating[:, ::1] dnext_h,   # IN  (N, H)
    const floating[:, ::1] addend,    # IN  (N, H) or None: added to dnext_h (carried gradient)
    const floating[:, ::1] dnext_c,   # IN  (N, H)
    const floating[:, ::1] gates,     # IN  (N, 4H) activated gates from the forward
    const floating[:, ::1] tanh_c,    # IN  (N, H)
    const floating[:, ::1] prev_c,    # IN  (N, H)
    floating[:, ::1] da,              # OUT (N, 4H)
    floating[:, ::1] dprev_c,         # OUT (N, H) (may alias dnext_c)
    int num_threads,
):
    """Fused LSTM cell backward: da and dprev_c in one pass, threads over rows."""
    cdef Py_ssize_t n = dnext_h.shape[0], h = dnext_h.shape[1], i
    shapes = {"dnext_c": (dnext_c.shape, (n, h)), "gates": (gates.shape, (n, 4 * h)),
              "tanh_c": (tanh_c.shape, (n, h)), "prev_c": (prev_c.shape, (n, h)),
              "da": (da.shape, (n, 4 * h)), "dprev_c": (dprev_c.shape, (n, h))}
    if addend is not None:
        shapes["addend"] = (addend.shape, (n, h))
    _check_shapes(n, h, num_threads, shapes)
    cdef const floating* add = NULL
    if addend is not None:
        add = &addend[0, 0]
    with nogil, parallel(num_threads=num_threads):
        for i in prange(n, schedule="static"):
            _lstm_backward_row(&dnext_h[i, 0], (add + i * h) if add != NULL else NULL,
                               &dnext_c[i, 0], &gates[i, 0], &tanh_c[i, 0], &prev_c[i, 0],
                               &da[i, 0], &dprev_c[i, 0], h)


def rnn_cell_forward(
    const floating[:, ::1] a,         # IN  (N, H) pre-activations
    const floating[:, ::1] addend,    # IN  (N, H) or None
    const floating[::1] bias,         # IN  (H,) or None
    floating[:, ::1] next_h,          # OUT (N, H) tanh(a + addend + bias) (may alias a)
    int num_threads,
):
    """Fused vanilla-RNN cell forward, threads over rows."""
    cdef Py_ssize_t n = a.shape[0], h = a.shape[1], i
    shapes = {"next_h": (next_h.shape, (n, h))}
    if addend is not None:
        shapes["addend"] = (addend.shape, (n, h))
    if bias is not None:
        shapes["bias"] = ((1, bias.shape[0]), (1, h))
    _check_shapes(n, h, num_threads, shapes)
    cdef const floating* add = NULL
    cdef const floating* b = NULL
    if addend is not None:
        add = &addend[0, 0]
    if bias is not None:
        b = &bias[0]
    with nogil, parallel(num_threads=num_threads):
        for i in prange(n, schedule="static"):
            _rnn_forward_row(&a[i, 0], (add + i * h) if add != NULL else NULL, b,
                             &next_h[i, 0], h)


def rnn_cell_backward(
    const floating[:, ::1] dnext_h,   # IN  (N, H)
    const floating[:, ::1] addend,    # IN  (N, H) or None: added to dnext_h
    const floating[:, ::1] next_h,    # IN  (N, H) forward output
    floating[:, ::1] da,              # OUT (N, H)
    int num_threads,
):
    """Fused vanilla-RNN cell backward: da = (dnext_h + addend) * (1 - next_h**2)."""
    cdef Py_ssize_t n = dnext_h.shape[0], h = dnext_h.shape[1], i
    shapes = {"next_h": (next_h.shape, (n, h)), "da": (da.shape, (n, h))}
    if addend is not None:
        shapes["addend"] = (addend.shape, (n, h))
    _check_shapes(n, h, num_threads, shapes)
    cdef const floating* add = NULL
    if addend is not None:
        add = &addend[0, 0]
    with nogil, parallel(num_threads=num_threads):
        for i in prange(n, schedule="static"):
            _rnn_backward_row(&dnext_h[i, 0], (add + i * h) if add != NULL else NULL,
                              &next_h[i, 0], &da[i, 0], h)


# --------------------------------------------------------------------- the float32 product
SGEMM_AVAILABLE = bool(fnn_sgemm_available())
SGEMM_COLUMNS = 32   # the step loops' widths must be multiples of this (as in _gemm)
cdef enum:
    SGEMM_NR = 32    # the same, for C code: the width of a packed weight panel
    SGEMM_MR = 12    # the rows of a packed tile of A (FNN_GEMM_MR)


# ------------------------------------------------------- whole LSTM step loops (float32)
# The step loop of a sequence in one call: each thread owns a block of batch rows for all T
# steps (examples never interact, so there is no synchronisation between steps), with the
# products on the compiled kernel above: no Python, no GIL and no BLAS thread wake-ups per step.
cdef int _check_steps(Py_ssize_t t, Py_ssize_t n, Py_ssize_t h, Py_ssize_t width,
                      int num_threads, arrays) except -1:
    if not SGEMM_AVAILABLE:
        raise RuntimeError("the compiled step loops need a CPU with AVX-512F (use BLAS)")
    if t < 1 or n < 1 or h < 1 or width % SGEMM_COLUMNS:
        raise ValueError(f"step loops need T, N, H >= 1 and a product width that is a multiple "
                         f"of {SGEMM_COLUMNS}, got T={t}, N={n}, H={h}, width={width}")
    for name, (shape, want) in arrays.items():
        if tuple(shape[:len(want)]) != want:
            raise ValueError(f"{name} must have shape {want}, got {tuple(shape[:len(want)])}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return 0


def lstm_steps_forward(
    float[:, :, ::1] gates not None,  # IN/OUT (T, N, 4H): projection in (without x),
                                      #     activated gates out
    const float[:, ::1] Wh not None,  # IN  (H, 4H)
    const float[::1] bias not None,   # IN  (4H,)
    float[:, :, ::1] hs not None,     # IN/OUT (T+1, N, H): hs[0] = h0 in, every step's state out
    float[:, :, ::1] cs not None,     # IN/OUT (T+1, N, H): cs[0] = c0 in
    float[:, :, ::1] tanh_c not None,  # OUT (T, N, H)
    int num_threads,
    const float[:, :, ::1] x=None,    # IN  (N, T, D) or None: the projection done here
    const float[:, ::1] Wx=None,      # IN  (D, 4H) with x
    float[:, :, ::1] out=None,        # OUT (N, T, H) or None: every step's state, batch-major
):
    """Every step of an LSTM forward: ``gates[t] += hs[t] @ Wh`` then the fused cell; threads
    over blocks of rows (4H a multiple of SGEMM_COLUMNS). With ``x`` and ``Wx`` the step's
    products are ``gates[t] = x_t @ Wx`` then ``gates[t] += hs[t] @ Wh`` instead (``gates`` is
    then output only): the input projection inside the step, both operands read in place, with
    no pass of its own writing and re-reading the (T, N, 4H) gates. With ``out`` each thread
    also copies its new states into the batch-major output while they are in cache (no serial
    transposing copy after the loop)."""
    cdef Py_ssize_t t_len = gates.shape[0], n = gates.shape[1], h = Wh.shape[0]
    cdef Py_ssize_t part, parts, r0, r1, t, i, p, w = 4 * h, d = 0, kk
    cdef int failed = 0, bad, project = x is not None, emit = out is not None
    shapes = {
        "gates": (gates.shape, (t_len, n, w)), "Wh": (Wh.shape, (h, w)),
        "bias": (bias.shape, (w,)), "hs": (hs.shape, (t_len + 1, n, h)),
        "cs": (cs.shape, (t_len + 1, n, h)), "tanh_c": (tanh_c.shape, (t_len, n, h))}
    if project:
        if Wx is None:
            raise ValueError("Wx must be given with x")
        d = x.shape[2]
        if d < 1:
            raise ValueError(f"x must have D >= 1 features, got {d}")
        shapes["x"] = (x.shape, (n, t_len, d))
        shapes["Wx"] = (Wx.shape, (d, w))
    if emit:
        shapes["out"] = (out.shape, (n, t_len, h))
    _check_steps(t_len, n, h, w, num_threads, shapes)
    parts = num_threads if num_threads < n else n
    kk = d + h
    # Wx and Wh as 32-column panels, each contiguous: every step's products stream them in
    # order (rows 4H floats apart made every panel row fall in the same cache sets)
    cdef Py_ssize_t q, panels = w // SGEMM_COLUMNS
    cdef float* w_p = <float*> malloc(kk * w * sizeof(float))
    cdef float* wh_p
    if w_p == NULL:
        raise MemoryError("lstm_steps_forward could not allocate its weight panels")
    wh_p = w_p + d * w   # Wx's panels first (none without x), then Wh's
    with nogil, parallel(num_threads=parts):
        for q in prange(panels, schedule="static"):
            for p in range(d):
                memcpy(w_p + (q * d + p) * SGEMM_NR, &Wx[p, q * SGEMM_NR],
                       SGEMM_NR * sizeof(float))
            for p in range(h):
                memcpy(wh_p + (q * h + p) * SGEMM_NR, &Wh[p, q * SGEMM_NR],
                       SGEMM_NR * sizeof(float))
        # (the end of that loop is a barrier: every panel is packed before any product)
        for part in prange(parts, schedule="static"):
            r0 = n * part // parts
            r1 = n * (part + 1) // parts
            bad = 0   # this thread's allocation failure (then it stops; others run on)
            for t in range(t_len):
                # x_t @ Wx then += h_{t-1} @ Wh, both A read in place (x's rows T*D apart):
                # no copy of [x_t, h_{t-1}] per step
                if project:
                    bad = fnn_sgemm_bpanels(r1 - r0, w, d, &x[r0, t, 0], t_len * d, 1, w_p,
                                            &gates[t, r0, 0], w, 0) != 0
                if not bad:
                    bad = fnn_sgemm_bpanels(r1 - r0, w, h, &hs[t, r0, 0], h, 1, wh_p,
                                            &gates[t, r0, 0], w, 1) != 0
                if bad:
                    break
                for i in range(r0, r1):
                    fnn_lstm_forward_row_f(&gates[t, i, 0], NULL, &bias[0], &cs[t, i, 0],
                                           &gates[t, i, 0], &cs[t + 1, i, 0], &tanh_c[t, i, 0],
                                           &hs[t + 1, i, 0], h)
                    if emit:
                        memcpy(&out[i, t, 0], &hs[t + 1, i, 0], h * sizeof(float))
            failed += bad
    free(w_p)
    if failed:
        raise MemoryError("lstm_steps_forward could not allocate a packing buffer")


cdef Py_ssize_t _row_floats(str name, Py_ssize_t item, Py_ssize_t row,
                            Py_ssize_t cols) except -1:
    """Floats from one row of a float32 view to the next, after checking that its rows are
    contiguous (item stride 4) and at least ``cols`` floats apart."""
    cdef Py_ssize_t size = sizeof(float)   # signed: a negative stride must fail below
    if item != size or row % size or row < cols * size:
        raise ValueError(f"{name}'s rows must be contiguous float32, at least {cols} floats "
                         f"apart (an array or a view of a wider one), got strides ({row}, "
                         f"{item})")
    return row // sizeof(float)


def lstm_steps_backward(
    const float[:, :, :] dh not None,  # IN  (T, N, H) upstream gradient; rows contiguous (a
                                       #     transposed view of a batch-major array is fine)
    float[:, :] Wh_t not None,         # IN  (4H, H) Wh transposed (OUT with Wh), rows
                                       #     contiguous (a view of (4H, H + pad) too)
    const float[:, :, ::1] gates not None,     # IN  (T, N, 4H)
    const float[:, :, ::1] tanh_c not None,    # IN  (T, N, H)
    const float[:, :, ::1] cs not None,        # IN  (T+1, N, H)
    float[:, :, :] da not None,                # OUT (T, N, 4H), rows contiguous and evenly
                                               #     spaced (a view of (T, N, 4H + pad) too)
    float[:, ::1] dprev_h not None,            # IN/OUT (N, H): zeros in, dh0 out
    float[:, ::1] dprev_c not None,            # IN/OUT (N, H): zeros in, dc0 out
    int num_threads,
    float[:, :] Wx_t=None,                     # IN  (4H, D) or None: Wx transposed (OUT with
                                               #     Wx), rows contiguous as Wh_t's
    float[:, :, ::1] dx=None,                  # OUT (N, T, D) with Wx_t: da[t] @ Wx.T
    double[:, ::1] db_parts=None,              # OUT (P, 4H) or None: per-thread sums of da
    const float[:, :, ::1] x=None,             # IN  (N, T, D) with hs and dW
    const float[:, :, ::1] hs=None,            # IN  (T+1, N, H) with x and dW
    float[:, ::1] dW=None,                     # OUT (D+H, 4H) or None: sum over t of
                                               #     [x_t, hs[t]].T @ da[t]
    const float[:, ::1] Wh=None,               # IN  (H, 4H) or None: Wh_t filled from it here
    const float[:, ::1] Wx=None,               # IN  (D, 4H) or None: Wx_t filled from it here
):
    """Every step of an LSTM backward, last first: the fused cell backward on
    ``dh[t] + dprev_h``, then ``dprev_h = da[t] @ Wh.T``; threads over blocks of rows (H a
    multiple of SGEMM_COLUMNS). With ``Wx_t`` and ``dx`` each thread also writes
    ``dx[rows, t] = da[t, rows] @ Wx.T`` while that gate gradient is in cache (D a multiple of
    SGEMM_COLUMNS; straight into the batch-major output); with ``db_parts`` thread p adds its
    rows of every ``da[t]`` into ``db_parts[p]`` in float64 (rows p >= the thread count are
    left as they were: zero them first and sum over axis 0). With ``x``, ``hs`` and ``dW`` the
    call also computes the weight gradients ``dW = sum_t [x_t, h_{t-1}].T @ da[t]``: each
    thread packs its rows of ``[x_t, h_{t-1}]`` step by step into the product's A (12-row
    tiles over all T*N terms, fnn_sgemm_pack_row), and after the last step (a barrier) the
    same threads compute dW as ONE product (fnn_sgemm_long), split by 32-column blocks of dW
    and of ``da`` (the product's B, read in place): no return to Python, no second team start,
    no copy of [x_t, h_{t-1}] and no re-packing. Each tile of dW sums all T*N terms in
    registers and is stored once. For N=64, T=32, D=128, H=256, with the padding and the
    transposes below, the call took 7.88-7.93 ms against 8.28-8.30 for its predecessor
    (``dW.T = da.T @ xh`` in k blocks of 256 over a gathered ``xh``, rows unpadded), the two
    interleaved in one process, medians of 200. ``da``'s rows may be padded
    (rows 4H floats apart, a multiple of 1 KB, fall in the same few cache sets: the caller
    passes a view of a (T, N, 4H + 16) buffer, and ``Wh_t``/``Wx_t`` views of padded ones).
    With ``Wh`` (and
    ``Wx``) the same threads first write ``Wh_t = Wh.T`` (and ``Wx_t = Wx.T``) in 32-column
    blocks (csrc/transpose.h: 16 x 16 blocks in AVX-512 registers; for the shapes above the
    steps now start 0.05-0.06 ms into the call, 0.21-0.27 with the buffered scalar blocks),
    then a barrier: the transposes in the step loop's region, into buffers the caller reuses
    (``Wh_t`` and ``Wx_t`` are then outputs)."""
    cdef Py_ssize_t t_len = gates.shape[0], n = gates.shape[1], h = Wh_t.shape[1]
    cdef Py_ssize_t part, parts, r0, r1, t, i, k, w = 4 * h, d = 0, dx_ld = 0
    cdef Py_ssize_t dh_ts, dh_ns, da_rs, wh_rs, wx_rs = 0
    cdef int failed = 0, bad, project = Wx_t is not None, sums = db_parts is not None
    cdef Py_ssize_t dxh = 0, tn = t_len * n, kk, q0, q1, tile_ts = 0
    cdef float* xh_tiles = NULL   # with dW: [x_t, h_{t-1}].T packed whole, its product's A
    cdef int weights = dW is not None, flip = Wh is not None
    cdef int flip_x = Wx is not None
    cdef Py_ssize_t jb, j0, j1
    cdef double* acc
    shapes = {
        "dh": (dh.shape, (t_len, n, h)), "Wh_t": (Wh_t.shape, (w, h)),
        "gates": (gates.shape, (t_len, n, w)), "tanh_c": (tanh_c.shape, (t_len, n, h)),
        "cs": (cs.shape, (t_len + 1, n, h)), "da": (da.shape, (t_len, n, w)),
        "dprev_h": (dprev_h.shape, (n, h)), "dprev_c": (dprev_c.shape, (n, h))}
    if project:
        if dx is None:
            raise ValueError("dx must be given with Wx_t")
        d = Wx_t.shape[1]
        if d < 1 or d % SGEMM_COLUMNS:
            raise ValueError(f"Wx_t must have D >= 1 columns, a multiple of {SGEMM_COLUMNS}, "
                             f"got {d}")
        shapes["Wx_t"] = (Wx_t.shape, (w, d))
        shapes["dx"] = (dx.shape, (n, t_len, d))
        dx_ld = t_len * d
    elif dx is not None:
        raise ValueError("Wx_t must be given with dx")
    if weights or x is not None or hs is not None:
        if x is None or hs is None or dW is None:
            raise ValueError("x, hs and dW must be given together")
        dxh = x.shape[2]
        if dxh < 1:
            raise ValueError(f"x must have D >= 1 features, got {dxh}")
        shapes["x"] = (x.shape, (n, t_len, dxh))
        shapes["hs"] = (hs.shape, (t_len + 1, n, h))
        shapes["dW"] = (dW.shape, (dxh + h, w))
    if Wh is not None:
        shapes["Wh"] = (Wh.shape, (h, w))
    if Wx is not None:
        if Wh is None or not project:
            raise ValueError("Wx needs Wh, Wx_t and dx")
        shapes["Wx"] = (Wx.shape, (d, w))
    _check_steps(t_len, n, h, h, num_threads, shapes)
    if dh.strides[2] != sizeof(float) or dh.strides[0] % sizeof(float) or \
            dh.strides[1] % sizeof(float):
        raise ValueError("dh's rows must be contiguous float32 (stride of the last axis 4)")
    dh_ts = dh.strides[0] // sizeof(float)
    dh_ns = dh.strides[1] // sizeof(float)
    da_rs = _row_floats("da", da.strides[2], da.strides[1], w)
    if weights and da.strides[0] != n * da.strides[1]:   # dW's k runs over (t, i) together
        raise ValueError(f"da's rows must be evenly spaced over the steps (a (T, N, 4H) array "
                         f"or a view of a (T, N, 4H + pad) one), got strides "
                         f"({da.strides[0]}, {da.strides[1]}, {da.strides[2]})")
    wh_rs = _row_floats("Wh_t", Wh_t.strides[1], Wh_t.strides[0], h)
    if project:
        wx_rs = _row_floats("Wx_t", Wx_t.strides[1], Wx_t.strides[0], d)
    parts = num_threads if num_threads < n else n
    if sums and (db_parts.shape[0] < parts or db_parts.shape[1] != w):
        raise ValueError(f"db_parts must have shape (>= {parts}, {w}), got "
                         f"({db_parts.shape[0]}, {db_parts.shape[1]})")
    kk = dxh + h
    if weights:
        tile_ts = SGEMM_MR * tn + 16   # (see fnn_sgemm_pack_row)
        xh_tiles = <float*> malloc((kk + SGEMM_MR - 1) // SGEMM_MR * tile_ts * sizeof(float))
        if xh_tiles == NULL:
            raise MemoryError("lstm_steps_backward could not allocate its packing buffer")
    with nogil, parallel(num_threads=parts):
        if flip:   # Wh.T (and Wx.T), the step products' B (the loop's end is a barrier)
            for jb in prange((w + 31) // 32, schedule="static"):
                j0 = jb * 32
                j1 = j0 + 32 if j0 + 32 < w else w
                fnn_transpose(&Wh[0, 0], w, 1, &Wh_t[0, 0], wh_rs, 0, h, j0, j1)
                if flip_x:
                    fnn_transpose(&Wx[0, 0], w, 1, &Wx_t[0, 0], wx_rs, 0, d, j0, j1)
        for part in prange(parts, schedule="static"):
            r0 = n * part // parts
            r1 = n * (part + 1) // parts
            bad = 0
            acc = &db_parts[part, 0] if sums else NULL
            for t in range(t_len - 1, -1, -1):
                for i in range(r0, r1):
                    fnn_lstm_backward_row_f(&dh[0, 0, 0] + t * dh_ts + i * dh_ns, &dprev_h[i, 0],
                                            &dprev_c[i, 0], &gates[t, i, 0], &tanh_c[t, i, 0],
                                            &cs[t, i, 0], &da[t, i, 0], &dprev_c[i, 0], h)
                    if weights:   # row (t, i) of [x_t, h_{t-1}] into the weight product's A
                        fnn_sgemm_pack_row(t * n + i, &x[i, t, 0], dxh, &hs[t, i, 0], h,
                                           xh_tiles, tile_ts)
                if acc != NULL:   # db: this step's rows of da, while they are in cache
                    fnn_add_rows_fd(&da[t, r0, 0], r1 - r0, da_rs, acc, w)
                # dprev_h (and dx: the same A, read in place) from this step's gate gradient
                if project:
                    bad = fnn_sgemm_pair(r1 - r0, w, &da[t, r0, 0], da_rs, 1, h, &Wh_t[0, 0],
                                         wh_rs, &dprev_h[r0, 0], h, d, &Wx_t[0, 0], wx_rs,
                                         &dx[r0, t, 0], dx_ld) != 0
                else:
                    bad = fnn_sgemm(r1 - r0, h, w, &da[t, r0, 0], da_rs, 1, &Wh_t[0, 0], wh_rs,
                                    &dprev_h[r0, 0], h, 0) != 0
                if bad:
                    break
            failed += bad
        # (the end of that loop is a barrier: every step's da is in place; after a failure
        # dW is computed from partial data and then refused below)
        if weights:
            # dW = [x_t, h_{t-1}].T @ da over all steps, threads over 32-column blocks of dW:
            # A packed by the step loop, every tile of dW summing all T*N terms in registers
            for part in prange(parts, schedule="static"):
                q0 = (w // SGEMM_NR) * part // parts * SGEMM_NR
                q1 = (w // SGEMM_NR) * (part + 1) // parts * SGEMM_NR
                if q1 > q0:
                    fnn_sgemm_long(kk, q1 - q0, tn, xh_tiles, tile_ts, &da[0, 0, q0], da_rs,
                                   &dW[0, q0], w)
    free(xh_tiles)
    if failed:
        raise MemoryError("lstm_steps_backward could not allocate a packing buffer")
