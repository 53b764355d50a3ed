"""CaptioningRNN, SequenceClassifier and CharRNN: CS231n's notebook numbers, numerical gradient
checks (float64, both cell types), torch as an oracle, save/load, sampling and bad input."""

import numpy as np
import pytest

from fastnn.classifiers import CaptioningRNN, CharRNN, SequenceClassifier
from fastnn.gradient_check import eval_numerical_gradient
from fastnn.serialization import load_model, save_model

CELLS = ("rnn", "lstm")


def _relative_norm_error(num, ana):
    return np.linalg.norm(num - ana) / max(np.linalg.norm(num) + np.linalg.norm(ana), 1e-300)


def _check_gradients(model, loss_fn, tol=1e-7):
    _, grads = loss_fn()
    assert set(grads) == set(model.params)
    for name, value in model.params.items():
        assert grads[name].shape == value.shape and grads[name].dtype == np.float64
        num = eval_numerical_gradient(lambda _: loss_fn()[0], value, verbose=False, h=1e-6)
        err = _relative_norm_error(num, grads[name])
        assert err < tol, f"{name}: relative error {err:.2e}"


# --------------------------------------------------------------------------- CaptioningRNN
@pytest.mark.parametrize("cell, feature_range, expected", [
    ("rnn", (-1.5, 0.3), 9.83235591003),
    ("lstm", (-0.5, 1.7), 9.82445935443),
])
def test_captioning_notebook_losses(cell, feature_range, expected):
    N, D, W, H, T = 10, 20, 30, 40, 13
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    model = CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell,
                          dtype=np.float64)
    for k, v in model.params.items():
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
    features = np.linspace(*feature_range, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % len(word_to_idx)).reshape(N, T)
    loss, _ = model.loss(features, captions)
    assert abs(loss - expected) < 1e-10


def test_captioning_parameters_follow_cs231n():
    np.random.seed(0)
    model = CaptioningRNN({"<NULL>": 0, "<START>": 1, "<END>": 2, "x": 3}, input_dim=6,
                          wordvec_dim=5, hidden_dim=4, cell_type="lstm")
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W_proj": (6, 4), "b_proj": (4,), "W_embed": (4, 5), "Wx": (5, 16),
                      "Wh": (4, 16), "b": (16,), "W_vocab": (4, 4), "b_vocab": (4,)}
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert CaptioningRNN.parameter_shapes(**model.get_config()) == shapes


@pytest.mark.parametrize("cell", CELLS)
def test_captioning_gradients(cell):
    np.random.seed(231)
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    model = CaptioningRNN(word_to_idx, input_dim=4, wordvec_dim=5, hidden_dim=6, cell_type=cell,
                          dtype=np.float64, reg=0.1)
    captions = np.random.randint(3, size=(2, 4))
    captions[0, 2:] = 0  # padding is masked
    features = np.random.randn(2, 4)
    _check_gradients(model, lambda: model.loss(features, captions))


def test_captioning_sample_greedy_and_temperature():
    np.random.seed(1)
    w2i = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "b": 4}
    model = CaptioningRNN(w2i, input_dim=3, wordvec_dim=4, hidden_dim=5, cell_type="lstm")
    feats = np.random.randn(6, 3)
    greedy = model.sample(feats, max_length=7)
    assert greedy.shape == (6, 7)
    np.testing.assert_array_equal(greedy, model.sample(feats, max_length=7))
    for row in greedy:  # <NULL> after <END>
        ends = np.flatnonzero(row == 2)
        if ends.size:
            assert np.all(row[ends[0] + 1:] == 0)
    hot = model.sample(feats, max_length=7, temperature=5.0, seed=3)
    np.testing.assert_array_equal(hot, model.sample(feats, max_length=7, temperature=5.0,
                                                    seed=3))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(feats, temperature=0.0)
    with pytest.raises(ValueError, match="max_length"):
        model.sample(feats, max_length=0)


def test_captioning_overfits_50_images_and_sample_reproduces(rng):
    from fastnn.captioning_solver import CaptioningSolver
    from fastnn.data.captions import load_caption_dataset

    full = load_caption_dataset("sample", num_train=50, num_val=20, features="pca",
                                feature_dim=32)
    # the Solver keeps the parameters with the best val_loss: validate on the training set
    full.update({f"val_{k}": full[f"train_{k}"] for k in ("captions", "image_idxs",
                                                          "features", "labels")})
    np.random.seed(231)
    for cell in CELLS:
        model = CaptioningRNN(full["word_to_idx"], input_dim=32, wordvec_dim=32, hidden_dim=64,
                              cell_type=cell)
        solver = CaptioningSolver(model, full, update_rule="adam", num_epochs=60, batch_size=25,
                                  optim_config={"learning_rate": 1e-2}, verbose=False, seed=0,
                                  shuffle=True, num_train_samples=50, num_val_samples=20)
        solver.train()
        loss, _ = model.loss(full["train_features"], full["train_captions"])
        assert loss < 0.1, (cell, loss)
        sampled = model.sample(full["train_features"], max_length=full["train_captions"].shape[1]
                               - 1)
        np.testing.assert_array_equal(sampled, full["train_captions"][:, 1:])


def test_captioning_bad_input():
    model = CaptioningRNN({"<NULL>": 0, "a": 1, "b": 2}, input_dim=3, wordvec_dim=2,
                          hidden_dim=2, dtype=np.float64)
    feats = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"captions\[1, 2\] = 3"):
        model.loss(feats, [[0, 1, 2], [1, 2, 3]])
    with pytest.raises(ValueError, match="captions"):
        model.loss(feats, [[0, -1, 2], [1, 2, 0]])
    with pytest.raises(ValueError, match="captions.*T >= 2"):
        model.loss(feats, np.zeros((2, 1), dtype=int))
    with pytest.raises(ValueError, match="features has 2 rows but captions has 3"):
        model.loss(feats, np.zeros((3, 4), dtype=int))
    with pytest.raises(ValueError, match="features"):
        model.loss(np.zeros((2, 4)), np.zeros((2, 4), dtype=int))
    with pytest.raises(ValueError, match="<NULL>"):
        CaptioningRNN({"a": 0})
    with pytest.raises(ValueError, match="cell_type"):
        CaptioningRNN({"<NULL>": 0}, cell_type="gru")
    with pytest.raises(TypeError, match="word_to_idx"):
        CaptioningRNN(["<NULL>"])
    with pytest.raises(ValueError, match="hidden_dim"):
        CaptioningRNN({"<NULL>": 0}, hidden_dim=0)
    with pytest.raises(ValueError, match="parameters"):
        CaptioningRNN({"<NULL>": 0}, hidden_dim=10**9)


# --------------------------------------------------------------------------- SequenceClassifier
@pytest.mark.parametrize("cell", CELLS)
def test_sequence_classifier_gradients(cell):
    model = SequenceClassifier(3, hidden_dim=4, num_classes=3, cell_type=cell, reg=0.05,
                               dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(3, 5, 3)), np.array([0, 2, 1])
    _check_gradients(model, lambda: model.loss(X, y))


def test_sequence_classifier_reads_images_row_by_row():
    model = SequenceClassifier(6, hidden_dim=5, num_classes=4, seed=1, dtype=np.float64)
    rng = np.random.default_rng(1)
    images = rng.normal(size=(2, 3, 4, 2))  # (N, C, H, W): rows of W * C = 6 values
    rows = images.transpose(0, 2, 3, 1).reshape(2, 4, 6)
    np.testing.assert_allclose(model.loss(images), model.loss(rows))
    gray = SequenceClassifier(5, hidden_dim=3, seed=2, dtype=np.float64)
    g = rng.normal(size=(2, 7, 5))
    np.testing.assert_allclose(gray.loss(g[:, None]), gray.loss(g))
    assert model.loss(rows).shape == (2, 4)


def test_sequence_classifier_seed_and_bad_input():
    a, b = SequenceClassifier(seed=5), SequenceClassifier(seed=5)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    H = a.hidden_dim
    np.testing.assert_array_equal(a.params["b"][H:2 * H], 1.0)  # forget-gate bias
    with pytest.raises(ValueError, match="X must be sequences"):
        a.loss(np.zeros((2, 28, 27)))
    with pytest.raises(ValueError, match="X"):
        a.loss(np.zeros((2, 0, 28)))
    with pytest.raises(ValueError, match="y"):
        a.loss(np.zeros((2, 28, 28)), [0, 10])
    with pytest.raises(ValueError, match="y"):
        a.loss(np.zeros((2, 28, 28)), [0])


def test_sequence_classifier_matches_torch():
    torch = pytest.importorskip("torch")
    model = SequenceClassifier(5, hidden_dim=6, num_classes=3, dtype=np.float64, seed=3)
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(4, 7, 5)), np.array([0, 1, 2, 1])
    loss, grads = model.loss(X, y)
    H, p = 6, model.params
    # gate order: fastnn (i, f, o, g) -> torch (i, f, g, o)
    order = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]
    lstm = torch.nn.LSTM(5, H, batch_first=True, dtype=torch.float64)
    linear = torch.nn.Linear(H, 3, dtype=torch.float64)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(p["Wx"][:, order].T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(p["Wh"][:, order].T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(p["b"][order].copy()))
        lstm.bias_hh_l0.zero_()
        linear.weight.copy_(torch.from_numpy(p["W_out"].T.copy()))
        linear.bias.copy_(torch.from_numpy(p["b_out"].copy()))
    out, _ = lstm(torch.from_numpy(X))
    t_loss = torch.nn.functional.cross_entropy(linear(out[:, -1]), torch.from_numpy(y))
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    np.testing.assert_allclose(grads["Wx"][:, order].T, lstm.weight_ih_l0.grad.numpy(),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads["b"][order], lstm.bias_ih_l0.grad.numpy(), rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(grads["W_out"].T, linear.weight.grad.numpy(), rtol=1e-9,
                               atol=1e-12)


# --------------------------------------------------------------------------- CharRNN
@pytest.mark.parametrize("cell", CELLS)
def test_char_rnn_gradients_with_carried_state(cell):
    model = CharRNN("abcde", wordvec_dim=3, hidden_dim=4, cell_type=cell, reg=0.01,
                    dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 5, (2, 4)), rng.integers(0, 5, (2, 4))
    h0 = rng.normal(size=(2, 4))
    model.initial_state = (h0, rng.normal(size=(2, 4)) if cell == "lstm" else None)
    _check_gradients(model, lambda: model.loss(X, y))


def test_char_rnn_carries_state_like_one_long_sequence():
    model = CharRNN("abcd", wordvec_dim=3, hidden_dim=5, dtype=np.float64, seed=2)
    rng = np.random.default_rng(2)
    X, y = rng.integers(0, 4, (3, 8)), rng.integers(0, 4, (3, 8))
    whole, _, end = model.window_loss(X, y)
    first, _, state = model.window_loss(X[:, :5], y[:, :5])
    second, _, end2 = model.window_loss(X[:, 5:], y[:, 5:], state)
    assert whole == pytest.approx((5 * first + 3 * second) / 8, rel=1e-12)
    np.testing.assert_allclose(end[0], end2[0])
    np.testing.assert_allclose(end[1], end2[1])
    scores = model.loss(X)
    assert scores.shape == (3, 8, 4)


def test_char_rnn_matches_torch():
    torch = pytest.importorskip("torch")
    model = CharRNN("abcdef", wordvec_dim=4, hidden_dim=5, dtype=np.float64, seed=4)
    rng = np.random.default_rng(4)
    X, y = rng.integers(0, 6, (3, 7)), rng.integers(0, 6, (3, 7))
    loss, grads, _ = model.window_loss(X, y)
    H, p = 5, model.params
    order = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]
    emb = torch.nn.Embedding(6, 4, dtype=torch.float64)
    lstm = torch.nn.LSTM(4, H, batch_first=True, dtype=torch.float64)
    linear = torch.nn.Linear(H, 6, dtype=torch.float64)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(p["W_embed"]))
        lstm.weight_ih_l0.copy_(torch.from_numpy(p["Wx"][:, order].T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(p["Wh"][:, order].T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(p["b"][order].copy()))
        lstm.bias_hh_l0.zero_()
        linear.weight.copy_(torch.from_numpy(p["W_vocab"].T.copy()))
        linear.bias.copy_(torch.from_numpy(p["b_vocab"].copy()))
    out, _ = lstm(emb(torch.from_numpy(X)))
    t_loss = torch.nn.functional.cross_entropy(linear(out).reshape(-1, 6),
                                               torch.from_numpy(y).reshape(-1))
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)  # nats per character
    np.testing.assert_allclose(grads["W_embed"], emb.weight.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads["Wh"][:, order].T, lstm.weight_hh_l0.grad.numpy(),
                               rtol=1e-9, atol=1e-12)


def test_char_rnn_learns_a_periodic_text():
    from fastnn.sequence_solver import LanguageModelSolver

    text = "hello world\n" * 120
    vocab = "".join(sorted(set(text)))
    model = CharRNN(vocab, wordvec_dim=8, hidden_dim=32, seed=0)
    ids = model.encode(text)
    solver = LanguageModelSolver(model, {"train": ids[:1000], "val": ids[1000:]}, seq_length=12,
                                 update_rule="adam", optim_config={"learning_rate": 2e-2},
                                 batch_size=8, num_epochs=25, grad_clip=5.0, verbose=False,
                                 seed=0)
    solver.train()
    assert solver.best_score < 0.05
    assert model.sample(24, temperature=0.5, prefix="hello", seed=0) == (
        "hello world\nhello world\nhello world")[:29]


def test_char_rnn_sample_is_reproducible_and_checks_prefix():
    model = CharRNN("\nab", wordvec_dim=2, hidden_dim=3, seed=1)
    assert model.sample(30, seed=7) == model.sample(30, seed=7)
    assert model.sample(0, prefix="ab") == "ab"
    assert len(model.sample(10)) == 10
    with pytest.raises(ValueError, match=r"'c' \(U\+0063\) at position 1"):
        model.sample(5, prefix="acb")
    with pytest.raises(ValueError, match="temperature"):
        model.sample(5, temperature=-1.0)
    with pytest.raises(ValueError, match="length"):
        model.sample(-1)
    with pytest.raises(TypeError, match="prefix"):
        model.sample(3, prefix=3)


def test_char_rnn_bad_input():
    model = CharRNN("abc", wordvec_dim=2, hidden_dim=3, seed=1)
    X = np.zeros((2, 4), dtype=int)
    with pytest.raises(ValueError, match=r"X\[0, 1\] = 3"):
        model.loss([[0, 3, 0, 0], [0, 0, 0, 0]], X)
    with pytest.raises(ValueError, match="y must have the shape of X"):
        model.loss(X, X[:, :3])
    with pytest.raises(ValueError, match="X.*T >= 1"):
        model.loss(np.zeros((2, 0), dtype=int), np.zeros((2, 0), dtype=int))
    model.initial_state = (np.zeros((3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"h0\) must have shape \(2, 3\)"):
        model.loss(X, X)
    model.initial_state = (np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="c0"):
        model.loss(X, X)
    model.initial_state = [np.zeros((2, 3))]
    with pytest.raises(TypeError, match="state"):
        model.loss(X, X)
    with pytest.raises(ValueError, match="vocab"):
        CharRNN("ba")
    with pytest.raises(TypeError, match="vocab"):
        CharRNN(3)


# --------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("make, call", [
    (lambda: CaptioningRNN({"<NULL>": 0, "<START>": 1, "<END>": 2, "x": 3}, input_dim=3,
                           wordvec_dim=2, hidden_dim=4, cell_type="lstm"),
     lambda m: m.sample(np.ones((2, 3)), max_length=5)),
    (lambda: SequenceClassifier(4, hidden_dim=3, num_classes=2, cell_type="rnn", seed=0),
     lambda m: m.loss(np.ones((2, 5, 4)))),
    (lambda: CharRNN("\nab", wordvec_dim=2, hidden_dim=3, seed=0),
     lambda m: m.sample(20, seed=1)),
])
def test_save_load_round_trip(tmp_path, make, call):
    np.random.seed(0)
    model = make()
    for v in model.params.values():
        v += np.random.default_rng(0).normal(size=v.shape).astype(v.dtype)
    path = save_model(tmp_path / "m.npz", model)
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    for k in model.params:
        np.testing.assert_array_equal(loaded.params[k], model.params[k])
    np.testing.assert_array_equal(np.asarray(call(loaded), dtype=object),
                                  np.asarray(call(model), dtype=object))


@pytest.mark.data
@pytest.mark.heavy
def test_captioning_fashion_mnist_names_the_class(data_dir):
    """A small LSTM captioner on 6,000 real Fashion-MNIST images (PCA features) names the class
    of 1,000 held-out images in most greedy captions (0.79 measured; the full-size run of the
    README, `fastnn train caption --dataset fashion-mnist --epochs 15 --lr-schedule cosine`,
    is where the 85% target is shown)."""
    from fastnn.captioning_solver import CaptioningSolver
    from fastnn.data.captions import bleu1, class_word_accuracy, load_caption_dataset

    data = load_caption_dataset("fashion-mnist", root=data_dir / "fashion-mnist", num_train=6000,
                                num_val=1000, features="pca", feature_dim=64)
    np.random.seed(0)
    model = CaptioningRNN(data["word_to_idx"], input_dim=64, wordvec_dim=64, hidden_dim=128,
                          cell_type="lstm")
    solver = CaptioningSolver(model, data, update_rule="adam", num_epochs=8, batch_size=128,
                              optim_config={"learning_rate": 3e-3}, lr_schedule="cosine",
                              grad_clip=5.0, shuffle=True, verbose=False, seed=0)
    solver.train()
    generated = model.sample(data["val_features"], max_length=data["val_captions"].shape[1])
    assert class_word_accuracy(generated, data["val_labels"], data["word_to_idx"]) >= 0.72
    assert bleu1(generated, data["val_captions"][:, 1:], end=data["word_to_idx"]["<END>"]) > 0.75
