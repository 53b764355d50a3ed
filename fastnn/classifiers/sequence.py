"""``SequenceClassifier``: an RNN or LSTM over a sequence, last hidden state -> affine -> softmax.

It reads (N, T, D) sequences; images are read row by row: a grayscale batch (N, H, W) is a
sequence of T = H rows of D = W pixels, and a batch (N, C, H, W) (channels first, as
:func:`fastnn.data.get_CIFAR10_data` gives) one of T = H rows of D = W * C values (each row's
pixels with their channels side by side).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from fastnn._validation import check_array, check_float, check_int, check_labels
from fastnn.classifiers.fc_net import _check_dtype
from fastnn.classifiers.rnn import (
    cell_shapes,
    check_cell_type,
    check_memory,
    init_cell,
    recurrent_backward,
    recurrent_forward,
)
from fastnn.layers.affine import affine_backward, affine_forward
from fastnn.layers.losses import softmax_loss

__all__ = ["SequenceClassifier", "as_sequences"]


def as_sequences(X: Any, input_dim: int, name: str = "X") -> np.ndarray:
    """``X`` as (N, T, D) sequences with ``D == input_dim``.

    Parameters
    ----------
    X : array_like
        (N, T, D) sequences (a grayscale image batch (N, H, W) is one), or an image batch
        (N, C, H, W), read row by row: row ``t`` becomes the vector of its W pixels x C channels.
    input_dim : int
        The expected D.
    name : str
        Argument name for errors.

    Returns
    -------
    ndarray, shape (N, T, D)
    """
    X = check_array(X, name, ndim=(3, 4))
    if X.ndim == 4:
        N, C, H, W = X.shape
        X = X.transpose(0, 2, 3, 1).reshape(N, H, W * C)
    if X.shape[0] < 1 or X.shape[1] < 1 or X.shape[2] != input_dim:
        raise ValueError(f"{name} must be sequences (N, T, {input_dim}) with N, T >= 1, or images "
                         f"(N, C, H, W) with W * C = {input_dim}; got shape {X.shape}")
    return X


class SequenceClassifier:
    """Classify sequences (or images read row by row) from the last hidden state of a cell.

    Parameters
    ----------
    input_dim : int, default 28
        Features per time step D (28 for a Fashion-MNIST row).
    hidden_dim : int, default 128
    num_classes : int, default 10
    cell_type : {"lstm", "rnn"}, default "lstm"
    reg : float, default 0
        L2 strength on ``Wx``, ``Wh``, ``W_out`` (``0.5 * reg * sum(W*W)``); may be changed.
    dtype : float32 or float64, default float32
    seed : int or None
        Seed of the initial weights (None: NumPy's global random state, as CS231n).

    Attributes
    ----------
    params : dict of str -> ndarray
        ``Wx`` (D, gH), ``Wh`` (H, gH), ``b`` (gH,) of the cell (g = 4 for an LSTM, gate order
        i, f, o, g, whose forget-gate bias starts at 1), ``W_out`` (H, C), ``b_out`` (C,).
    """

    def __init__(self, input_dim: int = 28, hidden_dim: int = 128, num_classes: int = 10,
                 cell_type: str = "lstm", reg: float = 0.0, dtype: Any = np.float32,
                 seed: int | None = None) -> None:
        shapes = self.parameter_shapes(input_dim=input_dim, hidden_dim=hidden_dim,
                                       num_classes=num_classes, cell_type=cell_type)
        dt = _check_dtype(dtype)
        self.reg = check_float(reg, "reg", minimum=0.0)
        self.seed = None if seed is None else check_int(seed, "seed", minimum=0,
                                                            maximum=2**32 - 1)
        self.input_dim, self.hidden_dim = shapes["Wx"][0], shapes["Wh"][0]
        self.num_classes = shapes["b_out"][0]
        self.cell_type = cell_type
        self.dtype = dt.type
        saved = None
        if self.seed is not None:
            saved = np.random.get_state()
            np.random.seed(self.seed)
        try:
            params = init_cell(self.input_dim, self.hidden_dim, cell_type)
            H = self.hidden_dim
            params["W_out"] = np.random.randn(H, self.num_classes) / np.sqrt(H)
        finally:
            if saved is not None:
                np.random.set_state(saved)
        params["b_out"] = np.zeros(self.num_classes)
        if cell_type == "lstm":
            # a forget-gate bias of 1 keeps the cell's memory through long sequences early in
            # training (Jozefowicz et al. 2015); 28 image rows are long enough to need it
            params["b"][H:2 * H] = 1.0
        self.params = {k: v.astype(dt) for k, v in params.items()}

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
        D = check_int(a["input_dim"], "input_dim", minimum=1)
        H = check_int(a["hidden_dim"], "hidden_dim", minimum=1)
        C = check_int(a["num_classes"], "num_classes", minimum=1)
        shapes = {**cell_shapes(D, H, check_cell_type(a["cell_type"])), "W_out": (H, C),
                  "b_out": (C,)}
        return check_memory(shapes, f"input_dim={D}, hidden_dim={H}, num_classes={C}")

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict (``reg`` is its current value)."""
        return {"input_dim": self.input_dim, "hidden_dim": self.hidden_dim,
                "num_classes": self.num_classes, "cell_type": self.cell_type,
                "reg": float(self.reg), "dtype": np.dtype(self.dtype).name, "seed": self.seed}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"SequenceClassifier({args})"

    def loss(self, X: Any, y: Any = None
             ) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
        """Class scores, or loss and gradients, for a minibatch of sequences.

        Parameters
        ----------
        X : ndarray, shape (N, T, D) or (N, C, H, W)
            Sequences, or images read row by row (:func:`as_sequences`).
        y : ndarray of int, shape (N,), optional
            Labels in ``[0, num_classes)``.

        Returns
        -------
        scores : ndarray, shape (N, num_classes)
            When ``y`` is None.
        (loss, grads) : (float, dict of str -> ndarray)
            When ``y`` is given; softmax loss averaged over the minibatch plus regularisation.
        """
        p = self.params
        x = as_sequences(X, self.input_dim).astype(p["Wx"].dtype, copy=False)
        N = x.shape[0]
        if y is not None:
            y = check_labels(y, "y", n=N, n_name="X", num_classes=self.num_classes)
        h0 = np.zeros((N, self.hidden_dim), dtype=x.dtype)
        h, cell_cache = recurrent_forward(x, h0, p, self.cell_type)
        scores, out_cache = affine_forward(h[:, -1, :], p["W_out"], p["b_out"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        dlast, grads["W_out"], grads["b_out"] = affine_backward(dscores, out_cache)
        dh = np.zeros_like(h)
        dh[:, -1, :] = dlast
        _, _, grads["Wx"], grads["Wh"], grads["b"] = recurrent_backward(dh, cell_cache,
                                                                         self.cell_type)
        loss = float(loss)
        reg = float(self.reg)
        if reg:
            for name in ("Wx", "Wh", "W_out"):
                w = p[name]
                loss += 0.5 * reg * float(np.vdot(w, w))
                grads[name] = grads[name] + reg * w
        return loss, {k: grads[k] for k in p}
