"""A reproducible captioned image set built from real Fashion-MNIST images, and its metrics.

No public caption corpus is reachable from these machines, so captions are *generated*, from
the label and from attributes *measured on the pixels* of each image. A model therefore has to
look at the image to caption it well: two images of the same class get different words when
they differ in size, brightness, shape or texture.

The generator (deterministic; no randomness anywhere)
------------------------------------------------------
For an image ``x`` (H, W) of raw values 0..255 on a dark background (colour images are
averaged over channels):

- the object is the set of pixels brighter than :data:`OBJECT_THRESHOLD` (16);
- ``area``: the fraction of the image the object covers;
- ``brightness``: the mean value of the object's pixels;
- ``aspect``: width over height of the object's bounding box;
- ``texture``: the mean absolute difference between neighbouring object pixels (horizontal
  and vertical), divided by the brightness: high for stripes, prints and seams, low for plain
  surfaces.

Every attribute becomes a word through thresholds fixed *per class* from quantiles of the
training images (so every class has, for example, small, medium and large items, and the size
word cannot be guessed from the class): ``area`` tertiles give ``small``/``medium``/``large``,
``brightness`` tertiles ``dark``/``grey``/``bright``, ``aspect`` below its first quartile
``narrow``, above its third quartile ``wide`` (otherwise no word), ``texture`` above its median
``patterned``, otherwise ``plain``. The caption is::

    <START> a {size} [{shape}] {brightness} {texture} {class word} <END> <NULL> ...

for example ``a large wide dark plain coat``. Class words are single tokens
(:data:`FASHION_MNIST_WORDS`). Thresholds are computed from the training split only and applied
unchanged to the validation split; they are returned in the data set (``thresholds``).

The data set is CS231n's captioning dict (one caption per image):
``train_captions`` (N, T) int32, ``train_image_idxs`` (N,), ``train_features`` (N, D) float32,
the same for ``val_``, ``word_to_idx`` (``<NULL>`` = 0, ``<START>`` = 1, ``<END>`` = 2,
``<UNK>`` = 3, then the words in sorted order), ``idx_to_word`` (a list), plus ``train_labels``,
``val_labels``, ``train_attributes``/``val_attributes`` (N, 4) levels and ``class_words``.
Features are the pixels scaled to [0, 1] minus the training mean image (``features="pixels"``)
or their projection on the top principal components of the training images (``"pca"``).

Evaluation: :func:`bleu1` (corpus BLEU-1 with brevity penalty) and :func:`class_word_accuracy`
(the fraction of captions whose class word is the image's class).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastnn._validation import check_array, check_choice, check_int, check_labels
from fastnn.data.datasets import load_dataset

__all__ = [
    "ATTRIBUTES",
    "FASHION_MNIST_WORDS",
    "OBJECT_THRESHOLD",
    "SPECIAL_TOKENS",
    "bleu1",
    "caption_words",
    "captions_to_words",
    "class_word_accuracy",
    "fit_thresholds",
    "load_caption_dataset",
    "make_caption_dataset",
    "measure_attributes",
]

OBJECT_THRESHOLD = 16.0
SPECIAL_TOKENS = ("<NULL>", "<START>", "<END>", "<UNK>")
#: One-token class words for Fashion-MNIST's labels 0..9.
FASHION_MNIST_WORDS = ("top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                       "sneaker", "bag", "boot")
ATTRIBUTES = ("area", "brightness", "aspect", "texture")
_SIZE_WORDS = ("small", "medium", "large")
_BRIGHTNESS_WORDS = ("dark", "grey", "bright")
_SHAPE_WORDS = ("narrow", "", "wide")
_TEXTURE_WORDS = ("plain", "patterned")
_QUANTILES = {"area": (1 / 3, 2 / 3), "brightness": (1 / 3, 2 / 3), "aspect": (0.25, 0.75),
              "texture": (0.5,)}


def _gray(images: Any, name: str) -> np.ndarray:
    """(N, H, W), (N, H, W, C) with C in {1, 3} or (N, C, H, W) -> (N, H, W) float64."""
    x = check_array(images, name, ndim=(3, 4))
    if x.ndim == 4:
        if x.shape[-1] in (1, 3):
            x = x.mean(axis=-1)
        elif x.shape[1] in (1, 3):
            x = x.mean(axis=1)
        else:
            raise ValueError(f"{name} must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C "
                             f"1 or 3, got shape {x.shape}")
    if x.shape[0] < 1 or x.shape[1] < 2 or x.shape[2] < 2:
        raise ValueError(f"{name} must hold at least one image of at least 2x2 pixels, got "
                         f"shape {x.shape}")
    return x.astype(np.float64, copy=False)


def measure_attributes(images: Any) -> dict[str, np.ndarray]:
    """Measure ``area``, ``brightness``, ``aspect`` and ``texture`` of every image.

    Parameters
    ----------
    images : ndarray, shape (N, H, W), (N, H, W, C) or (N, C, H, W)
        Raw pixel values 0..255 on a dark background.

    Returns
    -------
    dict of str -> ndarray of shape (N,)
        As defined in the module docstring (an image without object pixels has 0 everywhere).
    """
    x = _gray(images, "images")
    mask = x > OBJECT_THRESHOLD
    count = mask.sum(axis=(1, 2))
    safe = np.maximum(count, 1)
    area = count / (x.shape[1] * x.shape[2])
    brightness = (x * mask).sum(axis=(1, 2)) / safe

    def extent(any_along: np.ndarray) -> np.ndarray:
        first = np.argmax(any_along, axis=1)
        last = any_along.shape[1] - 1 - np.argmax(any_along[:, ::-1], axis=1)
        return np.where(any_along.any(axis=1), last - first + 1, 0)

    height = extent(mask.any(axis=2))
    width = extent(mask.any(axis=1))
    aspect = width / np.maximum(height, 1)
    # neighbour differences where both pixels belong to the object
    dx = np.abs(np.diff(x, axis=2)) * (mask[:, :, 1:] & mask[:, :, :-1])
    dy = np.abs(np.diff(x, axis=1)) * (mask[:, 1:, :] & mask[:, :-1, :])
    pairs = (mask[:, :, 1:] & mask[:, :, :-1]).sum(axis=(1, 2)) + \
        (mask[:, 1:, :] & mask[:, :-1, :]).sum(axis=(1, 2))
    texture = (dx.sum(axis=(1, 2)) + dy.sum(axis=(1, 2))) / np.maximum(pairs, 1)
    texture = texture / np.maximum(brightness, 1.0)
    return {"area": area, "brightness": brightness, "aspect": aspect, "texture": texture}


def fit_thresholds(measures: dict[str, np.ndarray], labels: Any,
                   num_classes: int) -> dict[str, np.ndarray]:
    """Per-class quantile thresholds of every attribute (from the training images).

    Parameters
    ----------
    measures : dict
        :func:`measure_attributes` of the training images.
    labels : array_like of int, shape (N,)
    num_classes : int

    Returns
    -------
    dict of str -> ndarray, shape (num_classes, q)
        ``area`` and ``brightness`` tertiles, ``aspect`` quartiles 1 and 3, ``texture`` median;
        a class without training images gets the thresholds of all images.
    """
    num_classes = check_int(num_classes, "num_classes", minimum=1)
    labels = check_labels(labels, "labels", n=len(measures["area"]), num_classes=num_classes)
    thresholds = {}
    for name, qs in _QUANTILES.items():
        values = measures[name]
        overall = np.quantile(values, qs)
        table = np.empty((num_classes, len(qs)))
        for c in range(num_classes):
            in_class = values[labels == c]
            table[c] = np.quantile(in_class, qs) if in_class.size else overall
        thresholds[name] = table
    return thresholds


def attribute_levels(measures: dict[str, np.ndarray], labels: np.ndarray,
                     thresholds: dict[str, np.ndarray]) -> np.ndarray:
    """(N, 4) int levels: size 0..2, brightness 0..2, shape 0..2 (1 = ordinary), texture 0..1."""
    levels = np.empty((len(labels), len(ATTRIBUTES)), dtype=np.int64)
    for j, name in enumerate(ATTRIBUTES):
        t = thresholds[name][labels]  # (N, q): each image against its own class's thresholds
        levels[:, j] = (measures[name][:, None] > t).sum(axis=1)
    return levels


def caption_words(levels: np.ndarray, labels: np.ndarray,
                  class_words: Sequence[str]) -> list[list[str]]:
    """The words of every caption (without special tokens) from attribute levels and labels."""
    out = []
    for (size, bright, shape, texture), label in zip(levels.tolist(), labels.tolist(),
                                                     strict=True):
        words = ["a", _SIZE_WORDS[size]]
        if _SHAPE_WORDS[shape]:
            words.append(_SHAPE_WORDS[shape])
        words += [_BRIGHTNESS_WORDS[bright], _TEXTURE_WORDS[texture], class_words[label]]
        out.append(words)
    return out


def caption_vocabulary(class_words: Sequence[str]) -> dict[str, int]:
    """``word_to_idx``: the special tokens (0..3), then every word the generator uses, sorted."""
    words = {"a", *_SIZE_WORDS, *_BRIGHTNESS_WORDS, *_TEXTURE_WORDS, *class_words,
             *(w for w in _SHAPE_WORDS if w)}
    return {w: i for i, w in enumerate([*SPECIAL_TOKENS, *sorted(words)])}


def _encode(captions: list[list[str]], word_to_idx: dict[str, int], length: int) -> np.ndarray:
    out = np.zeros((len(captions), length), dtype=np.int32)  # <NULL> = 0 pads
    unk = word_to_idx["<UNK>"]
    for i, words in enumerate(captions):
        ids = [word_to_idx["<START>"], *(word_to_idx.get(w, unk) for w in words),
               word_to_idx["<END>"]]
        out[i, :len(ids)] = ids
    return out


def make_caption_dataset(X_train: Any, y_train: Any, X_val: Any, y_val: Any,
                         class_words: Sequence[str] = FASHION_MNIST_WORDS,
                         features: str = "pixels", feature_dim: int = 128) -> dict[str, Any]:
    """Caption images with the generator of the module docstring.

    Parameters
    ----------
    X_train, X_val : ndarray, shape (N, H, W[, C])
        Raw pixel values 0..255 (dark background).
    y_train, y_val : array_like of int
        Class labels, indices into ``class_words``.
    class_words : sequence of str
        One single-token word per class.
    features : {"pixels", "pca"}
        Image features: centred pixels in [0, 1], or their top ``feature_dim`` principal
        components (fitted on the training images).
    feature_dim : int
        Components kept with ``"pca"``.

    Returns
    -------
    dict
        CS231n's captioning data dict (see the module docstring).
    """
    check_choice(features, "features", ("pixels", "pca"))
    class_words = tuple(class_words)
    if len(set(class_words)) != len(class_words) or not all(
            isinstance(w, str) and w and " " not in w for w in class_words):
        raise ValueError("class_words must be distinct single words")
    gray_train, gray_val = _gray(X_train, "X_train"), _gray(X_val, "X_val")
    y_train = check_labels(y_train, "y_train", n=len(gray_train), n_name="X_train",
                           num_classes=len(class_words))
    y_val = check_labels(y_val, "y_val", n=len(gray_val), n_name="X_val",
                         num_classes=len(class_words))
    m_train, m_val = measure_attributes(gray_train), measure_attributes(gray_val)
    thresholds = fit_thresholds(m_train, y_train, len(class_words))
    word_to_idx = caption_vocabulary(class_words)
    data: dict[str, Any] = {"word_to_idx": word_to_idx,
                            "idx_to_word": list(word_to_idx), "class_words": list(class_words),
                            "thresholds": thresholds}
    levels = {"train": attribute_levels(m_train, y_train, thresholds),
              "val": attribute_levels(m_val, y_val, thresholds)}
    words = {s: caption_words(levels[s], y, class_words)
             for s, y in (("train", y_train), ("val", y_val))}
    length = 2 + max(len(w) for split in words.values() for w in split)
    flat_train = np.asarray(X_train, dtype=np.float32).reshape(len(gray_train), -1) / 255.0
    flat_val = np.asarray(X_val, dtype=np.float32).reshape(len(gray_val), -1) / 255.0
    mean = flat_train.mean(axis=0)
    flat_train, flat_val = flat_train - mean, flat_val - mean
    if features == "pca":
        feature_dim = check_int(feature_dim, "feature_dim", minimum=1,
                                maximum=min(flat_train.shape))
        # principal axes of (at most 10,000) training images: deterministic, no randomness
        _, _, vt = np.linalg.svd(flat_train[:10000].astype(np.float64), full_matrices=False)
        basis = vt[:feature_dim].T.astype(np.float32)
        flat_train, flat_val = flat_train @ basis, flat_val @ basis
    for split, y, feats in (("train", y_train, flat_train), ("val", y_val, flat_val)):
        data[f"{split}_captions"] = _encode(words[split], word_to_idx, length)
        data[f"{split}_image_idxs"] = np.arange(len(y), dtype=np.int64)
        data[f"{split}_features"] = np.ascontiguousarray(feats, dtype=np.float32)
        data[f"{split}_labels"] = y.astype(np.int64)
        data[f"{split}_attributes"] = levels[split]
    return data


def load_caption_dataset(name: str = "fashion-mnist", root: str | os.PathLike | None = None,
                         num_train: int | None = None, num_val: int | None = None,
                         features: str = "pixels", feature_dim: int = 128) -> dict[str, Any]:
    """Captioned Fashion-MNIST: the training split captioned for training, the first
    ``num_val`` test images for validation.

    Parameters
    ----------
    name : {"fashion-mnist", "sample"}
        The image set (``"sample"`` is the small real cut packaged with fastnn).
    root : path, optional
        As for :func:`fastnn.data.load_dataset`.
    num_train, num_val : int, optional
        Use only the first images of each split (default all).
    features, feature_dim
        As for :func:`make_caption_dataset`.

    Returns
    -------
    dict
        :func:`make_caption_dataset`'s dict.
    """
    check_choice(name, "name", ("fashion-mnist", "sample"))
    raw = load_dataset(name, root)
    n_train = len(raw["X_train"]) if num_train is None else check_int(num_train, "num_train",
                                                                       minimum=1)
    n_val = len(raw["X_test"]) if num_val is None else check_int(num_val, "num_val", minimum=1)
    return make_caption_dataset(raw["X_train"][:n_train], raw["y_train"][:n_train],
                                raw["X_test"][:n_val], raw["y_test"][:n_val],
                                FASHION_MNIST_WORDS, features=features, feature_dim=feature_dim)


def _tokens(caption: Any, null: int | None, end: Any, start: Any) -> list:
    words = []
    for token in (caption.tolist() if isinstance(caption, np.ndarray) else caption):
        if token == end:
            break
        if token != null and token != start:
            words.append(token)
    return words


def captions_to_words(captions: Any, idx_to_word: Sequence[str] | dict[int, str]) -> list[str]:
    """Caption id rows as text: special tokens left out, each cut at ``<END>``."""
    arr = check_array(captions, "captions", ndim=2, dtype="int", allow_empty=True)
    lookup = dict(enumerate(idx_to_word)) if not isinstance(idx_to_word, dict) else idx_to_word
    out = []
    for row in arr.tolist():
        words = [lookup.get(i, "<UNK>") for i in row]
        out.append(" ".join(_tokens(words, "<NULL>", "<END>", "<START>")))
    return out


def bleu1(candidates: Any, references: Any, *, null: Any = 0, end: Any = None,
          start: Any = None) -> float:
    """Corpus BLEU-1: clipped unigram precision times the brevity penalty (Papineni et al.).

    Parameters
    ----------
    candidates, references : sequence of token sequences, or int arrays (N, T)
        One generated and one reference caption per example (tokens: ids or words).
        Tokens equal to ``null`` or ``start`` are skipped and a caption ends at ``end``.
    null, end, start
        Special tokens (e.g. the ids of ``<NULL>``, ``<END>``, ``<START>``).

    Returns
    -------
    float in [0, 1]
        ``BP * matched / candidate_length`` with ``BP = exp(1 - r / c)`` when the candidates
        are shorter in total (``c``) than the references (``r``), else 1; 0 for no candidate
        words.
    """
    if len(candidates) != len(references):
        raise ValueError(f"candidates has {len(candidates)} captions but references has "
                         f"{len(references)}")
    matched = cand_len = ref_len = 0
    for cand, ref in zip(candidates, references, strict=True):
        c, r = _tokens(cand, null, end, start), _tokens(ref, null, end, start)
        ref_counts = Counter(r)
        matched += sum(min(n, ref_counts[w]) for w, n in Counter(c).items())
        cand_len += len(c)
        ref_len += len(r)
    if cand_len == 0:
        return 0.0
    penalty = 1.0 if cand_len > ref_len else float(np.exp(1.0 - ref_len / cand_len))
    return penalty * matched / cand_len


def class_word_accuracy(captions: Any, labels: Any, word_to_idx: dict[str, int],
                        class_words: Sequence[str] = FASHION_MNIST_WORDS) -> float:
    """Fraction of captions whose first class word names the image's class.

    Parameters
    ----------
    captions : int array (N, T)
        Generated captions (word ids); one without any class word counts as wrong.
    labels : array_like of int, shape (N,)
    word_to_idx : dict
    class_words : sequence of str

    Returns
    -------
    float
    """
    captions = check_array(captions, "captions", ndim=2, dtype="int", allow_empty=True)
    labels = check_labels(labels, "labels", n=len(captions), n_name="captions",
                          num_classes=len(class_words))
    if not len(labels):
        return 0.0
    class_of_id = {word_to_idx[w]: c for c, w in enumerate(class_words) if w in word_to_idx}
    correct = 0
    for row, label in zip(captions.tolist(), labels.tolist(), strict=True):
        found = next((class_of_id[i] for i in row if i in class_of_id), None)
        correct += found == label
    return correct / len(labels)
