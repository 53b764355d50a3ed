"""Preprocessing: fit on training data only, then transform; PCA and whitening properties."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.preprocessing import (
    PCA,
    MeanSubtraction,
    MinMaxScaler,
    ScaleAndCenter,
    StandardScaler,
    ZCAWhitening,
    add_bias_column,
)

ALL = (MeanSubtraction, StandardScaler, MinMaxScaler, PCA, ZCAWhitening, ScaleAndCenter)


def _correlated(rng, n=2000, d=12, dtype=np.float64):
    """Correlated Gaussian data with very different variances per direction."""
    A = rng.standard_normal((d, d)) * np.logspace(0, -1.5, d)
    return (rng.standard_normal((n, d)) @ A.T + rng.standard_normal(d) * 5).astype(dtype)


def test_add_bias_column(rng):
    X = rng.standard_normal((4, 2, 3)).astype(np.float32)
    Xb = add_bias_column(X)
    assert Xb.shape == (4, 7) and Xb.dtype == np.float32
    np.testing.assert_array_equal(Xb[:, -1], 1.0)
    np.testing.assert_array_equal(Xb[:, :-1], X.reshape(4, 6))


def test_mean_subtraction_uses_training_statistics_only(rng):
    X_train = rng.standard_normal((50, 3)) + 10.0
    X_test = rng.standard_normal((20, 3)) - 10.0
    t = MeanSubtraction().fit(X_train)
    np.testing.assert_allclose(t.transform(X_train).mean(axis=0), 0.0, atol=1e-12)
    # the test split is shifted by the *training* mean, not centred on its own
    np.testing.assert_allclose(t.transform(X_test), X_test - X_train.mean(axis=0))
    np.testing.assert_allclose(t.inverse_transform(t.transform(X_test)), X_test)


def test_standard_scaler_images_and_constant_features(rng):
    X = rng.standard_normal((100, 4, 4, 1)).astype(np.float32) * 3 + 7
    X[:, 0, 0, 0] = 5.0  # a constant "border pixel"
    t = StandardScaler()
    out = t.fit_transform(X)
    assert out.shape == X.shape and out.dtype == np.float32
    flat = out.reshape(100, -1)
    np.testing.assert_allclose(flat[:, 1:].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(flat[:, 1:].std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(flat[:, 0], 0.0)  # centred, not divided by ~0
    np.testing.assert_allclose(t.inverse_transform(out), X, rtol=1e-5)


def test_min_max_scaler(rng):
    X = rng.uniform(-3, 9, size=(200, 5))
    t = MinMaxScaler(feature_range=(-1, 2)).fit(X)
    out = t.transform(X)
    np.testing.assert_allclose(out.min(axis=0), -1.0, atol=1e-12)
    np.testing.assert_allclose(out.max(axis=0), 2.0, atol=1e-12)
    np.testing.assert_allclose(t.transform(X[:1] * 0 + X.max(axis=0)), 2.0)
    with pytest.raises(ValueError, match="low < high"):
        MinMaxScaler(feature_range=(1, 1))
    with pytest.raises(TypeError, match="feature_range must be a pair"):
        MinMaxScaler(feature_range=3)


def test_pca_keeps_the_k_largest_variances(rng):
    X = _correlated(rng)
    k = 4
    pca = PCA(n_components=k).fit(X)
    Z = pca.transform(X)
    assert Z.shape == (2000, k)
    all_var = np.sort(np.linalg.eigvalsh(np.cov(X, rowvar=False, bias=True)))[::-1]
    # the variances of the projected data are the k largest eigenvalues, decreasing
    np.testing.assert_allclose(Z.var(axis=0), all_var[:k], rtol=1e-8)
    np.testing.assert_allclose(pca.explained_variance_, all_var[:k], rtol=1e-8)
    np.testing.assert_allclose(pca.explained_variance_ratio_, all_var[:k] / all_var.sum())
    assert np.all(np.diff(pca.explained_variance_) < 0)
    # projections are uncorrelated and the directions orthonormal
    cov_z = np.cov(Z, rowvar=False, bias=True)
    np.testing.assert_allclose(cov_z - np.diag(np.diag(cov_z)), 0.0, atol=1e-8)
    np.testing.assert_allclose(pca.components_.T @ pca.components_, np.eye(k), atol=1e-12)
    # full-rank PCA round-trips
    full = PCA().fit(X)
    np.testing.assert_allclose(full.inverse_transform(full.transform(X)), X, atol=1e-9)


def test_pca_matches_scikit_learn_up_to_sign(rng):
    sklearn_decomposition = pytest.importorskip("sklearn.decomposition")
    X = _correlated(rng, n=500, d=8)
    ours = PCA(n_components=3).fit(X).transform(X)
    ref = sklearn_decomposition.PCA(n_components=3).fit_transform(X)
    np.testing.assert_allclose(np.abs(ours), np.abs(ref), atol=1e-8)


def test_pca_whitening_gives_identity_covariance(rng):
    X = _correlated(rng)
    Z = PCA(n_components=6, whiten=True, epsilon=1e-10).fit_transform(X)
    np.testing.assert_allclose(np.cov(Z, rowvar=False, bias=True), np.eye(6), atol=1e-3)


def test_zca_whitened_training_data_has_identity_covariance(rng):
    X = _correlated(rng, d=20)
    zca = ZCAWhitening(epsilon=1e-8).fit(X)
    Z = zca.transform(X)
    assert Z.shape == X.shape
    cov = np.cov(Z, rowvar=False, bias=True)
    assert np.max(np.abs(cov - np.eye(20))) < 1e-3
    # the whitening matrix is symmetric (the "zero-phase" in ZCA)
    np.testing.assert_allclose(zca.whitening_matrix_, zca.whitening_matrix_.T, atol=1e-8)
    # a large epsilon shrinks the small-variance directions instead: no longer identity
    Z_smooth = ZCAWhitening(epsilon=1.0).fit_transform(X)
    assert np.max(np.abs(np.cov(Z_smooth, rowvar=False, bias=True) - np.eye(20))) > 0.1


def test_float32_in_float32_out(rng):
    X = _correlated(rng, n=300, d=6, dtype=np.float32)
    for cls in ALL:
        assert cls().fit_transform(X).dtype == np.float32, cls.__name__


@pytest.mark.parametrize("cls", ALL)
def test_transform_before_fit_raises(cls):
    with pytest.raises(ValueError, match="not fitted yet: call fit"):
        cls().transform(np.zeros((3, 4)))


@pytest.mark.parametrize("cls", ALL)
def test_wrong_width_is_rejected_naming_the_argument(rng, cls):
    t = cls().fit(_correlated(rng, n=100, d=6))
    with pytest.raises(ValueError, match=r"X must have 6 features per example .* got 5"):
        t.transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="X contains NaN"):
        t.transform(np.full((3, 6), np.nan))


def test_bad_arguments(rng):
    with pytest.raises(ValueError, match="n_components must be at most the number of features"):
        PCA(n_components=7).fit(np.zeros((10, 6)) + rng.standard_normal((10, 6)))
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        PCA(n_components=0)
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        ZCAWhitening(epsilon=-1)
    with pytest.raises(ValueError, match="at least 2 examples"):
        PCA().fit(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="epsilon must be > 0 here"):
        ZCAWhitening(epsilon=0.0).fit(np.ones((10, 3)))
    with pytest.raises(ValueError, match="X must be a 2-D or"):
        StandardScaler().fit(np.zeros(5))
    with pytest.raises(ValueError, match="Z must have n_components = 2 columns"):
        PCA(2).fit(rng.standard_normal((10, 4))).inverse_transform(np.zeros((1, 3)))


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_rows_transform_to_empty_arrays_of_the_right_shape(rng, cls, dtype):
    X = _correlated(rng, n=50, d=6, dtype=dtype).reshape(50, 3, 2)
    t = cls().fit(X)
    full = t.transform(X[:3])
    empty = t.transform(X[:0])
    assert empty.shape == (0, *full.shape[1:]) and empty.dtype == full.dtype
    if hasattr(t, "inverse_transform"):
        back = t.inverse_transform(empty)
        assert back.shape == (0, *t.inverse_transform(full).shape[1:])
        assert back.dtype == dtype


def test_add_bias_column_of_zero_rows():
    assert add_bias_column(np.zeros((0, 2, 3), dtype=np.float32)).shape == (0, 7)


def test_scale_and_center_is_fitted_on_training_data_only():
    X = np.arange(24, dtype=np.float32).reshape(3, 2, 2, 2) * 10
    t = ScaleAndCenter().fit(X[:2])
    np.testing.assert_allclose(t.mean_, X[:2].reshape(2, -1).mean(0) / 255, rtol=1e-6)
    assert t.mean_.dtype == np.float32 and t.input_shape_ == (2, 2, 2)
    out = t.transform(X)
    assert out.dtype == np.float32 and out.shape == (3, 8)
    np.testing.assert_allclose(out[:2].mean(0), 0, atol=1e-6)
    assert t.transform(X, dtype=np.float64).dtype == np.float64
    np.testing.assert_allclose(t.inverse_transform(out), X, rtol=1e-5)
    with pytest.raises(ValueError, match=r"X must have 8 features per example .* got 3"):
        t.transform(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        t.transform(X, dtype=np.int32)
    with pytest.raises(ValueError, match="pixel_scale must be > 0"):
        ScaleAndCenter(pixel_scale=0)


def test_scale_and_center_round_trips_through_metadata(rng):
    X = rng.uniform(0, 255, size=(20, 4, 4, 1)).astype(np.float32)
    t = ScaleAndCenter().fit(X)
    meta = t.to_metadata()
    assert meta["preprocessing"] == "scale_and_center" and meta["input_shape"] == [4, 4, 1]
    again = ScaleAndCenter.from_metadata(meta)
    np.testing.assert_array_equal(again.transform(X), t.transform(X))
    with pytest.raises(ValueError, match="metadata must describe a 'scale_and_center'"):
        ScaleAndCenter.from_metadata({"dataset": "sample"})
    with pytest.raises(ValueError, match="does not match the 16 values"):
        ScaleAndCenter.from_metadata({**meta, "input_shape": [3, 3]})
    with pytest.raises(ValueError, match="not fitted yet"):
        ScaleAndCenter().to_metadata()


@pytest.mark.parametrize("cls", [MeanSubtraction, StandardScaler, MinMaxScaler])
def test_ragged_transform_input_is_a_value_error_naming_X(cls):
    t = cls().fit(np.arange(6.0).reshape(3, 2))
    for method in (t.transform, t.inverse_transform):
        with pytest.raises(ValueError, match=r"X must be a rectangular array"):
            method([[1.0, 2.0], [3.0]])
    # a list still equals the array call
    X = np.array([[0.5, 1.0], [2.0, 4.0]])
    np.testing.assert_allclose(t.transform(X.tolist()), t.transform(X))
