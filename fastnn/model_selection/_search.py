"""Hyperparameter search on a validation split: random search (the default) and grid search.

The course notes recommend random search over grid search: when only a few of the
hyperparameters matter, a grid wastes most trials re-testing the same values of the important
ones, while random trials each try a new value of every hyperparameter. Learning rates and
regularisation strengths act multiplicatively, so they are sampled **log-uniformly**::

    from fastnn.classifiers import Softmax
    from fastnn.model_selection import hyperparameter_search

    result = hyperparameter_search(
        Softmax, {"learning_rate": (1e-4, 1e-1), "reg": (1e-6, 1e-2)},
        X_train, y_train, num_trials=20, train_kwargs={"num_iters": 3000}, seed=0,
    )
    print(result.table())                 # one row per trial, best first
    model = result.best_model             # trained on the training part of the split

How a search space is written
-----------------------------
A dict from hyperparameter name to a range:

- ``(low, high)`` tuple of two numbers: log-uniform range (random search); grid search
  treats a tuple like a list of values.
- ``LogUniform(low, high)``, ``Uniform(low, high)``: explicit ranges; grid search takes
  ``points_per_range`` evenly spaced points (geometric for log-uniform).
- a list of values: random search picks one uniformly, grid search tries each.

Names accepted by the model's ``train`` method go to ``train``; other names go to the model's
constructor (e.g. ``regularization`` or ``l1_ratio`` of a linear classifier).
"""

from __future__ import annotations

import inspect
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from fastnn._progress import progress
from fastnn._validation import (
    check_array,
    check_choice,
    check_float,
    check_int,
    check_labels,
    check_seed,
)
from fastnn.metrics import model_accuracy
from fastnn.model_selection._split import train_validation_split

__all__ = [
    "LogUniform",
    "SearchResult",
    "Uniform",
    "grid_search",
    "hyperparameter_search",
    "random_search",
]


@dataclass(frozen=True)
class LogUniform:
    """Values whose logarithm is uniform on ``[log(low), log(high)]`` (0 < low < high)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        low = check_float(self.low, "low", minimum=0.0, min_inclusive=False)
        high = check_float(self.high, "high", minimum=0.0, min_inclusive=False)
        if not low < high:
            raise ValueError(f"LogUniform needs low < high, got low={low}, high={high}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def grid(self, num: int) -> list[float]:
        return [float(v) for v in np.geomspace(self.low, self.high, num)]


@dataclass(frozen=True)
class Uniform:
    """Values uniform on ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        low = check_float(self.low, "low")
        high = check_float(self.high, "high")
        if not low < high:
            raise ValueError(f"Uniform needs low < high, got low={low}, high={high}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def grid(self, num: int) -> list[float]:
        return [float(v) for v in np.linspace(self.low, self.high, num)]


@dataclass
class SearchResult:
    """Outcome of a search.

    Attributes
    ----------
    results : list of dict
        One row per trial, sorted by validation accuracy (best first). Keys: ``"params"``
        (dict), ``"train_acc"``, ``"val_acc"``, ``"final_loss"`` (last minibatch loss when
        ``train`` returns a loss history, else NaN), ``"time_s"`` (training time), ``"trial"``.
    best_params : dict
    best_val_acc : float
    best_model : object
        The model of the best trial, trained on the training part of the split.
    method : str
        ``"random"`` or ``"grid"``.
    """

    results: list[dict[str, Any]]
    best_params: dict[str, Any]
    best_val_acc: float
    best_model: Any
    method: str
    names: list[str] = field(default_factory=list)

    def table(self, max_rows: int | None = None) -> str:
        """The results as an aligned text table, best trial first."""
        rows = self.results if max_rows is None else self.results[:max_rows]
        header = [*self.names, "train_acc", "val_acc", "final_loss", "time_s"]
        lines = [header]
        for r in rows:
            cells = [_format_value(r["params"][n]) for n in self.names]
            cells += [
                f"{r['train_acc']:.4f}",
                f"{r['val_acc']:.4f}",
                f"{r['final_loss']:.4g}",
                f"{r['time_s']:.2f}",
            ]
            lines.append(cells)
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        out = ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines]
        out.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


# -- search space -------------------------------------------------------------------------------
def _normalise_space(space: Any, method: str) -> dict[str, Any]:
    if not isinstance(space, Mapping):
        raise TypeError(
            f"space must be a dict from hyperparameter name to range, got {type(space).__name__}"
        )
    if len(space) == 0:
        raise ValueError(
            "space must name at least one hyperparameter to search, got an empty dict "
            "(e.g. {'learning_rate': (1e-4, 1e-1), 'reg': (1e-6, 1e-2)})"
        )
    out: dict[str, Any] = {}
    for name, rng_spec in space.items():
        if not isinstance(name, str):
            raise TypeError(f"space keys must be hyperparameter names (str), got {name!r}")
        if isinstance(rng_spec, (LogUniform, Uniform)):
            out[name] = rng_spec
        elif isinstance(rng_spec, tuple) and method == "random":
            if len(rng_spec) != 2:
                raise ValueError(
                    f"space[{name!r}] must be a (low, high) range for random search, "
                    f"got a tuple of {len(rng_spec)} values (use a list for a set of choices)"
                )
            try:
                out[name] = LogUniform(*rng_spec)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"space[{name!r}]: {exc}") from None
        elif isinstance(rng_spec, Sequence) and not isinstance(rng_spec, str):
            if len(rng_spec) == 0:
                raise ValueError(f"space[{name!r}] must hold at least one value, got none")
            out[name] = list(rng_spec)
        else:
            raise TypeError(
                f"space[{name!r}] must be a (low, high) tuple, LogUniform, Uniform or a list of "
                f"values; got {rng_spec!r}"
            )
    return out


def _grid_points(space: dict[str, Any], points_per_range: int) -> list[dict[str, Any]]:
    names = list(space)
    axes = []
    for name in names:
        spec = space[name]
        axes.append(spec.grid(points_per_range) if hasattr(spec, "grid") else spec)
    return [dict(zip(names, combo)) for combo in itertools.product(*axes)]


def _random_points(
    space: dict[str, Any], num_trials: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    points = []
    for _ in range(num_trials):
        point = {}
        for name, spec in space.items():
            if hasattr(spec, "sample"):
                point[name] = spec.sample(rng)
            else:
                point[name] = spec[int(rng.integers(len(spec)))]
        points.append(point)
    return points


# -- model plumbing -----------------------------------------------------------------------------
def _accepted_names(func: Callable) -> tuple[set[str], bool]:
    """Keyword names ``func`` accepts, and whether it takes ``**kwargs``."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return set(), True
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _route_params(model: Callable, names: list[str]) -> tuple[set[str], set[str], bool]:
    """Split hyperparameter names into constructor names and ``train`` names; also report
    whether the constructor takes a ``seed`` (then every trial's model gets the search seed)."""
    probe = model()
    if not hasattr(probe, "train") or not hasattr(probe, "predict"):
        raise TypeError(
            "model must be a class or factory whose instances have train(X, y, ...) and "
            f"predict(X); got {type(probe).__name__}"
        )
    train_names, train_varkw = _accepted_names(probe.train)
    init_names, init_varkw = _accepted_names(model)
    to_train, to_init = set(), set()
    for name in names:
        if name in train_names:
            to_train.add(name)
        elif name in init_names:
            to_init.add(name)
        elif train_varkw:
            to_train.add(name)
        elif init_varkw:
            to_init.add(name)
        else:
            raise ValueError(
                f"space names {name!r}, which is neither an argument of "
                f"{type(probe).__name__}.train nor of its constructor"
            )
    return to_init, to_train, "seed" in init_names


# -- the searches -------------------------------------------------------------------------------
def _search(
    method: str,
    model: Callable,
    space: Any,
    X,
    y,
    *,
    X_val=None,
    y_val=None,
    validation_size: float = 0.1,
    num_trials: int = 20,
    points_per_range: int = 4,
    train_kwargs: Mapping[str, Any] | None = None,
    seed: int | None = None,
    max_train_eval: int = 10000,
    verbose: bool = False,
    show_progress: bool | None = None,
) -> SearchResult:
    space = _normalise_space(space, method)
    if not callable(model):
        raise TypeError(f"model must be a class or a zero-argument factory, got {model!r}")
    X = check_array(X, "X", ndim=2)
    y = check_labels(y, "y", n=X.shape[0], n_name="X")
    seed = check_seed(seed, "seed")
    rng = np.random.default_rng(seed)
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together (or neither, to split X)")
    if X_val is None:
        X_train, y_train, X_val, y_val = train_validation_split(X, y, validation_size, seed=rng)
    else:
        X_train, y_train = X, y
        X_val = check_array(X_val, "X_val", ndim=2)
        if X_val.shape[1] != X.shape[1]:
            raise ValueError(
                f"X_val must have {X.shape[1]} columns like X; got shape {X_val.shape}"
            )
        y_val = check_labels(y_val, "y_val", n=X_val.shape[0], n_name="X_val")
    train_kwargs = dict(train_kwargs or {})
    overlap = set(train_kwargs) & set(space)
    if overlap:
        raise ValueError(f"train_kwargs and space both set {sorted(overlap)}; choose one")

    max_train_eval = check_int(max_train_eval, "max_train_eval", minimum=1)
    names = list(space)
    to_init, _, takes_seed = _route_params(model, names)
    # Same initialisation and minibatch order for every trial: trials differ only by the
    # hyperparameters, and the whole search is reproducible from one seed.
    seed_kwargs = {"seed": seed} if takes_seed and seed is not None and "seed" not in space else {}
    if method == "grid":
        points_per_range = check_int(points_per_range, "points_per_range", minimum=1)
        points = _grid_points(space, points_per_range)
    else:
        num_trials = check_int(num_trials, "num_trials", minimum=1)
        points = _random_points(space, num_trials, rng)

    # Training accuracy on a fixed subsample: cheap for any model, identical across trials.
    eval_idx = np.arange(X_train.shape[0])
    if X_train.shape[0] > max_train_eval:
        eval_idx = np.sort(rng.choice(X_train.shape[0], max_train_eval, replace=False))
    X_train_eval, y_train_eval = X_train[eval_idx], y_train[eval_idx]

    results = []
    models = []
    bar = progress(points, desc=f"{method} search", enabled=show_progress)
    for trial, point in enumerate(bar):
        init_kwargs = {k: v for k, v in point.items() if k in to_init}
        fit_kwargs = {**train_kwargs, **{k: v for k, v in point.items() if k not in to_init}}
        candidate = model(**seed_kwargs, **init_kwargs)
        start = time.perf_counter()
        # A diverging learning rate is a normal outcome of a search: it shows up as a NaN
        # loss and a low accuracy in the table, not as a wall of overflow warnings.
        with np.errstate(all="ignore"):
            history = candidate.train(X_train, y_train, **fit_kwargs)
            elapsed = time.perf_counter() - start
            val_acc = model_accuracy(candidate, X_val, y_val)
            train_acc = model_accuracy(candidate, X_train_eval, y_train_eval)
        final_loss = float("nan")
        if isinstance(history, (list, tuple, np.ndarray)) and len(history):
            final_loss = float(history[-1])
        results.append(
            {
                "trial": trial,
                "params": dict(point),
                "train_acc": train_acc,
                "val_acc": val_acc,
                "final_loss": final_loss,
                "time_s": elapsed,
            }
        )
        models.append(candidate)
        if verbose:
            shown = ", ".join(f"{k}={_format_value(v)}" for k, v in point.items())
            print(f"trial {trial}: {shown}: train acc {train_acc:.4f} val acc {val_acc:.4f}")

    # stable sort: ties keep trial order, so the result is deterministic
    order = sorted(range(len(results)), key=lambda i: -results[i]["val_acc"])
    results = [results[i] for i in order]
    best = order[0]
    return SearchResult(
        results=results,
        best_params=dict(results[0]["params"]),
        best_val_acc=results[0]["val_acc"],
        best_model=models[best],
        method=method,
        names=names,
    )


_COMMON_DOC = """
    Parameters
    ----------
    model : class or callable
        Called with no arguments (or with the constructor hyperparameters of the space) to
        make a fresh model per trial; the model needs ``train(X, y, **kwargs)`` and
        ``predict(X)``. Pass e.g. ``lambda: Softmax(seed=0)`` to fix constructor options.
    space : dict
        Hyperparameter name -> range (see the module docstring). Must not be empty.
    X : ndarray of shape (N, D)
    y : ndarray of shape (N,)
    X_val, y_val : ndarray, optional
        An explicit validation set; by default ``validation_size`` of ``(X, y)`` is held out
        (a seeded random split).
    validation_size : float or int
        Fraction (0 < f < 1) or number of examples held out for validation.
    train_kwargs : dict, optional
        Fixed arguments for every ``train`` call (``num_iters``, ``batch_size``, ...).
    seed : int or None
        Seeds the split and the sampling, so a search is reproducible.
    max_train_eval : int
        Training accuracy is measured on at most this many training examples.
    verbose : bool
        Print one line per trial.
    show_progress : bool or None
        Progress bar over the trials (None: only when stderr is a terminal).
{extra}

    Returns
    -------
    SearchResult
        ``results`` sorted best first, ``best_params``, ``best_val_acc``, ``best_model``;
        ``result.table()`` formats the table.
"""


def random_search(
    model: Callable[..., Any], space: Mapping[str, Any], X: ArrayLike, y: ArrayLike, *,
    num_trials: int = 20, **kwargs: Any,
) -> SearchResult:
    """Random search: ``num_trials`` points sampled from ``space`` (log-uniform for ranges)."""
    return _search("random", model, space, X, y, num_trials=num_trials, **kwargs)


def grid_search(
    model: Callable[..., Any], space: Mapping[str, Any], X: ArrayLike, y: ArrayLike, *,
    points_per_range: int = 4, **kwargs: Any,
) -> SearchResult:
    """Grid search: every combination of the listed values; ranges give ``points_per_range``
    points each (geometric spacing for log-uniform ranges).
    """
    return _search("grid", model, space, X, y, points_per_range=points_per_range, **kwargs)


def hyperparameter_search(
    model: Callable[..., Any], space: Mapping[str, Any], X: ArrayLike, y: ArrayLike, *,
    method: str = "random", **kwargs: Any,
) -> SearchResult:
    """Search ``space`` for the best validation accuracy; random search by default.

    ``method="random"`` (default, as the course notes recommend) or ``"grid"``; the remaining
    keyword arguments are those of :func:`random_search` / :func:`grid_search`.
    """
    method = check_choice(method, "method", ("random", "grid"))
    return _search(method, model, space, X, y, **kwargs)


random_search.__doc__ += _COMMON_DOC.format(
    extra="    num_trials : int\n        Number of sampled points."
)
grid_search.__doc__ += _COMMON_DOC.format(
    extra="    points_per_range : int\n        Grid points per LogUniform/Uniform range."
)
