"""CaptioningSolver and LanguageModelSolver: the Solver's loop through its hooks, their data
checks, evaluation scores, and checkpoints that resume exactly (the language model's carried
state and stream position included)."""

import numpy as np
import pytest

from fastnn.captioning_solver import CaptioningSolver
from fastnn.classifiers import CaptioningRNN, CharRNN
from fastnn.data.captions import load_caption_dataset
from fastnn.sequence_solver import LanguageModelSolver


@pytest.fixture(scope="module")
def caption_data():
    return load_caption_dataset("sample", num_train=200, num_val=40, features="pca",
                                feature_dim=16)


def _caption_model(data, cell="rnn"):
    np.random.seed(0)
    return CaptioningRNN(data["word_to_idx"], input_dim=16, wordvec_dim=8, hidden_dim=16,
                         cell_type=cell)


def test_captioning_solver_trains_with_cs231n_kwargs(caption_data):
    model = _caption_model(caption_data, "lstm")
    solver = CaptioningSolver(model, caption_data, update_rule="adam", num_epochs=3,
                              batch_size=25, optim_config={"learning_rate": 5e-3},
                              lr_decay=0.995, verbose=False, print_every=10, seed=1)
    solver.train()
    first, last = solver.history[0], solver.history[-1]
    assert {"train_loss", "val_loss", "val_bleu1", "val_class_word"} <= last.keys()
    assert last["val_loss"] < first["val_loss"]
    assert 0.0 <= last["val_bleu1"] <= 1.0
    assert 0.0 <= last["val_class_word"] <= 1.0
    assert solver.best_score == min(r["val_loss"] for r in solver.history)
    assert len(solver.loss_history) == 3 * (200 // 25)


def test_captioning_solver_resumes_exactly(caption_data, tmp_path):
    kwargs = {"update_rule": "adam", "num_epochs": 2, "batch_size": 40, "verbose": False,
              "seed": 3, "checkpoint_name": str(tmp_path / "cap")}
    full = CaptioningSolver(_caption_model(caption_data), caption_data, **kwargs)
    full.train()
    resumed = CaptioningSolver(_caption_model(caption_data), caption_data, **kwargs)
    resumed.resume(tmp_path / "cap_epoch_1.npz")
    for k in full.model.params:
        np.testing.assert_array_equal(resumed.model.params[k], full.model.params[k])
    assert resumed.loss_history == full.loss_history


def test_captioning_solver_bad_data(caption_data):
    model = _caption_model(caption_data)
    bad = dict(caption_data)
    del bad["val_features"]
    with pytest.raises(ValueError, match="val_features"):
        CaptioningSolver(model, bad)
    bad = dict(caption_data, train_image_idxs=caption_data["train_image_idxs"] + 1)
    with pytest.raises(ValueError, match="train_image_idxs"):
        CaptioningSolver(model, bad)
    bad = dict(caption_data, train_image_idxs=caption_data["train_image_idxs"][:10])
    with pytest.raises(ValueError, match="train_image_idxs"):
        CaptioningSolver(model, bad)
    captions = caption_data["val_captions"].copy()
    captions[3, 2] = 999
    with pytest.raises(ValueError, match="val_captions"):
        CaptioningSolver(model, dict(caption_data, val_captions=captions))
    with pytest.raises(ValueError, match="train_features"):
        CaptioningSolver(model, dict(caption_data,
                                     train_features=caption_data["train_features"][:, :5]))
    with pytest.raises(ValueError, match="train_captions"):
        CaptioningSolver(model, dict(caption_data,
                                     train_captions=caption_data["train_captions"][:, :1]))
    with pytest.raises(TypeError, match="data"):
        CaptioningSolver(model, [1, 2])
    with pytest.raises(ValueError, match="val_labels"):
        CaptioningSolver(model, dict(caption_data, val_labels=caption_data["val_labels"][:3]))


# --------------------------------------------------------------------------- language model
@pytest.fixture(scope="module")
def text_ids(samples_dir):
    from fastnn.data.text import load_text_dataset

    return load_text_dataset(samples_dir / "text" / "fortunes-sample.txt")


def _char_model(data, cell="lstm"):
    return CharRNN(data["vocab"], wordvec_dim=8, hidden_dim=16, cell_type=cell, seed=0)


def test_language_model_solver_streams_windows(text_ids):
    model = _char_model(text_ids)
    solver = LanguageModelSolver(model, text_ids, seq_length=20, batch_size=8, num_epochs=2,
                                 update_rule="adam", optim_config={"learning_rate": 1e-2},
                                 grad_clip=5.0, verbose=False, seed=0)
    per_epoch = (len(text_ids["train"]) - 1) // 8 // 20
    assert solver._iterations_per_epoch() == per_epoch
    seen = []
    original = model.loss

    def spy(X, y=None):
        seen.append((X[:, 0].copy(), model.initial_state is None))
        return original(X, y)

    model.loss = spy
    solver.train()
    assert len(seen) == 2 * per_epoch
    # each epoch starts from zeros, then carries the state; windows continue each other
    assert [fresh for _, fresh in seen] == ([True] + [False] * (per_epoch - 1)) * 2
    np.testing.assert_array_equal(seen[1][0], solver.train_stream.window(1)[0][:, 0])
    assert solver.history[-1]["val_loss"] < solver.history[0]["val_loss"]
    unigram = np.log(len(text_ids["vocab"]))
    assert solver.history[0]["val_loss"] == pytest.approx(unigram, rel=0.05)


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_language_model_resume_restores_carried_state(text_ids, tmp_path, cell):
    kwargs = {"seq_length": 16, "batch_size": 6, "num_epochs": 2, "update_rule": "adam",
              "grad_clip": 1.0, "verbose": False, "seed": 2,
              "checkpoint_name": str(tmp_path / cell)}
    full = LanguageModelSolver(_char_model(text_ids, cell), text_ids, **kwargs)
    full.train()
    # the epoch-0 checkpoint is written after the first window: resuming must continue the
    # stream at window 1 from the carried state, not from zeros
    resumed = LanguageModelSolver(_char_model(text_ids, cell), text_ids, **kwargs)
    resumed.load_checkpoint(tmp_path / f"{cell}_epoch_0.npz")
    assert resumed._carry is not None and resumed._carry[0].shape == (6, 16)
    assert "lm_carry_h" not in resumed.metadata
    resumed.train()
    assert resumed.loss_history == full.loss_history
    for k in full.model.params:
        np.testing.assert_array_equal(resumed.model.params[k], full.model.params[k])
    with pytest.raises(ValueError, match="batch_size"):
        LanguageModelSolver(_char_model(text_ids, cell), text_ids,
                            **{**kwargs, "batch_size": 5}).load_checkpoint(
            tmp_path / f"{cell}_epoch_0.npz")


def test_language_model_solver_bad_data(text_ids):
    model = _char_model(text_ids)
    with pytest.raises(ValueError, match="'val'"):
        LanguageModelSolver(model, {"train": text_ids["train"]})
    bad = text_ids["train"].copy()
    bad[7] = len(text_ids["vocab"])
    with pytest.raises(ValueError, match=r"data\['train'\]\[7\]"):
        LanguageModelSolver(model, {"train": bad, "val": text_ids["val"]})
    with pytest.raises(ValueError, match=r"data\['train'\].*too short"):
        LanguageModelSolver(model, {"train": text_ids["train"][:50], "val": text_ids["val"]},
                            batch_size=8, seq_length=10)
    with pytest.raises(ValueError, match=r"data\['val'\]"):
        LanguageModelSolver(model, {"train": text_ids["train"], "val": text_ids["val"][:5]},
                            seq_length=10)
    with pytest.raises(ValueError, match="data\\['val'\\]"):
        LanguageModelSolver(model, {"train": text_ids["train"], "val": np.zeros(40)})
    with pytest.raises(ValueError, match="seq_length"):
        LanguageModelSolver(model, text_ids, seq_length=0)
    with pytest.raises(TypeError, match="language model"):
        LanguageModelSolver(_caption_model(load_caption_dataset("sample", num_train=20,
                                                                num_val=5, features="pca",
                                                                feature_dim=16)), text_ids)
