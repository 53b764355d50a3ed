"""Winograd F(4x4, 3x3) float32 convolution (fastnn._ext._winograd and its dispatch in
fastnn.kernels.conv): forward, input and filter gradients against the exact float64 im2col
result and PyTorch, over odd sizes (tiles partly outside the image), images smaller than a
tile, pad 0-2, channel counts that are not multiples of 16 or 32, several chunks and
non-contiguous input; a hypothesis fuzz of the entry points; bad input is a ValueError.

Tolerance: F(4x4, 3x3) in float32 is less exact than the direct sum (its transforms multiply
values by up to 8 and 1/24 before the products, which then cancel). Measured max |error| /
max |exact| on unit-scale data (x ~ N(0, 1), w ~ N(0, 1/(9C)), dout ~ N(0, 1)): 6.8e-6
forward, 8.1e-6 dx, 6.6e-6 dw for x (64, 64, 16, 16), w (64, 64, 3, 3), pad 1; 1.1e-5 at most
up to C = K = 256 (im2col float32: 2e-7 .. 5e-7). The bound below, 1e-4, keeps a 10x margin.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnn.kernels import _gemm
from fastnn.kernels import conv as K
from tests.kernels._conv_float32 import check_float32, conv_problem

_wino = K._wino
pytestmark = pytest.mark.skipif(
    _wino is None or not _wino.AVAILABLE or not _gemm.AVAILABLE,
    reason="the Winograd kernels need fastnn._ext._winograd and AVX-512F")

#: max |got - exact| / max |exact| (see the module docstring)
TOL = 1e-4

# (N, C, H, W), K, pad
CASES = [
    ((1, 1, 5, 7), 1, 1),        # batch 1, one channel, one filter
    ((2, 3, 13, 15), 17, 0),     # pad 0: the output is 2 smaller than the input
    ((3, 17, 17, 5), 33, 2),     # pad 2: larger output, partial tiles both ways
    ((2, 33, 3, 2), 3, 1),       # the image smaller than one tile
    ((1, 8, 2, 2), 5, 2),
    ((2, 64, 7, 13), 64, 1),
    ((5, 20, 9, 6), 40, 1),      # K neither a multiple of 16 nor of 32
]
IDS = [f"x{c[0]}-k{c[1]}-p{c[2]}" for c in CASES]


def _problem(shape, k, pad, seed=0):
    return conv_problem(shape, k, (3, 3), pad, seed)


def _exact(x, wt, b, dout, pad):
    """float64 forward, dx, dw on the im2col path."""
    out = K.conv_forward(x, wt, b, 1, pad, impl="compiled")
    dx, dw, _ = K.conv_backward(dout, x, wt, 1, pad, impl="compiled")
    return out, dx, dw


def _check(got, want, what):
    check_float32(got, want, what, TOL)


def _entries(x, wt, b, dout, pad, chunk, threads=2):
    """forward, dx (forward of dout with the flipped, transposed filters), dw straight from the
    extension, float32."""
    f32 = [np.ascontiguousarray(a, dtype=np.float32) for a in (x, wt, b, dout)]
    x32, w32, b32, d32 = f32
    out = np.full(d32.shape, np.nan, np.float32)
    _wino.forward(x32, w32, b32, out, pad, chunk, threads)
    dx = np.full(x32.shape, np.nan, np.float32)
    w_t = np.ascontiguousarray(w32.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    _wino.forward(d32, w_t, np.zeros(x.shape[1], np.float32), dx, 2 - pad, chunk, threads)
    dw = np.full(w32.shape, np.nan, np.float32)
    _wino.backward_weights(d32, x32, dw, pad, chunk, threads)
    return out, dx, dw


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("chunk", [1, 2, 1000])
def test_entries_match_exact_float64(case, chunk):
    shape, k, pad = case
    x, wt, b, dout = _problem(shape, k, pad)
    for got, want, what in zip(_entries(x, wt, b, dout, pad, chunk), _exact(x, wt, b, dout, pad),
                               ("forward", "dx", "dw"), strict=True):
        _check(got, want, what)


def test_chunks_and_threads_do_not_change_the_result():
    """Each tile's sums do not depend on the chunk (tiles per product) nor on the threads."""
    x, wt, b, dout = _problem((7, 12, 9, 11), 20, 1, seed=3)
    ref = _entries(x, wt, b, dout, 1, 7, threads=1)
    for chunk, threads in ((1, 2), (3, 2), (7, 2), (2, 1)):
        for got, want in zip(_entries(x, wt, b, dout, 1, chunk, threads), ref, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


class _Recorder:
    """Stands in for fastnn._ext._winograd, recording which entries ran."""

    def __init__(self, ext):
        self.ext, self.calls = ext, []
        self.AVAILABLE, self.MAX_PAD = ext.AVAILABLE, ext.MAX_PAD

    def forward(self, *args):
        self.calls.append("forward")
        return self.ext.forward(*args)

    def backward_weights(self, *args):
        self.calls.append("backward_weights")
        return self.ext.backward_weights(*args)


@pytest.mark.parametrize("pad", [0, 1, 2])
def test_conv_dispatches_to_winograd_and_matches(monkeypatch, pad):
    """conv_forward / conv_backward (impl=None) on float32, 3x3, stride 1: Winograd, also for
    a non-contiguous x; the result matches the exact one."""
    rec = _Recorder(_wino)
    monkeypatch.setattr(K, "_wino", rec)
    x, wt, b, dout = _problem((3, 16, 11, 9), 24, pad, seed=pad)
    want = _exact(x, wt, b, dout, pad)
    x_nc = np.asfortranarray(x.astype(np.float32))[:, :, :, ::-1][:, :, :, ::-1]
    assert not x_nc.flags.c_contiguous
    w32, b32, d32 = (a.astype(np.float32) for a in (wt, b, dout))
    out = K.conv_forward(x_nc, w32, b32, 1, pad)
    dx, dw, db = K.conv_backward(d32, x_nc, w32, 1, pad)
    assert rec.calls == ["forward", "backward_weights", "forward"]
    assert out.dtype == dx.dtype == dw.dtype == np.float32
    for got, exact, what in zip((out, dx, dw), want, ("forward", "dx", "dw"), strict=True):
        _check(got, exact, what)
    _check(db, dout.sum(axis=(0, 2, 3)), "db")
    # need_dx=False: only the filter gradient
    rec.calls.clear()
    none_dx, dw2, _ = K.conv_backward(d32, x_nc, w32, 1, pad, need_dx=False)
    assert none_dx is None and rec.calls == ["backward_weights"]
    # the same sums, perhaps added in another order (which thread took which chunk)
    np.testing.assert_allclose(dw2, dw, rtol=1e-5, atol=1e-5 * np.abs(dw).max())


@pytest.mark.parametrize("channels, calls", [
    (1, ["backward_weights"]),
    (2, ["backward_weights"]),
    (3, ["forward", "backward_weights"]),
])
def test_forward_needs_three_channels_the_filter_gradient_one(monkeypatch, channels, calls):
    rec = _Recorder(_wino)
    monkeypatch.setattr(K, "_wino", rec)
    monkeypatch.setattr(K, "DIRECT", False)   # few channels go direct first (test_conv_direct)
    x, wt, b, dout = _problem((5, channels, 10, 7), 8, 1, seed=channels)
    want = _exact(x, wt, b, dout, 1)
    x32, w32, b32, d32 = (a.astype(np.float32) for a in (x, wt, b, dout))
    out = K.conv_forward(x32, w32, b32, 1, 1)
    none_dx, dw, db = K.conv_backward(d32, x32, w32, 1, 1, need_dx=False)
    assert rec.calls == calls and none_dx is None
    for got, exact, what in zip((out, dw), (want[0], want[2]), ("forward", "dw"), strict=True):
        _check(got, exact, what)
    _check(db, dout.sum(axis=(0, 2, 3)), "db")


@pytest.mark.parametrize("why", ["switched off", "float64", "few channels", "stride 2",
                                 "dilation 2", "pad 3", "5x5"])
def test_conv_keeps_im2col_where_winograd_does_not_apply(monkeypatch, why):
    rec = _Recorder(_wino)
    monkeypatch.setattr(K, "_wino", rec)
    shape, ksize, stride, pad, dil, dtype = (2, 16, 9, 9), 3, 1, 1, 1, np.float32
    if why == "switched off":
        monkeypatch.setattr(K, "WINOGRAD", False)
    elif why == "float64":
        dtype = np.float64
    elif why == "few channels":
        monkeypatch.setattr(K, "WINOGRAD_MIN_CHANNELS", {"forward": shape[1] + 1,
                                                         "dw": shape[1] + 1})
    elif why == "stride 2":
        stride = 2
    elif why == "dilation 2":
        dil = 2
    elif why == "pad 3":
        pad = 3
    else:
        ksize, pad = 5, 2
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    wt = rng.standard_normal((8, shape[1], ksize, ksize)).astype(dtype)
    out = K.conv_forward(x, wt, np.zeros(8, dtype), stride, pad, dil)
    K.conv_backward(np.ones_like(out), x, wt, stride, pad, dil)
    assert rec.calls == []


def test_matches_torch_forward_and_autograd():
    torch = pytest.importorskip("torch")
    x, wt, b, dout = _problem((4, 32, 14, 14), 64, 1, seed=5)
    x32, w32, b32, d32 = (a.astype(np.float32) for a in (x, wt, b, dout))
    tx, tw, tb = (torch.tensor(a, dtype=torch.float64, requires_grad=True)
                  for a in (x, wt, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=1, padding=1)
    gx, gw, gb = torch.autograd.grad(ty, (tx, tw, tb), torch.tensor(dout))
    out = K.conv_forward(x32, w32, b32, 1, 1)
    dx, dw, db = K.conv_backward(d32, x32, w32, 1, 1)
    for got, want, what in ((out, ty, "forward"), (dx, gx, "dx"), (dw, gw, "dw")):
        _check(got, want.detach().numpy(), what)
    _check(db, gb.numpy(), "db")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 20), k=st.integers(1, 40),
       h=st.integers(1, 12), w=st.integers(1, 12), pad=st.integers(0, 2),
       chunk=st.integers(1, 4), threads=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_fuzz_entries(n, c, k, h, w, pad, chunk, threads, seed):
    """Random small shapes straight into the entry points: no crash, agreement (shapes whose
    output would be empty are a ValueError)."""
    oh, ow = h + 2 * pad - 2, w + 2 * pad - 2
    x, wt, b, _ = _problem((n, c, h, w), k, 2, seed)
    if oh < 1 or ow < 1:
        out = np.empty((n, k, max(oh, 1), max(ow, 1)), np.float32)
        with pytest.raises(ValueError, match="smaller than the 3x3 kernel"):
            _wino.forward(x.astype(np.float32), wt.astype(np.float32), b.astype(np.float32),
                          out, pad, chunk, threads)
        return
    dout = np.random.default_rng(seed + 1).standard_normal((n, k, oh, ow))
    # measured against the sums of |terms| (check_float32): the tiny fuzzed shapes make sums
    # that cancel
    scales = _exact(*(np.abs(a) for a in (x, wt, b, dout)), pad)
    for got, want, scale, what in zip(_entries(x, wt, b, dout, pad, chunk, threads),
                                      _exact(x, wt, b, dout, pad), scales,
                                      ("forward", "dx", "dw"), strict=True):
        check_float32(got, want, what, TOL, scale)


def _args32(n=2, c=3, h=6, w=6, k=4, pad=1):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    b = np.zeros(k, np.float32)
    out = np.empty((n, k, h + 2 * pad - 2, w + 2 * pad - 2), np.float32)
    return x, wt, b, out


@pytest.mark.parametrize("change, match", [
    (lambda a: {**a, "w": a["w"][:, :2].copy()}, "w must have shape"),
    (lambda a: {**a, "w": np.zeros((4, 3, 5, 5), np.float32)}, "w must have shape"),
    (lambda a: {**a, "b": np.zeros(5, np.float32)}, "b must have shape"),
    (lambda a: {**a, "out": np.zeros((2, 4, 5, 6), np.float32)}, "out must have shape"),
    (lambda a: {**a, "pad": 3}, "pad must be in 0 .. 2"),
    (lambda a: {**a, "pad": -1}, "pad must be in 0 .. 2"),
    (lambda a: {**a, "chunk": 0}, "chunk must be >= 1"),
    (lambda a: {**a, "num_threads": 0}, "num_threads must be >= 1"),
    (lambda a: {**a, "x": a["x"].astype(np.float64)}, "dtype mismatch"),
    (lambda a: {**a, "x": a["x"][:, :, :, ::2]}, "contiguous"),
])
def test_forward_entry_rejects_bad_input(change, match):
    x, wt, b, out = _args32()
    a = change({"x": x, "w": wt, "b": b, "out": out, "pad": 1, "chunk": 2, "num_threads": 1})
    if a["x"].shape[3] != x.shape[3] and "out" not in match:
        a["out"] = np.empty((2, 4, 6, 3), np.float32)
    with pytest.raises(ValueError, match=match):
        _wino.forward(a["x"], a["w"], a["b"], a["out"], a["pad"], a["chunk"], a["num_threads"])


@pytest.mark.parametrize("change, match", [
    (lambda a: {**a, "dout": a["dout"][:, :3].copy()}, "dout must have shape"),
    (lambda a: {**a, "dout": np.zeros((2, 4, 6, 5), np.float32)}, "dout must have shape"),
    (lambda a: {**a, "dw": np.zeros((4, 2, 3, 3), np.float32)}, "w must have shape"),
    (lambda a: {**a, "pad": 3}, "pad must be in 0 .. 2"),
    (lambda a: {**a, "chunk": -2}, "chunk must be >= 1"),
    (lambda a: {**a, "num_threads": -1}, "num_threads must be >= 1"),
    (lambda a: {**a, "dw": np.zeros((4, 3, 3, 3))}, "dtype mismatch"),
])
def test_backward_entry_rejects_bad_input(change, match):
    x, wt, _, out = _args32()
    a = change({"dout": out, "x": x, "dw": np.empty_like(wt), "pad": 1, "chunk": 2,
                "num_threads": 1})
    with pytest.raises(ValueError, match=match):
        _wino.backward_weights(a["dout"], a["x"], a["dw"], a["pad"], a["chunk"],
                               a["num_threads"])


def test_winograd_chunk_bounds_memory_and_balances_threads():
    """Images per chunk shrink as channels grow, never below one, whatever the batch; the
    chunks are a multiple of the threads in number, as equal as can be."""
    fit = K.WINOGRAD_BYTES // (36 * 4 * 16 * 128)
    assert 1 <= K._winograd_chunk(64, 1, 16, 16, 64, 64) <= fit
    assert K._winograd_chunk(64, 1, 16, 16, 4096, 4096) == 1
    assert K._winograd_chunk(64, 1, 2, 2, 1, 1) == 64
    for n, threads in ((64, 2), (65, 2), (7, 3), (1000, 2), (3, 4)):
        chunk = K._winograd_chunk(n, threads, 16, 16, 64, 64)
        chunks = -(-n // chunk)
        assert chunk <= fit and (chunks % threads == 0 or chunks == n)
        assert n - (chunks - 1) * chunk >= chunk - chunks   # the last chunk is not much smaller


@pytest.mark.parametrize("shape, k, ksize, pad", [((9, 16, 10, 10), 24, 3, 1),    # Winograd
                                                  ((9, 3, 12, 12), 32, 5, 2)])    # per image
def test_float32_gradients_repeat_bit_for_bit(shape, k, ksize, pad):
    """The filter gradients sum per-thread partial sums: each thread's share of the images is
    fixed, so two runs give the same bits (a training run can be repeated)."""
    import fastnn

    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(np.float32)
    wt = rng.standard_normal((k, shape[1], ksize, ksize)).astype(np.float32)
    oh = shape[2] + 2 * pad - ksize + 1
    dout = rng.standard_normal((shape[0], k, oh, oh)).astype(np.float32)
    saved = fastnn.get_num_threads()
    fastnn.set_num_threads(2)
    try:
        first = K.conv_backward(dout, x, wt, 1, pad)
        for _ in range(5):
            for got, want in zip(K.conv_backward(dout, x, wt, 1, pad), first, strict=True):
                np.testing.assert_array_equal(got, want)
    finally:
        fastnn.set_num_threads(saved)
