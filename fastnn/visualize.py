"""Pictures of what a model learned: linear-classifier weight templates, convolution filters
(:func:`filter_grid`, :func:`plot_filters`) and loss curves.

Needs matplotlib (the optional ``plot`` extra: ``pip install "fastnn[plot]"``); it is imported
only when a function here is called, and a missing install gives a clear ImportError. Figures are
drawn with the non-interactive Agg backend when saved, so this works on servers without a
display.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from fastnn._validation import check_array, check_fits_in_memory, check_int

__all__ = [
    "filter_grid",
    "plot_filters",
    "plot_loss_history",
    "plot_weight_templates",
    "weight_templates",
]


def _pyplot():
    """matplotlib.pyplot with a file-friendly backend, or a clear error when it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "fastnn.visualize needs matplotlib, which is not installed; install the plot extra: "
            'pip install "fastnn[plot]" (or pip install matplotlib)'
        ) from None
    # Only switch backends when nothing interactive is in use yet (e.g. not inside Jupyter).
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def weight_templates(
    W: ArrayLike, image_shape: Sequence[int], has_bias_row: bool | None = None
) -> np.ndarray:
    """Reshape a linear classifier's weights into one image per class, scaled to 0..255.

    Parameters
    ----------
    W : ndarray of shape (D, C)
        Weights of a linear classifier trained on flattened images (row-major, as
        ``X.reshape(N, -1)`` flattens ``(N, H, W)`` or ``(N, H, W, channels)``).
    image_shape : tuple
        ``(H, W)`` or ``(H, W, channels)`` of one image.
    has_bias_row : bool or None
        Whether the last row of W is the bias (the bias trick). ``None`` decides from the
        shape: ``D == prod(image_shape) + 1`` means a bias row.

    Returns
    -------
    ndarray of shape (C, H, W) or (C, H, W, channels), uint8
        All templates share one min/max scaling (as in CS231n), so their contrasts compare.
    """
    W = check_array(W, "W", ndim=2)
    image_shape = tuple(int(s) for s in image_shape)
    pixels = int(np.prod(image_shape))
    if has_bias_row is None:
        has_bias_row = W.shape[0] == pixels + 1
    expected = pixels + (1 if has_bias_row else 0)
    if W.shape[0] != expected:
        raise ValueError(
            f"W must have {expected} rows for images of shape {image_shape}"
            f"{' plus a bias row' if has_bias_row else ''}; got W with shape {W.shape}"
        )
    weights = W[:pixels] if has_bias_row else W
    templates = np.moveaxis(weights.reshape(*image_shape, W.shape[1]), -1, 0).astype(np.float64)
    low, high = templates.min(), templates.max()
    scaled = (templates - low) / (high - low) if high > low else np.zeros_like(templates)
    return np.round(255.0 * scaled).astype(np.uint8)


def plot_weight_templates(
    W: ArrayLike,
    image_shape: Sequence[int],
    class_names: Sequence[str] | None = None,
    path: str | os.PathLike | None = None,
    has_bias_row: bool | None = None,
) -> Any:
    """Draw the weight template of every class side by side; save to ``path`` (PNG) if given.

    Parameters
    ----------
    W, image_shape, has_bias_row
        As for :func:`weight_templates`.
    class_names : sequence of str, optional
        Titles, one per class (default: the class index).
    path : str or path-like, optional
        Where to save the figure (format from the extension, e.g. ``templates.png``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    images = weight_templates(W, image_shape, has_bias_row)
    num_classes = images.shape[0]
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(
            f"class_names must have one name per class ({num_classes}); got {len(class_names)}"
        )
    plt = _pyplot()
    cols = min(num_classes, 10)
    rows = (num_classes + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for c in range(num_classes):
        ax = axes.ravel()[c]
        image = images[c]
        gray = image.ndim == 2 or image.shape[-1] == 1
        ax.imshow(image.squeeze() if gray else image, cmap="gray" if gray else None)
        ax.set_title(str(class_names[c]) if class_names is not None else str(c), fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), dpi=100)
        plt.close(fig)
    return fig


def plot_loss_history(
    loss_history: Sequence[float],
    path: str | os.PathLike | None = None,
    title: str = "training loss",
    smooth: int = 0,
) -> Any:
    """Plot the minibatch loss per iteration (and an optional moving average).

    Parameters
    ----------
    loss_history : sequence of float
        What ``train`` returned.
    path : str or path-like, optional
        Where to save the figure (PNG by extension).
    title : str
        Axes title.
    smooth : int
        Window of a moving average drawn on top (0 = none); minibatch losses are noisy.

    Returns
    -------
    matplotlib.figure.Figure
    """
    losses = check_array(loss_history, "loss_history", ndim=1, finite=False)
    if smooth < 0:
        raise ValueError(f"smooth must be >= 0, got {smooth}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(losses.size), losses, lw=0.8, alpha=0.6, label="minibatch loss")
    if smooth > 1 and losses.size >= smooth:
        kernel = np.ones(smooth) / smooth
        ax.plot(
            np.arange(smooth - 1, losses.size),
            np.convolve(losses, kernel, mode="valid"),
            lw=1.5,
            label=f"moving average ({smooth})",
        )
        ax.legend()
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), dpi=100)
        plt.close(fig)
    return fig


def filter_grid(W: ArrayLike, padding: int = 1) -> np.ndarray:
    """Tile convolution filters into one image (CS231n's ``visualize_grid``), no matplotlib.

    Parameters
    ----------
    W : ndarray of shape (F, C, HH, WW)
        First-layer kernels (``params["W1"]`` of a ConvNet), C = 1 or 3 to show as gray or
        RGB; other C are shown as the mean over channels.
    padding : int
        Pixels of black between filters (>= 0).

    Returns
    -------
    ndarray of shape (rows * (HH + padding) - padding, cols * (WW + padding) - padding[, 3]),
    uint8
        About square (``cols = ceil(sqrt(F))``); each filter is scaled to 0..255 on its own, so
        the pattern of every filter is visible whatever its norm.
    """
    W = check_array(W, "W", ndim=4)
    padding = check_int(padding, "padding", minimum=0)
    F, C, HH, WW = W.shape
    images = W.transpose(0, 2, 3, 1) if C == 3 else W.mean(axis=1)[..., None]
    low = images.min(axis=(1, 2, 3), keepdims=True)
    span = images.max(axis=(1, 2, 3), keepdims=True) - low
    scaled = 255.0 * (images - low) / np.where(span > 0, span, 1.0)
    cols = max(1, int(np.ceil(np.sqrt(F))))
    rows = -(-F // cols)
    check_fits_in_memory(float(rows) * (HH + padding) * cols * (WW + padding) * images.shape[-1],
                         f"padding={padding}", "the filter grid")
    grid = np.zeros((rows * (HH + padding) - padding, cols * (WW + padding) - padding,
                     images.shape[-1]), dtype=np.uint8)
    for f in range(F):  # F tiles: a handful of slice assignments
        r, c = divmod(f, cols)
        y, x = r * (HH + padding), c * (WW + padding)
        grid[y:y + HH, x:x + WW] = scaled[f].round().astype(np.uint8)
    return grid if grid.shape[-1] == 3 else grid[..., 0]


def plot_filters(W: ArrayLike, path: str | os.PathLike | None = None, padding: int = 1,
                 title: str = "first-layer filters") -> Any:
    """Draw :func:`filter_grid` of ``W``; save it to ``path`` (PNG) if given.

    Parameters
    ----------
    W : ndarray of shape (F, C, HH, WW)
    path : str or path-like, optional
    padding : int
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    grid = filter_grid(W, padding)
    plt = _pyplot()
    size = max(3.0, min(10.0, grid.shape[1] / 8))
    fig, ax = plt.subplots(figsize=(size, size * grid.shape[0] / grid.shape[1] + 0.4))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), dpi=100)
        plt.close(fig)
    return fig
