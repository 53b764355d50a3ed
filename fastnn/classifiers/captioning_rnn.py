"""``CaptioningRNN``: image captioning with a vanilla RNN or an LSTM (CS231n ``rnn.py``).

The image feature vector, projected to the hidden size, is the initial hidden state; the caption
is read word by word (``captions[:, :-1]``) and every step predicts the next word
(``captions[:, 1:]``), ``<NULL>`` padding masked out of the loss. Same parameters, initialisation
and numbers as CS231n's class (the notebook's expected losses 9.83235591003 for ``"rnn"`` and
9.82445935443 for ``"lstm"`` are tests of this module).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from fastnn._validation import check_fits_in_memory, check_float, check_int, check_seed
from fastnn.classifiers.fc_net import _check_dtype
from fastnn.classifiers.rnn import (
    cell_shapes,
    check_cell_type,
    check_features,
    check_memory,
    check_token_ids,
    init_cell,
    recurrent_backward,
    recurrent_forward,
    recurrent_step,
    sample_from_scores,
)
from fastnn.layers.affine import affine_backward, affine_forward
from fastnn.layers.temporal import (
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)

__all__ = ["CaptioningRNN"]

_WEIGHTS = ("W_proj", "W_embed", "Wx", "Wh", "W_vocab")


def _check_word_to_idx(word_to_idx: Any) -> dict[str, int]:
    """A dict word -> distinct id in ``[0, len)``; ``<NULL>`` is required (the padding)."""
    if not isinstance(word_to_idx, Mapping):
        raise TypeError(f"word_to_idx must be a dict of word -> id, got "
                        f"{type(word_to_idx).__name__}")
    if "<NULL>" not in word_to_idx:
        raise ValueError("word_to_idx must contain '<NULL>' (the padding token)")
    checked: dict[str, int] = {}
    for word, idx in word_to_idx.items():
        if not isinstance(word, str):
            raise TypeError(f"word_to_idx keys must be str, got {type(word).__name__} {word!r}")
        checked[word] = check_int(idx, f"word_to_idx[{word!r}]", minimum=0)
    if len(set(checked.values())) != len(checked):
        raise ValueError("word_to_idx must map every word to a different id")
    return checked


class CaptioningRNN:
    """Generate captions from image features with a recurrent network.

    Parameters
    ----------
    word_to_idx : dict of str -> int
        The vocabulary: ``V = len(word_to_idx)`` words with ids (at most ``V - 1`` in CS231n's
        use; a larger id is allowed and widens nothing, since the embedding has ``V`` rows, so
        such a word is never produced and may not appear in captions). Must hold ``<NULL>``;
        ``<START>`` and ``<END>`` are used when present (as in CS231n, they may be missing).
    input_dim : int, default 512
        Size D of the image feature vectors.
    wordvec_dim : int, default 128
        Size W of the word vectors.
    hidden_dim : int, default 128
        Size H of the hidden state.
    cell_type : {"rnn", "lstm"}
    dtype : float32 or float64, default float32
        Parameters' dtype (float64 for gradient checks).
    reg : float, default 0
        L2 strength on the weight matrices (``0.5 * reg * sum(W*W)``); CS231n's model has none.

    Attributes
    ----------
    params : dict of str -> ndarray
        ``W_proj`` (D, H), ``b_proj`` (H,), ``W_embed`` (V, W), ``Wx`` (W, gH), ``Wh`` (H, gH),
        ``b`` (gH,), ``W_vocab`` (H, V), ``b_vocab`` (V,) with g = 4 for an LSTM, 1 for an RNN.
    word_to_idx, idx_to_word : dicts
    """

    def __init__(self, word_to_idx: Mapping[str, int], input_dim: int = 512,
                 wordvec_dim: int = 128, hidden_dim: int = 128, cell_type: str = "rnn",
                 dtype: Any = np.float32, reg: float = 0.0) -> None:
        shapes = self.parameter_shapes(word_to_idx=word_to_idx, input_dim=input_dim,
                                       wordvec_dim=wordvec_dim, hidden_dim=hidden_dim,
                                       cell_type=cell_type)
        dt = _check_dtype(dtype)
        self.reg = check_float(reg, "reg", minimum=0.0)
        self.word_to_idx = _check_word_to_idx(word_to_idx)
        self.idx_to_word = {i: w for w, i in self.word_to_idx.items()}
        self.cell_type = cell_type
        self.input_dim = shapes["W_proj"][0]
        self.wordvec_dim = shapes["W_embed"][1]
        self.hidden_dim = shapes["W_proj"][1]
        self.dtype = dt.type
        self._null = self.word_to_idx["<NULL>"]
        self._start = self.word_to_idx.get("<START>", None)
        self._end = self.word_to_idx.get("<END>", None)
        vocab_size = len(self.word_to_idx)
        D, W, H = self.input_dim, self.wordvec_dim, self.hidden_dim

        # CS231n's initialisation, in CS231n's order (NumPy's global random state)
        self.params: dict[str, np.ndarray] = {}
        self.params["W_proj"] = np.random.randn(D, H) / np.sqrt(D)
        self.params["b_proj"] = np.zeros(H)
        self.params["W_embed"] = np.random.randn(vocab_size, W) / 100
        self.params.update(init_cell(W, H, cell_type))
        self.params["W_vocab"] = np.random.randn(H, vocab_size) / np.sqrt(H)
        self.params["b_vocab"] = np.zeros(vocab_size)
        for k, v in self.params.items():
            self.params[k] = v.astype(dt)

    # ------------------------------------------------------------------ persistence
    @classmethod
    def parameter_shapes(cls, **config: Any) -> dict[str, tuple[int, ...]]:
        """Shapes of the ``params`` that ``cls(**config)`` would build, without allocating.

        Parameters
        ----------
        **config
            Constructor arguments (as :meth:`get_config` returns them).

        Returns
        -------
        dict of str -> tuple of int
        """
        bound = inspect.signature(cls.__init__).bind(None, **config)
        bound.apply_defaults()
        a = bound.arguments
        V = len(_check_word_to_idx(a["word_to_idx"]))
        D = check_int(a["input_dim"], "input_dim", minimum=1)
        W = check_int(a["wordvec_dim"], "wordvec_dim", minimum=1)
        H = check_int(a["hidden_dim"], "hidden_dim", minimum=1)
        cell = check_cell_type(a["cell_type"])
        shapes = {"W_proj": (D, H), "b_proj": (H,), "W_embed": (V, W),
                  **cell_shapes(W, H, cell), "W_vocab": (H, V), "b_vocab": (V,)}
        return check_memory(shapes, f"input_dim={D}, wordvec_dim={W}, hidden_dim={H} and "
                                    f"{V} words")

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict."""
        return {"word_to_idx": dict(self.word_to_idx), "input_dim": self.input_dim,
                "wordvec_dim": self.wordvec_dim, "hidden_dim": self.hidden_dim,
                "cell_type": self.cell_type, "dtype": np.dtype(self.dtype).name,
                "reg": float(self.reg)}

    def __repr__(self) -> str:
        return (f"CaptioningRNN(<{len(self.word_to_idx)} words>, input_dim={self.input_dim}, "
                f"wordvec_dim={self.wordvec_dim}, hidden_dim={self.hidden_dim}, "
                f"cell_type={self.cell_type!r}, dtype={np.dtype(self.dtype).name})")

    # ------------------------------------------------------------------ training
    def loss(self, features: Any, captions: Any) -> tuple[float, dict[str, np.ndarray]]:
        """Training loss and gradients for a minibatch of captioned images.

        Parameters
        ----------
        features : ndarray, shape (N, D)
            Image features.
        captions : ndarray of int, shape (N, T) with T >= 2
            Ground-truth captions (word ids); each step reads ``captions[:, t]`` and predicts
            ``captions[:, t + 1]``; positions whose target is ``<NULL>`` do not count.

        Returns
        -------
        loss : float
            Summed over time, averaged over the minibatch (CS231n's normalisation).
        grads : dict of str -> ndarray
            Keyed like ``params``.
        """
        p = self.params
        dt = p["W_proj"].dtype
        features = check_features(features, "features", self.input_dim, dt)
        captions = check_token_ids(captions, "captions", len(self.word_to_idx), min_length=2)
        if captions.shape[0] != features.shape[0]:
            raise ValueError(f"features has {features.shape[0]} rows but captions has "
                             f"{captions.shape[0]}")
        captions_in = captions[:, :-1]
        captions_out = captions[:, 1:]
        mask = captions_out != self._null

        h0, proj_cache = affine_forward(features, p["W_proj"], p["b_proj"])
        x, embed_cache = word_embedding_forward(captions_in, p["W_embed"])
        h, cell_cache = recurrent_forward(x, h0, p, self.cell_type)
        scores, vocab_cache = temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])
        loss, dscores = temporal_softmax_loss(scores, captions_out, mask)

        grads: dict[str, np.ndarray] = {}
        dh, grads["W_vocab"], grads["b_vocab"] = temporal_affine_backward(dscores, vocab_cache)
        dx, dh0, grads["Wx"], grads["Wh"], grads["b"] = recurrent_backward(
            dh, cell_cache, self.cell_type)
        grads["W_embed"] = word_embedding_backward(dx, embed_cache)
        _, grads["W_proj"], grads["b_proj"] = affine_backward(dh0, proj_cache)

        loss = float(loss)
        reg = float(self.reg)
        if reg:
            for name in _WEIGHTS:
                w = p[name]
                loss += 0.5 * reg * float(np.vdot(w, w))
                grads[name] = grads[name] + reg * w
        return loss, {k: grads[k] for k in p}

    # ------------------------------------------------------------------ inference
    def sample(self, features: Any, max_length: int = 30, temperature: float | None = None,
               seed: Any = None) -> np.ndarray:
        """Captions for image features, one word per step from ``<START>``.

        Parameters
        ----------
        features : ndarray, shape (N, D)
        max_length : int >= 1, default 30
            Words generated per caption.
        temperature : float > 0, optional
            None (default): greedy decoding (the most likely word at every step, CS231n). A
            number: draw each word from ``softmax(scores / temperature)``.
        seed : None, int or numpy.random.Generator
            Random source for ``temperature`` sampling.

        Returns
        -------
        ndarray of int, shape (N, max_length)
            Word ids, without ``<START>``; after a caption's ``<END>`` the rest is ``<NULL>``.
        """
        p = self.params
        dt = p["W_proj"].dtype
        features = check_features(features, "features", self.input_dim, dt)
        max_length = check_int(max_length, "max_length", minimum=1)
        check_fits_in_memory(8.0 * features.shape[0] * max_length, "max_length",
                             f"{features.shape[0]} captions of max_length={max_length} words")
        if temperature is not None:
            temperature = check_float(temperature, "temperature", minimum=0.0,
                                      min_inclusive=False)
        rng = np.random.default_rng(check_seed(seed))
        N = features.shape[0]
        captions = np.full((N, max_length), self._null, dtype=np.int64)
        h = features @ p["W_proj"] + p["b_proj"]
        c = np.zeros_like(h) if self.cell_type == "lstm" else None
        word = np.full(N, self._start if self._start is not None else self._null, np.int64)
        done = np.zeros(N, dtype=bool)
        for t in range(max_length):
            x = p["W_embed"][word]
            h, c = recurrent_step(x, h, c, p, self.cell_type)
            scores = h @ p["W_vocab"] + p["b_vocab"]
            word = sample_from_scores(scores, temperature, rng)
            captions[:, t] = np.where(done, self._null, word)
            if self._end is not None:
                done |= word == self._end
                if done.all():
                    break
        return captions

    def decode(self, captions: Any) -> list[str]:
        """Captions (N, T) of word ids as strings, ``<START>``/``<NULL>`` left out and each
        cut at its ``<END>``."""
        captions = check_token_ids(captions, "captions", len(self.word_to_idx), min_length=0)
        out = []
        for row in captions.tolist():
            words = []
            for idx in row:
                word = self.idx_to_word.get(idx, "<UNK>")
                if word == "<END>":
                    break
                if word not in ("<NULL>", "<START>"):
                    words.append(word)
            out.append(" ".join(words))
        return out
