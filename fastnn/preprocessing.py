"""Data preprocessing fitted on training data only: scaling, PCA and whitening.

Every transform is a small class with ``fit(X_train)`` (learns the statistics), ``transform(X)``
(applies them to any split) and ``fit_transform``. The classic mistake of computing the mean or
the covariance over all data (train + validation + test) cannot happen by accident: statistics
only ever come from the array passed to ``fit``, and ``transform`` before ``fit`` raises::

    scaler = StandardScaler().fit(X_train)
    X_train, X_val, X_test = (scaler.transform(X) for X in (X_train, X_val, X_test))

Inputs are ``(N, D)`` arrays or image batches ``(N, H, W, C)`` / ``(N, C, H, W)``: everything
after the first axis is one example, flattened to D features. The element-wise scalers return
the input's shape; PCA returns ``(N, k)`` and ZCA ``(N, D)`` flattened. Statistics are computed in
float64; outputs keep the input's float dtype (float32 stays float32).

``transform`` and ``inverse_transform`` accept zero rows and return an empty array of the
right shape, so code that transforms a possibly empty split needs no special case.

Also here: :func:`add_bias_column`, the bias trick for linear classifiers, and
:class:`ScaleAndCenter`, the pixel scaling plus mean-image subtraction that ``fastnn train``
applies and stores in the model file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from fastnn._validation import check_array, check_float, check_int

__all__ = [
    "PCA",
    "MeanSubtraction",
    "MinMaxScaler",
    "ScaleAndCenter",
    "StandardScaler",
    "ZCAWhitening",
    "add_bias_column",
]


def add_bias_column(X: ArrayLike) -> np.ndarray:
    """Append a constant-1 feature to every row (the bias trick).

    A linear score ``x W + b`` equals ``[x, 1] W'`` with ``W' = [W; b]``, so one matrix product
    and one weight matrix cover both.

    Parameters
    ----------
    X : array_like of shape (N, D) or (N, ...)
        Examples; trailing axes are flattened.

    Returns
    -------
    ndarray of shape (N, D + 1), same float dtype as ``X``
    """
    X = check_array(X, "X", ndim=range(2, 8), allow_empty=True)
    X = X.reshape(X.shape[0], int(np.prod(X.shape[1:])))
    return np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])


class _Transform:
    """Shared plumbing: input checks, the fitted flag, the feature-width check."""

    _n_features: int | None = None
    _example_shape: tuple[int, ...] | None = None

    def _check_fit_input(self, X) -> np.ndarray:
        X = check_array(X, "X", ndim=range(2, 8))  # statistics need at least one example
        self._example_shape = X.shape[1:]
        self._n_features = int(np.prod(X.shape[1:]))
        return X.reshape(X.shape[0], -1)

    def _check_transform_input(self, X, name: str = "X") -> np.ndarray:
        """``X`` checked against the fitted width, flattened to (N, D)."""
        return self._check_transform_shaped(X, name)[0]

    def _check_transform_shaped(self, X, name: str = "X") -> tuple[np.ndarray, tuple[int, ...]]:
        """``(X flattened to (N, D), X's shape)``: the shape of the checked array, so a ragged
        list fails in check_array (naming ``name``), not in ``np.shape``."""
        if self._n_features is None:
            raise ValueError(
                f"{type(self).__name__} is not fitted yet: call fit(X_train) before transform"
            )
        X = check_array(X, name, ndim=range(2, 8), allow_empty=True)
        n_features = int(np.prod(X.shape[1:]))
        if n_features != self._n_features:
            raise ValueError(
                f"{name} must have {self._n_features} features per example (as the data given "
                f"to fit, example shape {self._example_shape}); got {n_features} "
                f"(shape {X.shape})"
            )
        # explicit width: reshape(0, -1) cannot infer it when there are no rows
        return X.reshape(X.shape[0], n_features), X.shape

    def fit(self, X: ArrayLike) -> _Transform:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def transform(self, X: ArrayLike) -> np.ndarray:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def fit_transform(self, X: ArrayLike) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)


class _ElementwiseScaler(_Transform):
    """``(x - offset) / scale`` per feature; subclasses decide offset and scale in ``fit``."""

    offset_: np.ndarray
    scale_: np.ndarray

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Apply the fitted offset and scale; returns the shape and float dtype of ``X``."""
        flat, shape = self._check_transform_shaped(X)
        out = (flat - self.offset_.astype(flat.dtype)) / self.scale_.astype(flat.dtype)
        return out.reshape(shape)

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Undo :meth:`transform`."""
        flat, shape = self._check_transform_shaped(X)
        out = flat * self.scale_.astype(flat.dtype) + self.offset_.astype(flat.dtype)
        return out.reshape(shape)


class MeanSubtraction(_ElementwiseScaler):
    """Subtract the per-feature training mean (the CS231n "mean image").

    Attributes
    ----------
    mean_ : ndarray of shape (D,)
        Per-feature mean of the data given to :meth:`fit` (float64).
    """

    def fit(self, X: ArrayLike) -> MeanSubtraction:
        """Learn the per-feature mean of ``X`` (N, ...)."""
        flat = self._check_fit_input(X)
        self.mean_ = flat.mean(axis=0, dtype=np.float64)
        self.offset_ = self.mean_
        self.scale_ = np.ones_like(self.mean_)
        return self


class StandardScaler(_ElementwiseScaler):
    """Standardise every feature to zero mean and unit variance.

    Features whose training standard deviation is below ``eps`` (constant pixels, e.g. the
    Fashion-MNIST border) are only centred, not divided by a near-zero number.

    Parameters
    ----------
    eps : float
        Threshold below which a standard deviation counts as zero.

    Attributes
    ----------
    mean_, std_ : ndarray of shape (D,)
    """

    def __init__(self, eps: float = 1e-8) -> None:
        self.eps = check_float(eps, "eps", minimum=0.0)

    def fit(self, X: ArrayLike) -> StandardScaler:
        """Learn the per-feature mean and standard deviation of ``X`` (N, ...)."""
        flat = self._check_fit_input(X)
        self.mean_ = flat.mean(axis=0, dtype=np.float64)
        self.std_ = flat.std(axis=0, dtype=np.float64)
        self.offset_ = self.mean_
        self.scale_ = np.where(self.std_ > self.eps, self.std_, 1.0)
        return self


class MinMaxScaler(_ElementwiseScaler):
    """Scale every feature linearly so that its training range maps onto ``feature_range``.

    Parameters
    ----------
    feature_range : (float, float)
        Target ``(low, high)`` with ``low < high``. Constant features map to ``low``.

    Attributes
    ----------
    data_min_, data_max_ : ndarray of shape (D,)
    """

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)) -> None:
        try:
            low, high = feature_range
        except (TypeError, ValueError):
            raise TypeError(
                f"feature_range must be a pair (low, high), got {feature_range!r}"
            ) from None
        low = check_float(low, "feature_range[0]")
        high = check_float(high, "feature_range[1]")
        if not low < high:
            raise ValueError(f"feature_range must satisfy low < high, got {feature_range!r}")
        self.feature_range = (low, high)

    def fit(self, X: ArrayLike) -> MinMaxScaler:
        """Learn the per-feature minimum and maximum of ``X`` (N, ...)."""
        flat = self._check_fit_input(X)
        self.data_min_ = flat.min(axis=0).astype(np.float64)
        self.data_max_ = flat.max(axis=0).astype(np.float64)
        low, high = self.feature_range
        data_range = self.data_max_ - self.data_min_
        data_range[data_range == 0] = 1.0
        # x' = low + (x - min) * (high - low) / range  ==  (x - offset) / scale
        self.scale_ = data_range / (high - low)
        self.offset_ = self.data_min_ - low * self.scale_
        return self


class PCA(_Transform):
    """Principal component analysis via the SVD of the training covariance matrix.

    ``fit`` centres the data, forms the covariance ``Xc^T Xc / N`` (D x D) and takes its SVD
    ``U S U^T``; the columns of ``U`` are the principal directions sorted by decreasing variance
    ``S``. ``transform`` projects centred data onto the first ``n_components`` of them (the
    course notes' ``Xrot_reduced = Xc @ U[:, :k]``); with ``whiten=True`` every projected
    coordinate is also divided by ``sqrt(S + epsilon)`` so it has (about) unit variance.

    Parameters
    ----------
    n_components : int or None
        Number of components k (default: all D).
    whiten : bool
        PCA whitening.
    epsilon : float
        Added to the variances before the square root when whitening; keeps directions of
        (near-)zero variance from being blown up into noise.

    Attributes
    ----------
    mean_ : ndarray of shape (D,)
    components_ : ndarray of shape (D, k)
        Principal directions as columns (the sign is fixed so that each column's largest
        entry is positive, making results reproducible across LAPACK builds).
    explained_variance_ : ndarray of shape (k,)
        Variance of the training data along each kept direction, decreasing.
    explained_variance_ratio_ : ndarray of shape (k,)
        ``explained_variance_`` divided by the total variance.
    """

    def __init__(
        self, n_components: int | None = None, whiten: bool = False, epsilon: float = 1e-5
    ) -> None:
        if n_components is not None:
            n_components = check_int(n_components, "n_components", minimum=1)
        self.n_components = n_components
        self.whiten = bool(whiten)
        self.epsilon = check_float(epsilon, "epsilon", minimum=0.0)

    def _fit_eigen(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Centre, then SVD of the covariance; returns all directions U and variances S."""
        flat = self._check_fit_input(X)
        n = flat.shape[0]
        if n < 2:
            raise ValueError(f"X must have at least 2 examples to estimate a covariance, got {n}")
        self.mean_ = flat.mean(axis=0, dtype=np.float64)
        centered = flat.astype(np.float64) - self.mean_
        cov = centered.T @ centered / n
        U, S, _ = np.linalg.svd(cov, hermitian=True)
        # Sort explicitly (the hermitian SVD returns |eigenvalues| sorted; keep it obvious).
        order = np.argsort(S)[::-1]
        U, S = U[:, order], S[order]
        signs = np.sign(U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])])
        signs[signs == 0] = 1.0
        U *= signs
        self._total_variance = float(np.trace(cov))
        return U, S

    def fit(self, X: ArrayLike) -> PCA:
        """Learn the mean and principal directions of ``X`` (N, ...)."""
        U, S = self._fit_eigen(X)
        k = self.n_components if self.n_components is not None else U.shape[1]
        if k > U.shape[1]:
            raise ValueError(
                f"n_components must be at most the number of features D = {U.shape[1]}; got {k}"
            )
        self.components_ = U[:, :k]
        self.explained_variance_ = S[:k]
        total = self._total_variance
        self.explained_variance_ratio_ = S[:k] / total if total > 0 else np.zeros(k)
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Project (and optionally whiten) ``X``; returns (N, k) in the float dtype of ``X``."""
        flat = self._check_transform_input(X)
        dtype = flat.dtype
        out = (flat - self.mean_.astype(dtype)) @ self.components_.astype(dtype)
        if self.whiten:
            out /= np.sqrt(self.explained_variance_ + self.epsilon).astype(dtype)
        return out

    def inverse_transform(self, Z: ArrayLike) -> np.ndarray:
        """Map (N, k) coordinates back to the (N, D) input space (a projection if k < D)."""
        if self._n_features is None:
            raise ValueError("PCA is not fitted yet: call fit(X_train) before inverse_transform")
        k = self.components_.shape[1]
        Z = check_array(Z, "Z", ndim=2, allow_empty=True)
        if Z.shape[1] != k:
            raise ValueError(f"Z must have n_components = {k} columns; got shape {Z.shape}")
        dtype = Z.dtype
        if self.whiten:
            Z = Z * np.sqrt(self.explained_variance_ + self.epsilon).astype(dtype)
        return Z @ self.components_.T.astype(dtype) + self.mean_.astype(dtype)


class ZCAWhitening(_Transform):
    """ZCA whitening: PCA whitening rotated back into the input space.

    ``x -> (x - mean) U diag(1 / sqrt(S + epsilon)) U^T``. The whitened training data has
    covariance ``U diag(S / (S + epsilon)) U^T``, the identity up to ``epsilon``; unlike PCA
    whitening the result stays closest to the original data, so whitened images still look
    like (edge-enhanced) images.

    Parameters
    ----------
    epsilon : float
        Regulariser added to every variance (> 0 recommended for images, whose covariance is
        often singular).

    Attributes
    ----------
    mean_ : ndarray of shape (D,)
    whitening_matrix_ : ndarray of shape (D, D)
    """

    def __init__(self, epsilon: float = 1e-5) -> None:
        self.epsilon = check_float(epsilon, "epsilon", minimum=0.0)

    def fit(self, X: ArrayLike) -> ZCAWhitening:
        """Learn the mean and the whitening matrix from ``X`` (N, ...)."""
        pca = PCA(epsilon=self.epsilon)
        U, S = pca._fit_eigen(X)
        self._n_features, self._example_shape = pca._n_features, pca._example_shape
        self.mean_ = pca.mean_
        if self.epsilon == 0 and np.min(S) <= 0:
            raise ValueError(
                "epsilon must be > 0 here: the training covariance is singular "
                f"(smallest variance {np.min(S):.3g})"
            )
        self.whitening_matrix_ = (U / np.sqrt(S + self.epsilon)) @ U.T
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Whiten ``X``; returns (N, D) in the float dtype of ``X``."""
        flat = self._check_transform_input(X)
        dtype = flat.dtype
        return (flat - self.mean_.astype(dtype)) @ self.whitening_matrix_.astype(dtype)


class ScaleAndCenter(_Transform):
    """Scale raw pixels (by default to [0, 1]) and subtract the training mean image.

    ``x -> x.reshape(N, -1) * pixel_scale - mean``, where ``mean`` is the per-feature mean of
    the scaled training images: the preprocessing ``fastnn train`` fits on its training split
    and stores in the model file (:meth:`to_metadata`), so ``fastnn evaluate`` applies exactly
    the same arithmetic (:meth:`from_metadata`).

    Parameters
    ----------
    pixel_scale : float
        Factor applied to the raw values first (default ``1 / 255``), > 0.

    Attributes
    ----------
    mean_ : ndarray of shape (D,), float32
        Mean of the scaled training examples, rounded to float32 as it is stored.
    input_shape_ : tuple of int
        Shape of one training example (e.g. ``(28, 28, 1)``).
    """

    #: ``preprocessing`` value in a model file's metadata.
    KIND = "scale_and_center"

    def __init__(self, pixel_scale: float = 1.0 / 255.0) -> None:
        self.pixel_scale = check_float(pixel_scale, "pixel_scale", minimum=0.0,
                                       min_inclusive=False)

    @property
    def input_shape_(self) -> tuple[int, ...] | None:
        return self._example_shape

    def fit(self, X: ArrayLike) -> ScaleAndCenter:
        """Learn the mean image of ``X * pixel_scale`` (X: (N, ...) raw training images)."""
        flat = self._check_fit_input(X)
        mean = flat.mean(axis=0, dtype=np.float64) * self.pixel_scale
        self.mean_ = mean.astype(np.float32)
        return self

    def transform(self, X: ArrayLike, dtype: DTypeLike=None) -> np.ndarray:
        """``X.reshape(N, -1) * pixel_scale - mean_`` as (N, D).

        Parameters
        ----------
        X : array_like of shape (N, ...)
            Raw examples with the fitted example size (N may be 0).
        dtype : {np.float32, np.float64} or None
            Output dtype (a model's parameter dtype); default: the float dtype of ``X``.

        Returns
        -------
        ndarray of shape (N, D)
        """
        flat = self._check_transform_input(X)
        dtype = np.dtype(flat.dtype if dtype is None else dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        out = flat.astype(dtype) * dtype.type(self.pixel_scale)
        out -= self.mean_.astype(dtype)
        return out

    def inverse_transform(self, Z: ArrayLike) -> np.ndarray:
        """Raw examples ``(Z + mean_) / pixel_scale`` in the fitted example shape."""
        flat = self._check_transform_input(Z, "Z")
        out = (flat + self.mean_.astype(flat.dtype)) / flat.dtype.type(self.pixel_scale)
        return out.reshape((flat.shape[0], *self._example_shape))

    def to_metadata(self) -> dict:
        """The fitted state as model-file metadata (scalars, a list and one array)."""
        if self._n_features is None:
            raise ValueError("ScaleAndCenter is not fitted yet: call fit(X_train) first")
        return {"preprocessing": self.KIND, "pixel_scale": self.pixel_scale,
                "input_shape": list(self._example_shape), "mean": self.mean_}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ScaleAndCenter:
        """Rebuild a fitted instance from :meth:`to_metadata`'s dict (e.g. a model file's).

        Raises
        ------
        ValueError
            The metadata holds no such description, or an inconsistent one.
        """
        if not hasattr(metadata, "get") or metadata.get("preprocessing") != cls.KIND:
            raise ValueError(
                f"metadata must describe a {cls.KIND!r} preprocessing (as written by "
                "`fastnn train`); it has none"
            )
        missing = [k for k in ("pixel_scale", "mean") if k not in metadata]
        if missing:
            raise ValueError(f"metadata lacks {', '.join(missing)} of its {cls.KIND!r} entry")
        self = cls(metadata["pixel_scale"])
        mean = check_array(metadata["mean"], "metadata['mean']", ndim=1)
        shape = tuple(int(d) for d in metadata.get("input_shape") or (mean.shape[0],))
        if int(np.prod(shape)) != mean.shape[0]:
            raise ValueError(
                f"metadata['input_shape'] {shape} does not match the {mean.shape[0]} values "
                "of metadata['mean']"
            )
        self.mean_ = mean.astype(np.float32, copy=False)
        self._example_shape, self._n_features = shape, mean.shape[0]
        return self
