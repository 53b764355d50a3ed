"""``CharRNN``: a character-level language model (embedding -> LSTM/RNN -> affine -> softmax).

Trained with truncated backpropagation through time on consecutive windows of a text
(:class:`fastnn.data.text.TextStream`): the hidden state (and the LSTM's cell state) at the end
of one window is the initial state of the next, while gradients stop at the window boundary.
The model reads that carried state from :attr:`CharRNN.initial_state` and leaves the state it
ends in at :attr:`CharRNN.final_state`, so the generic Solver loop (which only calls
``loss(X, y)``) can train it; :class:`fastnn.sequence_solver.LanguageModelSolver` does the carrying.
The vocabulary (a str of characters) is part of the model's configuration, so a saved model
samples and encodes text exactly as it was trained.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from fastnn._validation import (
    check_array,
    check_fits_in_memory,
    check_float,
    check_int,
    check_seed,
)
from fastnn.classifiers.fc_net import _check_dtype
from fastnn.classifiers.rnn import (
    cell_shapes,
    check_cell_type,
    check_memory,
    check_token_ids,
    final_state,
    init_cell,
    recurrent_backward,
    recurrent_forward,
    recurrent_step,
    sample_from_scores,
)
from fastnn.data.text import check_vocabulary, decode_text, encode_text
from fastnn.kernels import _gemm
from fastnn.kernels._recurrent_products import _scratch
from fastnn.layers.temporal import word_embedding_backward, word_embedding_forward

__all__ = ["CharRNN"]

State = tuple[np.ndarray, np.ndarray | None]


class _VocabHead:
    """The output layer and loss of a window, ``scores = h @ W + b`` and the mean softmax
    cross-entropy, on rows of ``h`` (R, H), forward and backward (CS231n's temporal affine
    layer and temporal softmax loss with an all-true mask, in one place).

    float32 runs every product on the compiled AVX-512 kernel (fastnn.kernels._gemm) with the
    vocabulary padded to a multiple of its 32 columns: zero weights and a bias of -inf in the
    padding give probabilities of exactly 0 there, so the padded gradient columns are 0 and the
    products need no slicing; that keeps OpenBLAS and its own spinning threads out of the
    training step. The buffers are the thread's scratch (used up before the next window).
    """

    def __init__(self, h: np.ndarray, W: np.ndarray, b: np.ndarray) -> None:
        rows, H = h.shape
        V = W.shape[1]
        pad = -V % _gemm.COLUMNS if _gemm.AVAILABLE and h.dtype == np.float32 else 0
        self.h, self.W, self.V = h, W, V
        self.Wp = np.zeros((H, V + pad), h.dtype) if pad else W
        self.bp = np.full(V + pad, -np.inf, h.dtype) if pad else b
        if pad:
            self.Wp[:, :V], self.bp[:V] = W, b
        self.scores = _scratch("char_rnn_scores", (rows, V + pad), h.dtype)
        _gemm.product(h, self.Wp, self.scores)

    def loss(self, y: np.ndarray, count: int) -> float:
        """Mean cross-entropy over the ``count`` rows with targets ``y`` (R,); leaves the
        gradient of that mean w.r.t. the scores in place of the scores."""
        s = self.scores
        s += self.bp
        rows = np.arange(s.shape[0])
        s -= s.max(axis=1, keepdims=True)
        picked = s[rows, y]
        np.exp(s, out=s)
        norm = s.sum(axis=1)
        loss = float(np.log(norm).sum(dtype=np.float64) - picked.sum(dtype=np.float64)) / count
        # softmax minus the one-hot target, divided by the row count: the gradient of the mean
        s *= (1.0 / (norm * count)).astype(s.dtype)[:, None]
        s[rows, y] -= np.asarray(1.0 / count, s.dtype)
        return loss

    def backward(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``dh`` (R, H) (the thread's scratch), ``dW``, ``db`` from the gradient left by
        :meth:`loss`."""
        ds, V = self.scores, self.V
        dh = _scratch("char_rnn_dh", self.h.shape, ds.dtype)
        _gemm.product(ds, _gemm.transposed(self.Wp), dh)
        dW = np.empty(self.Wp.shape, ds.dtype)
        _gemm.product(self.h.T, ds, dW)
        db = ds.sum(axis=0)
        return dh, (dW[:, :V].copy() if dW.shape[1] != V else dW), db[:V].copy()


class CharRNN:
    """Character language model.

    Parameters
    ----------
    vocab : str
        The characters, distinct and sorted (:func:`fastnn.data.text.build_vocabulary`);
        character ``i`` has id ``i``. Default: printable ASCII plus newline and tab.
    wordvec_dim : int, default 64
        Size of the character embeddings.
    hidden_dim : int, default 256
    cell_type : {"lstm", "rnn"}, default "lstm"
    reg : float, default 0
        L2 strength on ``Wx``, ``Wh``, ``W_vocab``.
    dtype : float32 or float64, default float32
    seed : int or None
        Seed of the initial weights (None: NumPy's global random state).

    Attributes
    ----------
    params : dict of str -> ndarray
        ``W_embed`` (V, E), ``Wx`` (E, gH), ``Wh`` (H, gH), ``b`` (gH,), ``W_vocab`` (H, V),
        ``b_vocab`` (V,); g = 4 for an LSTM (gate order i, f, o, g; forget-gate bias starts at 1).
    initial_state : None or (h, c)
        State the next ``loss`` call starts from (None: zeros); ``h`` (N, H), ``c`` (N, H) for an
        LSTM, None for an RNN. Set it to carry the state across consecutive windows.
    final_state : None or (h, c)
        State the last ``loss`` call ended in (copies).
    """

    def __init__(self, vocab: str = "\t\n" + "".join(chr(i) for i in range(32, 127)),
                 wordvec_dim: int = 64, hidden_dim: int = 256, cell_type: str = "lstm",
                 reg: float = 0.0, dtype: Any = np.float32, seed: int | None = None) -> None:
        shapes = self.parameter_shapes(vocab=vocab, wordvec_dim=wordvec_dim,
                                       hidden_dim=hidden_dim, cell_type=cell_type)
        dt = _check_dtype(dtype)
        self.reg = check_float(reg, "reg", minimum=0.0)
        self.seed = None if seed is None else check_int(seed, "seed", minimum=0,
                                                            maximum=2**32 - 1)
        self.vocab = check_vocabulary(vocab)
        self.wordvec_dim, self.hidden_dim = shapes["W_embed"][1], shapes["Wh"][0]
        self.cell_type = cell_type
        self.dtype = dt.type
        V, E, H = len(self.vocab), self.wordvec_dim, self.hidden_dim
        saved = None
        if self.seed is not None:
            saved = np.random.get_state()
            np.random.seed(self.seed)
        try:
            # N(0, 1) embeddings feed the cell's 1/sqrt(E)-scaled Wx with unit-size inputs
            params = {"W_embed": np.random.randn(V, E), **init_cell(E, H, cell_type),
                      "W_vocab": np.random.randn(H, V) / np.sqrt(H)}
        finally:
            if saved is not None:
                np.random.set_state(saved)
        params["b_vocab"] = np.zeros(V)
        if cell_type == "lstm":
            params["b"][H:2 * H] = 1.0  # forget gate open at first: long memory from the start
        self.params = {k: v.astype(dt) for k, v in params.items()}
        self.initial_state: State | None = None
        self.final_state: State | None = None

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
        V = len(check_vocabulary(a["vocab"]))
        E = check_int(a["wordvec_dim"], "wordvec_dim", minimum=1)
        H = check_int(a["hidden_dim"], "hidden_dim", minimum=1)
        shapes = {"W_embed": (V, E), **cell_shapes(E, H, check_cell_type(a["cell_type"])),
                  "W_vocab": (H, V), "b_vocab": (V,)}
        return check_memory(shapes, f"{V} characters, wordvec_dim={E}, hidden_dim={H}")

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict (the vocabulary included)."""
        return {"vocab": self.vocab, "wordvec_dim": self.wordvec_dim,
                "hidden_dim": self.hidden_dim, "cell_type": self.cell_type,
                "reg": float(self.reg), "dtype": np.dtype(self.dtype).name, "seed": self.seed}

    def __repr__(self) -> str:
        return (f"CharRNN(<{len(self.vocab)} characters>, wordvec_dim={self.wordvec_dim}, "
                f"hidden_dim={self.hidden_dim}, cell_type={self.cell_type!r}, "
                f"dtype={np.dtype(self.dtype).name})")

    # ------------------------------------------------------------------ training
    def _check_state(self, state: Any, n: int, name: str) -> State:
        dt = self.params["Wh"].dtype
        if state is None:
            h = np.zeros((n, self.hidden_dim), dtype=dt)
            return h, (np.zeros_like(h) if self.cell_type == "lstm" else None)
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError(f"{name} must be None or a tuple (h, c), got "
                            f"{type(state).__name__}")
        h = check_array(state[0], f"{name}[0] (h0)", ndim=2).astype(dt, copy=False)
        if h.shape != (n, self.hidden_dim):
            raise ValueError(f"{name}[0] (h0) must have shape ({n}, {self.hidden_dim}), got "
                             f"{h.shape}")
        c = None
        if self.cell_type == "lstm":
            c = check_array(state[1], f"{name}[1] (c0)", ndim=2).astype(dt, copy=False)
            if c.shape != h.shape:
                raise ValueError(f"{name}[1] (c0) must have shape {h.shape}, got {c.shape}")
        return h, c

    def window_loss(self, X: Any, y: Any, state: State | None = None,
                    compute_grads: bool = True
                    ) -> tuple[float, dict[str, np.ndarray] | None, State]:
        """Loss (nats per character) of one window, its gradients and the state it ends in.

        Parameters
        ----------
        X : ndarray of int, shape (N, T)
            Character ids.
        y : ndarray of int, shape (N, T)
            The next character of every position.
        state : None or (h0, c0)
            Initial state ((N, H) each; ``c0`` None for an RNN); None means zeros.
        compute_grads : bool
            False skips the backward pass (evaluation).

        Returns
        -------
        loss : float
            Mean cross-entropy per character (plus regularisation).
        grads : dict or None
        state : (h_T, c_T)
        """
        p = self.params
        V = len(self.vocab)
        X = check_token_ids(X, "X", V)
        y = check_token_ids(y, "y", V)
        if y.shape != X.shape:
            raise ValueError(f"y must have the shape of X {X.shape}, got {y.shape}")
        N, T = X.shape
        h0, c0 = self._check_state(state, N, "state")
        x, embed_cache = word_embedding_forward(X, p["W_embed"])
        h, cell_cache = recurrent_forward(x, h0, p, self.cell_type, c0=c0)
        end_state = final_state(h, cell_cache, self.cell_type)
        # the head reads the time-major states (rows t*N + n) of the cache: the loss is a sum
        # over positions, so no (N, T) copy is needed, and dh comes back time-major too
        hs = cell_cache[3]
        head = _VocabHead(hs[1:].reshape(T * N, -1), p["W_vocab"], p["b_vocab"])
        loss = head.loss(y.T.reshape(-1), N * T)  # nats per character (CS231n's / T)
        reg = float(self.reg)
        weights = ("Wx", "Wh", "W_vocab")
        if reg:
            loss += 0.5 * reg * sum(float(np.vdot(p[k], p[k])) for k in weights)
        if not compute_grads:
            return loss, None, end_state
        grads: dict[str, np.ndarray] = {}
        dh_tm, grads["W_vocab"], grads["b_vocab"] = head.backward()
        dh = dh_tm.reshape(T, N, -1).transpose(1, 0, 2)  # (N, T, H) view of time-major rows
        dx, _, grads["Wx"], grads["Wh"], grads["b"] = recurrent_backward(dh, cell_cache,
                                                                          self.cell_type)
        grads["W_embed"] = word_embedding_backward(dx, embed_cache)
        if reg:
            for k in weights:
                grads[k] = grads[k] + reg * p[k]
        return loss, {k: grads[k] for k in p}, end_state

    def loss(self, X: Any, y: Any = None
             ) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
        """Solver interface: scores (y None) or the loss and gradients of one window.

        Starts from :attr:`initial_state` and records :attr:`final_state`.

        Parameters
        ----------
        X : ndarray of int, shape (N, T)
        y : ndarray of int, shape (N, T), optional

        Returns
        -------
        scores : ndarray, shape (N, T, V)
            When ``y`` is None: next-character scores at every position.
        (loss, grads)
            When ``y`` is given (see :meth:`window_loss`).
        """
        if y is not None:
            loss, grads, self.final_state = self.window_loss(X, y, self.initial_state)
            return loss, grads
        p = self.params
        X = check_token_ids(X, "X", len(self.vocab))
        h0, c0 = self._check_state(self.initial_state, X.shape[0], "initial_state")
        x, _ = word_embedding_forward(X, p["W_embed"])
        h, cache = recurrent_forward(x, h0, p, self.cell_type, c0=c0)
        self.final_state = final_state(h, cache, self.cell_type)
        return h @ p["W_vocab"] + p["b_vocab"]

    # ------------------------------------------------------------------ generation
    def encode(self, text: str) -> np.ndarray:
        """Character ids of ``text`` (ValueError naming a character missing from the vocabulary
        and its position)."""
        return encode_text(text, self.vocab)

    def decode(self, ids: Any) -> str:
        """The text of character ids."""
        return decode_text(ids, self.vocab)

    def sample(self, length: int, temperature: float = 1.0, prefix: str = "",
               seed: Any = None) -> str:
        """Generate text one character at a time.

        Parameters
        ----------
        length : int >= 0
            Characters to generate after the prefix.
        temperature : float > 0, default 1.0
            Scores are divided by it before the softmax: below 1 the text is more conservative,
            above 1 more varied.
        prefix : str
            Text the model reads first (every character must be in the vocabulary). When empty,
            the model starts as after a newline (or after the vocabulary's first character).
        seed : None, int or numpy.random.Generator

        Returns
        -------
        str
            ``prefix`` followed by ``length`` generated characters.
        """
        length = check_int(length, "length", minimum=0)
        check_fits_in_memory(64.0 * length, "length", f"a sample of {length} characters")
        temperature = check_float(temperature, "temperature", minimum=0.0, min_inclusive=False)
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        rng = np.random.default_rng(check_seed(seed))
        p = self.params
        context = prefix or ("\n" if "\n" in self.vocab else self.vocab[0])
        ids = self.encode(context)
        h, c = self._check_state(None, 1, "state")
        for idx in ids[:-1].tolist():  # read the prefix; its last character starts generation
            h, c = recurrent_step(p["W_embed"][[idx]], h, c, p, self.cell_type)
        current = int(ids[-1])
        out = []
        for _ in range(length):
            h, c = recurrent_step(p["W_embed"][[current]], h, c, p, self.cell_type)
            scores = h @ p["W_vocab"] + p["b_vocab"]
            current = int(sample_from_scores(scores, temperature, rng)[0])
            out.append(current)
        return prefix + (self.decode(np.array(out, dtype=np.int64)) if out else "")
