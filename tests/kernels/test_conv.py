"""The convolution kernels: naive, vectorized and compiled im2col/col2im/conv forward/backward
agree (float64 relative error < 1e-9) over strides 1-3, padding 0-3, dilation 1-2, non-square
kernels and inputs, batch 1, one channel, one filter and non-contiguous input; the compiled
chunked path agrees whatever the chunk size; gradients match centred differences and PyTorch;
im2col and col2im are adjoint; bad input is a clear error naming the argument."""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnn.gradient_check import eval_numerical_gradient_array
from fastnn.kernels import available_impls
from fastnn.kernels import conv as K

IMPLS = available_impls("conv_forward")
# (N, C, H, W), (F, HH, WW), stride, pad, dilation: every case tiles exactly
CASES = [
    ((2, 3, 7, 7), (4, 3, 3), 1, 1, 1),
    ((1, 1, 5, 8), (1, 2, 3), 1, 0, 1),       # N = C = F = 1, non-square kernel and input
    ((2, 2, 9, 7), (3, 3, 3), 2, 1, 1),       # stride 2
    ((2, 3, 8, 10), (2, 2, 4), 3, 3, 1),      # stride 3, pad 3
    ((3, 2, 9, 7), (2, 3, 2), 2, 2, 2),       # dilation 2
    ((1, 3, 6, 9), (5, 1, 1), 1, 0, 1),       # 1x1 (the GEMM path)
    ((2, 4, 5, 5), (3, 1, 1), 2, 2, 1),       # 1x1 with stride and padding (im2col path)
    ((2, 2, 4, 6), (2, 4, 6), 1, 0, 1),       # kernel as large as the input: 1x1 output
    ((1, 2, 7, 5), (3, 2, 3), 1, 2, 2),       # dilated, padded, non-square
]
IDS = [f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}-d{c[4]}" for c in CASES]
TOL64 = {"rtol": 1e-9, "atol": 1e-12}
# float32 against the float64 result: sums of C*HH*WW products of O(1) numbers
TOL32 = {"rtol": 2e-4, "atol": 2e-5}


def _problem(case, dtype=np.float64, seed=0):
    (n, c, h, w), (f, hh, ww), stride, pad, dil = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((f, c, hh, ww)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    out_h = (h + 2 * pad - dil * (hh - 1) - 1) // stride + 1
    out_w = (w + 2 * pad - dil * (ww - 1) - 1) // stride + 1
    dout = rng.standard_normal((n, f, out_h, out_w)).astype(dtype)
    return x, wt, b, dout, stride, pad, dil


def _close(a, b, **tol):
    np.testing.assert_allclose(a, b, **(tol or TOL64))


def test_every_operation_has_three_implementations():
    for op in ("im2col", "col2im", "conv_forward", "conv_backward"):
        assert {"naive", "vectorized"} <= set(available_impls(op))
    assert "compiled" in IMPLS, "fastnn._ext._conv is not built"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_implementations_agree(case):
    x, w, b, dout, s, p, d = _problem(case)
    ref = K.conv_forward(x, w, b, s, p, d, impl="naive")
    ref_dx, ref_dw, ref_db = K.conv_backward(dout, x, w, s, p, d, impl="naive")
    for impl in IMPLS:
        _close(K.conv_forward(x, w, b, s, p, d, impl=impl), ref)
        dx, dw, db = K.conv_backward(dout, x, w, s, p, d, impl=impl)
        _close(dx, ref_dx)
        _close(dw, ref_dw)
        _close(db, ref_db)
        none, dw2, db2 = K.conv_backward(dout, x, w, s, p, d, need_dx=False, impl=impl)
        assert none is None
        _close(dw2, ref_dw)
        _close(db2, ref_db)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_im2col_col2im_agree_and_are_adjoint(case):
    x, w, _, _, s, p, d = _problem(case)
    hh, ww = w.shape[2:]
    ref = K.im2col(x, hh, ww, p, s, d, impl="naive")
    rng = np.random.default_rng(1)
    c = rng.standard_normal(ref.shape)
    ref_back = K.col2im(c, x.shape, hh, ww, p, s, d, impl="naive")
    for impl in available_impls("im2col"):
        cols = K.im2col(x, hh, ww, p, s, d, impl=impl)
        assert cols.shape == (x.shape[1] * hh * ww, ref.shape[1])
        _close(cols, ref)
        back = K.col2im(c, x.shape, hh, ww, p, s, d, impl=impl)
        _close(back, ref_back)
        # <col2im(c), x> == <c, im2col(x)>
        assert np.isclose(np.vdot(back, x), np.vdot(c, cols), rtol=1e-12, atol=1e-12)


def test_im2col_layout_is_cs231n():
    x = np.arange(2 * 1 * 3 * 3, dtype=np.float64).reshape(2, 1, 3, 3)
    for impl in available_impls("im2col"):
        cols = K.im2col(x, 2, 2, 0, 1, impl=impl)  # 4 rows, 4 positions x 2 images
        # column (oh*W' + ow)*N + n, row i*fw + j
        assert cols[0, 0] == x[0, 0, 0, 0] and cols[0, 1] == x[1, 0, 0, 0]
        assert cols[3, 2] == x[0, 0, 1, 2] and cols[1, 7] == x[1, 0, 1, 2]


@pytest.mark.parametrize("case", CASES[:5], ids=IDS[:5])
def test_noncontiguous_and_float32(case):
    x, w, b, dout, s, p, d = _problem(case)
    # strided views of the same values
    xs = np.repeat(x, 2, axis=3)[..., ::2]
    ws = np.asfortranarray(w)
    ds = np.repeat(dout, 2, axis=2)[:, :, ::2]
    assert not xs.flags.c_contiguous and not ds.flags.c_contiguous
    want = K.conv_forward(x, w, b, s, p, d, impl="vectorized")
    want_grads = K.conv_backward(dout, x, w, s, p, d, impl="vectorized")
    for impl in IMPLS:
        _close(K.conv_forward(xs, ws, b, s, p, d, impl=impl), want)
        for got, ref in zip(K.conv_backward(ds, xs, ws, s, p, d, impl=impl), want_grads):
            _close(got, ref)
        out32 = K.conv_forward(x.astype(np.float32), w.astype(np.float32),
                               b.astype(np.float32), s, p, d, impl=impl)
        assert out32.dtype == np.float32
        _close(out32, want, **TOL32)
        grads32 = K.conv_backward(dout.astype(np.float32), x.astype(np.float32),
                                  w.astype(np.float32), s, p, d, impl=impl)
        for got, ref in zip(grads32, want_grads):
            assert got.dtype == np.float32
            _close(got, ref, **TOL32)


@pytest.mark.parametrize("kernel", [(3, 3, 2), (3, 1, 1)], ids=["3x2", "1x1"])
@pytest.mark.parametrize("workspace", [1, 3000, 1 << 14])
def test_compiled_chunks_agree(monkeypatch, workspace, kernel):
    """Workspaces of one image per chunk, several images with a short last chunk, and more."""
    if "compiled" not in IMPLS:
        pytest.skip("compiled conv not built")
    monkeypatch.setattr(K, "WORKSPACE_BYTES", workspace)
    pad = 1 if kernel[1] > 1 else 0
    x, w, b, dout, s, p, d = _problem(((7, 2, 6, 5), kernel, 1, pad, 1), seed=3)
    _close(K.conv_forward(x, w, b, s, p, d, impl="compiled"),
           K.conv_forward(x, w, b, s, p, d, impl="vectorized"))
    for got, ref in zip(K.conv_backward(dout, x, w, s, p, d, impl="compiled"),
                        K.conv_backward(dout, x, w, s, p, d, impl="vectorized")):
        _close(got, ref)


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[5]], ids=[IDS[0], IDS[4], IDS[5]])
def test_gradients_match_centred_differences(case):
    x, w, b, dout, s, p, d = _problem(case)
    dx, dw, db = K.conv_backward(dout, x, w, s, p, d)
    num_dx = eval_numerical_gradient_array(lambda _: K.conv_forward(x, w, b, s, p, d), x, dout)
    num_dw = eval_numerical_gradient_array(lambda _: K.conv_forward(x, w, b, s, p, d), w, dout)
    num_db = eval_numerical_gradient_array(lambda _: K.conv_forward(x, w, b, s, p, d), b, dout)
    _close(dx, num_dx, rtol=1e-6, atol=1e-8)
    _close(dw, num_dw, rtol=1e-6, atol=1e-8)
    _close(db, num_db, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    x, w, b, dout, s, p, d = _problem(case)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    out = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d)
    out.backward(torch.tensor(dout))
    for impl in IMPLS:
        _close(K.conv_forward(x, w, b, s, p, d, impl=impl), out.detach().numpy())
        dx, dw, db = K.conv_backward(dout, x, w, s, p, d, impl=impl)
        _close(dx, xt.grad.numpy())
        _close(dw, wt.grad.numpy())
        _close(db, bt.grad.numpy())


def test_irrelevant_huge_stride_and_dilation_are_accepted():
    x, w, b, _, _, _, _ = _problem(((2, 2, 4, 6), (2, 4, 6), 1, 0, 1))
    ref = K.conv_forward(x, w, b, impl="naive")
    for impl in IMPLS:  # one output position: the stride never applies
        _close(K.conv_forward(x, w, b, 10**12, 0, impl=impl), ref)
    x, w, b, _, _, _, _ = _problem(((1, 3, 6, 9), (5, 1, 1), 1, 0, 1))
    ref = K.conv_forward(x, w, b, impl="naive")
    for impl in IMPLS:  # a 1x1 kernel has no taps to dilate
        _close(K.conv_forward(x, w, b, 1, 0, 10**12, impl=impl), ref)


# ------------------------------------------------------------------------------ bad input
def _ok():
    x, w, b, dout, _, _, _ = _problem(CASES[0])
    return x, w, b, dout


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("change", "match"), [
    (lambda x, w, b: (x[0], w, b, 1, 1), "x must be a 4-D"),
    (lambda x, w, b: (x, w[0], b, 1, 1), "w must be a 4-D"),
    (lambda x, w, b: (x, w[:, :2], b, 1, 1), "w must have the 3 input channels"),
    (lambda x, w, b: (x, w, b[:2], 1, 1), r"b must have shape \(4,\)"),
    (lambda x, w, b: (x, w, b, 0, 1), "stride must be >= 1"),
    (lambda x, w, b: (x, w, b, 1, -1), "pad must be >= 0"),
    (lambda x, w, b: (x, w, b, 1.5, 1), "stride must be an integer"),
    (lambda x, w, b: (x, np.ones((2, 3, 10, 3)), b[:2], 1, 1), "kernel larger than the padded"),
    (lambda x, w, b: (x, w, b, 3, 0), (r"\(H \+ 2\*pad - HH\) / stride \+ 1 = "
                                       r"\(7 \+ 2\*0 - 3\) / 3 \+ 1 = 2.33333 is not")),
    (lambda x, w, b: (x.astype(complex), w, b, 1, 1), "x must be real"),
    (lambda x, w, b: (x.astype(str), w, b, 1, 1), "x must be numeric"),
    (lambda x, w, b: (x, w, b, 1, 10**9), "pad is too large"),
])
def test_forward_bad_input(impl, change, match):
    x, w, b, _ = _ok()
    with pytest.raises((ValueError, TypeError), match=match):
        K.conv_forward(*change(x, w, b), impl=impl)


def test_dilation_that_does_not_fit_names_dilation():
    x, w, b, _ = _ok()
    with pytest.raises(ValueError, match="dilation"):
        K.conv_forward(x, w, b, 1, 0, 4)
    with pytest.raises(ValueError, match="dilation must be >= 1"):
        K.conv_forward(x, w, b, 1, 0, 0)


@pytest.mark.parametrize("impl", available_impls("conv_backward"))
def test_backward_bad_input(impl):
    x, w, _, dout = _ok()
    with pytest.raises(ValueError, match="dout must have the shape"):
        K.conv_backward(dout[:, :2], x, w, 1, 1, impl=impl)
    with pytest.raises(TypeError, match="need_dx must be a bool"):
        K.conv_backward(dout, x, w, 1, 1, need_dx="yes", impl=impl)


@pytest.mark.parametrize("impl", available_impls("col2im"))
def test_im2col_col2im_bad_input(impl):
    x, _, _, _ = _ok()
    with pytest.raises(ValueError, match="field_height must be >= 1"):
        K.im2col(x, 0, 3, 1, 1, impl=impl)
    with pytest.raises(ValueError, match=r"\(W \+ 2\*padding - field_width\) / stride"):
        K.im2col(x, 3, 2, 0, 2, impl=impl)
    cols = K.im2col(x, 3, 3, 1, 1, impl=impl)
    with pytest.raises(ValueError, match="cols must have shape"):
        K.col2im(cols[:, 1:], x.shape, 3, 3, 1, 1, impl=impl)
    with pytest.raises(ValueError, match="x_shape must be a tuple of 4 ints"):
        K.col2im(cols, x.shape[1:], 3, 3, 1, 1, impl=impl)
    with pytest.raises(ValueError, match=r"x_shape\[0\] must be >= 1"):
        K.col2im(cols, (0, *x.shape[1:]), 3, 3, 1, 1, impl=impl)


def test_extension_rejects_bad_geometry_before_computing():
    if "compiled" not in IMPLS:
        pytest.skip("compiled conv not built")
    x = np.zeros((2, 1, 4, 4))
    cols = np.zeros((4, 9 * 2))
    ext = K._ext
    with pytest.raises(ValueError, match="does not match"):  # wrong output size
        ext.im2col(x, cols, 0, 2, 2, 2, 0, 1, 1, 4, 3, 1, 2, 1)
    with pytest.raises(ValueError, match="too few"):  # columns past the end
        ext.im2col(x, cols, 0, 2, 2, 2, 0, 1, 1, 3, 3, 1, 3, 1)
    with pytest.raises(ValueError, match="image range"):
        ext.col2im(cols, x, 1, 3, 2, 2, 0, 1, 1, 3, 3, 1, 2, 1)
    with pytest.raises(ValueError, match="num_threads"):
        ext.im2col(x, cols, 0, 2, 2, 2, 0, 1, 1, 3, 3, 1, 2, 0)
    with pytest.raises(ValueError, match="rows"):
        ext.im2col(x, cols[:3], 0, 2, 2, 2, 0, 1, 1, 3, 3, 1, 2, 1)


# ------------------------------------------------------------------------------- fuzzing
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 2), c=st.integers(1, 3), f=st.integers(1, 3), h=st.integers(1, 7),
       w=st.integers(1, 7), hh=st.integers(1, 3), ww=st.integers(1, 3), stride=st.integers(1, 3),
       pad=st.integers(0, 2), dil=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_fuzz_against_the_looped_twin(n, c, f, h, w, hh, ww, stride, pad, dil, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((f, c, hh, ww))
    b = rng.standard_normal(f)
    try:
        ref = K.conv_forward(x, wt, b, stride, pad, dil, impl="naive")
    except ValueError as exc:  # sizes that do not tile: every implementation says so
        for impl in IMPLS:
            with pytest.raises(ValueError, match=re.escape(str(exc))):
                K.conv_forward(x, wt, b, stride, pad, dil, impl=impl)
        return
    dout = rng.standard_normal(ref.shape)
    ref_grads = K.conv_backward(dout, x, wt, stride, pad, dil, impl="naive")
    for impl in IMPLS:
        _close(K.conv_forward(x, wt, b, stride, pad, dil, impl=impl), ref)
        for got, want in zip(K.conv_backward(dout, x, wt, stride, pad, dil, impl=impl),
                             ref_grads):
            _close(got, want)


# ------------------------------------------------ the compiled AVX-512 float32 product
# (N, C, H, W), (F, HH, WW), stride, pad: widths the compiled product takes (chunk columns a
# multiple of 32; F = 32 also puts dw on it) and widths it does not (the BLAS fallback)
GEMM_CASES = [
    ((3, 5, 8, 8), (32, 3, 3), 1, 1),    # forward, dcols and dw on the compiled product
    ((2, 4, 8, 8), (7, 3, 3), 1, 1),     # F = 7: dw on BLAS, the others compiled
    ((2, 6, 8, 4), (32, 1, 1), 1, 0),    # 1x1: one compiled product per image
    ((3, 2, 5, 5), (32, 3, 3), 1, 1),    # 25 positions: chunks of 32 images would be needed
    ((2, 3, 9, 7), (5, 3, 3), 2, 1),     # odd widths everywhere: all on BLAS
]
GEMM_IDS = ["3x3-F32", "3x3-F7", "1x1", "odd-positions", "odd"]


class _CountingGemm:
    """Stands in for fastnn._ext._gemm, counting the compiled products it runs."""

    def __init__(self, ext):
        self.ext, self.calls = ext, 0
        self.SGEMM_AVAILABLE, self.SGEMM_COLUMNS = ext.SGEMM_AVAILABLE, ext.SGEMM_COLUMNS

    def sgemm(self, *args):
        self.calls += 1
        return self.ext.sgemm(*args)

    def sgemm_jobs(self, jobs, threads):
        self.calls += len(jobs)
        return self.ext.sgemm_jobs(jobs, threads)


def _gemm_problem(case, seed):
    (n, c, h, w), (f, hh, ww), stride, pad = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((f, c, hh, ww)) / np.sqrt(c * hh * ww)
    b = rng.standard_normal(f)
    oh, ow = (h + 2 * pad - hh) // stride + 1, (w + 2 * pad - ww) // stride + 1
    dout = rng.standard_normal((n, f, oh, ow))
    return x, wt, b, dout, stride, pad


@pytest.mark.skipif("compiled" not in IMPLS, reason="fastnn._ext._conv not built")
@pytest.mark.parametrize("available", [True, False], ids=["avx512", "blas"])
@pytest.mark.parametrize("case", GEMM_CASES, ids=GEMM_IDS)
def test_float32_on_the_compiled_product_matches_float64(monkeypatch, case, available):
    """float32 compiled conv forward/backward (on the AVX-512 product where shapes allow, or
    with it switched off: the BLAS fallback) against the float64 NumPy twin; small workspaces
    make several chunks, the last one partial."""
    from fastnn.kernels import _gemm

    if available and not _gemm.AVAILABLE:
        pytest.skip("the compiled product needs fastnn._ext._gemm and AVX-512F")
    if available:
        monkeypatch.setattr(_gemm, "_ext", _CountingGemm(_gemm._ext))
    else:
        monkeypatch.setattr(_gemm, "AVAILABLE", False)
    # the chunked im2col path's products (3x3 stride-1 float32 would go to Winograd, float32
    # on AVX-512 to one image per thread: their own tests)
    monkeypatch.setattr(K, "WINOGRAD", False)
    monkeypatch.setattr(K, "PER_IMAGE", False)
    monkeypatch.setattr(K, "DIRECT", False)   # few channels: test_conv_direct
    x, wt, b, dout, stride, pad = _gemm_problem(case, seed=len(case[0]))
    want_out = K.conv_forward(x, wt, b, stride, pad, impl="vectorized")
    want = K.conv_backward(dout, x, wt, stride, pad, impl="vectorized")
    f32 = [a.astype(np.float32) for a in (x, wt, b, dout)]
    for workspace in (1 << 12, 1 << 22):
        monkeypatch.setattr(K, "WORKSPACE_BYTES", workspace)
        out = K.conv_forward(*f32[:3], stride, pad, impl="compiled")
        got = K.conv_backward(f32[3], *f32[:2], stride, pad, impl="compiled")
        assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in got)
        _close(out, want_out, **TOL32)
        for g, w in zip(got, want, strict=True):
            _close(g, w, rtol=2e-4, atol=2e-4 * max(1.0, np.abs(w).max()))
    if available:
        # every case but the all-odd one puts some product on the compiled kernel
        assert (_gemm._ext.calls > 0) == (case is not GEMM_CASES[-1])


def test_chunks_are_whole_tiles_of_the_compiled_product(monkeypatch):
    """Chunk columns (images times positions) are a multiple of 32 when the workspace allows
    more than one tile's worth of images; otherwise as many images as fit."""
    from fastnn.kernels._conv_geometry import check_conv_forward

    x, w, b = np.zeros((100, 2, 5, 5)), np.zeros((3, 2, 3, 3)), np.zeros(3)
    g = check_conv_forward("compiled", x, w, b, 1, 1)[-1]
    per_image = g.rows * g.positions * 8
    for images, want in ((1, 1), (20, 20), (40, 32), (70, 64), (1000, 100)):
        monkeypatch.setattr(K, "WORKSPACE_BYTES", images * per_image)
        chunk = K._chunk(100, g, 8)
        assert chunk == want


# --------------------------------------- float32 with one image per thread (_conv *_images)
IMAGE_CASES = GEMM_CASES + [
    ((2, 3, 32, 32), (32, 7, 7), 1, 3),   # the 7x7 first layer of issue 8, two images
    ((3, 4, 9, 8), (40, 3, 2), 2, 1),     # F = 40: dw's padded columns; 5x5 positions
]


@pytest.mark.skipif("compiled" not in IMPLS, reason="fastnn._ext._conv not built")
@pytest.mark.parametrize("case", IMAGE_CASES, ids=GEMM_IDS + ["7x7", "F40-stride2"])
def test_float32_one_image_per_thread_matches_float64(monkeypatch, case):
    """The per-image float32 path (im2col of one image, its product and col2im on one thread)
    against the float64 NumPy twin, 1x1 cases excepted (one product per image, no im2col)."""
    from fastnn.kernels import _gemm

    if not (_gemm.AVAILABLE and K._ext.SGEMM_AVAILABLE):
        pytest.skip("the per-image path needs the AVX-512 product")
    monkeypatch.setattr(K, "WINOGRAD", False)
    monkeypatch.setattr(K, "DIRECT", False)   # few channels: test_conv_direct
    x, wt, b, dout, stride, pad = _gemm_problem(case, seed=7)
    g = K.CONV_FORWARD.check("compiled", x.astype(np.float32), wt.astype(np.float32),
                             b.astype(np.float32), stride, pad)[-1]
    assert K._per_image(np.zeros(1, np.float32), g) == (not K._is_gemm(g))
    want_out = K.conv_forward(x, wt, b, stride, pad, impl="vectorized")
    want = K.conv_backward(dout, x, wt, stride, pad, impl="vectorized")
    f32 = [a.astype(np.float32) for a in (x, wt, b, dout)]
    out = K.conv_forward(*f32[:3], stride, pad, impl="compiled")
    got = K.conv_backward(f32[3], *f32[:2], stride, pad, impl="compiled")
    _close(out, want_out, **TOL32)
    for gv, w in zip(got, want, strict=True):
        _close(gv, w, rtol=2e-4, atol=2e-4 * max(1.0, np.abs(w).max()))
    none_dx, dw, _ = K.conv_backward(f32[3], *f32[:2], stride, pad, need_dx=False,
                                     impl="compiled")
    assert none_dx is None
    # the same sums, perhaps added in another order (which thread took which image)
    np.testing.assert_allclose(dw, got[1], rtol=1e-5, atol=1e-5 * np.abs(got[1]).max())


@pytest.mark.skipif("compiled" not in IMPLS, reason="fastnn._ext._conv not built")
def test_one_image_per_thread_entries_reject_bad_input():
    ext = K._ext
    if not ext.SGEMM_AVAILABLE:
        pytest.skip("the per-image entries need AVX-512F")
    x = np.zeros((2, 3, 8, 8), np.float32)
    w2 = np.zeros((4, 27), np.float32)
    out = np.zeros((2, 4, 8, 8), np.float32)
    with pytest.raises(ValueError, match="cols must have 27 rows"):
        ext.conv_forward_images(x, w2[:, :20].copy(), np.zeros(4, np.float32), out, 3, 3, 1,
                                1, 1, 2)
    with pytest.raises(ValueError, match="b must have shape"):
        ext.conv_forward_images(x, w2, np.zeros(3, np.float32), out, 3, 3, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="out must have shape"):
        ext.conv_forward_images(x, w2, np.zeros(4, np.float32), out[:, :, :7].copy(), 3, 3, 1,
                                1, 1, 2)
    with pytest.raises(ValueError, match="num_threads"):
        ext.conv_forward_images(x, w2, np.zeros(4, np.float32), out, 3, 3, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="dout must have shape"):
        ext.conv_dw_images(out[:, :, :7].copy(), x, np.zeros((27, 4), np.float32), 3, 3, 1, 1,
                           1, 2)
    with pytest.raises(ValueError, match="dout must have shape"):
        ext.conv_dx_images(out[:, :3].copy(), w2, x.copy(), 3, 3, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="dtype mismatch"):
        ext.conv_dx_images(out.astype(np.float64), w2, x.copy(), 3, 3, 1, 1, 1, 2)
