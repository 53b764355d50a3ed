"""fastnn.data.text: reading UTF-8 files, vocabulary, encode/decode, the positional split and the
streaming BPTT windows, on the packaged real sample (tests/samples/text) and on edge cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.data import DatasetError
from fastnn.data.text import (
    TextStream,
    build_vocabulary,
    check_vocabulary,
    decode_text,
    default_text_path,
    encode_text,
    load_text_dataset,
    read_text,
    split_text,
)


@pytest.fixture(scope="module")
def sample_path(samples_dir):
    return samples_dir / "text" / "fortunes-sample.txt"


def test_read_and_round_trip_on_real_sample(sample_path):
    text = read_text(sample_path)
    assert text.startswith("7:30, Channel 5")
    vocab = build_vocabulary(text)
    assert list(vocab) == sorted(set(text))
    ids = encode_text(text, vocab)
    assert ids.dtype == np.int32 and len(ids) == len(text)
    assert decode_text(ids, vocab) == text
    assert vocab[ids[0]] == "7"


def test_vocabulary_is_stable_and_sorted_by_code_point():
    assert build_vocabulary("ba\u00e9a\n") == "\nab\u00e9"
    assert build_vocabulary("abc") == build_vocabulary("cba")


def test_empty_file_names_the_path(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match="empty.txt.*empty"):
        read_text(path)


def test_invalid_utf8_names_path_and_byte(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9 ok".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt: not valid UTF-8 \(byte 3"):
        read_text(path)


def test_missing_file_and_bad_path_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(TypeError, match="path"):
        read_text(3)


def test_utf8_bom_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhi")
    assert read_text(path) == "hi"


def test_unknown_character_names_character_and_position():
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 3"):
        encode_text("abaz", "ab")
    with pytest.raises(ValueError, match="vocab"):
        encode_text("ab", "ba")  # not sorted
    with pytest.raises(ValueError, match="vocab"):
        encode_text("ab", "")


def test_decode_rejects_ids_outside_vocabulary():
    with pytest.raises(ValueError, match=r"ids\[1\] = 5"):
        decode_text([0, 5], "ab")
    with pytest.raises(ValueError, match="ids"):
        decode_text([[0]], "ab")


def test_check_vocabulary_accepts_list_of_characters():
    assert check_vocabulary(["a", "b"]) == "ab"
    with pytest.raises(TypeError, match="vocab"):
        check_vocabulary(["ab"])


def test_split_by_position_holds_out_the_end():
    ids = np.arange(100)
    train, val = split_text(ids)
    np.testing.assert_array_equal(train, np.arange(90))
    np.testing.assert_array_equal(val, np.arange(90, 100))
    train, val = split_text(ids, val_fraction=0.0)
    assert len(val) == 0 and len(train) == 100
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="val_fraction"):
            split_text(ids, bad)


def test_load_text_dataset_with_a_models_vocabulary(sample_path, tmp_path):
    data = load_text_dataset(sample_path)
    assert data["vocab"] == build_vocabulary(read_text(sample_path))
    assert len(data["train"]) + len(data["val"]) == len(read_text(sample_path))
    again = load_text_dataset(sample_path, vocab=data["vocab"])
    np.testing.assert_array_equal(again["train"], data["train"])
    other = tmp_path / "other.txt"
    other.write_text("abc\u00e9", encoding="utf-8")
    with pytest.raises(ValueError, match="position 3"):
        load_text_dataset(other, vocab="abc")


def test_default_text_path_follows_fastnn_data(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    assert default_text_path() == tmp_path / "text" / "fortunes.txt"
    with pytest.raises(DatasetError, match="fortunes.txt"):
        load_text_dataset()


def test_stream_windows_continue_each_other():
    ids = np.arange(1000)
    stream = TextStream(ids, batch_size=4, seq_length=7)
    L = 999 // 4
    assert stream.inputs.shape == (4, L) and len(stream) == L // 7
    windows = list(stream)
    for k in range(len(windows) - 1):
        x0, y0 = windows[k]
        x1, _ = windows[k + 1]
        # row r of window k+1 starts right after row r of window k
        np.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)
        np.testing.assert_array_equal(y0, x0 + 1)  # targets are the next characters
    np.testing.assert_array_equal(windows[0][0][:, 0], np.arange(4) * L)
    x, _ = stream.window(len(stream))  # taken modulo the number of windows
    np.testing.assert_array_equal(x, windows[0][0])


def test_stream_too_short_names_sizes():
    with pytest.raises(ValueError, match="batch_size=4 x seq_length=10"):
        TextStream(np.arange(30), 4, 10)
    with pytest.raises(ValueError, match="seq_length"):
        TextStream(np.arange(30), 2, 0)
    with pytest.raises(ValueError, match="ids"):
        TextStream(np.full(30, 0.5), 2, 3)


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_encode_decode_round_trip_any_text(text):
    vocab = build_vocabulary(text)
    assert decode_text(encode_text(text, vocab), vocab) == text


@pytest.mark.data
def test_real_fortunes_corpus(data_dir, require_data):
    path = data_dir / "text" / "fortunes.txt"
    if not path.is_file():
        require_data(f"{path} not found")
    data = load_text_dataset(path)
    assert len(data["vocab"]) == 113  # as its README states
    assert len(data["train"]) + len(data["val"]) == len(read_text(path))
    assert abs(len(data["val"]) / (len(data["train"]) + len(data["val"])) - 0.1) < 1e-6
