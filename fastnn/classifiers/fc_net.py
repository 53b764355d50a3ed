"""Fully-connected networks: ``TwoLayerNet`` and ``FullyConnectedNet`` (CS231n ``fc_net.py``).

Both follow the model contract the Solver relies on: a ``params`` dict of arrays, a public
``reg`` attribute, and ``loss(X, y=None)`` returning class scores (``y is None``, test mode) or
``(loss, grads)`` with ``grads`` keyed like ``params`` (train mode); and the model-state protocol
of :mod:`fastnn.serialization` (``get_state``/``set_state``: the batch-norm running averages).

Sizes are bounded: the parameters at 8 bytes each (initial weights are drawn in float64) must fit
in physical memory (2**47 bytes where unknown): an absurd ``hidden_dim`` is a ValueError naming it.
"""

from __future__ import annotations

import inspect
import math
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastnn._validation import (
    check_array,
    check_choice,
    check_float,
    check_int,
    check_labels,
    check_state_arrays,
    memory_limit_bytes,
)
from fastnn.layers.activations import (
    elu_backward,
    elu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from fastnn.layers.affine import affine_backward, affine_backward_params, affine_forward
from fastnn.layers.dropout import dropout_backward, dropout_forward
from fastnn.layers.losses import softmax_loss
from fastnn.layers.normalization import (
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)

__all__ = ["FullyConnectedNet", "TwoLayerNet"]

ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "elu": (elu_forward, elu_backward),
}
NORMALIZATIONS = (None, "batchnorm", "layernorm")
WEIGHT_SCALES = ("xavier", "he")
_RUNNING = ("running_mean", "running_var")


def _layer_shapes(
    hidden_dims: Any, input_dim: Any, num_classes: Any, normalization: Any, sizes: str
) -> dict[str, tuple[int, ...]]:
    """Validated sizes -> the shapes of ``params``, checked to fit in memory before anything is
    allocated; ``sizes`` is the name of the hidden size argument, for errors."""
    if isinstance(hidden_dims, (str, bytes)) or not isinstance(hidden_dims, Sequence | np.ndarray):
        raise TypeError(f"hidden_dims must be a sequence of positive ints, got "
                        f"{type(hidden_dims).__name__}")
    if len(hidden_dims) == 0:
        raise ValueError("hidden_dims must list at least one hidden layer size, got []")
    hidden = [check_int(h, f"{sizes}[{i}]", minimum=1) for i, h in enumerate(hidden_dims)]
    dims = [check_int(input_dim, "input_dim", minimum=1), *hidden,
            check_int(num_classes, "num_classes", minimum=1)]
    check_choice(normalization, "normalization", NORMALIZATIONS)
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, len(dims)):
        shapes[f"W{i}"], shapes[f"b{i}"] = (dims[i - 1], dims[i]), (dims[i],)
        if normalization is not None and i < len(dims) - 1:
            shapes[f"gamma{i}"] = shapes[f"beta{i}"] = (dims[i],)
    count = sum(math.prod(shape) for shape in shapes.values())
    limit = memory_limit_bytes()
    if 8 * count > limit:
        shown = reprlib.repr(hidden[0] if sizes == "hidden_dim" else hidden)
        raise ValueError(
            f"{sizes}={shown} with input_dim={dims[0]} and num_classes={dims[-1]} gives "
            f"{count:.3g} parameters ({8 * count / 2**30:.3g} GiB at 8 bytes each), more than "
            f"this machine's memory ({limit / 2**30:.3g} GiB); use smaller layers"
        )
    return shapes


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _check_weight_scale(weight_scale: Any) -> float | str:
    if isinstance(weight_scale, str):
        return check_choice(weight_scale, "weight_scale", WEIGHT_SCALES)
    return check_float(weight_scale, "weight_scale", minimum=0.0)


def _init_weight(fan_in: int, fan_out: int, weight_scale: float | str) -> np.ndarray:
    """Gaussian weights from NumPy's global random state, as CS231n draws them.

    ``"xavier"`` uses std ``sqrt(1 / fan_in)`` and ``"he"`` std ``sqrt(2 / fan_in)`` (the
    course notes' calibrations for tanh-like and ReLU units); a number is the std itself.
    """
    if weight_scale == "xavier":
        std = np.sqrt(1.0 / fan_in)
    elif weight_scale == "he":
        std = np.sqrt(2.0 / fan_in)
    else:
        std = weight_scale
    return std * np.random.randn(fan_in, fan_out)


class FullyConnectedNet:
    """A fully-connected network with any number of hidden layers and a softmax loss.

    Architecture, for ``L = len(hidden_dims) + 1`` layers::

        {affine - [batch/layer norm] - activation - [dropout]} x (L - 1) - affine - softmax

    Parameters
    ----------
    hidden_dims : sequence of int, default (100, 100)
        Size of each hidden layer (non-empty, all positive).
    input_dim : int, default 3*32*32
        Features per example; ``X`` of shape (N, d_1, ..., d_k) is flattened and must have
        ``d_1 * ... * d_k == input_dim``.
    num_classes : int, default 10
    dropout_keep_ratio : float in (0, 1], default 1
        Probability of keeping a unit; 1 means no dropout.
    normalization : {None, "batchnorm", "layernorm"}
    reg : float, default 0
        L2 strength: the loss adds ``0.5 * reg * sum(W * W)`` over the weight matrices.
        A public attribute that may be changed after construction.
    weight_scale : float or {"xavier", "he"}, default 1e-2
        Std of the Gaussian initial weights, or a fan-in calibrated initialisation.
    dtype : float32 or float64, default float32
        Dtype of every parameter and every computation (use float64 for gradient checks).
    seed : int or None
        Passed to the dropout layers (``dropout_param["seed"]``) to make them deterministic, as
        in CS231n. Weights come from NumPy's global random state (``np.random.seed`` first for
        reproducible initialisation), drawn in the same order as CS231n.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid", "elu"}, default "relu"

    Attributes
    ----------
    params : dict of str -> ndarray
        ``W1..WL`` (fan_in, fan_out), ``b1..bL``, and ``gamma1..gamma{L-1}``,
        ``beta1..beta{L-1}`` when ``normalization`` is set.
    reg : float
    bn_params : list of dict
        One per hidden layer when ``normalization`` is set (else empty), CS231n's; the batchnorm
        running averages in it are read and restored through :meth:`get_state`/:meth:`set_state`.
    dropout_param : dict
        ``{"mode", "p"[, "seed"]}`` when dropout is used, else empty.
    num_layers, normalization, use_dropout, dtype, activation
        As given.

    Notes
    -----
    ``get_config()`` returns the constructor arguments as a JSON-serialisable dict, and
    ``FullyConnectedNet(**model.get_config())`` rebuilds the same architecture (with fresh
    weights): a saved model is ``get_config()`` + ``params`` + :meth:`get_state`.
    """

    _hidden_name = "hidden_dims"  # the size argument named in errors

    def __init__(
        self,
        hidden_dims: Sequence[int] = (100, 100),
        input_dim: int = 3 * 32 * 32,
        num_classes: int = 10,
        dropout_keep_ratio: float = 1,
        normalization: str | None = None,
        reg: float = 0.0,
        weight_scale: float | str = 1e-2,
        dtype: Any = np.float32,
        seed: int | None = None,
        activation: str = "relu",
    ) -> None:
        shapes = _layer_shapes(hidden_dims, input_dim, num_classes, normalization,
                               self._hidden_name)
        hidden_dims = [shapes[f"b{i}"][0] for i in range(1, len(hidden_dims) + 1)]
        input_dim, num_classes = shapes["W1"][0], shapes[f"b{len(hidden_dims) + 1}"][0]
        dropout_keep_ratio = check_float(
            dropout_keep_ratio, "dropout_keep_ratio", minimum=0.0, min_inclusive=False, maximum=1.0
        )
        reg = check_float(reg, "reg", minimum=0.0)
        weight_scale = _check_weight_scale(weight_scale)
        dtype = _check_dtype(dtype)
        if seed is not None:
            seed = check_int(seed, "seed", minimum=0, maximum=2**32 - 1)
        check_choice(activation, "activation", tuple(ACTIVATIONS))

        self.hidden_dims = hidden_dims
        self.input_dim = input_dim
        self.num_classes = num_classes
        self.dropout_keep_ratio = dropout_keep_ratio
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.weight_scale = weight_scale
        self.num_layers = len(hidden_dims) + 1
        self.dtype = dtype.type
        self.seed = seed
        self.activation = activation

        self.params: dict[str, np.ndarray] = {}
        for name, shape in shapes.items():  # W1, b1, [gamma1, beta1,] W2, ...: CS231n's order
            if name[0] == "W":
                self.params[name] = _init_weight(*shape, weight_scale).astype(dtype)
            else:
                self.params[name] = (np.ones if name[0] == "g" else np.zeros)(shape, dtype=dtype)

        self.dropout_param: dict[str, Any] = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed

        self.bn_params: list[dict[str, Any]] = []
        if normalization == "batchnorm":
            # running averages created now (zeros, as batchnorm_forward would on its first call)
            # so they can be saved and restored before any training step
            self.bn_params = [
                {"mode": "train", "running_mean": np.zeros(h, dtype=dtype),
                 "running_var": np.zeros(h, dtype=dtype)}
                for h in hidden_dims
            ]
        elif normalization == "layernorm":
            self.bn_params = [{} for _ in hidden_dims]

    # ------------------------------------------------------------------------- persistence
    @classmethod
    def parameter_shapes(cls, **config: Any) -> dict[str, tuple[int, ...]]:
        """Shapes of the ``params`` that ``cls(**config)`` would build, without allocating them.

        Parameters
        ----------
        **config
            Constructor arguments, as :meth:`get_config` returns them. Unknown arguments are a
            TypeError, sizes the constructor would reject (too large too) a ValueError.

        Returns
        -------
        dict of str -> tuple of int
        """
        bound = inspect.signature(cls.__init__).bind(None, **config)
        bound.apply_defaults()
        args = bound.arguments
        hidden = (args["hidden_dims"] if "hidden_dims" in args
                  else [check_int(args["hidden_dim"], "hidden_dim", minimum=1)])
        return _layer_shapes(hidden, args["input_dim"], args["num_classes"],
                             args.get("normalization"), cls._hidden_name)

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of the state that is not a parameter (the model-state protocol).

        Returns
        -------
        dict of str -> ndarray
            With batch norm, ``running_mean{i}`` and ``running_var{i}`` of hidden layer ``i``
            (shape (hidden_dims[i-1],), the model's dtype); empty otherwise. Dropout needs no
            state: its keep ratio and seed are in :meth:`get_config`, its mode follows ``loss``.
        """
        state: dict[str, np.ndarray] = {}
        if self.normalization == "batchnorm":
            for i, bn_param in enumerate(self.bn_params, start=1):
                for key in _RUNNING:
                    state[f"{key}{i}"] = np.array(bn_param[key], copy=True)
        return state

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned; all-or-nothing.

        Parameters
        ----------
        state : mapping of str -> ndarray
            Exactly the names of :meth:`get_state` with their shapes, real floating dtype (cast
            to the model's dtype; the arrays are copied).

        Raises
        ------
        TypeError, ValueError
            Naming an entry that is missing, unknown, or of the wrong shape or dtype (and then
            nothing is changed).
        """
        expected = {name: value.shape for name, value in self.get_state().items()}
        converted = check_state_arrays(state, expected, self.dtype)
        for i, bn_param in enumerate(self.bn_params if converted else [], start=1):
            bn_param.update({key: converted[f"{key}{i}"] for key in _RUNNING})

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict (``reg`` is its current value)."""
        return {
            "hidden_dims": list(self.hidden_dims),
            "input_dim": self.input_dim,
            "num_classes": self.num_classes,
            "dropout_keep_ratio": self.dropout_keep_ratio,
            "normalization": self.normalization,
            "reg": float(self.reg),
            "weight_scale": self.weight_scale,
            "dtype": np.dtype(self.dtype).name,
            "seed": self.seed,
            "activation": self.activation,
        }

    @property
    def config(self) -> dict[str, Any]:
        """Same as :meth:`get_config`."""
        return self.get_config()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # -------------------------------------------------------------------------------- loss
    def loss(
        self, X: np.ndarray, y: np.ndarray | None = None
    ) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
        """Scores, or loss and gradients, for a minibatch.

        Parameters
        ----------
        X : ndarray, shape (N, d_1, ..., d_k)
            Input with ``d_1 * ... * d_k == input_dim``; cast to the parameters' dtype.
        y : ndarray of int, shape (N,), optional
            Labels in ``[0, num_classes)``.

        Returns
        -------
        scores : ndarray, shape (N, num_classes)
            When ``y`` is None (test mode: batchnorm uses running averages, no dropout).
        (loss, grads) : (float, dict of str -> ndarray)
            When ``y`` is given (train mode); ``grads[k]`` has the shape of ``params[k]``.
        """
        X = check_array(X, "X", finite=False)
        if X.ndim < 2:
            raise ValueError(f"X must have shape (N, d_1, ..., d_k), got {X.ndim}-D shape {X.shape}")
        n = X.shape[0]
        d = X.size // n
        if d != self.input_dim:
            raise ValueError(f"X must have input_dim={self.input_dim} features per example; got "
                             f"shape {X.shape} ({d} features)")
        params = self.params
        h = X.reshape(n, d).astype(params["W1"].dtype, copy=False)
        train = y is not None
        if train:
            y = check_labels(y, "y", num_classes=self.num_classes)
            if len(y) != n:
                raise ValueError(f"X and y must have one example per label: X has {n} examples, "
                                 f"y has {len(y)} labels")
        mode = "train" if train else "test"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode

        act_forward, act_backward = ACTIVATIONS[self.activation]
        caches = []
        for i in range(1, self.num_layers):
            h, fc_cache = affine_forward(h, params[f"W{i}"], params[f"b{i}"])
            norm_cache = None
            if self.normalization == "batchnorm":
                h, norm_cache = batchnorm_forward(
                    h, params[f"gamma{i}"], params[f"beta{i}"], self.bn_params[i - 1]
                )
            elif self.normalization == "layernorm":
                h, norm_cache = layernorm_forward(
                    h, params[f"gamma{i}"], params[f"beta{i}"], self.bn_params[i - 1]
                )
            h, act_cache = act_forward(h)
            drop_cache = None
            if self.use_dropout:
                h, drop_cache = dropout_forward(h, self.dropout_param)
            caches.append((fc_cache, norm_cache, act_cache, drop_cache))
        last = self.num_layers
        scores, fc_cache = affine_forward(h, params[f"W{last}"], params[f"b{last}"])
        if not train:
            return scores

        loss, dout = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        if last == 1:
            grads[f"W{last}"], grads[f"b{last}"] = affine_backward_params(dout, fc_cache)
        else:
            dout, grads[f"W{last}"], grads[f"b{last}"] = affine_backward(dout, fc_cache)
        for i in range(self.num_layers - 1, 0, -1):
            fc_cache, norm_cache, act_cache, drop_cache = caches[i - 1]
            if drop_cache is not None:
                dout = dropout_backward(dout, drop_cache)
            dout = act_backward(dout, act_cache)
            if self.normalization == "batchnorm":
                dout, grads[f"gamma{i}"], grads[f"beta{i}"] = batchnorm_backward_alt(
                    dout, norm_cache
                )
            elif self.normalization == "layernorm":
                dout, grads[f"gamma{i}"], grads[f"beta{i}"] = layernorm_backward(dout, norm_cache)
            if i > 1:
                dout, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dout, fc_cache)
            else:  # the gradient of the data is never needed
                grads[f"W{i}"], grads[f"b{i}"] = affine_backward_params(dout, fc_cache)

        # a Python float never upcasts float32 arrays (a NumPy float64 scalar would)
        reg = float(self.reg)
        if reg != 0.0:
            for i in range(1, self.num_layers + 1):
                w = params[f"W{i}"]
                loss += 0.5 * reg * float(np.vdot(w, w))
                grads[f"W{i}"] += reg * w
        return loss, grads


class TwoLayerNet(FullyConnectedNet):
    """Two-layer network ``affine - relu - affine - softmax`` (CS231n's ``TwoLayerNet``).

    Parameters
    ----------
    input_dim : int, default 3*32*32
    hidden_dim : int, default 100
    num_classes : int, default 10
    weight_scale : float or {"xavier", "he"}, default 1e-3
    reg : float, default 0
        L2 strength (``0.5 * reg * (sum(W1**2) + sum(W2**2))``); may be changed later.
    dtype : float32 or float64, default float32
        Parameters' dtype. ``loss`` computes in the dtype of ``params["W1"]``, so parameters
        assigned by hand (e.g. float64 in a notebook) are used as given.
    activation : str, default "relu"
        As in :class:`FullyConnectedNet`.

    ``params``: ``W1`` (input_dim, hidden_dim), ``b1``, ``W2`` (hidden_dim, num_classes), ``b2``.
    ``TwoLayerNet(**model.get_config())`` rebuilds the same architecture.
    """

    _hidden_name = "hidden_dim"

    def __init__(
        self,
        input_dim: int = 3 * 32 * 32,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float | str = 1e-3,
        reg: float = 0.0,
        dtype: Any = np.float32,
        activation: str = "relu",
    ) -> None:
        hidden_dim = check_int(hidden_dim, "hidden_dim", minimum=1)
        super().__init__(
            [hidden_dim],
            input_dim=input_dim,
            num_classes=num_classes,
            reg=reg,
            weight_scale=weight_scale,
            dtype=dtype,
            activation=activation,
        )
        self.hidden_dim = hidden_dim

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict (``reg`` is its current value)."""
        return {
            "input_dim": self.input_dim,
            "hidden_dim": self.hidden_dim,
            "num_classes": self.num_classes,
            "weight_scale": self.weight_scale,
            "reg": float(self.reg),
            "dtype": np.dtype(self.dtype).name,
            "activation": self.activation,
        }
