"""Seeded data augmentation of (N, C, H, W) image minibatches.

Each transform draws its random numbers for the whole batch at once and works on the batch as
one array (no per-image Python loop), and returns a new array: the input is never modified.

- :func:`random_flip`: mirror a random half of the images left-right;
- :func:`random_crop`: zero-pad by ``padding`` pixels, then cut a random H x W window;
- :func:`cutout`: zero a ``size`` x ``size`` square at a random centre (clipped to the image;
  DeVries & Taylor 2017);
- :func:`color_jitter`: add a random brightness offset and scale each image's contrast around
  its own mean.

:class:`Augmenter` composes them with its own ``np.random.Generator`` (``rng``), so the
:class:`fastnn.solver.Solver` applies it to each training minibatch (``augment=``) and stores
its random state in checkpoints. :func:`parse_augment` reads the CLI's ``--augment`` string::

    aug = parse_augment("flip,crop4,cutout8", seed=0)
    X_aug = aug(X_batch)          # X_batch (N, C, H, W), unchanged

Values are in the units of the (preprocessed) data: with centred pixels, 0 (the fill of padding
and cutout) is the mean image, and brightness offsets are in the same units as the pixels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fastnn._validation import (
    check_array,
    check_fits_in_memory,
    check_float,
    check_int,
    check_seed,
)

__all__ = [
    "AUGMENTATIONS",
    "Augmenter",
    "color_jitter",
    "cutout",
    "parse_augment",
    "random_crop",
    "random_flip",
]

#: ``--augment`` tokens: name -> (what the number after it sets, its default).
AUGMENTATIONS: dict[str, tuple[str, float]] = {
    "flip": ("probability of a flip", 0.5),
    "crop": ("zero padding in pixels", 4),
    "cutout": ("side of the square in pixels", 8),
    "brightness": ("largest brightness offset", 0.2),
    "contrast": ("largest relative contrast change", 0.2),
    "jitter": ("brightness and contrast amount", 0.2),
}


def _images(x: Any, name: str = "x") -> np.ndarray:
    """``x`` as a float (N, C, H, W) array (not copied when it already is one)."""
    return check_array(x, name, ndim=4, dtype="float", allow_empty=True, finite=False)


def _generator(rng: Any) -> np.random.Generator:
    seed = check_seed(rng, "rng")
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def random_flip(x: Any, rng: Any = None, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability ``p``.

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
        Images (float32 or float64 kept; other numbers become float64).
    rng : numpy.random.Generator, int or None
        Random source (advanced) or seed.
    p : float
        Flip probability in [0, 1].

    Returns
    -------
    ndarray of shape (N, C, H, W)
        A new array.
    """
    x = _images(x)
    p = check_float(p, "p", minimum=0.0, maximum=1.0)
    flip = _generator(rng).random(x.shape[0]) < p
    out = x.copy()
    out[flip] = x[flip, :, :, ::-1]
    return out


def random_crop(x: Any, rng: Any = None, padding: int = 4) -> np.ndarray:
    """Zero-pad every image by ``padding`` pixels on each side and cut a random H x W window.

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
    rng : numpy.random.Generator, int or None
    padding : int
        Pixels of zeros added on each side (>= 0); offsets are uniform in ``[0, 2 * padding]``.

    Returns
    -------
    ndarray of shape (N, C, H, W)
        A new array.
    """
    x = _images(x)
    padding = check_int(padding, "padding", minimum=0)
    N, C, H, W = x.shape
    check_fits_in_memory(float(N) * C * (H + 2 * padding) * (W + 2 * padding) * x.itemsize,
                         f"padding={padding}", "the zero-padded batch")
    g = _generator(rng)
    dy = g.integers(0, 2 * padding + 1, N)
    dx = g.integers(0, 2 * padding + 1, N)
    if padding == 0 or N == 0:
        return x.copy()
    padded = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=x.dtype)
    padded[:, :, padding:padding + H, padding:padding + W] = x
    # every H x W window of each image as a view; one gather picks each image's window
    windows = sliding_window_view(padded, (H, W), axis=(2, 3))  # (N, C, 2p+1, 2p+1, H, W)
    return np.ascontiguousarray(windows[np.arange(N), :, dy, dx])


def cutout(x: Any, rng: Any = None, size: int = 8) -> np.ndarray:
    """Zero a ``size`` x ``size`` square of every image, centred at a uniformly random pixel
    (the part outside the image is dropped, so near a border fewer pixels are zeroed).

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
    rng : numpy.random.Generator, int or None
    size : int
        Side of the square (>= 0; 0 changes nothing). All channels are zeroed.

    Returns
    -------
    ndarray of shape (N, C, H, W)
        A new array.
    """
    x = _images(x)
    size = check_int(size, "size", minimum=0)
    N, _, H, W = x.shape
    g = _generator(rng)
    cy = g.integers(0, max(H, 1), N)
    cx = g.integers(0, max(W, 1), N)
    top, left = cy - size // 2, cx - size // 2
    rows = np.arange(H)
    cols = np.arange(W)
    inside_rows = (rows >= top[:, None]) & (rows < (top + size)[:, None])  # (N, H)
    inside_cols = (cols >= left[:, None]) & (cols < (left + size)[:, None])  # (N, W)
    keep = ~(inside_rows[:, :, None] & inside_cols[:, None, :])  # (N, H, W)
    return x * keep[:, None, :, :].astype(x.dtype)


def color_jitter(x: Any, rng: Any = None, brightness: float = 0.2,
                 contrast: float = 0.2) -> np.ndarray:
    """Random brightness offset and contrast scaling per image.

    ``out = (x - m) * c + m + b`` with ``m`` the image's mean over (C, H, W),
    ``c ~ U(1 - contrast, 1 + contrast)`` and ``b ~ U(-brightness, brightness)``, both drawn per
    image.

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
    rng : numpy.random.Generator, int or None
    brightness : float
        Largest offset (>= 0), in the data's units.
    contrast : float
        Largest relative contrast change, in [0, 1].

    Returns
    -------
    ndarray of shape (N, C, H, W)
        A new array.
    """
    x = _images(x)
    brightness = check_float(brightness, "brightness", minimum=0.0)
    contrast = check_float(contrast, "contrast", minimum=0.0, maximum=1.0)
    g = _generator(rng)
    N = x.shape[0]
    b = g.uniform(-brightness, brightness, N).astype(x.dtype)[:, None, None, None]
    c = g.uniform(1.0 - contrast, 1.0 + contrast, N).astype(x.dtype)[:, None, None, None]
    m = x.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float64).astype(x.dtype)
    return (x - m) * c + (m + b)


def _parse_token(token: str) -> tuple[str, float]:
    """``"crop4"`` -> ``("crop", 4.0)``; a bare name takes its default."""
    match = re.fullmatch(r"([a-z]+)(\d+(?:\.\d*)?|\.\d+)?", token.strip().lower())
    if match is None or match.group(1) not in AUGMENTATIONS:
        expected = ", ".join(f"{k}[N] ({v[0]})" for k, v in AUGMENTATIONS.items())
        raise ValueError(f"augmentation token {token.strip()!r} is not one of: {expected}")
    name, number = match.groups()
    return name, AUGMENTATIONS[name][1] if number is None else float(number)


class Augmenter:
    """A seeded composition of augmentations, applied in the order given.

    Parameters
    ----------
    ops : str or iterable of str or (name, value) pairs
        Tokens of :data:`AUGMENTATIONS` with an optional number (``"flip"``, ``"crop4"``,
        ``"cutout8"``, ``"brightness0.1"``, ``"contrast0.3"``, ``"jitter0.2"``), as a
        comma-separated string or a sequence.
    seed : int, numpy.random.Generator or None
        Source of the generator ``rng`` (a Generator is used as it is).

    Attributes
    ----------
    ops : list of (str, float)
        The parsed augmentations.
    rng : numpy.random.Generator
        The augmenter's own random state (the Solver checkpoints it).

    Examples
    --------
    >>> aug = Augmenter("flip,crop4", seed=0)
    >>> aug(np.zeros((2, 3, 8, 8), np.float32)).shape
    (2, 3, 8, 8)
    """

    def __init__(self, ops: str | Iterable[Any] = ("flip", "crop"), seed: Any = None):
        if isinstance(ops, str):
            ops = [t for t in ops.split(",") if t.strip()]
        parsed: list[tuple[str, float]] = []
        for op in ops:
            if isinstance(op, tuple) and len(op) == 2:
                name, value = _parse_token(str(op[0]))[0], float(op[1])
            elif isinstance(op, str):
                name, value = _parse_token(op)
            else:
                raise TypeError(f"ops must hold augmentation names or (name, value) pairs, got "
                                f"{type(op).__name__} {op!r}")
            parsed.append((name, value))
        self.ops = parsed
        self.rng = _generator(seed)
        x = np.zeros((1, 1, 1, 1))
        for name, value in parsed:  # bad numbers fail here, naming the op, not mid-training
            self._apply(name, value, x, np.random.default_rng(0))

    @staticmethod
    def _apply(name: str, value: float, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        try:
            if name == "flip":
                return random_flip(x, rng, p=value)
            if name in ("crop", "cutout"):
                if value != int(value):
                    raise ValueError(f"must be a whole number of pixels, got {value:g}")
                if name == "crop":
                    return random_crop(x, rng, padding=int(value))
                return cutout(x, rng, size=int(value))
            brightness = value if name in ("brightness", "jitter") else 0.0
            contrast = value if name in ("contrast", "jitter") else 0.0
            return color_jitter(x, rng, brightness=brightness, contrast=contrast)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"augmentation {name}{value:g}: {exc}") from None

    def __call__(self, x: Any) -> np.ndarray:
        """The augmented copy of the minibatch ``x`` (N, C, H, W); ``x`` is not modified."""
        x = _images(x)
        out = x
        for name, value in self.ops:
            out = self._apply(name, value, out, self.rng)
        return out.copy() if out is x else out

    def __repr__(self) -> str:
        spec = ",".join(f"{n}{v:g}" for n, v in self.ops)
        return f"Augmenter({spec!r})"


def parse_augment(spec: str | None, seed: Any = None) -> Augmenter | None:
    """The :class:`Augmenter` of a ``--augment`` string (None or ``""``/``"none"``: None).

    Parameters
    ----------
    spec : str or None
        Comma-separated tokens, e.g. ``"flip,crop4,cutout8,jitter0.1"``.
    seed : int, numpy.random.Generator or None
        The augmenter's seed.

    Returns
    -------
    Augmenter or None
    """
    if spec is None:
        return None
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a str or None, got {type(spec).__name__}")
    if spec.strip().lower() in ("", "none"):
        return None
    return Augmenter(spec, seed=seed)
