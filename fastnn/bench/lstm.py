"""``fastnn bench lstm``: a full LSTM sequence forward+backward (N=64, T=32, D=128, H=256,
float32): the compiled path (forward: the input projection and every step in one compiled call;
backward: every step in one compiled call that also writes dx and sums db, then dWx and dWh as
ONE product over [x_t, h_{t-1}]) against its NumPy step-by-step twin (the CS231n-style
baseline), plus the forward alone. ``--compare`` adds ``torch.nn.LSTM(batch_first=True)`` forward+backward
(autograd for x and every weight) with the same thread count.

The NumPy twin is CS231n's formulation exactly: per step ``x_t @ Wx + prev_h @ Wh + b`` and the
NumPy gate maths; backward per step ``dx_t``, ``dWx +=``, ``dWh +=``, ``dprev_h`` products.
With threadpoolctl installed a second twin row runs the same code with BLAS pinned to one
thread: on a busy machine OpenBLAS's own threads waiting for each other on 96 small products
per sequence can cost the twin whole time slices, and the pinned row shows the twin at its best.

GFLOP/s counts the matrix products only: forward ``2 N T (D + H) 4H``, backward twice that.
"""

from __future__ import annotations

import numpy as np

from fastnn.bench import BenchRow, limit_peer_threads, register_suite, time_interleaved
from fastnn.kernels import available_impls, get_impl

SHAPE = {"N": 64, "T": 32, "D": 128, "H": 256}
QUICK_SHAPE = {"N": 16, "T": 8, "D": 32, "H": 64}


def make_problem(n: int, t: int, d: int, h: int, dtype=np.float32, seed: int = 0) -> dict:
    """Inputs, weights and an upstream gradient for one LSTM sequence (CS231n scale weights)."""
    rng = np.random.default_rng(seed)

    def draw(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    return {"x": draw(n, t, d), "h0": draw(n, h, scale=0.1), "c0": draw(n, h, scale=0.1),
            "Wx": draw(d, 4 * h, scale=d ** -0.5), "Wh": draw(h, 4 * h, scale=h ** -0.5),
            "b": draw(4 * h, scale=0.1), "dh": draw(n, t, h)}


def lstm_step_functions(problem: dict, impl: str):
    """``forward()`` and ``forward_backward()`` closures over one implementation."""
    forward_op = get_impl("lstm_sequence_forward", impl)
    backward_op = get_impl("lstm_sequence_backward", impl)
    p = problem

    def forward():
        return forward_op(p["x"], p["h0"], p["c0"], p["Wx"], p["Wh"], p["b"])

    def forward_backward():
        _, hs, cs, gates, tanh_c = forward()
        return backward_op(p["dh"], p["x"], p["Wx"], p["Wh"], hs, cs, gates, tanh_c)

    return forward, forward_backward


def _one_blas_thread():
    """A context limiting BLAS to one thread (None without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=1, user_api="blas")


def torch_lstm_functions(problem: dict):
    """The same problem on ``torch.nn.LSTM`` (None when torch is missing)."""
    try:
        import torch
    except ImportError:
        return None
    p = problem
    d = p["x"].shape[2]
    h = p["h0"].shape[1]
    lstm = torch.nn.LSTM(d, h, batch_first=True)
    x = torch.from_numpy(p["x"]).requires_grad_(True)
    state = (torch.from_numpy(p["h0"])[None], torch.from_numpy(p["c0"])[None])
    dh = torch.from_numpy(p["dh"])
    inputs = [x, *lstm.parameters()]

    def forward():
        with torch.no_grad():
            return lstm(x, state)[0]

    def forward_backward():
        out = lstm(x, state)[0]
        return torch.autograd.grad(out, inputs, dh)

    return forward, forward_backward


@register_suite("lstm")
def suite(compare: bool = False, quick: bool = False) -> list[BenchRow]:
    """LSTM sequence forward and forward+backward: compiled vs NumPy twin (vs torch)."""
    s = QUICK_SHAPE if quick else SHAPE
    n, t, d, h = s["N"], s["T"], s["D"], s["H"]
    problem = make_problem(n, t, d, h)
    shape = f"N={n} T={t} D={d} H={h} float32"
    forward_flops = 2.0 * n * t * (d + h) * 4 * h
    # every implementation's samples interleaved round by round (time_interleaved), so the
    # ratios in one run are fair on a shared machine
    repeat = 3 if quick else 15
    peers = []
    if "compiled" in available_impls("lstm_sequence_forward"):
        peers.append(("compiled", lstm_step_functions(problem, "compiled"), None))
    if compare:
        limit_peer_threads()
        funcs = torch_lstm_functions(problem)
        if funcs is not None:
            peers.append(("torch.nn.LSTM", funcs, None))
    twin = lstm_step_functions(problem, "vectorized")
    peers.append(("vectorized (NumPy step by step)", twin, None))
    if _one_blas_thread() is not None:   # the same twin, its BLAS limited while it is timed
        peers.append(("vectorized (NumPy step by step, BLAS 1 thread)", twin, _one_blas_thread))
    calls = [(label, what, func, limit) for label, (forward, forward_backward), limit in peers
             for what, func in (("forward+backward", forward_backward), ("forward", forward))]
    seconds = time_interleaved([c[2] for c in calls], repeat=repeat,
                               min_time=0.3 if quick else 1.0, contexts=[c[3] for c in calls])
    rows = []
    for (label, what, _, _), median in zip(calls, seconds, strict=True):
        flops = forward_flops * (3 if what == "forward+backward" else 1)
        rows.append(BenchRow(f"lstm {what}", shape, label, median, flops))
    return rows
