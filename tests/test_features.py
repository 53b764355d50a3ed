"""fastnn.features: CS231n's feature functions (same results) and the batched HOG fast path."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from fastnn.bench._reference import cs231n_hog_feature
from fastnn.features import (
    MAX_HISTOGRAM_BINS,
    build_features,
    color_histogram_hsv,
    extract_features,
    hog_feature,
    hog_features,
    rgb2gray,
    rgb_to_hsv,
)
from fastnn.kernels import available_impls


def cs231n_color_histogram_hsv(im, nbin=10, xmin=0, xmax=255, normalized=True):
    """CS231n's ``color_histogram_hsv`` verbatim (needs matplotlib)."""
    import matplotlib.colors

    bins = np.linspace(xmin, xmax, nbin + 1)
    hsv = matplotlib.colors.rgb_to_hsv(im / xmax) * xmax
    imhist, bin_edges = np.histogram(hsv[:, :, 0], bins=bins, density=normalized)
    imhist = imhist * np.diff(bin_edges)
    return imhist


@pytest.fixture(scope="module")
def cifar_sample(samples_dir):
    from fastnn.data import load_CIFAR10

    x_train, _, _, _ = load_CIFAR10(samples_dir / "cifar-10-batches-py")
    return x_train[:40]


# ---------------------------------------------------------------------------------------------
# rgb2gray
# ---------------------------------------------------------------------------------------------


def test_rgb2gray_is_cs231n(rng):
    rgb = rng.uniform(0, 255, size=(5, 6, 3))
    np.testing.assert_array_equal(rgb2gray(rgb), np.dot(rgb, [0.299, 0.587, 0.144]))
    np.testing.assert_allclose(
        rgb2gray(rgb), 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.144 * rgb[..., 2], rtol=1e-14
    )
    rgba = np.concatenate([rgb, np.full((5, 6, 1), 9.0)], axis=-1)
    np.testing.assert_array_equal(rgb2gray(rgba), rgb2gray(rgb))  # alpha ignored
    assert rgb2gray(rgb.astype(np.uint8)).dtype == np.float64


def test_rgb2gray_rejects_gray_input():
    with pytest.raises(ValueError, match="at least 3 channels"):
        rgb2gray(np.zeros((4, 4, 1)))
    with pytest.raises(ValueError, match="at least 3 channels"):
        rgb2gray(np.float64(3.0))


# ---------------------------------------------------------------------------------------------
# hog_feature / hog_features
# ---------------------------------------------------------------------------------------------


def test_hog_feature_shape_and_cs231n_values(rng, cifar_sample):
    pytest.importorskip("scipy")
    for im in [rng.uniform(0, 255, size=(32, 32, 3)), *cifar_sample[:20]]:
        feats = hog_feature(im)
        assert feats.shape == (144,)
        np.testing.assert_allclose(feats, cs231n_hog_feature(im), rtol=0, atol=1e-9)


def test_hog_feature_gray_layouts(rng):
    im = rng.uniform(0, 255, size=(28, 28))
    a = hog_feature(im, pixels_per_cell=4)
    assert a.shape == (7 * 7 * 9,)
    np.testing.assert_array_equal(a, hog_feature(im[..., None], pixels_per_cell=4))
    np.testing.assert_array_equal(a, hog_features(im[None], 4)[0])


def test_hog_features_equals_per_image_calls(rng):
    imgs = rng.integers(0, 256, size=(7, 28, 28, 1)).astype(np.uint8)
    batch = hog_features(imgs, pixels_per_cell=4)
    assert batch.shape == (7, 441) and batch.dtype == np.float64
    for i, im in enumerate(imgs):
        np.testing.assert_array_equal(batch[i], hog_feature(im, pixels_per_cell=4))
    for impl in available_impls("hog"):
        np.testing.assert_allclose(hog_features(imgs, 4, impl=impl), batch, rtol=0, atol=1e-9)


def test_hog_features_dtypes(rng):
    imgs = rng.uniform(0, 255, size=(3, 16, 16, 3))
    assert hog_features(imgs.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(
        hog_features(imgs.astype(np.float32)),
        hog_features(imgs.astype(np.float32).astype(np.float64)),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "im, kwargs, error, match",
    [
        (np.zeros(8), {}, ValueError, "2-D or 3-D"),
        (np.zeros((2, 8, 8, 3)), {}, ValueError, "2-D or 3-D"),
        (np.full((8, 8), np.nan), {}, ValueError, "NaN"),
        (np.zeros((0, 8)), {}, ValueError, "empty"),
        (np.zeros((8, 8)), {"pixels_per_cell": 0}, ValueError, "pixels_per_cell"),
        (np.zeros((8, 8)), {"pixels_per_cell": 9}, ValueError, "pixels_per_cell"),
        (np.zeros((8, 8)), {"orientations": 0}, ValueError, "orientations"),
        (np.zeros((8, 8, 2)), {}, ValueError, "channels"),
    ],
)
def test_hog_feature_bad_input(im, kwargs, error, match):
    with pytest.raises(error, match=match):
        hog_feature(im, **kwargs)


# ---------------------------------------------------------------------------------------------
# color histogram
# ---------------------------------------------------------------------------------------------


def test_rgb_to_hsv_matches_matplotlib(rng):
    mcolors = pytest.importorskip("matplotlib.colors")
    rgb = rng.uniform(0, 1, size=(20, 30, 3))
    rgb[0, :, :] = rgb[0, :, :1]  # gray pixels: zero chroma
    rgb[1, :, 1] = rgb[1, :, 0]  # ties for the maximum
    rgb[2, :, 2] = rgb[2, :, 1]
    rgb[3] = 0.0
    for x in (rgb, rgb.astype(np.float32)):
        ours = rgb_to_hsv(x)
        assert ours.dtype == x.dtype
        np.testing.assert_array_equal(ours, mcolors.rgb_to_hsv(x))


def test_color_histogram_matches_cs231n(rng, cifar_sample):
    pytest.importorskip("matplotlib")
    images = [*cifar_sample[:10], rng.integers(0, 256, size=(8, 8, 3)).astype(np.uint8)]
    images.append(rng.uniform(0, 255, size=(9, 7, 3)).astype(np.float32))
    for im in images:
        for kwargs in ({}, {"nbin": 7}, {"normalized": False}, {"nbin": 4, "xmin": 10}):
            np.testing.assert_allclose(
                color_histogram_hsv(im, **kwargs),
                cs231n_color_histogram_hsv(im, **kwargs),
                rtol=1e-12,
                atol=1e-12,
            )


def test_color_histogram_normalized_sums_to_one(rng):
    for shape in [(32, 32, 3), (5, 3, 3), (1, 1, 3)]:
        im = rng.uniform(0, 255, size=shape)
        hist = color_histogram_hsv(im)
        assert hist.shape == (10,)
        assert np.all(hist >= 0)
        np.testing.assert_allclose(hist.sum(), 1.0, rtol=1e-12)


def test_color_histogram_of_pure_colours():
    """Hue of pure red is 0, pure green 1/3, pure blue 2/3 (times xmax 255): bins 0, 3 and 6."""
    im = np.zeros((3, 4, 3))
    im[0, :, 0] = 200.0
    im[1, :, 1] = 200.0
    im[2, :, 2] = 200.0
    hist = color_histogram_hsv(im)
    np.testing.assert_allclose(hist[[0, 3, 6]], 1 / 3)
    assert hist.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "im, kwargs, error, match",
    [
        (np.zeros((4, 4)), {}, ValueError, "3-D"),
        (np.zeros((4, 4, 1)), {}, ValueError, r"\(H, W, 3\)"),
        (np.full((4, 4, 3), 300.0), {}, ValueError, r"\[0, xmax\]"),
        (np.full((4, 4, 3), -1.0), {}, ValueError, r"\[0, xmax\]"),
        (np.full((4, 4, 3), np.nan), {}, ValueError, "NaN"),
        (np.zeros((4, 4, 3)), {"nbin": 0}, ValueError, "nbin"),
        (np.zeros((4, 4, 3)), {"nbin": 10**12}, ValueError, "nbin must be <= 65536"),
        (np.zeros((4, 4, 3)), {"xmin": 255}, ValueError, "xmin must be < xmax"),
        (np.zeros((4, 4, 3)), {"xmax": 0}, ValueError, "xmax"),
        (np.zeros((0, 4, 3)), {}, ValueError, "empty"),
    ],
)
def test_color_histogram_bad_input(im, kwargs, error, match):
    with pytest.raises(error, match=match):
        color_histogram_hsv(im, **kwargs)


# ---------------------------------------------------------------------------------------------
# extract_features
# ---------------------------------------------------------------------------------------------


def cs231n_extract_features(imgs, feature_fns):
    """CS231n's loop: feature functions applied to imgs[i].squeeze(), concatenated."""
    return np.stack([np.hstack([fn(im.squeeze()) for fn in feature_fns]) for im in imgs])


def test_extract_features_matches_per_image_loop(rng, cifar_sample):
    imgs = np.concatenate([cifar_sample[:6], rng.uniform(0, 255, size=(3, 32, 32, 3))])
    fns = [hog_feature, color_histogram_hsv]
    out = extract_features(imgs, fns)
    assert out.shape == (9, 154) and out.dtype == np.float64
    np.testing.assert_allclose(out, cs231n_extract_features(imgs, fns), rtol=0, atol=1e-12)
    # A wrapper hides hog_feature from the fast path: the per-image loop must agree exactly.
    slow = extract_features(imgs, [lambda im: hog_feature(im), color_histogram_hsv])
    np.testing.assert_array_equal(out, slow)


def test_extract_features_fast_path_is_taken(monkeypatch, rng):
    from fastnn import features

    calls = []
    real = features.hog_descriptors

    def spy(images, *args, **kwargs):
        calls.append(np.shape(images)[0])
        return real(images, *args, **kwargs)

    monkeypatch.setattr(features, "hog_descriptors", spy)
    imgs = rng.uniform(0, 255, size=(50, 16, 16, 3))
    extract_features(imgs, [hog_feature])
    assert 50 in calls  # one batched call over all images (plus the first-image probe)
    assert len(calls) <= 2


def test_extract_features_fashion_mnist_layout_with_partial(rng):
    imgs = rng.integers(0, 256, size=(12, 28, 28, 1)).astype(np.float32)
    hog4 = functools.partial(hog_feature, pixels_per_cell=4)
    out = extract_features(imgs, [hog4])
    assert out.shape == (12, 441)
    np.testing.assert_allclose(out, hog_features(imgs, 4), rtol=1e-6)
    np.testing.assert_array_equal(out, cs231n_extract_features(imgs, [hog4]))


def test_extract_features_chunks(monkeypatch, rng):
    from fastnn import features

    monkeypatch.setattr(features, "_CHUNK", 4)
    imgs = rng.uniform(0, 255, size=(10, 12, 12))
    out = extract_features(imgs, [hog_feature, lambda im: im.mean(axis=0)])
    ref = cs231n_extract_features(imgs, [hog_feature, lambda im: im.mean(axis=0)])
    np.testing.assert_array_equal(out, ref)


def test_extract_features_progress_bar(capsys, rng):
    imgs = rng.uniform(0, 255, size=(5, 16, 16, 3))
    extract_features(imgs, [hog_feature], verbose=True)
    err = capsys.readouterr().err
    assert "features" in err and "5" in err
    extract_features(imgs, [hog_feature], verbose=False)
    assert capsys.readouterr().err == ""


def test_extract_features_bad_input(rng):
    imgs = rng.uniform(0, 255, size=(3, 16, 16, 3))
    with pytest.raises(ValueError, match="at least one image"):
        extract_features(imgs[:0], [hog_feature])
    with pytest.raises(ValueError, match="at least one feature function"):
        extract_features(imgs, [])
    with pytest.raises(TypeError, match="callables"):
        extract_features(imgs, [hog_feature, 3])
    with pytest.raises(ValueError, match="1-D"):
        extract_features(imgs, [lambda im: im])
    lengths = iter([3, 3, 4])
    with pytest.raises(ValueError, match="image 2"):
        extract_features(imgs, [lambda im: np.zeros(next(lengths))])
    bad = imgs.copy()
    bad[2, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"failed on imgs\[2\]: im contains NaN"):
        extract_features(bad, [hog_feature])
    with pytest.raises(ValueError, match="pixels_per_cell"):
        extract_features(imgs, [functools.partial(hog_feature, pixels_per_cell=17)])


@pytest.mark.data
def test_hog_on_real_fashion_mnist(data_dir):
    """Real data: the full-size loader's images through both batch implementations."""
    from fastnn.data import load_dataset

    data = load_dataset("fashion-mnist", root=data_dir)
    imgs = data["X_test"][:2000]
    compiled = hog_features(imgs, 4)
    assert compiled.shape == (2000, 441) and np.isfinite(compiled).all()
    np.testing.assert_allclose(compiled, hog_features(imgs, 4, impl="vectorized"), rtol=1e-6)
    assert (compiled.reshape(2000, 49, 9).sum(axis=2) > 0).mean() > 0.3  # edges found


def test_hog_feature_error_names_im_and_its_shape():
    with pytest.raises(ValueError, match=r"im must be .* got shape \(8, 8, 2\)"):
        hog_feature(np.zeros((8, 8, 2)))


# ---------------------------------------------------------------------------------------------
# absurd sizes fail before any work
# ---------------------------------------------------------------------------------------------


def _kernel_must_not_run(*args, **kwargs):
    raise AssertionError("the HOG kernel was called with parameters that should be refused")


@pytest.mark.parametrize(
    "call",
    [
        lambda x: hog_feature(x[0], orientations=10**9),
        lambda x: hog_features(x, orientations=10**9),
        lambda x: hog_features(x, pixels_per_cell=10**12),
        lambda x: extract_features(x, [functools.partial(hog_feature, orientations=10**9)]),
        # a layout the batched path does not take: the per-image call checks up front too
        lambda x: extract_features(x[:, :1], [functools.partial(hog_feature, orientations=361)]),
        lambda x: build_features(x, "pixels", orientations=10**9),
    ],
)
def test_absurd_hog_parameters_are_refused_before_the_kernel(monkeypatch, call):
    monkeypatch.setattr("fastnn.features.hog_descriptors", _kernel_must_not_run)
    x = np.zeros((2, 16, 16, 3))
    with pytest.raises(ValueError, match="orientations must be <= 360|pixels_per_cell must be"):
        call(x)


def test_absurd_histogram_bins_are_refused():
    assert MAX_HISTOGRAM_BINS == 65536
    with pytest.raises(ValueError, match="nbin must be <= 65536, got 1000000000000"):
        color_histogram_hsv(np.zeros((4, 4, 3)), nbin=10**12)
    with pytest.raises(ValueError, match="nbin must be <= 65536"):
        build_features(np.zeros((2, 4, 4, 3)), "color", pixels_per_cell=4, nbin=10**12)


# ---------------------------------------------------------------------------------------------
# build_features
# ---------------------------------------------------------------------------------------------


def test_build_features_concatenates_in_the_order_given(rng, cifar_sample):
    imgs = cifar_sample[:6].astype(np.float32)
    feats = build_features(imgs, "hog,color,pixels")
    assert feats.dtype == np.float32 and feats.shape == (6, 144 + 10 + 32 * 32 * 3)
    np.testing.assert_allclose(feats[:, :144], hog_features(imgs), rtol=1e-6)
    colour = extract_features(imgs, [color_histogram_hsv])
    np.testing.assert_allclose(feats[:, 144:154], colour, rtol=1e-6)
    np.testing.assert_array_equal(feats[:, 154:], imgs.reshape(6, -1))
    same = build_features(imgs, ["hog", "color", "pixels"])
    np.testing.assert_array_equal(feats, same)
    gray = rng.uniform(0, 255, size=(3, 28, 28, 1))
    assert build_features(gray, ["hog"], pixels_per_cell=4, orientations=6).shape == (3, 294)


@pytest.mark.parametrize(
    ("images", "kinds", "error", "match"),
    [
        (np.zeros((2, 8, 8, 1)), "color", ValueError, "kinds 'color' needs RGB images"),
        (np.zeros((2, 8, 8, 3)), "sift", ValueError, "kinds must be among pixels, hog, color"),
        (np.zeros((2, 8, 8, 3)), ",", ValueError, "kinds must name at least one"),
        (np.zeros((2, 8, 8, 3)), "hog,hog", ValueError, "kinds lists a feature twice"),
        (np.zeros((2, 8, 8, 3)), 3, TypeError, "kinds must be a sequence"),
        (np.zeros((0, 8, 8, 3)), "pixels", ValueError, "images must not be empty"),
        (np.zeros((8, 8)), "pixels", ValueError, "images must be a 3-D or 4-D"),
    ],
)
def test_build_features_bad_input(images, kinds, error, match):
    with pytest.raises(error, match=match):
        build_features(images, kinds)


# ------------------------------------------------------------------- errors name the argument
@pytest.mark.parametrize(
    ("value", "error", "message"),
    [(np.nan, ValueError, "^im contains NaN"), (np.inf, ValueError, "^im contains infinity"),
     (1e300, ValueError, "^im must have finite gray levels")],
)
def test_hog_feature_bad_pixels_name_im(rng, value, error, message):
    im = rng.uniform(0, 255, size=(16, 16, 3))
    im[4, 5, 1] = value
    with pytest.raises(error, match=message):
        hog_feature(im)


def test_hog_feature_rejects_complex_and_strings_naming_im():
    with pytest.raises(TypeError, match="^im must be real-valued"):
        hog_feature(np.ones((16, 16), complex))
    with pytest.raises(TypeError, match="^im must be numeric"):
        hog_feature(np.full((16, 16), "a"))


def test_hog_feature_accepts_lists_and_non_contiguous_input(rng):
    im = rng.uniform(0, 255, size=(16, 32, 3))
    expected = hog_feature(np.ascontiguousarray(im[:, ::2]))
    np.testing.assert_array_equal(hog_feature(im[:, ::2]), expected)
    np.testing.assert_array_equal(hog_feature(im[:, ::2].tolist()), expected)


def test_hog_features_ragged_images_names_images():
    with pytest.raises((TypeError, ValueError), match="^images must be"):
        hog_features([np.zeros((8, 8)), np.zeros((8, 9))])


def test_color_histogram_rejects_complex_naming_im():
    with pytest.raises(TypeError, match="^im must be real-valued"):
        color_histogram_hsv(np.ones((4, 4, 3), complex))


@pytest.mark.parametrize("fns", [None, 3, hog_feature, "hog_feature"])
def test_extract_features_feature_fns_must_be_a_sequence(rng, fns):
    imgs = rng.uniform(0, 255, size=(2, 8, 8, 3))
    with pytest.raises(TypeError, match="^feature_fns must be a sequence"):
        extract_features(imgs, fns)


def test_extract_features_bad_imgs_name_imgs(rng):
    imgs = rng.uniform(0, 255, size=(2, 8, 8, 3))
    with pytest.raises(TypeError, match="^imgs must be real-valued"):
        extract_features(imgs.astype(complex), [hog_feature])
    with pytest.raises(TypeError, match="^imgs must be a numeric array"):
        extract_features(np.full((2, 8, 8), "a"), [hog_feature])
    with pytest.raises(ValueError, match=r"failed on imgs\[0\]: im must be a 2-D or 3-D"):
        extract_features(np.stack([imgs, imgs], axis=-1), [hog_feature])
    bad = imgs.copy()
    bad[1, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"failed on imgs\[1\]: im contains infinity"):
        extract_features(bad, [hog_feature, color_histogram_hsv])
