"""Convolutional networks: CS231n's ``ThreeLayerConvNet`` and ``ConvNet`` built from a layer spec.

Both follow the model contract of the Solver (``params``, ``reg``, ``loss(X, y=None)``), the
model-state protocol of :mod:`fastnn.serialization` (``get_state``/``set_state``: batch-norm
running averages), ``get_config()`` and ``parameter_shapes(**config)``, so they train with the
Solver, checkpoint, resume, and save/load with :func:`fastnn.serialization.save_model`.

Neither computes the gradient of the input images: the first convolution runs its backward
pass with ``need_dx=False``. :class:`ConvNet` also supports transfer learning: a new classifier
head (:meth:`ConvNet.replace_classifier`), and frozen parameters (:meth:`ConvNet.freeze`), which
``loss`` gives no gradient (the Solver then leaves them as they are) and below which it does not
backpropagate at all.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from fastnn._validation import (
    check_array,
    check_choice,
    check_float,
    check_int,
    check_labels,
    check_seed,
    check_state_arrays,
    memory_limit_bytes,
)
from fastnn.classifiers._conv_ops import layer_backward, layer_forward
from fastnn.classifiers._conv_spec import (
    Layer,
    check_input_dim,
    format_spec,
    parse_spec,
    spec_parameter_shapes,
)
from fastnn.layers.affine import affine_backward, affine_forward
from fastnn.layers.combos import (
    affine_relu_backward,
    affine_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from fastnn.layers.losses import softmax_loss

__all__ = ["ConvNet", "ThreeLayerConvNet"]

_RUNNING = ("running_mean", "running_var")


def execution_order(layers: Sequence[Layer]) -> list[int]:
    """Positions of ``layers`` in the order :meth:`ConvNet.loss` runs them.

    A ReLU directly followed by a max pool runs after the pool instead: ``max`` over a window
    commutes with ``max(0, .)``, so the output is bit for bit the same, and so are the
    gradients (the pool routes the gradient to the same window maxima, which the ReLU passes
    exactly when they are positive). The ReLU then touches a quarter of the values (2x2 pool)
    instead of all of them, forward and backward.
    """
    order = list(range(len(layers)))
    pos = 0
    while pos < len(order) - 1:
        if layers[pos].kind == "relu" and layers[pos + 1].kind == "maxpool":
            order[pos], order[pos + 1] = pos + 1, pos
            pos += 2
        else:
            pos += 1
    return order


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _check_fits(shapes: Mapping[str, tuple[int, ...]], what: str) -> None:
    """The parameters, drawn in float64, must fit in memory before anything is allocated."""
    nbytes = 8 * sum(math.prod(s) for s in shapes.values())
    if nbytes > memory_limit_bytes():
        raise ValueError(f"{what} needs {nbytes / 2**30:.3g} GiB of parameters, more than this "
                         f"machine's memory")


def _images(X: Any, input_dim: tuple[int, int, int], dtype: np.dtype) -> np.ndarray:
    """``X`` (N, C, H, W) (or N rows of C*H*W values) in the parameters' dtype."""
    X = check_array(X, "X", finite=False)
    if X.ndim < 2 or X.size // max(X.shape[0], 1) != math.prod(input_dim) or (
            X.ndim == 4 and X.shape[1:] != input_dim):
        raise ValueError(f"X must have shape (N, {', '.join(map(str, input_dim))}) (input_dim); "
                         f"got shape {X.shape}")
    return X.reshape(X.shape[0], *input_dim).astype(dtype, copy=False)


def _labels(y: Any, n: int, num_classes: int) -> np.ndarray:
    y = check_labels(y, "y", num_classes=num_classes)
    if len(y) != n:
        raise ValueError(f"X and y must have one example per label: X has {n} examples, y has "
                         f"{len(y)} labels")
    return y


class ThreeLayerConvNet:
    """CS231n's three-layer network ``conv - relu - 2x2 max pool - affine - relu - affine -
    softmax``.

    Parameters
    ----------
    input_dim : tuple (C, H, W), default (3, 32, 32)
    num_filters : int, default 32
    filter_size : int, default 7
        Odd sizes keep H and W ("same" padding ``(filter_size - 1) // 2``, stride 1).
    hidden_dim : int, default 100
    num_classes : int, default 10
    weight_scale : float, default 1e-3
        Std of the Gaussian initial weights (NumPy's global random state, CS231n's order).
    reg : float, default 0
        L2 strength: the loss adds ``0.5 * reg * sum(W * W)`` over W1, W2, W3.
    dtype : float32 or float64, default float32

    Attributes
    ----------
    params : dict
        ``W1`` (F, C, HH, WW), ``b1`` (F,), ``W2`` (F*H/2*W/2, hidden_dim), ``b2``,
        ``W3`` (hidden_dim, num_classes), ``b3``.
    """

    def __init__(self, input_dim: Sequence[int] = (3, 32, 32), num_filters: int = 32,
                 filter_size: int = 7, hidden_dim: int = 100, num_classes: int = 10,
                 weight_scale: float = 1e-3, reg: float = 0.0, dtype: Any = np.float32) -> None:
        shapes = self.parameter_shapes(input_dim=input_dim, num_filters=num_filters,
                                       filter_size=filter_size, hidden_dim=hidden_dim,
                                       num_classes=num_classes)
        self.input_dim = check_input_dim(input_dim)
        self.num_filters, self.filter_size = shapes["W1"][0], shapes["W1"][2]
        self.hidden_dim, self.num_classes = shapes["b2"][0], shapes["b3"][0]
        self.weight_scale = check_float(weight_scale, "weight_scale", minimum=0.0)
        self.reg = check_float(reg, "reg", minimum=0.0)
        self.dtype = _check_dtype(dtype).type
        self.params: dict[str, np.ndarray] = {}
        for name, shape in shapes.items():  # W1, b1, W2, b2, W3, b3: CS231n's draws
            if name[0] == "W":
                self.params[name] = self.weight_scale * np.random.randn(*shape)
            else:
                self.params[name] = np.zeros(shape)
        for k, v in self.params.items():
            self.params[k] = v.astype(self.dtype)

    @classmethod
    def parameter_shapes(cls, **config: Any) -> dict[str, tuple[int, ...]]:
        """Shapes of the ``params`` ``cls(**config)`` would build, without allocating them."""
        args = inspect.signature(cls.__init__).bind(None, **config)
        args.apply_defaults()
        a = args.arguments
        C, H, W = check_input_dim(a["input_dim"])
        F = check_int(a["num_filters"], "num_filters", minimum=1)
        K = check_int(a["filter_size"], "filter_size", minimum=1)
        hidden = check_int(a["hidden_dim"], "hidden_dim", minimum=1)
        classes = check_int(a["num_classes"], "num_classes", minimum=1)
        pad = (K - 1) // 2
        Hc, Wc = H + 2 * pad - K + 1, W + 2 * pad - K + 1
        if Hc < 2 or Wc < 2 or Hc % 2 or Wc % 2:
            raise ValueError(f"filter_size={K} on input_dim {(C, H, W)} gives {Hc}x{Wc} "
                             f"convolution outputs, which 2x2 max pooling (stride 2) cannot "
                             f"tile: even sizes >= 2 are needed")
        shapes = {"W1": (F, C, K, K), "b1": (F,), "W2": (F * (Hc // 2) * (Wc // 2), hidden),
                  "b2": (hidden,), "W3": (hidden, classes), "b3": (classes,)}
        _check_fits(shapes, f"ThreeLayerConvNet(input_dim={(C, H, W)}, num_filters={F}, "
                            f"filter_size={K}, hidden_dim={hidden}, num_classes={classes})")
        return shapes

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict (``reg`` is its current value)."""
        return {"input_dim": list(self.input_dim), "num_filters": self.num_filters,
                "filter_size": self.filter_size, "hidden_dim": self.hidden_dim,
                "num_classes": self.num_classes, "weight_scale": self.weight_scale,
                "reg": float(self.reg), "dtype": np.dtype(self.dtype).name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"ThreeLayerConvNet({args})"

    def loss(self, X: np.ndarray,
             y: np.ndarray | None = None) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
        """Scores (``y`` None), else ``(loss, grads)`` for the minibatch ``X`` (N, C, H, W)."""
        W1, b1, W2, b2, W3, b3 = (self.params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
        X = _images(X, self.input_dim, W1.dtype)
        conv_param = {"stride": 1, "pad": (W1.shape[2] - 1) // 2}
        pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        h1, cache1 = conv_relu_pool_forward(X, W1, b1, conv_param, pool_param)
        h2, cache2 = affine_relu_forward(h1, W2, b2)
        scores, cache3 = affine_forward(h2, W3, b3)
        if y is None:
            return scores
        y = _labels(y, X.shape[0], W3.shape[1])
        loss, dscores = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        dh2, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
        dh1, grads["W2"], grads["b2"] = affine_relu_backward(dh2, cache2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dh1, cache1, need_dx=False)
        reg = float(self.reg)  # a Python float never upcasts float32 arrays
        if reg:
            for k in ("W1", "W2", "W3"):
                w = self.params[k]
                loss += 0.5 * reg * float(np.vdot(w, w))
                grads[k] += reg * w
        return loss, grads


class ConvNet:
    """A convolutional network built from a layer spec (see :mod:`fastnn.classifiers._conv_spec`).

    ``INPUT -> [[CONV -> (BN|GN) -> RELU] * N -> POOL?] * M -> [FC -> (BN) -> RELU ->
    (DROPOUT)] * K -> FC -> softmax``, e.g.
    ``ConvNet("conv32-bn-relu-pool,conv64-bn-relu-pool,fc128-relu-dropout0.5,fc10")``.

    Parameters
    ----------
    spec : str or list of str
        Tokens ``conv<F>[k<K>][s<S>][p<P>]``, ``bn``, ``gn<G>``, ``relu``, ``pool[<K>][s<S>]``,
        ``avgpool[<K>][s<S>]``, ``gap``, ``fc<M>``, ``dropout<P>`` (P: keep probability),
        separated by ``,`` or ``-``; the last is ``fc<num_classes>``. Every malformed, misplaced
        or ill-fitting token is a ValueError naming it.
    input_dim : tuple (C, H, W), default (3, 32, 32)
    num_classes : int, default 10
    reg : float, default 0
        L2 strength over every weight (conv kernels and fc matrices).
    weight_scale : "he", "xavier" or float, default "he"
        Gaussian initial weights with std ``sqrt(2 / fan_in)`` (He), ``sqrt(1 / fan_in)``, or
        the number given; biases and betas 0, gammas 1.
    dtype : float32 or float64, default float32
    seed : int or None
        Seed of the initial weights (None: NumPy's global random state, so ``np.random.seed``
        fixes them). Dropout always draws from NumPy's global state, which the Solver saves.

    Attributes
    ----------
    params : dict
        ``W<i>``, ``b<i>`` per weighted layer i (conv kernels (F, C, K, K), fc (D, M)), and
        ``gamma<i>``, ``beta<i>`` for its normalisation.
    layers : list of Layer
        The parsed layers with their input and output shapes.
    frozen : set of str
        Parameters :meth:`loss` gives no gradient (see :meth:`freeze`).
    spec : str
        The canonical spec (defaults left out), as :meth:`get_config` stores it.
    """

    def __init__(self, spec: str | Sequence[str], input_dim: Sequence[int] = (3, 32, 32),
                 num_classes: int = 10, reg: float = 0.0, weight_scale: float | str = "he",
                 dtype: Any = np.float32, seed: int | None = None) -> None:
        self.input_dim = check_input_dim(input_dim)
        self.num_classes = check_int(num_classes, "num_classes", minimum=1)
        self.layers: list[Layer] = parse_spec(spec, self.input_dim, self.num_classes)
        shapes = spec_parameter_shapes(self.layers)
        _check_fits(shapes, f"spec {format_spec(self.layers)!r}")
        self.reg = check_float(reg, "reg", minimum=0.0)
        if isinstance(weight_scale, str):
            check_choice(weight_scale, "weight_scale", ("he", "xavier"))
        else:
            weight_scale = check_float(weight_scale, "weight_scale", minimum=0.0)
        self.weight_scale = weight_scale
        self.dtype = _check_dtype(dtype).type
        self.seed = check_seed(seed, "seed", allow_generator=False)
        self.frozen: set[str] = set()
        rng = None if self.seed is None else np.random.default_rng(self.seed)
        self.params: dict[str, np.ndarray] = {}
        for name, shape in shapes.items():
            if name[0] == "W":
                self.params[name] = self._init_weight(shape, rng)
            else:
                self.params[name] = (np.ones if name[0] == "g" else np.zeros)(shape, self.dtype)
        # per-layer runtime dicts: conv/pool parameters, bn running averages, dropout settings
        self._runtime: list[dict[str, Any]] = [self._make_runtime(layer) for layer in self.layers]

    # ------------------------------------------------------------------ construction helpers

    def _init_weight(self, shape: tuple[int, ...],
                     rng: np.random.Generator | None) -> np.ndarray:
        fan_in = math.prod(shape[1:]) if len(shape) == 4 else shape[0]
        std = {"he": math.sqrt(2.0 / fan_in), "xavier": math.sqrt(1.0 / fan_in)}.get(
            self.weight_scale, self.weight_scale)  # type: ignore[arg-type]
        draw = np.random.randn(*shape) if rng is None else rng.standard_normal(shape)
        return (std * draw).astype(self.dtype)

    def _make_runtime(self, layer: Layer) -> dict[str, Any]:
        a = layer.args
        if layer.kind == "conv":
            return {"stride": a["stride"], "pad": a["pad"]}
        if layer.kind in ("maxpool", "avgpool"):
            return {"pool_height": a["size"], "pool_width": a["size"], "stride": a["stride"]}
        if layer.kind in ("bn2d", "bn1d"):
            C = layer.out_shape[0]
            return {"mode": "train", "running_mean": np.zeros(C, self.dtype),
                    "running_var": np.zeros(C, self.dtype)}
        if layer.kind == "dropout":
            return {"mode": "train", "p": a["p"]}
        return {}

    @property
    def spec(self) -> str:
        """The canonical spec string."""
        return format_spec(self.layers)

    # ------------------------------------------------------------------ persistence

    @classmethod
    def parameter_shapes(cls, **config: Any) -> dict[str, tuple[int, ...]]:
        """Shapes of the ``params`` ``cls(**config)`` would build, without allocating them."""
        args = inspect.signature(cls.__init__).bind(None, **config)
        args.apply_defaults()
        a = args.arguments
        layers = parse_spec(a["spec"], check_input_dim(a["input_dim"]),
                            check_int(a["num_classes"], "num_classes", minimum=1))
        shapes = spec_parameter_shapes(layers)
        _check_fits(shapes, f"spec {format_spec(layers)!r}")
        return shapes

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict (``reg`` is its current value)."""
        return {"spec": self.spec, "input_dim": list(self.input_dim),
                "num_classes": self.num_classes, "reg": float(self.reg),
                "weight_scale": self.weight_scale, "dtype": np.dtype(self.dtype).name,
                "seed": self.seed}

    def _bn_layers(self) -> list[tuple[Layer, dict[str, Any]]]:
        return [(layer, rt) for layer, rt in zip(self.layers, self._runtime)
                if layer.kind in ("bn2d", "bn1d")]

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of the batch-norm running averages: ``running_mean<i>``, ``running_var<i>``
        of weighted layer i's norm (empty without batch norm). Dropout keeps no state (its keep
        probability is in the spec, its mode follows ``loss``)."""
        return {f"{key}{layer.index}": np.array(rt[key], copy=True)
                for layer, rt in self._bn_layers() for key in _RUNNING}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned; all-or-nothing (TypeError/ValueError naming
        a missing, unknown or ill-shaped entry, and then nothing changes)."""
        expected = {name: value.shape for name, value in self.get_state().items()}
        converted = check_state_arrays(state, expected, self.dtype)
        for layer, rt in self._bn_layers():
            rt.update({key: converted[f"{key}{layer.index}"] for key in _RUNNING})

    def __repr__(self) -> str:
        count = sum(p.size for p in self.params.values())
        frozen = f", frozen={sorted(self.frozen)}" if self.frozen else ""
        return (f"ConvNet({self.spec!r}, input_dim={self.input_dim}, num_classes="
                f"{self.num_classes}, reg={self.reg:g}, weight_scale={self.weight_scale!r}, "
                f"dtype={np.dtype(self.dtype).name}{frozen}) [{count:,} parameters]")

    # ------------------------------------------------------------------ transfer learning

    def _match(self, names_or_prefixes: str | Iterable[str]) -> set[str]:
        items = [names_or_prefixes] if isinstance(names_or_prefixes, str) else list(
            names_or_prefixes)
        head = self.layers[-1].index
        matched: set[str] = set()
        for item in items:
            if not isinstance(item, str):
                raise TypeError(f"names_or_prefixes must hold parameter names or prefixes, got "
                                f"{type(item).__name__} {item!r}")
            if item == "features":  # everything below the classifier head
                found = {p for p in self.params if p not in (f"W{head}", f"b{head}")}
            elif item == "conv":  # every convolution and its normalisation
                conv = {str(layer.index) for layer in self.layers if layer.kind == "conv"}
                found = {p for p in self.params if p[len(p.rstrip("0123456789")):] in conv}
            elif item in self.params:
                found = {item}
            else:  # a stem ("b": every bias, not the betas), else any name starting with it
                found = ({p for p in self.params if p.rstrip("0123456789") == item}
                         or {p for p in self.params if p.startswith(item)})
            if not found:
                raise ValueError(f"names_or_prefixes: {item!r} matches no parameter; the "
                                 f"parameters are {sorted(self.params)} (or 'conv', "
                                 f"'features')")
            matched |= found
        return matched

    def freeze(self, names_or_prefixes: str | Iterable[str]) -> set[str]:
        """Freeze parameters: :meth:`loss` gives them no gradient, so the Solver leaves them.

        Parameters
        ----------
        names_or_prefixes : str or iterable of str
            Parameter names (``"W1"``: exactly W1), stems (``"W"``: every weight, ``"b"``:
            every bias, ``"gamma"``), other prefixes (``"gam"``: every name starting with it),
            ``"conv"``: every convolution and its normalisation, or ``"features"``: every
            parameter except the last fc layer's.

        Returns
        -------
        set of str
            ``frozen`` after the call.
        """
        self.frozen |= self._match(names_or_prefixes)
        return set(self.frozen)

    def unfreeze(self, names_or_prefixes: str | Iterable[str]) -> set[str]:
        """Undo :meth:`freeze` for the matching parameters; returns ``frozen``."""
        self.frozen -= self._match(names_or_prefixes)
        return set(self.frozen)

    def replace_classifier(self, num_classes: int, seed: int | None = None) -> None:
        """Replace the last fc layer by a freshly initialised one with ``num_classes`` outputs.

        The new ``W<L>``, ``b<L>`` are trainable (removed from ``frozen``); everything else,
        including batch-norm averages and frozen features, is kept.

        Parameters
        ----------
        num_classes : int
        seed : int or None
            Seed of the new weights (None: NumPy's global random state).
        """
        num_classes = check_int(num_classes, "num_classes", minimum=1)
        seed = check_seed(seed, "seed", allow_generator=False)
        head = self.layers[-1]
        i = head.index
        head.args = {"units": num_classes}
        head.out_shape = (num_classes,)
        self.num_classes = num_classes
        rng = None if seed is None else np.random.default_rng(seed)
        self.params[f"W{i}"] = self._init_weight((math.prod(head.in_shape), num_classes), rng)
        self.params[f"b{i}"] = np.zeros(num_classes, self.dtype)
        self.frozen -= {f"W{i}", f"b{i}"}

    # ------------------------------------------------------------------ loss

    def _lowest_trainable(self) -> int | None:
        """Position of the lowest layer with a trainable parameter (None: all frozen)."""
        for pos, layer in enumerate(self.layers):
            if layer.index is not None and any(
                    p not in self.frozen for p in self._layer_params(layer)):
                return pos
        return None

    @staticmethod
    def _layer_params(layer: Layer) -> tuple[str, ...]:
        i = layer.index
        if layer.kind in ("conv", "fc"):
            return (f"W{i}", f"b{i}")
        if layer.kind in ("bn2d", "bn1d", "gn"):
            return (f"gamma{i}", f"beta{i}")
        return ()

    def loss(self, X: np.ndarray,
             y: np.ndarray | None = None) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
        """Scores (``y`` None: test mode), else ``(loss, grads)`` (train mode).

        ``grads`` has an entry for every parameter not in ``frozen``; the backward pass stops
        at the lowest layer with a trainable parameter (no input gradient is ever computed).

        Parameters
        ----------
        X : ndarray, shape (N, C, H, W) (or N rows of C*H*W values)
        y : ndarray of int, shape (N,), optional
        """
        params = self.params
        X = _images(X, self.input_dim, params["W1"].dtype)
        train = y is not None
        if train:
            y = _labels(y, X.shape[0], self.num_classes)
        mode = "train" if train else "test"
        for rt in self._runtime:
            if "mode" in rt:
                rt["mode"] = mode
        h = X
        order = execution_order(self.layers)
        caches: list[Any] = [None] * len(self.layers)
        for pos in order:
            h, caches[pos] = layer_forward(self.layers[pos], h, params, self._runtime[pos])
        if not train:
            return h
        loss, dout = softmax_loss(h, y)
        grads: dict[str, np.ndarray] = {}
        stop = self._lowest_trainable()  # None: everything frozen, no backward pass at all
        for pos in ([] if stop is None else reversed(order)):
            if pos < stop:  # a weighted layer is never moved, so all below it come after it
                break
            dout, layer_grads = layer_backward(self.layers[pos], dout, caches[pos],
                                               need_dx=pos > stop)
            grads.update({k: g for k, g in layer_grads.items() if k not in self.frozen})
        reg = float(self.reg)  # a Python float never upcasts float32 arrays
        if reg:
            for name, w in params.items():
                if name[0] == "W":
                    loss += 0.5 * reg * float(np.vdot(w, w))
                    if name in grads:
                        grads[name] += reg * w
        return loss, grads
