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
    fnn_sgemm_bpanels,
    fnn_sgemm_pair,
)

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


cdef inline void _transpose_block(const float* src, Py_ssize_t src_ld, float* dst,
                                  Py_ssize_t dst_ld, Py_ssize_t r0, Py_ssize_t r1,
                                  Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """dst[c, r] = src[r, c] for r0 <= r < r1, c0 <= c < c1 (rows src_ld and dst_ld floats
    apart), in 16 x 16 blocks through a buffer, as fastnn._ext._gemm.transpose: each source and
    destination row segment touched whole once, so rows 2 KB or a larger power of two apart
    (H >= 512, or dW's 4H columns) do not evict their own partly written lines."""
    cdef Py_ssize_t i0, i, i1, jb, j, je
    cdef float tile[16 * 16]
    for i0 in range(r0, r1, 16):
        i1 = i0 + 16 if i0 + 16 < r1 else r1
        for jb in range(c0, c1, 16):
            je = jb + 16 if jb + 16 < c1 else c1
            for i in range(i0, i1):
                for j in range(jb, je):
                    tile[(j - jb) * 16 + (i - i0)] = src[i * src_ld + j]
            for j in range(jb, je):
                for i in range(i0, i1):
                    dst[j * dst_ld + i] = tile[(j - jb) * 16 + (i - i0)]


def lstm_steps_backward(
    const float[:, :, :] dh not None,  # IN  (T, N, H) upstream gradient; rows contiguous (a
                                       #     transposed view of a batch-major array is fine)
    float[:, ::1] Wh_t not None,       # IN  (4H, H) Wh transposed (OUT with Wh), C-contiguous
    const float[:, :, ::1] gates not None,     # IN  (T, N, 4H)
    const float[:, :, ::1] tanh_c not None,    # IN  (T, N, H)
    const float[:, :, ::1] cs not None,        # IN  (T+1, N, H)
    float[:, :, ::1] da not None,              # OUT (T, N, 4H)
    float[:, ::1] dprev_h not None,            # IN/OUT (N, H): zeros in, dh0 out
    float[:, ::1] dprev_c not None,            # IN/OUT (N, H): zeros in, dc0 out
    int num_threads,
    float[:, ::1] Wx_t=None,                   # IN  (4H, D) or None: Wx transposed (OUT with Wx)
    float[:, :, ::1] dx=None,                  # OUT (N, T, D) with Wx_t: da[t] @ Wx.T
    double[:, ::1] db_parts=None,              # OUT (P, 4H) or None: per-thread sums of da
    const float[:, :, ::1] x=None,             # IN  (N, T, D) with hs and xh
    const float[:, :, ::1] hs=None,            # IN  (T+1, N, H) with x and xh
    float[:, :, ::1] xh=None,                  # OUT (T, N, D+H) or None: [x_t, hs[t]] rows
    float[:, ::1] dW=None,                     # OUT (D+H, 4H) or None, with xh: xh.T @ da
    const float[:, ::1] Wh=None,               # IN  (H, 4H) or None: Wh_t filled from it here
    const float[:, ::1] Wx=None,               # IN  (D, 4H) or None: Wx_t filled from it here
):
    """Every step of an LSTM backward, last first: the fused cell backward on
    ``dh[t] + dprev_h``, then ``dprev_h = da[t] @ Wh.T``; threads over blocks of rows (H a
    multiple of SGEMM_COLUMNS). With ``Wx_t`` and ``dx`` each thread also writes
    ``dx[rows, t] = da[t, rows] @ Wx.T`` while that gate gradient is in cache (D a multiple of
    SGEMM_COLUMNS; straight into the batch-major output); with ``db_parts`` thread p adds its
    rows of every ``da[t]`` into ``db_parts[p]`` in float64 (rows p >= the thread count are
    left as they were: zero them first and sum over axis 0); with ``x``, ``hs`` and ``xh`` each
    thread also fills its rows of ``xh[t] = [x[:, t], hs[t]]`` (the operand of the weight
    gradients) alongside the step instead of a serial copy afterwards. With ``xh`` and ``dW``,
    after the last step (a barrier) the same threads compute
    ``dW = [x_t, h_{t-1}].T @ da`` over all steps: the weight gradients as one product in the
    same parallel region, with no return to Python and no second team start. Where D + H is a
    multiple of SGEMM_COLUMNS it runs transposed, ``dW.T = da.T @ xh`` (xh read row-major as
    the product's B; threads over 32-column blocks of da, each writing its block of dW.T into
    dW's columns; as lone products on 2 threads 3.95 vs 4.91 ms for N=64, T=32, D=128,
    H=256, and the whole forward+backward 13.0-13.1 vs 14.1-14.3 ms in alternating processes);
    otherwise the threads split the rows of dW. With ``Wh`` (and
    ``Wx``) the same threads first write ``Wh_t = Wh.T`` (and ``Wx_t = Wx.T``) in 32-column
    blocks, then a barrier: the transposes in the step loop's region, into buffers the caller
    reuses (``Wh_t`` and ``Wx_t`` are then outputs)."""
    cdef Py_ssize_t t_len = gates.shape[0], n = gates.shape[1], h = Wh_t.shape[1]
    cdef Py_ssize_t part, parts, r0, r1, t, i, k, w = 4 * h, d = 0, dx_ld = 0
    cdef Py_ssize_t dh_ts, dh_ns
    cdef int failed = 0, bad, project = Wx_t is not None, sums = db_parts is not None
    cdef int gather = xh is not None
    cdef Py_ssize_t dxh = 0, tn = t_len * n, kk, w0, w1
    cdef int weights = dW is not None, wfailed = 0, flip = Wh is not None
    cdef int flip_x = Wx is not None
    cdef Py_ssize_t jb, j0, j1
    cdef double* acc
    cdef float* dwt = NULL
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
    if gather or x is not None or hs is not None:
        if x is None or hs is None or xh is None:
            raise ValueError("x, hs and xh must be given together")
        dxh = x.shape[2]
        shapes["x"] = (x.shape, (n, t_len, dxh))
        shapes["hs"] = (hs.shape, (t_len + 1, n, h))
        shapes["xh"] = (xh.shape, (t_len, n, dxh + h))
    if weights:
        if not gather:
            raise ValueError("dW needs x, hs and xh")
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
    parts = num_threads if num_threads < n else n
    if sums and (db_parts.shape[0] < parts or db_parts.shape[1] != w):
        raise ValueError(f"db_parts must have shape (>= {parts}, {w}), got "
                         f"({db_parts.shape[0]}, {db_parts.shape[1]})")
    kk = dxh + h
    if weights and kk % SGEMM_COLUMNS == 0:
        # the weight gradients computed transposed: (4H, D+H) = da.T @ xh reads its B (xh)
        # row-major and splits 4H rows between the threads (xh.T @ da, read transposed, ran
        # at ~80% of the step products' rate)
        dwt = <float*> malloc(w * kk * sizeof(float))
        if dwt == NULL:
            raise MemoryError("lstm_steps_backward could not allocate dW.T")
    with nogil, parallel(num_threads=parts):
        if flip:   # Wh.T (and Wx.T), the step products' B (the loop's end is a barrier)
            for jb in prange((w + 31) // 32, schedule="static"):
                j0 = jb * 32
                j1 = j0 + 32 if j0 + 32 < w else w
                _transpose_block(&Wh[0, 0], w, &Wh_t[0, 0], h, 0, h, j0, j1)
                if flip_x:
                    _transpose_block(&Wx[0, 0], w, &Wx_t[0, 0], d, 0, d, j0, j1)
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
                    if gather:
                        memcpy(&xh[t, i, 0], &x[i, t, 0], dxh * sizeof(float))
                        memcpy(&xh[t, i, dxh], &hs[t, i, 0], h * sizeof(float))
                if acc != NULL:   # db: this step's rows of da, while they are in cache
                    fnn_add_rows_fd(&da[t, r0, 0], r1 - r0, w, acc, w)
                # dprev_h (and dx: the same A, read in place) from this step's gate gradient
                if project:
                    bad = fnn_sgemm_pair(r1 - r0, w, &da[t, r0, 0], w, 1, h, &Wh_t[0, 0], h,
                                         &dprev_h[r0, 0], h, d, &Wx_t[0, 0], d, &dx[r0, t, 0],
                                         dx_ld) != 0
                else:
                    bad = fnn_sgemm(r1 - r0, h, w, &da[t, r0, 0], w, 1, &Wh_t[0, 0], h,
                                    &dprev_h[r0, 0], h, 0) != 0
                if bad:
                    break
            failed += bad
        # (the end of that loop is a barrier: every step's da is in place; after a failure
        # dW is computed from partial data and then refused below)
        if weights:
            for part in prange(parts, schedule="static"):
                if dwt != NULL:
                    # dW.T = da.T @ xh, threads over 32-column blocks of da (rows of dW.T),
                    # each then writing its rows of dW.T into its columns of dW
                    j0 = (w // 32) * part // parts * 32
                    j1 = (w // 32) * (part + 1) // parts * 32
                    if j1 > j0:
                        wfailed += fnn_sgemm(j1 - j0, kk, tn, &da[0, 0, j0], 1, w,
                                             &xh[0, 0, 0], kk, dwt + j0 * kk, kk, 0) != 0
                        _transpose_block(dwt, kk, &dW[0, 0], w, j0, j1, 0, kk)
                else:
                    w0 = kk * part // parts
                    w1 = kk * (part + 1) // parts
                    if w1 > w0:
                        wfailed += fnn_sgemm(w1 - w0, w, tn, &xh[0, 0, w0], 1, kk,
                                             &da[0, 0, 0], w, &dW[w0, 0], w, 0) != 0
    free(dwt)
    if failed or wfailed:
        raise MemoryError("lstm_steps_backward could not allocate a packing buffer")
