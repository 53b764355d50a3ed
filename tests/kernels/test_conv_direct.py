"""Direct few-channel float32 convolution (fastnn._ext._conv_direct and its dispatch in
fastnn.kernels.conv): forward, filter and bias gradients against the exact float64 result of
the NumPy twin and PyTorch, over odd and non-square sizes, images smaller than the kernel
(with padding), batch 1, C = 1..4, filter counts that are not multiples of 16, kernels 1..7
(non-square), pad 0..k-1 and non-contiguous input; the dispatch follows DIRECT_CHANNELS
(forward, dw and the input gradient dx, a direct forward pass of dout);
bad input to the entries is a ValueError; a hypothesis fuzz of the entries.

Tolerance: a plain float32 sum of C*fh*fw products per output (forward) and of N*H'*W' terms
per filter tap, each 16-lane vector accumulated in float32 and the lanes summed in double.
Measured max |got - exact| / max |exact| on unit-scale data: 1e-7 .. 4.3e-7 (forward, dw, db)
up to x (3, 3, 32, 32), w (32, 3, 7, 7); the bound below, 1e-5, keeps a 20x margin.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fastnn.kernels import conv as K
from tests.kernels._conv_float32 import check_float32, conv_problem

_direct = K._direct
pytestmark = pytest.mark.skipif(_direct is None or not _direct.AVAILABLE,
                                reason="the direct kernel needs fastnn._ext._conv_direct "
                                       "and AVX-512F")

#: max |got - exact| / max |exact| (see the module docstring)
TOL = 1e-5

# (N, C, H, W), F, (fh, fw), pad
CASES = [
    ((1, 1, 28, 28), 32, (3, 3), 1),     # the Fashion-MNIST first layer, batch 1
    ((2, 3, 13, 17), 5, (7, 7), 3),      # CIFAR's 7x7, odd sizes, F = 5
    ((3, 2, 9, 5), 17, (3, 5), 2),       # non-square kernel, F not a multiple of 16
    ((2, 4, 2, 3), 6, (5, 4), 3),        # the image smaller than the kernel, padded
    ((1, 1, 1, 1), 3, (3, 3), 2),        # one pixel
    ((2, 3, 33, 16), 16, (1, 1), 0),     # 1x1, a full vector then one lane
    ((2, 1, 6, 40), 33, (2, 6), 0),      # pad 0, three vectors per row
    ((2, 2, 7, 31), 4, (1, 7), 6),       # 1x7, pad k-1
    ((5, 3, 11, 9), 20, (6, 2), 1),      # even kernel height
]
IDS = [f"x{c[0]}-f{c[1]}-k{c[2][0]}x{c[2][1]}-p{c[3]}" for c in CASES]


_problem = conv_problem


def _out_shape(x_shape, f, ksize, pad):
    n, _, h, w = x_shape
    return n, f, h + 2 * pad - ksize[0] + 1, w + 2 * pad - ksize[1] + 1


def _exact(x, wt, b, dout, pad):
    """float64 forward, dw, db of the NumPy twin."""
    out = K.conv_forward(x, wt, b, 1, pad, impl="vectorized")
    _, dw, db = K.conv_backward(dout, x, wt, 1, pad, impl="vectorized")
    return out, dw, db


def _check(got, want, what):
    check_float32(got, want, what, TOL)


def _entries(x, wt, b, dout, pad, threads=2):
    """forward, dw, db straight from the extension, float32 (outputs start as NaN)."""
    x32, w32, b32, d32 = (np.ascontiguousarray(a, dtype=np.float32) for a in (x, wt, b, dout))
    out = np.full(d32.shape, np.nan, np.float32)
    _direct.forward(x32, w32, b32, out, pad, threads)
    dw = np.full(w32.shape, np.nan, np.float32)
    db = np.full(b32.shape, np.nan, np.float32)
    _direct.backward_weights(d32, x32, dw, db, pad, threads)
    return out, dw, db


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_entries_match_exact_float64(case):
    shape, f, ksize, pad = case
    x, wt, b, dout = _problem(shape, f, ksize, pad)
    for got, want, what in zip(_entries(x, wt, b, dout, pad), _exact(x, wt, b, dout, pad),
                               ("forward", "dw", "db"), strict=True):
        _check(got, want, what)


def test_filter_gradient_repeats_bit_for_bit():
    """dw: a fixed share of images per thread, the per-thread sums added in a fixed order."""
    x, wt, b, dout = _problem((9, 2, 12, 10), 7, (3, 3), 1, seed=4)
    for threads in (1, 2, 3):
        first = _entries(x, wt, b, dout, 1, threads)
        again = _entries(x, wt, b, dout, 1, threads)
        for got, want in zip(first[1:], again[1:], strict=True):
            np.testing.assert_array_equal(got, want)


def test_threads_do_not_change_the_forward_pass():
    x, wt, b, dout = _problem((5, 3, 10, 21), 9, (5, 3), 2, seed=6)
    np.testing.assert_array_equal(_entries(x, wt, b, dout, 2, 1)[0],
                                  _entries(x, wt, b, dout, 2, 3)[0])


@pytest.mark.parametrize("kind", ["forward", "dw"])
def test_matches_torch_forward_and_autograd(kind):
    torch = pytest.importorskip("torch")
    x, wt, b, dout = _problem((3, 3, 15, 12), 20, (7, 5), 2, seed=7)
    tx, tw, tb = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, wt, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=1, padding=2)
    gw, gb = torch.autograd.grad(ty, (tw, tb), torch.tensor(dout))
    out, dw, db = _entries(x, wt, b, dout, 2)
    if kind == "forward":
        _check(out, ty.detach().numpy(), "forward")
    else:
        _check(dw, gw.numpy(), "dw")
        _check(db, gb.numpy(), "db")


class _Recorder:
    """Stands in for fastnn._ext._conv_direct, recording which entries ran."""

    def __init__(self, ext):
        self.ext, self.calls = ext, []
        self.AVAILABLE = ext.AVAILABLE

    def forward(self, *args):
        self.calls.append("forward")
        return self.ext.forward(*args)

    def backward_weights(self, *args):
        self.calls.append("backward_weights")
        return self.ext.backward_weights(*args)


def _expected(kind, c, ksize, f=0, pad=0):
    """What DIRECT_CHANNELS (and, for dx, DIRECT_DX_MAX_FILTERS) says for a float32 stride-1
    pass."""
    if kind == "dx" and (ksize[0] != ksize[1] or pad > ksize[0] - 1
                         or f > K.DIRECT_DX_MAX_FILTERS):
        return False
    area = ksize[0] * ksize[1]
    return any(lo_a <= area <= hi_a and lo_c <= c <= hi_c
               for lo_a, hi_a, lo_c, hi_c in K.DIRECT_CHANNELS[kind])


@pytest.mark.parametrize("c", [1, 2, 3, 4, 5, 16, 33])
@pytest.mark.parametrize("ksize", [(1, 1), (3, 3), (1, 7), (5, 5), (7, 7), (8, 7)])
def test_dispatch_follows_the_constants(monkeypatch, c, ksize):
    """conv_forward / conv_backward (impl=None, float32, stride 1) call the direct entries
    exactly where DIRECT_CHANNELS says, and give the same numbers either way."""
    rec = _Recorder(_direct)
    monkeypatch.setattr(K, "_direct", rec)
    pad = (ksize[0] - 1) // 2
    f = 5
    x, wt, b, dout = _problem((2, c, 9, 8), f, ksize, pad, seed=c)
    x32, w32, b32, d32 = (a.astype(np.float32) for a in (x, wt, b, dout))
    out = K.conv_forward(x32, w32, b32, 1, pad)
    assert rec.calls == (["forward"] if _expected("forward", c, ksize) else [])
    rec.calls.clear()
    none_dx, dw, db = K.conv_backward(d32, x32, w32, 1, pad, need_dx=False)
    assert rec.calls == (["backward_weights"] if _expected("dw", c, ksize) else [])
    assert none_dx is None
    rec.calls.clear()
    dx, dw2, db2 = K.conv_backward(d32, x32, w32, 1, pad)
    want = (["backward_weights"] if _expected("dw", c, ksize) else [])
    if _expected("dx", c, ksize, f, pad):
        want.append("forward")
    assert rec.calls == want
    exact = _exact(x, wt, b, dout, pad)
    gx = K.conv_backward(dout, x, wt, 1, pad, impl="vectorized")[0]
    # Winograd (3x3) is less exact than a direct sum
    tol = 1e-4 if ksize == (3, 3) else TOL
    for got, ref in zip((out, dw, db, dw2, db2, dx), (*exact, *exact[1:], gx), strict=True):
        assert np.abs(got - ref).max() <= tol * np.abs(ref).max()


@pytest.mark.parametrize("c, ksize, pad", [(1, (3, 3), 1), (3, (7, 7), 3), (1, (7, 7), 3),
                                           (2, (1, 1), 0), (1, (5, 3), 2), (3, (3, 3), 2),
                                           (4, (3, 3), 0)])
def test_input_gradient_direct_or_kept_on_the_other_paths(monkeypatch, c, ksize, pad):
    """need_dx=True: dx direct where DIRECT_CHANNELS["dx"] says, else from Winograd, the
    per-image im2col or the 1x1 product; every gradient matches the exact one, also for
    non-contiguous x and dout."""
    rec = _Recorder(_direct)
    monkeypatch.setattr(K, "_direct", rec)
    x, wt, _, dout = _problem((3, c, 10, 11), 6, ksize, pad, seed=9)
    gx, gw, gb = K.conv_backward(dout, x, wt, 1, pad, impl="vectorized")
    x_nc = np.asfortranarray(x.astype(np.float32))
    d_nc = np.asfortranarray(dout.astype(np.float32))
    assert not x_nc.flags.c_contiguous and not d_nc.flags.c_contiguous
    dx, dw, db = K.conv_backward(d_nc, x_nc, wt.astype(np.float32), 1, pad)
    want = (["backward_weights"] if _expected("dw", c, ksize) else [])
    direct_dx = _expected("dx", c, ksize, 6, pad)
    assert rec.calls == want + (["forward"] if direct_dx else [])
    tol = 1e-4 if ksize == (3, 3) and not direct_dx else TOL   # Winograd dx
    assert dx.dtype == np.float32
    assert np.abs(dx - gx).max() <= tol * np.abs(gx).max()
    tol = 1e-4 if ksize == (3, 3) and not _expected("dw", c, ksize) else TOL
    for got, ref in ((dw, gw), (db, gb)):
        assert np.abs(got - ref).max() <= tol * np.abs(ref).max()


def test_input_gradient_direct_needs_few_filters(monkeypatch):
    rec = _Recorder(_direct)
    monkeypatch.setattr(K, "_direct", rec)
    f = K.DIRECT_DX_MAX_FILTERS + 1
    x, wt, _, dout = _problem((2, 3, 6, 6), f, (3, 3), 1, seed=2)
    K.conv_backward(*(a.astype(np.float32) for a in (dout, x, wt)), 1, 1)
    assert "forward" not in rec.calls


@pytest.mark.parametrize("why", ["switched off", "no AVX-512F", "float64", "stride 2",
                                 "dilation 2", "many channels"])
def test_dispatch_skips_direct_where_it_does_not_apply(monkeypatch, why):
    rec = _Recorder(_direct)
    monkeypatch.setattr(K, "_direct", rec)
    c, stride, dil, dtype = 1, 1, 1, np.float32
    if why == "switched off":
        monkeypatch.setattr(K, "DIRECT", False)
    elif why == "no AVX-512F":
        monkeypatch.setattr(rec, "AVAILABLE", False)
    elif why == "float64":
        dtype = np.float64
    elif why == "stride 2":
        stride = 2
    elif why == "dilation 2":
        dil = 2
    else:
        c = 1 + max(hi_c for entries in K.DIRECT_CHANNELS.values() for *_, hi_c in entries)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, c, 9, 9)).astype(dtype)
    wt = rng.standard_normal((4, c, 3, 3)).astype(dtype)
    out = K.conv_forward(x, wt, np.zeros(4, dtype), stride, 1, dil)
    K.conv_backward(np.ones_like(out), x, wt, stride, 1, dil)
    assert rec.calls == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 4), f=st.integers(1, 20),
       h=st.integers(1, 12), w=st.integers(1, 20), fh=st.integers(1, 7), fw=st.integers(1, 7),
       pad=st.integers(0, 6), threads=st.integers(1, 3), seed=st.integers(0, 2**16))
# a CI run drew this one: db of one filter cancels to 0.036 from 85 unit terms, and float32
# rounding of dout alone put it 1.4e-5 off, relative to itself
@example(n=1, c=4, f=1, h=5, w=19, fh=5, fw=7, pad=2, threads=1, seed=284)
def test_fuzz_entries(n, c, f, h, w, fh, fw, pad, threads, seed):
    """Random small shapes straight into the entry points: no crash, agreement (shapes whose
    output would be empty are a ValueError)."""
    rng = np.random.default_rng(seed)
    x, wt, b = (rng.standard_normal(s) for s in ((n, c, h, w), (f, c, fh, fw), (f,)))
    oh, ow = h + 2 * pad - fh + 1, w + 2 * pad - fw + 1
    if oh < 1 or ow < 1:
        out = np.empty((n, f, max(oh, 1), max(ow, 1)), np.float32)
        with pytest.raises(ValueError, match="smaller than the"):
            _direct.forward(x.astype(np.float32), wt.astype(np.float32), b.astype(np.float32),
                            out, pad, threads)
        return
    dout = rng.standard_normal((n, f, oh, ow))
    # measured against the sums of |terms| (check_float32): the tiny fuzzed shapes make sums
    # that cancel
    scales = _exact(*(np.abs(a) for a in (x, wt, b, dout)), pad)
    for got, want, scale, what in zip(_entries(x, wt, b, dout, pad, threads),
                                      _exact(x, wt, b, dout, pad), scales,
                                      ("forward", "dw", "db"), strict=True):
        check_float32(got, want, what, TOL, scale)


def _args32(n=2, c=3, h=6, w=7, f=4, ksize=(3, 2), pad=1):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((f, c, *ksize)).astype(np.float32)
    return {"x": x, "w": wt, "b": np.zeros(f, np.float32),
            "out": np.empty(_out_shape(x.shape, f, ksize, pad), np.float32),
            "pad": pad, "num_threads": 1}


@pytest.mark.parametrize("change, match", [
    (lambda a: {**a, "w": a["w"][:, :2].copy()}, "w must have shape"),
    (lambda a: {**a, "w": np.zeros((0, 3, 3, 2), np.float32)}, "w must have shape"),
    (lambda a: {**a, "b": np.zeros(5, np.float32)}, "b must have shape"),
    (lambda a: {**a, "out": np.zeros((2, 4, 6, 7), np.float32)}, "out must have shape"),
    (lambda a: {**a, "pad": -1}, "pad must be >= 0"),
    (lambda a: {**a, "w": np.zeros((4, 3, 9, 2), np.float32)}, "smaller than the 9x2 kernel"),
    (lambda a: {**a, "num_threads": 0}, "num_threads must be >= 1"),
    (lambda a: {**a, "x": np.zeros((2, 3, 0, 7), np.float32)}, "positive sizes"),
    (lambda a: {**a, "x": a["x"].astype(np.float64)}, "dtype mismatch"),
    (lambda a: {**a, "x": np.asfortranarray(a["x"])}, "contiguous"),
    (lambda a: {**a, "out": a["out"].astype(np.float64)}, "dtype mismatch"),
])
def test_forward_entry_rejects_bad_input(change, match):
    a = change(_args32())
    with pytest.raises(ValueError, match=match):
        _direct.forward(a["x"], a["w"], a["b"], a["out"], a["pad"], a["num_threads"])


@pytest.mark.parametrize("change, match", [
    (lambda a: {**a, "dout": a["dout"][:, :3].copy()}, "dout must have shape"),
    (lambda a: {**a, "dout": np.zeros((2, 4, 6, 5), np.float32)}, "dout must have shape"),
    (lambda a: {**a, "dw": np.zeros((4, 2, 3, 2), np.float32)}, "w must have shape"),
    (lambda a: {**a, "db": np.zeros(3, np.float32)}, "db must have shape"),
    (lambda a: {**a, "pad": -2}, "pad must be >= 0"),
    (lambda a: {**a, "num_threads": -1}, "num_threads must be >= 1"),
    (lambda a: {**a, "dout": np.asfortranarray(a["dout"])}, "contiguous"),
    (lambda a: {**a, "db": a["db"].astype(np.float64)}, "dtype mismatch"),
])
def test_backward_entry_rejects_bad_input(change, match):
    base = _args32()
    a = change({"dout": np.zeros_like(base["out"]), "x": base["x"],
                "dw": np.empty_like(base["w"]), "db": np.empty_like(base["b"]),
                "pad": base["pad"], "num_threads": 1})
    with pytest.raises(ValueError, match=match):
        _direct.backward_weights(a["dout"], a["x"], a["dw"], a["db"], a["pad"],
                                 a["num_threads"])


def test_entries_refuse_to_run_without_avx512(monkeypatch):
    """AVAILABLE False (a CPU without AVX-512F): the entries raise instead of running."""
    monkeypatch.setattr(_direct, "AVAILABLE", False)
    a = _args32()
    with pytest.raises(RuntimeError, match="AVX-512F"):
        _direct.forward(a["x"], a["w"], a["b"], a["out"], a["pad"], a["num_threads"])
    with pytest.raises(RuntimeError, match="AVX-512F"):
        _direct.backward_weights(np.zeros_like(a["out"]), a["x"], np.empty_like(a["w"]),
                                 np.empty_like(a["b"]), a["pad"], a["num_threads"])
