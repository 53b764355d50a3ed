"""Reference implementations from the CS231n assignment code, for comparisons in tests and
benchmarks (they need SciPy; not part of fastnn's runtime)."""

from __future__ import annotations

import numpy as np


def cs231n_hog_feature(im: np.ndarray, ppc: int = 8, orientations: int = 9) -> np.ndarray:
    """CS231n's ``hog_feature`` (assignment 1, features.py), with the cell size and the number
    of bins as parameters. Needs SciPy; only valid where CS231n's code runs (square images,
    H % ppc <= round(ppc / 2))."""
    from scipy.ndimage import uniform_filter

    image = np.dot(im[..., :3], [0.299, 0.587, 0.144]) if im.ndim == 3 else np.atleast_2d(im)
    sx, sy = image.shape
    cx, cy = ppc, ppc
    gx = np.zeros(image.shape)
    gy = np.zeros(image.shape)
    gx[:, :-1] = np.diff(image, n=1, axis=1)
    gy[:-1, :] = np.diff(image, n=1, axis=0)
    grad_mag = np.sqrt(gx**2 + gy**2)
    grad_ori = np.arctan2(gy, (gx + 1e-15)) * (180 / np.pi) + 90
    n_cellsx = int(np.floor(sx / cx))
    n_cellsy = int(np.floor(sy / cy))
    orientation_histogram = np.zeros((n_cellsx, n_cellsy, orientations))
    for i in range(orientations):
        temp_ori = np.where(grad_ori < 180 / orientations * (i + 1), grad_ori, 0)
        temp_ori = np.where(grad_ori >= 180 / orientations * i, temp_ori, 0)
        cond2 = temp_ori > 0
        temp_mag = np.where(cond2, grad_mag, 0)
        orientation_histogram[:, :, i] = uniform_filter(temp_mag, size=(cx, cy))[
            round(cx / 2) :: cx, round(cy / 2) :: cy
        ].T
    return orientation_histogram.ravel()
