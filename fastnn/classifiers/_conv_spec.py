"""The layer-spec language of :class:`fastnn.classifiers.cnn.ConvNet` (the CLI's ``--arch``).

A spec is a string of tokens separated by ``,`` or ``-`` (or a list of such strings), e.g.
``"conv32-bn-relu-pool,conv64-bn-relu-pool,fc128-relu-dropout0.5,fc10"``, following::

    INPUT -> [[CONV -> (BN|GN) -> RELU] * N -> POOL?] * M -> [FC -> (BN) -> RELU -> (DROPOUT)] * K -> FC

Tokens (case-insensitive; numbers are decimal):

=====================  ==========================================================================
``conv<F>``            convolution with F filters, 3x3, stride 1, "same" zero padding (K-1)//2;
``conv<F>k<K>``        K x K kernel; optional suffixes ``s<S>`` (stride) and ``p<P>`` (padding),
                       in this order, e.g. ``conv64k5s2p2``
``bn``                 batch normalisation (spatial after a convolution, per unit after an fc)
``gn<G>``              spatial group normalisation with G groups (after a convolution; G | F)
``relu``               ReLU (required after every convolution and hidden fc, after its norm)
``pool``               2x2 max pooling, stride 2; ``pool<K>`` K x K (stride K), ``pool<K>s<S>``
``avgpool``            average pooling, same options as ``pool``
``gap``                global average pooling (then only fc layers follow)
``fc<M>``              fully-connected layer with M units; the last token, with M = num_classes
``dropout<P>``         inverted dropout keeping each unit with probability P in (0, 1] (the
                       CS231n / ``fastnn train fc --dropout`` convention), after a hidden fc's relu
=====================  ==========================================================================

Parameters are numbered by their weighted layer (convolutions and fc layers in order):
``W<i>``, ``b<i>``, and ``gamma<i>``, ``beta<i>`` for its normalisation (shape (F,) for
``bn``, (1, F, 1, 1) for ``gn``, (M,) for an fc's ``bn``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastnn._validation import check_int

__all__ = ["Layer", "check_input_dim", "format_spec", "parse_spec", "spec_parameter_shapes"]

_TOKEN_RE = {
    "conv": re.compile(r"conv(\d+)(?:k(\d+))?(?:s(\d+))?(?:p(\d+))?"),
    "pool": re.compile(r"(?:max)?pool(\d+)?(?:s(\d+))?"),
    "avgpool": re.compile(r"avgpool(\d+)?(?:s(\d+))?"),
    "gap": re.compile(r"gap"),
    "bn": re.compile(r"bn"),
    "gn": re.compile(r"gn(\d+)"),
    "relu": re.compile(r"relu"),
    "fc": re.compile(r"fc(\d+)"),
    "dropout": re.compile(r"dropout(\d*\.?\d+)"),
}
_SYNTAX = ("conv<F>[k<K>][s<S>][p<P>], bn, gn<G>, relu, pool[<K>][s<S>], avgpool[<K>][s<S>], "
           "gap, fc<M>, dropout<P>")

# what may follow each token kind (None: the start of the spec); "end" closes the spec
_NEXT = {
    None: ("conv", "fc"),
    "conv": ("bn", "gn", "relu"),
    "conv_norm": ("relu",),
    "conv_relu": ("conv", "pool", "avgpool", "gap", "fc"),
    "pool": ("conv", "pool", "avgpool", "gap", "fc"),
    "gap": ("fc",),
    "fc": ("bn", "relu", "end"),
    "fc_norm": ("relu",),
    "fc_relu": ("dropout", "fc"),
    "dropout": ("fc",),
}


@dataclass
class Layer:
    """One layer of a parsed spec, with its input and output shapes (without the batch axis).

    ``kind``: conv, bn2d, gn, relu, maxpool, avgpool, gap, fc, bn1d, dropout. ``index`` is the
    number of the weighted layer a conv/fc/norm belongs to (its parameter suffix).
    """

    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    index: int | None = None
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def token(self) -> str:
        """The layer's canonical spec token."""
        a = self.args
        if self.kind == "conv":  # defaults left out: conv32 is conv32k3s1p1
            k, s, p = a["kernel"], a["stride"], a["pad"]
            return (f"conv{a['filters']}" + (f"k{k}" if k != 3 else "")
                    + (f"s{s}" if s != 1 else "") + (f"p{p}" if p != (k - 1) // 2 else ""))
        if self.kind in ("maxpool", "avgpool"):
            name = "pool" if self.kind == "maxpool" else "avgpool"
            size, stride = a["size"], a["stride"]
            return (name + (f"{size}" if (size, stride) != (2, 2) else "")
                    + (f"s{stride}" if stride != size else ""))
        if self.kind == "gn":
            return f"gn{a['groups']}"
        if self.kind == "fc":
            return f"fc{a['units']}"
        if self.kind == "dropout":
            return f"dropout{a['p']:g}"
        return {"bn2d": "bn", "bn1d": "bn"}.get(self.kind, self.kind)


def _tokens(spec: Any) -> list[str]:
    if isinstance(spec, str):
        parts = [spec]
    elif isinstance(spec, Sequence) and all(isinstance(s, str) for s in spec):
        parts = list(spec)
    else:
        raise TypeError(f"spec must be a string such as 'conv32-bn-relu-pool,fc10' or a list of "
                        f"such strings, got {type(spec).__name__} {spec!r:.80}")
    tokens = [t.strip().lower() for part in parts for t in re.split(r"[,\-\s]+", part)]
    tokens = [t for t in tokens if t]
    if not tokens:
        raise ValueError(f"spec must name at least one layer (the final fc<num_classes>), got "
                         f"{spec!r}")
    return tokens


def _match(token: str, position: int) -> tuple[str, tuple]:
    for kind, pattern in _TOKEN_RE.items():
        m = pattern.fullmatch(token)
        if m is not None:
            return kind, m.groups()
    raise ValueError(f"spec token {position + 1} {token!r} is not a layer: expected one of "
                     f"{_SYNTAX}")


def _positive(value: str, token: str, what: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"spec token {token!r}: {what} must be >= 1, got {number}")
    return number


def _window(size: int, stride: int, pad: int, n: int, token: str, axis: str) -> int:
    """Output length of a window over ``n`` values (+ ``pad`` each side); whole, >= 1."""
    span = n + 2 * pad - size
    if span < 0 or span % stride:
        raise ValueError(
            f"spec token {token!r} does not fit its input: {axis} {n} with padding {pad}, window "
            f"{size} and stride {stride} gives ({n} + 2*{pad} - {size}) / {stride} + 1 = "
            f"{span / stride + 1:g} outputs; a whole number >= 1 is needed")
    return span // stride + 1


def parse_spec(spec: Any, input_dim: Sequence[int], num_classes: int) -> list[Layer]:
    """Parse and check a spec against the input shape ``(C, H, W)`` and the class count.

    Returns
    -------
    list of Layer
        In forward order, with shapes.

    Raises
    ------
    ValueError
        Naming the token that is malformed, misplaced, or does not fit its input.
    """
    tokens = _tokens(spec)
    shape: tuple[int, ...] = tuple(input_dim)
    layers: list[Layer] = []
    state: str | None = None
    index = 0
    for pos, token in enumerate(tokens):
        kind, groups = _match(token, pos)
        allowed = _NEXT[state]
        if kind not in allowed:
            where = "at the start" if state is None else f"after {tokens[pos - 1]!r}"
            wanted = " or ".join(a for a in allowed if a != "end")
            raise ValueError(f"spec token {pos + 1} {token!r} cannot come {where}: expected "
                             f"{wanted}" + (" or the end" if "end" in allowed else ""))
        in_shape = shape
        if kind == "conv":
            filters = _positive(groups[0], token, "the number of filters")
            k = _positive(groups[1] or "3", token, "the kernel size")
            stride = _positive(groups[2] or "1", token, "the stride")
            pad = int(groups[3]) if groups[3] is not None else (k - 1) // 2
            C, H, W = shape
            shape = (filters, _window(k, stride, pad, H, token, "height"),
                     _window(k, stride, pad, W, token, "width"))
            index += 1
            layer = Layer("conv", in_shape, shape, index,
                          {"filters": filters, "kernel": k, "stride": stride, "pad": pad})
            state = "conv"
        elif kind in ("bn", "gn"):
            channels = shape[0]
            if kind == "gn":
                G = _positive(groups[0], token, "the number of groups")
                if channels % G:
                    raise ValueError(f"spec token {token!r}: {G} groups do not divide the "
                                     f"{channels} channels of the convolution before it")
                layer = Layer("gn", in_shape, shape, index, {"groups": G})
            else:
                layer = Layer("bn2d" if state == "conv" else "bn1d", in_shape, shape, index)
            state = "conv_norm" if state == "conv" else "fc_norm"
        elif kind == "relu":
            layer = Layer("relu", in_shape, shape)
            state = "conv_relu" if state in ("conv", "conv_norm") else "fc_relu"
        elif kind in ("pool", "avgpool"):
            size = _positive(groups[0] or "2", token, "the window size")
            stride = _positive(groups[1] or str(size), token, "the stride")
            C, H, W = shape
            shape = (C, _window(size, stride, 0, H, token, "height"),
                     _window(size, stride, 0, W, token, "width"))
            layer = Layer("maxpool" if kind == "pool" else "avgpool", in_shape, shape,
                          args={"size": size, "stride": stride})
            state = "pool"
        elif kind == "gap":
            shape = (shape[0],)
            layer = Layer("gap", in_shape, shape)
            state = "gap"
        elif kind == "fc":
            units = _positive(groups[0], token, "the number of units")
            shape = (units,)
            index += 1
            layer = Layer("fc", in_shape, shape, index, {"units": units})
            state = "fc"
        else:  # dropout
            p = float(groups[0])
            if not 0.0 < p <= 1.0:
                raise ValueError(f"spec token {token!r}: the keep probability must be in (0, 1], "
                                 f"got {p:g}")
            layer = Layer("dropout", in_shape, shape, args={"p": p})
            state = "dropout"
        layers.append(layer)
    if state != "fc":
        raise ValueError(f"spec must end with the classifier fc<num_classes> (fc{num_classes}); "
                         f"it ends with {tokens[-1]!r}")
    if layers[-1].args["units"] != num_classes:
        raise ValueError(f"spec's last layer {tokens[-1]!r} must have num_classes={num_classes} "
                         f"units (fc{num_classes})")
    return layers


def format_spec(layers: Sequence[Layer]) -> str:
    """The canonical spec string of parsed layers (blocks separated by commas)."""
    blocks: list[list[str]] = []
    for layer in layers:
        if layer.kind in ("conv", "fc") or not blocks:
            blocks.append([])
        blocks[-1].append(layer.token)
    return ",".join("-".join(block) for block in blocks)


def spec_parameter_shapes(layers: Sequence[Layer]) -> dict[str, tuple[int, ...]]:
    """Shapes of the parameters of parsed layers, in creation order (W, b, then gamma, beta)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in layers:
        i = layer.index
        if layer.kind == "conv":
            C = layer.in_shape[0]
            k = layer.args["kernel"]
            shapes[f"W{i}"] = (layer.args["filters"], C, k, k)
            shapes[f"b{i}"] = (layer.args["filters"],)
        elif layer.kind == "fc":
            shapes[f"W{i}"] = (int(np.prod(layer.in_shape)), layer.args["units"])
            shapes[f"b{i}"] = (layer.args["units"],)
        elif layer.kind in ("bn2d", "bn1d"):
            shapes[f"gamma{i}"] = shapes[f"beta{i}"] = (layer.out_shape[0],)
        elif layer.kind == "gn":
            shapes[f"gamma{i}"] = shapes[f"beta{i}"] = (1, layer.out_shape[0], 1, 1)
    return shapes


def check_input_dim(input_dim: Any) -> tuple[int, int, int]:
    """``input_dim`` as ``(C, H, W)`` of positive ints."""
    if isinstance(input_dim, (str, bytes)) or not isinstance(input_dim, Sequence | np.ndarray):
        raise TypeError(f"input_dim must be a sequence (C, H, W), got "
                        f"{type(input_dim).__name__}")
    if len(input_dim) != 3:
        raise ValueError(f"input_dim must be (C, H, W), got {tuple(input_dim)}")
    return tuple(check_int(d, f"input_dim[{i}]", minimum=1)  # type: ignore[return-value]
                 for i, d in enumerate(input_dim))
