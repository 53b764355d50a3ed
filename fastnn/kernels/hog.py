"""Histogram of oriented gradients (HOG) over a batch of images, CS231n semantics.

Three implementations with one signature, registered under operation ``"hog"``:

- ``"naive"``: plain Python loops over images, pixels and cells, the readable specification;
- ``"vectorized"``: the NumPy twin (whole batch at once);
- ``"compiled"``: Cython + OpenMP (``fastnn._ext._hog``), ``prange`` over images with
  per-thread scratch, float32 and float64; the default.

Definition (what all three compute, identical to CS231n's ``hog_feature`` wherever that runs)
-------------------------------------------------------------------------------------------
For one image:

1. Gray level ``g``: the image itself when it has one channel, else CS231n's
   ``np.dot(rgb[..., :3], [0.299, 0.587, 0.144])`` (its weights, including 0.144 for blue; a
   fourth alpha channel is ignored). The compiled kernel reproduces NumPy's rounding of that dot
   product bit for bit (it probes whether NumPy's BLAS uses an FMA chain). Everything below is
   computed in float64.
2. Forward differences, as CS231n's ``np.diff``: ``gx[r, c] = g[r, c+1] - g[r, c]`` (0 in the
   last column), ``gy[r, c] = g[r+1, c] - g[r, c]`` (0 in the last row);
   magnitude ``m = sqrt(gx**2 + gy**2)``.
3. Orientation in degrees ``theta = atan2(gy, gx + 1e-15) * 180 / pi + 90``, in [-90, 270].
   Bin ``i`` (of ``orientations``) takes the pixels with ``edge_i <= theta < edge_{i+1}`` and
   ``theta > 0``, where ``edge_i = (180 / orientations) * i``. As in CS231n, only gradients
   pointing into the right half-plane (``gx + 1e-15 > 0``) land in a bin: a pure horizontal
   gradient ``gx > 0, gy = 0`` has ``theta = 90``; ``gx < 0`` gives ``theta`` outside (0, 180)
   and is not counted. When ``|gx + 1e-15| <= 1e-12 |gy|`` (a vertical gradient, e.g. ``gx == 0``),
   whether ``theta`` rounds to exactly 0 or 180 (dropped) depends on the last bit of ``atan2``;
   there ``atan2`` is evaluated as ``+-(pi/2 - (gx + 1e-15) / |gy|)`` with a two-word pi/2,
   which is the correctly rounded value CS231n's NumPy gets too (checked), so all three
   implementations drop or keep the same pixels.
4. Cells: ``n_rows = H // pixels_per_cell`` by ``n_cols = W // pixels_per_cell``. Cell ``(k, l)``
   averages the bin's magnitudes over the ``p x p`` window (``p = pixels_per_cell``) that
   ``scipy.ndimage.uniform_filter(size=p)`` (mode ``"reflect"``) centres at row
   ``round(p / 2) + k * p`` and column ``round(p / 2) + l * p`` (Python's round-half-to-even,
   exactly CS231n's subsampling ``[round(p/2)::p]``). For even ``p`` that window is the block
   ``[k p, (k + 1) p)``; for odd ``p`` it may start one pixel later and reflect at the border.
   Rows and columns beyond the last whole cell (``H % p`` at the bottom, ``W % p`` at the right)
   are ignored. CS231n's code raises a broadcasting error for non-square images and whenever
   ``H % p > round(p / 2)``; there this rule is the natural extension, elsewhere it is identical.
5. Output order, as CS231n's ``orientation_histogram[:, :, i] = ...T`` followed by ``ravel``:
   feature ``(l * n_rows + k) * orientations + i`` for column cell ``l``, row cell ``k``, bin ``i``.

Values: every gray level must be finite and at most ``MAX_ABS_PIXEL`` (1e30) in magnitude, else a
ValueError names the first offending image (the compiled kernel checks while computing the gray
levels, so the input is read once; an unused alpha channel is not checked).

Agreement: naive and compiled use the C library's ``atan2`` or the exact equivalent comparison
``gy / (gx + 1e-15) >= tan(edge - 90 deg)``; the twin uses NumPy's ``arctan2``. They agree to
rounding (about 1e-13 relative) except for a gradient whose angle lies within about 1e-12 degrees
of a bin edge, which random or real images do not produce. float32 input gives float32 output:
the float64 result rounded once (so it agrees with float64 to float32 precision, rtol 1e-6).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from fastnn._validation import check_array, check_int
from fastnn.kernels._operation import Operation, load_extension, threads_for

#: CS231n's ``rgb2gray`` weights (the blue weight 0.144 is CS231n's, not ITU-R 601's 0.114).
RGB_WEIGHTS = (0.299, 0.587, 0.144)
#: Largest accepted gray-level magnitude: keeps squared gradients and float32 outputs finite.
MAX_ABS_PIXEL = 1e30
#: Largest accepted number of orientation bins.
MAX_ORIENTATIONS = 360

_RGB_WEIGHTS_ARRAY = np.array(RGB_WEIGHTS)
_RAD2DEG = 180 / np.pi
_PIO2_HI = 1.5707963267948966  # pi/2 rounded to float64
_PIO2_LO = 6.123233995736766e-17  # pi/2 - _PIO2_HI
_VERTICAL = 1e-12  # |gx + 1e-15| <= _VERTICAL * |gy| counts as a vertical gradient
_OPS_PER_PIXEL = 16.0  # rough cost of one pixel in the compiled kernel, for threads_for

_ext = load_extension("_hog")


def _check_hog(impl: str, images, pixels_per_cell=8, orientations=9, num_threads=None):
    """images (N, H, W[, C]) with C in {1, 3, 4}; 1 <= pixels_per_cell <= min(H, W);
    1 <= orientations <= MAX_ORIENTATIONS; num_threads >= 1 or None."""
    arr = check_hog_images(images)
    _, height, width, _ = arr.shape
    p, o = check_hog_params(height, width, pixels_per_cell, orientations)
    if num_threads is not None:
        num_threads = check_int(num_threads, "num_threads", minimum=1)
    return arr, p, o, num_threads


HOG = Operation("hog", _check_hog)


# --------------------------------------------------------------------------------------------
# Geometry shared by all implementations
# --------------------------------------------------------------------------------------------


def cell_windows(size: int, pixels_per_cell: int) -> list[list[int]]:
    """Pixel indices (after reflection) of each cell's averaging window along one axis.

    Cell ``k`` is the window ``scipy.ndimage.uniform_filter1d(size=p)`` uses for output index
    ``round(p / 2) + k * p``: indices ``centre - p // 2`` to ``centre - p // 2 + p - 1``, with
    out-of-range indices reflected (``-1 -> 0``, ``size -> size - 1``), ``size // p`` cells.
    """
    p = pixels_per_cell
    start = round(p / 2)  # Python rounds half to even, exactly as CS231n's slice start
    windows = []
    for k in range(size // p):
        centre = start + k * p
        window = []
        for idx in range(centre - p // 2, centre - p // 2 + p):
            # scipy's "reflect" mode: (d c b a | a b c d | d c b a)
            while idx < 0 or idx >= size:
                idx = -idx - 1 if idx < 0 else 2 * size - 1 - idx
            window.append(idx)
        windows.append(window)
    return windows


def axis_cell_map(size: int, pixels_per_cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel cell index (-1: in no window) and multiplicity along one axis.

    Windows of consecutive cells never overlap, so every pixel belongs to at most one cell; a
    pixel reflected back into its own window counts twice (multiplicity 2).
    """
    cell = np.full(size, -1, dtype=np.intp)
    mult = np.zeros(size, dtype=np.intp)
    for k, window in enumerate(cell_windows(size, pixels_per_cell)):
        for idx in window:
            if cell[idx] not in (-1, k):  # cannot happen for pixels_per_cell <= size
                raise AssertionError("HOG cell windows overlap")
            cell[idx] = k
            mult[idx] += 1
    return cell, mult


def hog_num_features(
    height: int, width: int, pixels_per_cell: int = 8, orientations: int = 9
) -> int:
    """Length of the HOG descriptor of a ``height x width`` image."""
    return (height // pixels_per_cell) * (width // pixels_per_cell) * orientations


def bin_edges(orientations: int) -> np.ndarray:
    """The ``orientations + 1`` bin edges in degrees, computed exactly as CS231n does."""
    return np.array([180 / orientations * i for i in range(orientations + 1)], dtype=np.float64)


def edge_slopes(orientations: int) -> np.ndarray:
    """``tan(edge_i - 90 deg)`` for the inner edges ``i = 1 .. orientations - 1``.

    For ``gx + 1e-15 > 0``, ``theta >= edge_i`` exactly when ``gy / (gx + 1e-15) >= slope_i``,
    which lets the compiled kernel bin a pixel without calling ``atan2``.
    """
    edges = bin_edges(orientations)[1:-1]
    return np.tan((edges - 90.0) * (np.pi / 180.0))


def gray_levels(images: np.ndarray) -> np.ndarray:
    """Gray levels (..., H, W) in float64 of (..., H, W, C) images, as CS231n computes them.

    One channel: the values themselves. Three or four: CS231n's
    ``np.dot(rgb[..., :3], [0.299, 0.587, 0.144])``, literally (NumPy evaluates it per pixel
    with BLAS ``ddot``; the compiled kernel reproduces that rounding, see ``_numpy_dot_is_fused``).
    """
    x = images.astype(np.float64, copy=False)
    if x.shape[-1] == 1:
        return x[..., 0]
    return np.dot(x[..., :3], _RGB_WEIGHTS_ARRAY)


def _orientation_degrees(gx: float, gy: float) -> float:
    """``atan2(gy, gx + 1e-15) * 180 / pi + 90`` with the vertical case made exact (module doc)."""
    gxp = gx + 1e-15
    if gy != 0.0 and abs(gxp) <= _VERTICAL * abs(gy):
        angle = _PIO2_HI - (gxp / abs(gy) - _PIO2_LO)
        angle = angle if gy > 0 else -angle
    else:
        angle = math.atan2(gy, gxp)
    return angle * _RAD2DEG + 90


# --------------------------------------------------------------------------------------------
# Implementations. They receive validated arrays: images (N, H, W, C) float32/float64 with
# C in {1, 3, 4}; 1 <= pixels_per_cell <= min(H, W); 1 <= orientations <= MAX_ORIENTATIONS.
# --------------------------------------------------------------------------------------------


@HOG.register("naive")
def _hog_naive(
    images: np.ndarray, pixels_per_cell: int, orientations: int, num_threads: int
) -> np.ndarray:
    """Plain loops: per image, per pixel gradient and bin, then per cell window sums."""
    n_images, height, width, _ = images.shape
    p = pixels_per_cell
    edges = [180 / orientations * i for i in range(orientations + 1)]
    row_windows = cell_windows(height, p)
    col_windows = cell_windows(width, p)
    n_rows, n_cols = len(row_windows), len(col_windows)
    out = np.zeros((n_images, n_cols * n_rows * orientations), dtype=images.dtype)
    for n in range(n_images):
        gray_image = gray_levels(images[n])  # CS231n's rgb2gray, then plain loops
        if not np.all(np.abs(gray_image) <= MAX_ABS_PIXEL):
            raise_bad_values(images, np.arange(n_images) == n)
        gray = gray_image.tolist()
        magnitude = [[0.0] * width for _ in range(height)]
        bin_index = [[-1] * width for _ in range(height)]
        for r in range(height):
            for c in range(width):
                gx = gray[r][c + 1] - gray[r][c] if c + 1 < width else 0.0
                gy = gray[r + 1][c] - gray[r][c] if r + 1 < height else 0.0
                magnitude[r][c] = math.sqrt(gx * gx + gy * gy)
                theta = _orientation_degrees(gx, gy)
                for i in range(orientations):
                    if edges[i] <= theta < edges[i + 1] and theta > 0:
                        bin_index[r][c] = i
        for k, rows in enumerate(row_windows):
            for col_cell, cols in enumerate(col_windows):
                hist = [0.0] * orientations
                for r in rows:
                    for c in cols:
                        if bin_index[r][c] >= 0:
                            hist[bin_index[r][c]] += magnitude[r][c]
                base = (col_cell * n_rows + k) * orientations
                for i in range(orientations):
                    out[n, base + i] = hist[i] / (p * p)
    return out


@HOG.register("vectorized")
def _hog_vectorized(
    images: np.ndarray, pixels_per_cell: int, orientations: int, num_threads: int
) -> np.ndarray:
    """NumPy twin: whole-batch gradients and orientations, one weighted ``bincount``."""
    n_images, height, width, _ = images.shape
    p = pixels_per_cell
    gray = gray_levels(images)
    _check_gray(gray, images)

    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, :, :-1] = np.diff(gray, axis=2)
    gy[:, :-1, :] = np.diff(gray, axis=1)
    magnitude = np.sqrt(gx**2 + gy**2)

    gxp = gx + 1e-15
    theta = np.arctan2(gy, gxp)
    vertical = (gy != 0) & (np.abs(gxp) <= _VERTICAL * np.abs(gy))
    if vertical.any():
        gy_v = gy[vertical]
        angle = _PIO2_HI - (gxp[vertical] / np.abs(gy_v) - _PIO2_LO)
        theta[vertical] = np.where(gy_v > 0, angle, -angle)
    theta = theta * _RAD2DEG + 90

    # Bin index per pixel (-1: not counted): edges[i] <= theta < edges[i + 1] and theta > 0,
    # CS231n's half-open tests; searchsorted(side="right") - 1 finds that i in one pass.
    edges = bin_edges(orientations)
    bin_index = np.searchsorted(edges, theta, side="right") - 1
    bin_index[(theta <= 0) | (theta >= edges[-1])] = -1

    row_cell, row_mult = axis_cell_map(height, p)
    col_cell, col_mult = axis_cell_map(width, p)
    n_rows, n_cols = height // p, width // p
    weight = magnitude * (row_mult[:, None] * col_mult[None, :])
    # Feature index (col_cell * n_rows + row_cell) * orientations + bin, offset per image.
    cell_index = col_cell[None, :] * n_rows + row_cell[:, None]
    keep = (bin_index >= 0) & (row_cell[:, None] >= 0) & (col_cell[None, :] >= 0)
    n_features = n_cols * n_rows * orientations
    flat = (
        np.arange(n_images)[:, None, None] * n_features
        + cell_index[None, :, :] * orientations
        + bin_index
    )
    sums = np.bincount(flat[keep], weights=weight[keep], minlength=n_images * n_features)
    out = sums.reshape(n_images, n_features) / (p * p)
    return out.astype(images.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Public operation
# --------------------------------------------------------------------------------------------


def check_hog_images(images: object, name: str = "images") -> np.ndarray:
    """Validate a batch for HOG and return it as a (N, H, W, C) float32/float64 array.

    Accepts (N, H, W) gray or (N, H, W, C) with C = 1 (gray), 3 (RGB) or 4 (RGBA, alpha
    ignored); float32 stays float32, other numeric dtypes (uint8, ints, bool) become float64.
    """
    arr = check_array(images, name, ndim=(3, 4), dtype="float", finite=False)
    if arr.ndim == 3:
        arr = arr[..., None]
    channels = arr.shape[3]
    if channels not in (1, 3, 4):
        raise ValueError(
            f"{name} must have 1 (gray), 3 (RGB) or 4 (RGBA) channels in the last axis of a "
            f"(N, H, W, C) array, got shape {arr.shape}"
        )
    return arr


def raise_bad_values(images: np.ndarray, bad_images: np.ndarray, name: str = "images") -> None:
    """Raise the ValueError for images whose gray levels are NaN, infinite or too large.

    The value check runs on the gray levels as they are computed (the compiled kernel does it
    in the same pass, so the input is read once); this turns its per-image flags into a message
    naming the first offending image.
    """
    index = int(np.flatnonzero(bad_images)[0])
    image = images[index]
    used = image if image.shape[-1] == 1 else image[..., :3]  # alpha is never read
    if np.isnan(used).any():
        raise ValueError(f"{name} contains NaN (image {index})")
    if np.isinf(used).any():
        raise ValueError(f"{name} contains infinity (image {index})")
    raise ValueError(
        f"{name} must have finite gray levels of magnitude <= {MAX_ABS_PIXEL:g}; image {index} "
        f"has pixel values in [{float(used.min()):g}, {float(used.max()):g}]"
    )


def _check_gray(gray: np.ndarray, images: np.ndarray) -> None:
    """The value check of the Python implementations, on (N, H, W) gray levels."""
    bad = ~(np.abs(gray) <= MAX_ABS_PIXEL)  # NaN compares False, so it counts as bad
    if bad.any():
        raise_bad_values(images, bad.reshape(len(bad), -1).any(axis=1))


def check_hog_params(
    height: int, width: int, pixels_per_cell: object, orientations: object
) -> tuple[int, int]:
    """Validate ``pixels_per_cell`` (1 .. min(H, W)) and ``orientations`` (1 .. 360)."""
    p = check_int(pixels_per_cell, "pixels_per_cell", minimum=1)
    if p > min(height, width):
        raise ValueError(
            f"pixels_per_cell must be <= the image height and width ({height} x {width}) so "
            f"that there is at least one cell, got {p}"
        )
    o = check_int(orientations, "orientations", minimum=1, maximum=MAX_ORIENTATIONS)
    return p, o


def hog_descriptors(
    images: object,
    pixels_per_cell: int = 8,
    orientations: int = 9,
    impl: str | None = None,
    num_threads: int | None = None,
) -> np.ndarray:
    """HOG descriptors of a batch of images (CS231n's ``hog_feature`` for each image).

    Parameters
    ----------
    images : array_like, shape (N, H, W) or (N, H, W, C)
        Gray (C = 1 or no channel axis), RGB (C = 3) or RGBA (C = 4, alpha ignored) images,
        any real dtype (uint8, float32, float64, ...), raw 0..255 values or any scale: the gray
        levels must be finite and at most ``MAX_ABS_PIXEL`` (1e30) in magnitude (an unused alpha
        channel is not checked). Non-contiguous arrays are accepted.
    pixels_per_cell : int
        Cell side in pixels, 1 <= pixels_per_cell <= min(H, W).
    orientations : int
        Number of orientation bins over 0..180 degrees, 1 .. 360.
    impl : {"compiled", "vectorized", "naive"} or None
        Implementation (None: the best available; see :func:`fastnn.kernels.available_impls`).
    num_threads : int, optional
        Most threads the compiled kernel may use; default :func:`fastnn.get_num_threads`
        (small batches use fewer, see :func:`fastnn.kernels.threads_for`).

    Returns
    -------
    ndarray, shape (N, (W // p) * (H // p) * orientations)
        float32 for float32 input, else float64. The definition, including the behaviour when
        H or W is not a multiple of ``pixels_per_cell``, is in this module's docstring.
    """
    return HOG(images, pixels_per_cell, orientations, num_threads, impl=impl)


@functools.lru_cache(maxsize=32)
def _pixel_geometry(
    height: int, width: int, pixels_per_cell: int, orientations: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: first feature index of its cell (-1: no cell) and its window multiplicity."""
    row_cell, row_mult = axis_cell_map(height, pixels_per_cell)
    col_cell, col_mult = axis_cell_map(width, pixels_per_cell)
    n_rows = height // pixels_per_cell
    inside = (row_cell[:, None] >= 0) & (col_cell[None, :] >= 0)
    base = (col_cell[None, :] * n_rows + row_cell[:, None]) * orientations
    pixel_base = np.where(inside, base, -1).astype(np.intc)
    pixel_mult = (row_mult[:, None] * col_mult[None, :]).astype(np.float64)
    pixel_base.flags.writeable = False
    pixel_mult.flags.writeable = False
    return pixel_base, pixel_mult


@functools.lru_cache(maxsize=1)
def _numpy_dot_is_fused() -> bool:
    """Whether this NumPy's ``np.dot(rgb, weights)`` rounds like the FMA chain
    ``fma(b, 0.144, fma(g, 0.587, r * 0.299))`` (OpenBLAS on FMA hardware) or like the plain
    ``r * 0.299 + g * 0.587 + b * 0.144``. The compiled kernel then computes gray levels the same
    way, so it agrees bit for bit with the NumPy implementations and with CS231n's code. (The
    last bit matters: where two neighbours' gray levels tie mathematically, it decides whether
    ``gx`` is 0 or +-1 ulp, and CS231n's vertical-gradient rule turns that into a full count.)
    """
    probe = np.random.default_rng(20160401).uniform(0, 255, size=(2, 16, 16, 3))
    reference = gray_levels(probe)
    return not np.array_equal(reference, _ext.gray_levels(probe, False))


@HOG.register("compiled", available=_ext is not None)
def _hog_compiled(
    images: np.ndarray, pixels_per_cell: int, orientations: int, num_threads: int | None
) -> np.ndarray:
    """Cython/OpenMP kernel: ``prange`` over images, per-thread float64 scratch."""
    n_images, height, width, _ = images.shape
    x = np.ascontiguousarray(images)
    n_features = hog_num_features(height, width, pixels_per_cell, orientations)
    out = np.empty((n_images, n_features), dtype=x.dtype)
    threads = threads_for(_OPS_PER_PIXEL * n_images * height * width, num_threads=num_threads)
    pixel_base, pixel_mult = _pixel_geometry(height, width, pixels_per_cell, orientations)
    bad = np.zeros(n_images, dtype=np.uint8)
    _ext.hog_batch(
        x,
        pixel_base,
        pixel_mult,
        bin_edges(orientations),
        edge_slopes(orientations),
        float(pixels_per_cell * pixels_per_cell),
        _numpy_dot_is_fused(),
        out,
        bad,
        threads,
    )
    if bad.any():
        raise_bad_values(images, bad.astype(bool))
    return out


__all__ = [
    "MAX_ABS_PIXEL",
    "MAX_ORIENTATIONS",
    "RGB_WEIGHTS",
    "axis_cell_map",
    "bin_edges",
    "cell_windows",
    "check_hog_images",
    "check_hog_params",
    "edge_slopes",
    "gray_levels",
    "hog_descriptors",
    "hog_num_features",
    "raise_bad_values",
]
