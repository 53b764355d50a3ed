"""The PyTorch twin of a fastnn ``ConvNet`` spec, and its training loop, for side-by-side runs.

:func:`build_torch_convnet` turns the same ``--arch`` string fastnn's
:class:`fastnn.classifiers.ConvNet` reads into an ``nn.Sequential`` with the same layers in the
same order; :func:`copy_fastnn_weights` then gives it the fastnn model's initial weights, so both
sides start from identical numbers. :func:`train_torch` trains it with ``torch.optim.Adam`` under
the recipe and timing rule of ``_experiment.train_fastnn``.

Correspondence (fastnn -> PyTorch)
----------------------------------
- conv ``F`` filters, kernel k, stride s, zero padding p -> ``nn.Conv2d(C, F, k, s, p)``; weights
  (F, C, k, k) are the same array layout.
- ``bn`` after a conv -> ``nn.BatchNorm2d``; after an fc -> ``nn.BatchNorm1d``. fastnn keeps
  ``running = momentum * running + (1 - momentum) * batch`` with ``momentum=0.9``; PyTorch's
  ``momentum`` weighs the *new* batch, so it is ``1 - 0.9 = 0.1``; ``eps=1e-5`` on both sides.
  (PyTorch feeds the unbiased batch variance into its running variance, fastnn the biased one;
  this only touches test-mode statistics, by a factor N / (N - 1) per batch.)
- ``gn G`` -> ``nn.GroupNorm(G, C, eps=1e-5)``.
- ``relu`` -> ``nn.ReLU``; 2x2 max ``pool`` -> ``nn.MaxPool2d(2, 2)``; ``avgpool`` ->
  ``nn.AvgPool2d(2, 2)``; ``gap`` (global average pool) -> ``nn.AdaptiveAvgPool2d(1)`` + flatten.
- fc ``M`` -> ``nn.Flatten`` (once, before the first fc) + ``nn.Linear``; fastnn stores ``W``
  (D, M) and PyTorch ``weight`` (M, D), so copies transpose it. Flattening (C, H, W) in C order is
  the same on both sides.
- dropout with keep probability ``p`` (fastnn's convention, inverted dropout) ->
  ``nn.Dropout(1 - p)`` (PyTorch's ``p`` is the probability of *dropping*).
- He initialisation (``N(0, 2 / fan_in)`` weights, zero biases, ``gamma=1``, ``beta=0``) when the
  weights are not copied from a fastnn model.
- L2 ``reg``: fastnn adds ``0.5 * reg * sum(W**2)`` over conv and fc weights (gradient
  ``reg * W``); Adam's ``weight_decay=reg`` on exactly those weights adds the same gradient.
- Adam: the same formula (bias-corrected moments, ``eps`` added after the square root),
  ``betas=(0.9, 0.999)``, ``eps=1e-8``.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from _experiment import EVAL_BATCH, TrainingClock, print_row, stop_reason
from torch import nn

__all__ = [
    "BN_MOMENTUM_TORCH",
    "build_torch_convnet",
    "copy_fastnn_weights",
    "evaluate_torch",
    "parse_layers",
    "train_torch",
]

#: PyTorch's BatchNorm ``momentum`` equivalent to fastnn's default ``momentum=0.9``.
BN_MOMENTUM_TORCH = 1.0 - 0.9
BN_EPS = 1e-5

#: Names of the weighted modules: ``conv<i>``, ``fc<i>``, ``norm<i>`` (i = fastnn's parameter
#: suffix, as in ``W<i>``, ``gamma<i>``).
_WEIGHTED = re.compile(r"(conv|fc|norm)(\d+)")


def parse_layers(spec: Any, input_dim: Sequence[int], num_classes: int) -> list[Any]:
    """The layers fastnn's ConvNet builds from ``spec`` (its own parser, so both sides agree).

    Parameters
    ----------
    spec : str or list of str
        The ``--arch`` spec.
    input_dim : (C, H, W)
        Image shape.
    num_classes : int
        Classes (the last fc's width).

    Returns
    -------
    list
        fastnn's parsed layers (``kind``, ``in_shape``, ``out_shape``, ``index``, ``args``):
        ``ConvNet.layers``.
    """
    from fastnn.classifiers import ConvNet

    # a seed keeps NumPy's global random state (dropout's) untouched by the throw-away weights
    return ConvNet(spec, input_dim=tuple(input_dim), num_classes=num_classes, seed=0).layers


def build_torch_convnet(
    spec: Any,
    input_dim: Sequence[int],
    num_classes: int,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """The PyTorch network of a fastnn ConvNet spec (layer correspondence: module docstring).

    Parameters
    ----------
    spec : str or list of str
        The ``--arch`` spec, e.g. ``"conv32-bn-relu-pool,fc10"``.
    input_dim : (C, H, W)
        Image shape.
    num_classes : int
        Classes.
    dtype : torch.dtype
        Parameter dtype.

    Returns
    -------
    nn.Sequential
        Modules named ``conv<i>``, ``norm<i>``, ``fc<i>`` after fastnn's parameter suffixes (and
        ``<kind>_<position>`` for the rest), He-initialised, in train mode.
    """
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    flat = False
    for pos, layer in enumerate(parse_layers(spec, input_dim, num_classes)):
        a, i = layer.args, layer.index
        if layer.kind == "conv":
            modules[f"conv{i}"] = nn.Conv2d(layer.in_shape[0], a["filters"], a["kernel"],
                                            stride=a["stride"], padding=a["pad"])
        elif layer.kind == "bn2d":
            modules[f"norm{i}"] = nn.BatchNorm2d(layer.in_shape[0], eps=BN_EPS,
                                                 momentum=BN_MOMENTUM_TORCH)
        elif layer.kind == "bn1d":
            modules[f"norm{i}"] = nn.BatchNorm1d(layer.in_shape[0], eps=BN_EPS,
                                                 momentum=BN_MOMENTUM_TORCH)
        elif layer.kind == "gn":
            modules[f"norm{i}"] = nn.GroupNorm(a["groups"], layer.in_shape[0], eps=BN_EPS)
        elif layer.kind == "relu":
            modules[f"relu_{pos}"] = nn.ReLU()
        elif layer.kind == "maxpool":
            modules[f"maxpool_{pos}"] = nn.MaxPool2d(a["size"], a["stride"])
        elif layer.kind == "avgpool":
            modules[f"avgpool_{pos}"] = nn.AvgPool2d(a["size"], a["stride"])
        elif layer.kind == "gap":
            modules[f"gap_{pos}"] = nn.AdaptiveAvgPool2d(1)
            modules[f"flatten_{pos}"] = nn.Flatten()
            flat = True
        elif layer.kind == "fc":
            if not flat:
                modules[f"flatten_{pos}"] = nn.Flatten()
                flat = True
            modules[f"fc{i}"] = nn.Linear(math.prod(layer.in_shape), a["units"])
        elif layer.kind == "dropout":
            # fastnn's p keeps a unit, PyTorch's drops it
            modules[f"dropout_{pos}"] = nn.Dropout(1.0 - a["p"])
        else:
            raise ValueError(f"no PyTorch equivalent for the layer kind {layer.kind!r}")
    net = nn.Sequential(modules).to(dtype)
    net.apply(_he_init)
    return net.train()


def copy_fastnn_weights(net: nn.Sequential, model: Any) -> nn.Sequential:
    """Give ``net`` (from :func:`build_torch_convnet`) the parameters of a fastnn ConvNet.

    Parameters
    ----------
    net : nn.Sequential
        The PyTorch twin of ``model``'s spec.
    model : object
        A fastnn model with ``params`` ``W<i>``, ``b<i>``, ``gamma<i>``, ``beta<i>``.

    Returns
    -------
    nn.Sequential
        ``net``, its parameters overwritten (fc weights transposed, group-norm (1, C, 1, 1)
        vectors flattened).

    Raises
    ------
    ValueError
        When a parameter is missing or its shape does not match.
    """
    copied = set()
    with torch.no_grad():
        for name, module in net.named_children():
            match = _WEIGHTED.fullmatch(name)
            if match is None:
                continue
            kind, i = match.groups()
            names = (f"W{i}", f"b{i}") if kind != "norm" else (f"gamma{i}", f"beta{i}")
            for target, key in zip((module.weight, module.bias), names):
                if key not in model.params:
                    raise ValueError(f"the fastnn model has no parameter {key} for module {name}")
                value = np.asarray(model.params[key])
                if kind == "fc":
                    value = value.T
                elif kind == "norm" and value.size == target.numel():
                    value = value.reshape(target.shape)  # group norm keeps (1, C, 1, 1)
                if value.shape != tuple(target.shape):
                    raise ValueError(f"{key} has shape {value.shape}, module {name} needs "
                                     f"{tuple(target.shape)}")
                target.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(target.dtype))
                copied.add(key)
    missing = set(model.params) - copied
    if missing:
        raise ValueError(f"parameters {sorted(missing)} of the fastnn model have no PyTorch module")
    return net


def _he_init(module: nn.Module) -> None:
    """He initialisation as fastnn's ``weight_scale="he"``: N(0, 2 / fan_in), zero biases."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        fan_in = math.prod(module.weight.shape[1:])
        with torch.no_grad():
            module.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
            module.bias.zero_()


def _split_decay(net: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(conv and fc weights, everything else): fastnn regularises only the former."""
    decay: list[nn.Parameter] = []
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            decay.append(module.weight)
    ids = {id(p) for p in decay}
    return decay, [p for p in net.parameters() if id(p) not in ids]


def evaluate_torch(net: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    """Test-mode accuracy of ``net`` on ``(X, y)``, :data:`EVAL_BATCH` images a forward pass.

    Parameters
    ----------
    net : nn.Module
        The network (switched to eval mode for the call, back to train mode after).
    X : ndarray of shape (N, C, H, W)
        Images, the dtype of the network's parameters.
    y : ndarray of shape (N,)
        Labels.

    Returns
    -------
    float
        Fraction of correct predictions.
    """
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, X.shape[0], EVAL_BATCH):
            scores = net(torch.from_numpy(np.ascontiguousarray(X[start:start + EVAL_BATCH])))
            correct += int((scores.argmax(dim=1).numpy() == y[start:start + EVAL_BATCH]).sum())
    net.train()
    return correct / max(X.shape[0], 1)


def train_torch(
    net: nn.Module,
    X_train: np.ndarray,
    y_train: np.ndarray,
    evaluate: Callable[[nn.Module], float],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    lr_schedule: str | None = None,
    lr_decay: float = 1.0,
    reg: float = 0.0,
    seed: int = 0,
    max_seconds: float | None = None,
    stop_at: float | None = None,
    augment: Callable[[np.ndarray], np.ndarray] | None = None,
    side: str = "torch",
    verbose: bool = True,
) -> dict[str, Any]:
    """Train ``net`` with ``torch.optim.Adam`` under the recipe of ``_experiment.train_fastnn``.

    Same scheme as the fastnn Solver with ``shuffle=True``: every epoch visits the training set
    in a fresh random permutation (a PCG64 generator seeded with ``seed``) as ``N // batch_size``
    full minibatches (the remainder is skipped); the learning rate of iteration ``it`` in epoch
    ``e`` (from 0) is ``learning_rate * schedule(it) * lr_decay**e``, with ``schedule`` built by
    :func:`fastnn.optim.make_schedule` over the whole planned run exactly as the Solver builds it.
    The minibatch *sequence* is not the Solver's: its generator also serves its accuracy checks.

    Parameters
    ----------
    net : nn.Module
        The network, in float32 or float64 like ``X_train``.
    X_train, y_train : ndarray
        Training images (N, C, H, W) and labels (N,).
    evaluate : callable
        ``evaluate(net) -> accuracy``, called after every epoch with the clock paused.
    epochs, batch_size : int
        Epoch count and minibatch size.
    learning_rate : float
        Adam's base learning rate.
    lr_schedule : str or None
        A :data:`fastnn.optim.SCHEDULES` name, or None / ``"constant"``.
    lr_decay : float
        Per-epoch learning-rate factor.
    reg : float
        L2 strength on conv and fc weights (fastnn's ``reg``), as Adam ``weight_decay``.
    seed : int
        Seed of the minibatch order.
    max_seconds : float or None
        Time budget: training stops at the first epoch end after this many training seconds.
    stop_at : float or None
        Training stops at the first epoch end whose ``evaluate`` result is at least this.
    augment : callable or None
        ``augment(X_batch) -> X_batch`` on every NumPy minibatch before it becomes a tensor
        (as the fastnn Solver's ``augment``), inside the timed region.
    side : str
        Label of the table rows.
    verbose : bool
        Print a table row per epoch.

    Returns
    -------
    dict
        ``rows`` (``epoch``, cumulative ``train_seconds``, ``loss``, ``test_acc``),
        ``train_seconds``, ``stopped`` (None when all epochs ran).
    """
    from fastnn.optim import make_schedule

    X = torch.from_numpy(np.ascontiguousarray(X_train))
    y = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    num_train = X.shape[0]
    per_epoch = max(num_train // batch_size, 1)
    schedule = None
    if lr_schedule not in (None, "constant"):
        schedule = make_schedule(lr_schedule, total_steps=max(1, epochs * per_epoch),
                                 steps_per_epoch=per_epoch)
    decay, no_decay = _split_decay(net)
    optimizer = torch.optim.Adam(
        [{"params": decay, "weight_decay": reg}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.Generator(np.random.PCG64(seed))
    clock = TrainingClock()
    rows: list[dict[str, Any]] = []
    stopped = None
    iteration = 0
    for epoch in range(epochs):
        clock.resume()
        net.train()
        order = torch.from_numpy(rng.permutation(num_train))
        losses = []
        for k in range(per_epoch):
            factor = (1.0 if schedule is None else float(schedule(iteration))) * lr_decay**epoch
            for group in optimizer.param_groups:
                group["lr"] = learning_rate * factor
            batch = order[k * batch_size:(k + 1) * batch_size]
            inputs = X[batch]
            if augment is not None:
                inputs = torch.from_numpy(np.ascontiguousarray(augment(inputs.numpy())))
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(inputs), y[batch])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())  # the Solver also reads every loss as a Python float
            iteration += 1
            if not math.isfinite(losses[-1]):
                break
        clock.pause()
        row = {"epoch": epoch + 1, "train_seconds": clock.seconds,
               "loss": float(np.mean(losses)), "test_acc": float(evaluate(net))}
        rows.append(row)
        if verbose:
            print_row(side, row)
        if not math.isfinite(losses[-1]):
            stopped = f"training stopped: the loss became {losses[-1]} in epoch {epoch + 1}"
            break
        stopped = stop_reason(row, max_seconds, stop_at) if epoch + 1 < epochs else None
        if stopped is not None:
            break
    return {"rows": rows, "train_seconds": clock.seconds, "stopped": stopped}
