"""fastnn.data.captions: the caption generator (determinism, attributes measured on the pixels,
CS231n's data dict), BLEU-1 and the class-word accuracy."""

import numpy as np
import pytest

from fastnn.data import load_sample
from fastnn.data.captions import (
    FASHION_MNIST_WORDS,
    bleu1,
    captions_to_words,
    class_word_accuracy,
    load_caption_dataset,
    make_caption_dataset,
    measure_attributes,
)


@pytest.fixture(scope="module")
def sample_data():
    return load_caption_dataset("sample")


def test_dataset_dict_follows_cs231n(sample_data):
    d = sample_data
    w2i = d["word_to_idx"]
    assert w2i["<NULL>"] == 0 and {"<START>", "<END>", "<UNK>"} <= set(w2i)
    assert d["idx_to_word"][w2i["coat"]] == "coat"
    for split, n in (("train", 2000), ("val", 500)):
        caps = d[f"{split}_captions"]
        assert caps.shape[0] == n and caps.dtype.kind == "i"
        assert np.all(caps[:, 0] == w2i["<START>"])
        assert np.all((caps == w2i["<END>"]).sum(axis=1) == 1)
        # <NULL> only after <END>
        end_at = np.argmax(caps == w2i["<END>"], axis=1)
        for row, e in zip(caps, end_at, strict=True):
            assert np.all(row[e + 1:] == 0) and np.all(row[:e] != 0)
        np.testing.assert_array_equal(d[f"{split}_image_idxs"], np.arange(n))
        assert d[f"{split}_features"].shape == (n, 784)
        assert d[f"{split}_features"].dtype == np.float32


def test_generator_is_deterministic(sample_data):
    again = load_caption_dataset("sample")
    for key in ("train_captions", "val_captions", "train_features", "val_attributes"):
        np.testing.assert_array_equal(again[key], sample_data[key])
    assert again["word_to_idx"] == sample_data["word_to_idx"]


def test_class_word_names_the_label(sample_data):
    d = sample_data
    words = captions_to_words(d["train_captions"], d["idx_to_word"])
    for text, label in zip(words[:200], d["train_labels"][:200], strict=True):
        assert text.split()[-1] == FASHION_MNIST_WORDS[label]
    assert class_word_accuracy(d["train_captions"], d["train_labels"], d["word_to_idx"]) == 1.0


def test_same_label_different_attribute_words(sample_data):
    d = sample_data
    words = captions_to_words(d["train_captions"], d["idx_to_word"])
    for c in range(10):
        captions = {w for w, y in zip(words, d["train_labels"], strict=True) if y == c}
        assert len(captions) >= 10  # many different captions per class
        for attribute_words in (("small", "medium", "large"), ("dark", "grey", "bright"),
                                ("plain", "patterned")):
            used = {w for text in captions for w in text.split()} & set(attribute_words)
            assert used == set(attribute_words)  # per-class quantiles: every level occurs


def test_attributes_follow_the_pixels():
    raw = load_sample()
    img = raw["X_train"][:1, :, :, 0].copy()
    base = measure_attributes(img)
    dimmer = measure_attributes(img * 0.5)
    assert dimmer["brightness"][0] < base["brightness"][0]
    # a blank copy of the image's lower half shrinks the object, a doubled width widens it
    cut = img.copy()
    cut[:, 14:, :] = 0
    assert measure_attributes(cut)["area"][0] < base["area"][0]
    square = np.zeros((1, 20, 20))
    square[0, 5:15, 5:15] = 200
    m = measure_attributes(square)
    assert m["area"][0] == pytest.approx(0.25)
    assert m["brightness"][0] == pytest.approx(200)
    assert m["aspect"][0] == pytest.approx(1.0)
    assert m["texture"][0] == pytest.approx(0.0)
    striped = square.copy()
    striped[0, 5:15:2, 5:15] = 100
    assert measure_attributes(striped)["texture"][0] > 0.1
    wide = np.zeros((1, 20, 20))
    wide[0, 8:12, 2:18] = 200
    assert measure_attributes(wide)["aspect"][0] == pytest.approx(4.0)


def test_changing_pixels_changes_the_caption_not_the_class():
    raw = load_sample()
    X, y = raw["X_train"][:400], raw["y_train"][:400]
    d = make_caption_dataset(X, y, X[:1] * 0.3, y[:1])
    bright = make_caption_dataset(X, y, np.minimum(X[:1] * 3.0, 255), y[:1])
    dim_words = captions_to_words(d["val_captions"], d["idx_to_word"])[0].split()
    bright_words = captions_to_words(bright["val_captions"], d["idx_to_word"])[0].split()
    assert dim_words[-1] == bright_words[-1] == FASHION_MNIST_WORDS[y[0]]
    assert "dark" in dim_words and "dark" not in bright_words


def test_pca_features_and_bad_input():
    raw = load_sample()
    X, y = raw["X_train"][:300], raw["y_train"][:300]
    d = make_caption_dataset(X, y, X[:10], y[:10], features="pca", feature_dim=16)
    assert d["train_features"].shape == (300, 16)
    with pytest.raises(ValueError, match="features"):
        make_caption_dataset(X, y, X, y, features="cnn")
    with pytest.raises(ValueError, match="y_train"):
        make_caption_dataset(X, y[:5], X, y)
    with pytest.raises(ValueError, match="y_val"):
        make_caption_dataset(X, y, X, y + 10)
    with pytest.raises(ValueError, match="class_words"):
        make_caption_dataset(X, y, X, y, class_words=["a b"] * 10)
    with pytest.raises(ValueError, match="images"):
        measure_attributes(np.zeros((2, 5)))


def test_bleu1_reference_values():
    assert bleu1([["a", "b"]], [["a", "b"]]) == 1.0
    assert bleu1([["a", "a", "a"]], [["a", "b", "c"]]) == pytest.approx(1 / 3)
    # brevity penalty: candidate of 1 word against a reference of 3 words
    assert bleu1([["a"]], [["a", "b", "c"]]) == pytest.approx(np.exp(1 - 3))
    assert bleu1([[]], [["a"]]) == 0.0
    ids = np.array([[4, 5, 2, 0], [4, 6, 6, 2]])
    ref = np.array([[4, 5, 2, 0], [4, 6, 7, 2]])
    assert bleu1(ids, ref, null=0, end=2) == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="candidates"):
        bleu1([["a"]], [])


def test_class_word_accuracy_counts_the_first_class_word():
    w2i = {"<NULL>": 0, "top": 1, "coat": 2, "a": 3}
    caps = np.array([[3, 1, 0], [3, 2, 1], [3, 3, 3]])
    acc = class_word_accuracy(caps, [0, 0, 0], w2i, class_words=("top", "coat"))
    assert acc == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="labels"):
        class_word_accuracy(caps, [0, 0], w2i, class_words=("top", "coat"))


@pytest.mark.data
def test_real_fashion_mnist_captions(data_dir):
    d = load_caption_dataset("fashion-mnist", root=data_dir / "fashion-mnist", num_val=1000)
    assert d["train_captions"].shape[0] == 60000 and d["val_captions"].shape[0] == 1000
    sizes = d["train_attributes"][:, 0]
    # per-class tertiles: each size word covers about a third of the training images
    np.testing.assert_allclose(np.bincount(sizes, minlength=3) / len(sizes), 1 / 3, atol=0.05)
