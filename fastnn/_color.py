"""Colour-space conversion for the colour-histogram feature (public as ``fastnn.features.rgb_to_hsv``)."""

from __future__ import annotations

import numpy as np

from fastnn._validation import check_array

__all__ = ["rgb_to_hsv"]


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] to HSV in [0, 1], the same arithmetic as ``matplotlib.colors.rgb_to_hsv``.

    Parameters
    ----------
    rgb : array_like, shape (..., 3)
        Values in [0, 1]. float32 stays float32; other dtypes are computed in float64.

    Returns
    -------
    ndarray, shape (..., 3)
        Hue, saturation, value. Where several channels are the maximum, the later one (blue,
        then green) defines the hue, as in matplotlib.
    """
    x = check_array(rgb, "rgb", dtype="float", allow_empty=True)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"rgb must have 3 channels in its last axis, got shape {x.shape}")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"rgb values must be in [0, 1], got values in [{x.min():g}, {x.max():g}]"
        )
    out = np.zeros_like(x)
    value = x.max(-1)
    delta = np.ptp(x, -1)
    saturation = np.zeros_like(delta)
    positive = value > 0
    saturation[positive] = delta[positive] / value[positive]
    hue = np.zeros_like(delta)
    chroma = delta > 0
    red, green, blue = x[..., 0], x[..., 1], x[..., 2]
    # Later assignments win ties (blue over green over red), matching matplotlib.
    idx = (red == value) & chroma
    hue[idx] = (green[idx] - blue[idx]) / delta[idx]
    idx = (green == value) & chroma
    hue[idx] = 2.0 + (blue[idx] - red[idx]) / delta[idx]
    idx = (blue == value) & chroma
    hue[idx] = 4.0 + (red[idx] - green[idx]) / delta[idx]
    out[..., 0] = (hue / 6.0) % 1.0
    out[..., 1] = saturation
    out[..., 2] = value
    return out
