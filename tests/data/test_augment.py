"""fastnn.data.augment: seeded reproducibility, exact flips, crop windows, cutout squares,
jitter ranges, inputs never modified, the --augment parser and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn.data.augment import (
    Augmenter,
    color_jitter,
    cutout,
    parse_augment,
    random_crop,
    random_flip,
)


@pytest.fixture
def batch(rng):
    return rng.standard_normal((16, 3, 6, 7)).astype(np.float32)


@pytest.mark.parametrize("op", [
    lambda x, g: random_flip(x, g),
    lambda x, g: random_crop(x, g, padding=2),
    lambda x, g: cutout(x, g, size=3),
    lambda x, g: color_jitter(x, g, 0.3, 0.3),
])
def test_seeded_shape_dtype_and_input_unchanged(batch, op):
    before = batch.copy()
    a = op(batch, np.random.default_rng(7))
    b = op(batch, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(batch, before)
    assert a.shape == batch.shape and a.dtype == batch.dtype and a is not batch
    assert not np.shares_memory(a, batch)


def test_flip_is_an_exact_mirror_of_the_chosen_images(batch):
    out = random_flip(batch, 3, p=0.5)
    flipped = [i for i in range(len(batch)) if not np.array_equal(out[i], batch[i])]
    assert 0 < len(flipped) < len(batch)
    for i in range(len(batch)):
        expected = batch[i, :, :, ::-1] if i in flipped else batch[i]
        np.testing.assert_array_equal(out[i], expected)
    np.testing.assert_array_equal(random_flip(batch, 0, p=1.0), batch[..., ::-1])
    np.testing.assert_array_equal(random_flip(batch, 0, p=0.0), batch)


def test_crop_is_a_shifted_window_of_the_zero_padded_image(batch):
    p = 2
    out = random_crop(batch, 11, padding=p)
    padded = np.pad(batch, ((0, 0), (0, 0), (p, p), (p, p)))
    H, W = batch.shape[2:]
    for i in range(len(batch)):
        windows = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                   if np.array_equal(padded[i, :, dy:dy + H, dx:dx + W], out[i])]
        assert windows, i
    np.testing.assert_array_equal(random_crop(batch, 0, padding=0), batch)
    assert random_crop(np.zeros((0, 1, 4, 4)), 0).shape == (0, 1, 4, 4)


def test_cutout_zeroes_one_square_on_every_channel(rng):
    x = rng.random((50, 2, 9, 9)) + 1.0  # no zeros of its own
    out = cutout(x, 5, size=3)
    for i in range(len(x)):
        zero = out[i] == 0
        np.testing.assert_array_equal(zero[0], zero[1])  # the same square on every channel
        rows, cols = np.nonzero(zero[0])
        assert 1 <= rows.size <= 9
        # a (clipped) square: a full rectangle of at most 3 x 3
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert h <= 3 and w <= 3 and rows.size == h * w
        np.testing.assert_array_equal(out[i][~zero], x[i][~zero])
    inside = [i for i in range(len(x)) if (out[i, 0] == 0).sum() == 9]
    assert inside  # most centres are away from the border


def test_jitter_ranges(rng):
    x = rng.standard_normal((200, 3, 4, 4))
    m = x.mean(axis=(1, 2, 3), keepdims=True)
    out = color_jitter(x, 2, brightness=0.5, contrast=0.0)
    offset = (out - x)[:, 0, 0, 0]
    np.testing.assert_allclose(out - x, offset[:, None, None, None] * np.ones_like(x))
    assert np.abs(offset).max() <= 0.5 and np.abs(offset).max() > 0.4
    out = color_jitter(x, 2, brightness=0.0, contrast=0.3)
    scale = (out - m)[:, 0, 0, 0] / (x - m)[:, 0, 0, 0]
    np.testing.assert_allclose(out - m, scale[:, None, None, None] * (x - m), atol=1e-12)
    assert 0.7 <= scale.min() < 0.75 and 1.25 < scale.max() <= 1.3
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), m.ravel(), atol=1e-12)


def test_augmenter_composes_in_order_and_owns_its_generator(batch):
    aug = Augmenter("flip,crop2,cutout2,jitter0.1", seed=4)
    assert aug.ops == [("flip", 0.5), ("crop", 2.0), ("cutout", 2.0), ("jitter", 0.1)]
    assert repr(aug) == "Augmenter('flip0.5,crop2,cutout2,jitter0.1')"
    state = aug.rng.bit_generator.state
    first = aug(batch)
    second = aug(batch)
    assert not np.array_equal(first, second)  # the generator advances
    aug.rng.bit_generator.state = state
    np.testing.assert_array_equal(aug(batch), first)
    again = Augmenter(["flip", ("crop", 2), "cutout2", "jitter0.1"], seed=4)
    np.testing.assert_array_equal(again(batch), first)
    same = Augmenter("", seed=0)(batch)
    np.testing.assert_array_equal(same, batch)
    assert same is not batch


def test_parse_augment():
    assert parse_augment(None) is None and parse_augment("none") is None
    assert parse_augment(" ") is None
    aug = parse_augment("Flip, crop4", seed=1)
    assert aug.ops == [("flip", 0.5), ("crop", 4.0)]
    assert parse_augment("brightness0.2,contrast.3").ops == [("brightness", 0.2),
                                                             ("contrast", 0.3)]


@pytest.mark.parametrize(("spec", "match"), [
    ("rotate", r"augmentation token 'rotate' is not one of: flip\[N\]"),
    ("crop-1", "augmentation token 'crop-1'"),
    ("crop2.5", "augmentation crop2.5: must be a whole number of pixels"),
    ("flip2", r"augmentation flip2: p must be <= 1.0"),
    ("contrast1.5", "augmentation contrast1.5: contrast must be <= 1.0"),
])
def test_bad_specs_name_the_token(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_augment(spec)


def test_bad_input_is_named(batch):
    with pytest.raises(ValueError, match="x"):
        random_flip(batch[0])
    with pytest.raises(ValueError, match="padding must be >= 0"):
        random_crop(batch, padding=-1)
    with pytest.raises(ValueError, match="size must be >= 0"):
        cutout(batch, size=-2)
    with pytest.raises(TypeError, match="rng"):
        random_flip(batch, rng="seed")
    with pytest.raises(TypeError, match="spec must be a str"):
        parse_augment(3)
    with pytest.raises(TypeError, match="ops must hold"):
        Augmenter([3])
    with pytest.raises(ValueError, match="x"):
        Augmenter("flip")(np.zeros((2, 3)))
