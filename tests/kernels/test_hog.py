"""The "hog" kernel: naive, vectorized and compiled agree; known properties; CS231n's output;
bad input; a hypothesis fuzz of the compiled kernel.

Tolerances: float64 results of the three implementations agree to 1e-9 absolute (in practice
they are bit-identical: same arithmetic, same summation order). float32 input is computed in
float64 and rounded once, so it matches the float64 result to rtol 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastnn.bench._reference import cs231n_hog_feature
from fastnn.kernels import available_impls
from fastnn.kernels.hog import (
    MAX_ABS_PIXEL,
    axis_cell_map,
    cell_windows,
    hog_descriptors,
    hog_num_features,
)

IMPLS = available_impls("hog")
ATOL64 = 1e-9
RTOL32 = 1e-6


def run_all(images, ppc=8, orientations=9):
    return {impl: hog_descriptors(images, ppc, orientations, impl=impl) for impl in IMPLS}


def assert_all_agree(images, ppc=8, orientations=9):
    results = run_all(images, ppc, orientations)
    ref = results["naive"]
    for impl, out in results.items():
        assert out.shape == ref.shape, impl
        assert out.dtype == ref.dtype, impl
        np.testing.assert_allclose(out, ref, rtol=0, atol=ATOL64, err_msg=impl)
    return ref


def test_three_impls_registered():
    assert set(IMPLS) == {"naive", "vectorized", "compiled"}


@pytest.mark.parametrize(
    "shape, ppc, orientations",
    [
        ((3, 32, 32, 3), 8, 9),  # CS231n's case
        ((1, 32, 32, 3), 8, 9),  # batch 1
        ((2, 28, 28, 1), 4, 9),  # Fashion-MNIST layout
        ((2, 28, 28), 7, 9),  # odd cell size: shifted windows reflect at the border
        ((3, 29, 31), 3, 7),  # odd sizes, not multiples of the cell
        ((2, 17, 23, 3), 5, 4),  # 4 bins: an edge at 90 degrees (gy == 0)
        ((2, 9, 13, 4), 2, 6),  # RGBA (alpha ignored)
        ((2, 6, 5), 1, 1),  # one-pixel cells, one bin
        ((1, 5, 7, 3), 5, 12),  # one cell row
        ((2, 1, 1), 1, 9),  # a 1x1 image
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8])
def test_impls_agree_random(rng, shape, ppc, orientations, dtype):
    x = rng.uniform(0, 255, size=shape)
    x = np.round(x).astype(dtype) if dtype == np.uint8 else x.astype(dtype)
    out = assert_all_agree(x, ppc, orientations)
    h, w = shape[1], shape[2]
    assert out.shape == (shape[0], hog_num_features(h, w, ppc, orientations))
    assert out.dtype == (np.float32 if dtype == np.float32 else np.float64)


def test_float32_matches_float64_to_rounding(rng):
    x = rng.uniform(0, 255, size=(4, 32, 32, 3)).astype(np.float32)
    ref = hog_descriptors(x.astype(np.float64), impl="naive")
    for impl in IMPLS:
        out = hog_descriptors(x, impl=impl)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, ref, rtol=RTOL32, atol=0, err_msg=impl)


def test_integer_images_with_flat_regions(rng):
    """uint8 pictures have many exact zeros in gx and gy: CS231n's vertical-gradient corner
    cases (theta rounding to exactly 0 or 180) must be handled identically everywhere."""
    x = rng.integers(0, 256, size=(4, 24, 24, 3)).astype(np.uint8)
    x[:, :, 5:12] = x[:, :, 5:6]  # flat columns: gx == 0 with gy != 0
    x[:, 3:9] = x[:, 3:4]  # flat rows: gy == 0
    x[0] = 7  # constant image
    gray = rng.integers(0, 20, size=(3, 24, 24)).astype(np.float64)  # small vertical steps
    gray[:, :, ::2] = gray[:, :, 1::2]
    assert_all_agree(x)
    assert_all_agree(gray, 4, 9)
    assert_all_agree(gray, 3, 4)


def test_noncontiguous_inputs(rng):
    base = rng.uniform(0, 255, size=(6, 40, 34, 3))
    views = [
        base[::2, ::2, ::2],  # strided in every axis
        base[:, 3:35, 1:33, ::-1],  # reversed channels
        np.asfortranarray(base),
        base[..., 1],  # gray view of one channel
        base.transpose(0, 2, 1, 3),  # swapped H and W
    ]
    for view in views:
        ref = hog_descriptors(np.ascontiguousarray(view), 4, 9, impl="naive")
        for impl in IMPLS:
            np.testing.assert_allclose(
                hog_descriptors(view, 4, 9, impl=impl), ref, rtol=0, atol=ATOL64
            )


def test_gray_layouts_are_equivalent(rng):
    x = rng.uniform(0, 255, size=(3, 20, 20))
    for impl in IMPLS:
        a = hog_descriptors(x, 4, impl=impl)
        b = hog_descriptors(x[..., None], 4, impl=impl)
        np.testing.assert_array_equal(a, b)


def test_thread_count_does_not_change_result(rng):
    x = rng.uniform(0, 255, size=(1100, 16, 16, 3))  # enough pixels for 4 threads
    ref = hog_descriptors(x, 4, impl="compiled", num_threads=1)
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(
            hog_descriptors(x, 4, impl="compiled", num_threads=threads), ref
        )


@pytest.mark.parametrize("ppc, size", [(8, 32), (4, 28), (7, 28), (3, 28), (5, 32), (2, 9)])
def test_matches_cs231n_code(rng, ppc, size):
    pytest.importorskip("scipy")
    assert size % ppc <= round(ppc / 2)  # where CS231n's own code runs
    imgs = rng.uniform(0, 255, size=(3, size, size, 3))
    imgs[1, :, 10:20] = imgs[1, :, 10:11]  # gx == 0 columns
    imgs[2] = np.round(imgs[2])
    for impl in IMPLS:
        ours = hog_descriptors(imgs, ppc, 9, impl=impl)
        for i, im in enumerate(imgs):
            np.testing.assert_allclose(ours[i], cs231n_hog_feature(im, ppc), rtol=0, atol=1e-9)


def test_matches_cs231n_on_real_cifar_sample(samples_dir):
    pytest.importorskip("scipy")
    from fastnn.data import load_CIFAR10

    x_train, _, _, _ = load_CIFAR10(samples_dir / "cifar-10-batches-py")
    imgs = x_train[:60]
    ref = np.stack([cs231n_hog_feature(im) for im in imgs])
    for impl in ("vectorized", "compiled"):
        np.testing.assert_allclose(hog_descriptors(imgs, impl=impl), ref, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Known properties, stated without reference to any implementation
# ---------------------------------------------------------------------------------------------


def test_constant_image_gives_zeros():
    for impl in IMPLS:
        out = hog_descriptors(np.full((2, 16, 16, 3), 77.0), 4, impl=impl)
        np.testing.assert_array_equal(out, 0.0)


def test_horizontal_gradient_goes_to_the_90_degree_bin():
    """Brightness rising to the right: gx = a, gy = 0, so theta = atan2(0, a) + 90 = 90 degrees
    (CS231n adds 90), bin 4 of 9 ([80, 100)). Every cell averages a over its pixels, except that
    the last column has gx = 0 (np.diff padding), so the right-most cells get a * 7 / 8."""
    a = 3.0
    img = a * np.tile(np.arange(32.0), (32, 1))
    for impl in IMPLS:
        hist = hog_descriptors(img[None], 8, 9, impl=impl)[0].reshape(4, 4, 9)  # (col, row, bin)
        assert np.all(np.delete(hist, 4, axis=2) == 0)
        np.testing.assert_allclose(hist[:3, :, 4], a, rtol=1e-12)
        np.testing.assert_allclose(hist[3, :, 4], a * 7 / 8, rtol=1e-12)


def test_leftward_gradients_are_not_counted():
    """CS231n counts only gradients with gx + 1e-15 > 0: theta of a leftward gradient lies in
    (180, 270] or [-90, 0), outside every bin."""
    img = -np.tile(np.arange(24.0), (24, 1))
    for impl in IMPLS:
        np.testing.assert_array_equal(hog_descriptors(img[None], 8, 9, impl=impl), 0.0)


def test_vertical_gradient_goes_to_the_0_degree_bin():
    """Brightness rising upwards by 1 per row (gy = -1, gx = 0): theta = -90 + 90 = 0 up to
    atan2's rounding with CS231n's 1e-15, i.e. 5.7e-14 > 0, which lands in bin 0 ([0, 20))."""
    img = -np.tile(np.arange(16.0)[:, None], (1, 16))
    for impl in IMPLS:
        hist = hog_descriptors(img[None], 4, 9, impl=impl)[0].reshape(4, 4, 9)
        assert np.all(hist[:, :, 1:] == 0)
        np.testing.assert_allclose(hist[:, :3, 0], 1.0, rtol=1e-12)
        np.testing.assert_allclose(hist[:, 3, 0], 0.75, rtol=1e-12)  # last row: gy = 0


def test_diagonal_gradient_goes_to_the_135_degree_bin():
    """gx = gy = 2: theta = 45 + 90 = 135 degrees, bin 6 ([120, 140)), magnitude 2 sqrt(2).
    (The 18x18 image leaves the last two rows/columns, where np.diff pads with 0, outside the
    4x4 cells.)"""
    r, c = np.mgrid[0:18, 0:18].astype(np.float64)
    img = 2 * (r + c)
    for impl in IMPLS:
        hist = hog_descriptors(img[None], 4, 9, impl=impl)[0].reshape(4, 4, 9)
        assert np.all(np.delete(hist, 6, axis=2) == 0)
        np.testing.assert_allclose(hist[:, :, 6], 2 * np.sqrt(2), rtol=1e-12)


def test_histogram_is_linear_in_contrast(rng):
    """Scaling an image by a power of two scales gradients exactly, not their angles, so HOG
    scales too. (Away from the padded last row/column: there gx == 0 exactly and CS231n's
    vertical-gradient rounding depends on |gy|.)"""
    x = rng.uniform(0, 1, size=(2, 18, 18, 3))
    for impl in IMPLS:
        np.testing.assert_allclose(
            hog_descriptors(4 * x, 4, impl=impl), 4 * hog_descriptors(x, 4, impl=impl), rtol=1e-12
        )


def test_feature_layout_is_column_cell_major():
    """Feature (l * n_rows + k) * orientations + i belongs to column cell l and row cell k: an
    edge only in the top-right cell (rows 0-3, columns 12-15) appears at l = 3, k = 0."""
    img = np.zeros((12, 16))
    img[1:3, 13:15] = np.array([[1.0, 9.0], [1.0, 9.0]])
    for impl in IMPLS:
        out = hog_descriptors(img[None], 4, 9, impl=impl)[0].reshape(4, 3, 9)
        assert out[3, 0].sum() > 0
        assert out.sum() == out[3, 0].sum()


def test_cell_windows_match_cs231n_subsampling():
    # even cells: blocks; odd cells follow uniform_filter's centring and Python's rounding
    assert cell_windows(32, 8) == [list(range(k * 8, k * 8 + 8)) for k in range(4)]
    assert cell_windows(9, 3) == [[1, 2, 3], [4, 5, 6], [7, 8, 8]]  # round(1.5) == 2; reflect
    assert cell_windows(10, 5) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]  # round(2.5) == 2
    cell, mult = axis_cell_map(9, 3)
    assert cell.tolist() == [-1, 0, 0, 0, 1, 1, 1, 2, 2]
    assert mult.tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 2]


def test_edge_cases_of_the_orientation_rule():
    """Gradients exactly on a bin edge, exactly vertical, or with gx + 1e-15 == 0."""
    gray = np.zeros((1, 6, 8))
    gray[0, 1, :] = [0.0, -1e-15, 0.0, 1.0, 2.0, 2.0, 5.0, 3.0]
    gray[0, 2, :] = [3.0, 2.0 - 1e-15, 7.0, 8.0, 9.0, 10.0, 11.0, 11.0]
    gray[0, 3, :] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    gray[0, 4, :] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    for orientations in (1, 2, 3, 4, 8, 9):
        assert_all_agree(gray, 2, orientations)
    pytest.importorskip("scipy")
    for orientations in (4, 9):
        np.testing.assert_allclose(
            hog_descriptors(gray[:, :6, :6], 2, orientations, impl="compiled")[0],
            cs231n_hog_feature(gray[0, :6, :6], 2, orientations),
            atol=1e-12,
        )


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "images, kwargs, error, match",
    [
        (np.zeros((8, 8)), {}, ValueError, "3-D or 4-D"),
        (np.zeros((1, 8, 8, 3, 1)), {}, ValueError, "3-D or 4-D"),
        (np.zeros((0, 8, 8)), {}, ValueError, "must not be empty"),
        (np.zeros((2, 0, 8)), {}, ValueError, "must not be empty"),
        (np.zeros((2, 8, 8, 2)), {}, ValueError, "channels"),
        (np.full((1, 8, 8), np.nan), {}, ValueError, "NaN"),
        (np.full((1, 8, 8), np.inf), {}, ValueError, "infinity"),
        (np.full((1, 8, 8), 1e31), {}, ValueError, "magnitude"),
        (np.zeros((1, 8, 8)), {"pixels_per_cell": 0}, ValueError, "pixels_per_cell must be >= 1"),
        (np.zeros((1, 8, 8)), {"pixels_per_cell": -2}, ValueError, "pixels_per_cell"),
        (np.zeros((1, 8, 12)), {"pixels_per_cell": 9}, ValueError, r"8 x 12"),
        (np.zeros((1, 8, 8)), {"pixels_per_cell": 2.5}, TypeError, "pixels_per_cell"),
        (np.zeros((1, 8, 8)), {"pixels_per_cell": True}, TypeError, "pixels_per_cell"),
        (np.zeros((1, 8, 8)), {"orientations": 0}, ValueError, "orientations must be >= 1"),
        (np.zeros((1, 8, 8)), {"orientations": 361}, ValueError, "orientations must be <= 360"),
        (np.zeros((1, 8, 8), dtype=complex), {}, TypeError, "real"),
        (np.array([[["a"]]]), {}, TypeError, "numeric"),
        (np.zeros((1, 8, 8)), {"num_threads": 0}, ValueError, "num_threads"),
    ],
)
def test_bad_input(impl, images, kwargs, error, match):
    kwargs = {"pixels_per_cell": 4, **kwargs}
    with pytest.raises(error, match=match):
        hog_descriptors(images, impl=impl, **kwargs)


def test_bad_values_name_the_image_and_cover_every_pixel():
    x = np.zeros((5, 9, 9, 3))
    x[3, 8, 8, 1] = np.nan  # last row/column: outside every 4x4 cell, still rejected
    for impl in IMPLS:
        with pytest.raises(ValueError, match=r"images contains NaN \(image 3\)"):
            hog_descriptors(x, 4, impl=impl)


def test_unused_alpha_channel_is_not_checked():
    x = np.zeros((2, 8, 8, 4))
    x[..., 3] = np.nan
    for impl in IMPLS:
        np.testing.assert_array_equal(hog_descriptors(x, 4, impl=impl), 0.0)


def test_unknown_impl():
    with pytest.raises(ValueError, match="impl must be one of"):
        hog_descriptors(np.zeros((1, 8, 8)), impl="fast")


def test_large_but_accepted_values_stay_finite():
    x = np.zeros((1, 8, 8, 3), dtype=np.float32)
    x[0, ::2] = 0.9 * MAX_ABS_PIXEL
    x[0, 1::2] = -0.9 * MAX_ABS_PIXEL
    for impl in IMPLS:
        assert np.isfinite(hog_descriptors(x, 4, impl=impl)).all()


# ---------------------------------------------------------------------------------------------
# Fuzz
# ---------------------------------------------------------------------------------------------


@st.composite
def hog_cases(draw):
    n = draw(st.integers(1, 3))
    h = draw(st.integers(1, 14))
    w = draw(st.integers(1, 14))
    channels = draw(st.sampled_from([None, 1, 3, 4]))
    shape = (n, h, w) if channels is None else (n, h, w, channels)
    dtype = draw(st.sampled_from([np.float64, np.float32, np.uint8, np.int16]))
    if dtype in (np.uint8, np.int16):
        elements = st.integers(0, 255) if dtype == np.uint8 else st.integers(-300, 300)
    else:
        # Few distinct values: many exact ties (gx == 0, gy == 0), plus arbitrary floats.
        elements = st.one_of(
            st.sampled_from([0.0, 1.0, -1.0, 255.0, 0.5]),
            st.floats(-1e6, 1e6, allow_nan=False, width=32 if dtype == np.float32 else 64),
        )
    images = draw(hnp.arrays(dtype, shape, elements=elements))
    ppc = draw(st.integers(1, min(h, w)))
    orientations = draw(st.integers(1, 12))
    return images, ppc, orientations


@settings(max_examples=50, deadline=None)
@given(hog_cases())
def test_fuzz_compiled_matches_references(case):
    images, ppc, orientations = case
    compiled = hog_descriptors(images, ppc, orientations, impl="compiled")
    scale = max(1.0, float(np.abs(images.astype(np.float64)).max()))
    for impl in ("vectorized", "naive"):
        ref = hog_descriptors(images, ppc, orientations, impl=impl)
        assert compiled.shape == ref.shape
        assert compiled.dtype == ref.dtype
        np.testing.assert_allclose(compiled, ref, rtol=1e-6, atol=1e-12 * scale)


def test_bench_suite_quick_runs(capsys):
    """``fastnn bench hog --quick`` produces rows for every implementation and reports the
    compiled-vs-twin difference (timing values are not checked)."""
    from fastnn.bench import suites

    rows = suites()["hog"](compare=False, quick=True)
    assert {r.implementation for r in rows} >= set(IMPLS)
    assert all(r.median_s > 0 for r in rows)
    diffs = [
        float(line.rsplit("=", 1)[1])
        for line in capsys.readouterr().out.splitlines()
        if "max |compiled - vectorized|" in line
    ]
    assert len(diffs) == 2 and max(diffs) <= 1e-6
