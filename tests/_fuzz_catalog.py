"""Catalogue of VALID calls to fastnn's public functions, and the one-argument mutations applied to them.

Used by ``tests/test_public_api_fuzz.py``. Each :class:`Entry` knows how to build a valid set of
arguments from a small configuration (drawn by hypothesis: sizes, dtype, seed), how to call the
function, and the specification of every argument (:class:`Arg`). Each argument kind has a list of
mutations; every mutation carries an *expectation*:

``ERROR``  the mutated input is invalid: the call must raise ValueError/TypeError (or a fastnn error
           class) whose message names the argument (for a dict key: the key);
``SAME``   the mutated input is a valid spelling of the same input (a list, a non-contiguous view,
           a read-only array, a numpy scalar ...): the call must succeed with the same result;
``SAME_OR_ERROR`` either a clear error or the valid call's result (e.g. a cache holding
           non-contiguous arrays: compiled code must not read them as if they were contiguous);
``ANY``    valid-but-different or arguably valid (an int8 array converted to float, an empty batch
           in a layer): the call may succeed or raise a *clear* error; it must not crash, hang, or
           raise an unclear error (MemoryError, IndexError, a message not naming the argument).

Argument names starting with ``_`` (the object a method is called on) are not mutated.

Default policy per mutation kind (an entry overrides it where its contract differs; the override
is the place to change a decision):

- arrays: None, 0-d, empty, an extra or a missing axis, a wrong length, complex, object, str,
  ragged nested lists, a string -> ERROR; NaN/inf -> ERROR where the function needs finite data
  (kernels, classifiers, preprocessing, features), ANY where NaN propagates by IEEE rules
  (layers, update rules); int8/uint64/float16/bool -> ANY (converted to float by design,
  ``fastnn._validation.check_array``), but ERROR for arrays updated in place and for the
  gradient checker's ``x`` (an integer ``x + h`` silently gives zero gradients);
  a list, a non-contiguous view, a Fortran-ordered or a read-only copy -> SAME;
- labels: fractional, negative, out of range (>= the classes the other arguments imply), huge,
  wrong length, 2-D, empty, NaN, complex/object/str -> ERROR; integral floats, int8, uint64,
  lists, views -> SAME;
- integers: None, 0 or -1 below the minimum, 10**12 (unless a huge value is legitimate, e.g. a
  schedule's total_steps; ``num_iters`` is not fuzzed with it: a valid but endless run), 2.5,
  NaN, inf, "3", True, [3], complex -> ERROR; 3.0 -> ANY; numpy integers -> SAME;
- reals: None, NaN, +-inf, out-of-range values, "0.1", True, complex, [x], arrays -> ERROR;
  0 and 1e12 -> ANY unless a bound forbids them; numpy floats -> SAME;
- choices: None (unless documented), unknown, int, list, bytes -> ERROR; upper case -> ANY;
- dicts (bn_param, config ...): not a dict -> ERROR; a missing required key -> ERROR; each key is
  fuzzed with its own kind; caches: None, (), a string, a short tuple, arrays cut short -> ERROR,
  arrays non-contiguous or of the other float dtype -> SAME_OR_ERROR;
- files: every damage (missing, empty, truncated, garbage, wrong magic, header announcing 2**31
  images, unsafe pickle, wrong shapes/dtypes/labels, damaged JSON header, unknown model class,
  huge or negative sizes in a model config ...) -> ERROR naming the file; a path of the wrong type
  -> ERROR naming the argument; a ``str`` path -> SAME.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import pickle
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

ERROR, SAME, ANY, SKIP = "error", "same", "any", "skip"
SAME_OR_ERROR = "same_or_error"  # a clear error, or success with the valid call's result
HUGE = 10**12


class NotApplicable(Exception):
    """The mutation does not apply to this valid value (e.g. a Fortran copy of a 1-D array)."""


# ------------------------------------------------------------------------------------------
# argument specifications


@dataclass
class Arg:
    name: str
    kind: str  # array labels int float choice dict cache callable intseq bool dtype pair path fnlist
    expect: dict[str, str] = field(default_factory=dict)  # mutation -> expectation overrides
    keys: dict[str, Arg] = field(default_factory=dict)  # dict kind: key -> spec
    required: tuple[str, ...] = ()  # dict kind: keys that must be present
    choices: tuple = ()  # choice kind
    damages: tuple[str, ...] = ()  # path kind: names of file damages (see DAMAGES)

    def expectation(self, mutation: str, default: str) -> str:
        return self.expect.get(mutation, default)


def A(name, *, free=False, finite=True, n_free=False, d_free=False, io=False, **overrides) -> Arg:
    """An array argument.

    free: any shape is valid (element-wise functions); finite=False: NaN/inf are propagated, not
    rejected; n_free: the number of rows may change; d_free: the last axis may change;
    io: updated in place (a list, a copy or a non-contiguous view cannot be updated: ERROR).
    """
    e: dict[str, str] = {}
    if free:
        e.update({k: ANY for k in ("0-d", "empty", "extra_dim", "drop_dim", "wrong_size_last",
                                    "wrong_size_first")})
    if not finite:
        e.update(nan=ANY, inf=ANY)
    if n_free:
        e["wrong_size_first"] = ANY
    if d_free:
        e["wrong_size_last"] = ANY
    if io:
        e.update({k: ERROR for k in ("list", "noncontig", "fortran", "readonly", "int8", "uint64",
                                    "float16", "bool", "other_float")})
    e.update(overrides)
    return Arg(name, "array", e)


def L(name, *, num_classes=True, **overrides) -> Arg:
    """Integer class labels; num_classes=False: no upper bound is implied by another argument."""
    e: dict[str, str] = {}
    if not num_classes:
        e["too_large"] = ANY
        e["huge"] = ANY
    e.update(overrides)
    return Arg(name, "labels", e)


def I(name, *, minimum=1, maximum=None, huge=ERROR, none=ERROR, **overrides) -> Arg:
    """An integer scalar with inclusive bounds."""
    e = {
        "None": none,
        "zero": ERROR if minimum is not None and minimum > 0 else ANY,
        "negative": ERROR if minimum is not None and minimum > -1 else ANY,
        "huge": huge if (maximum is None or maximum >= HUGE) else ERROR,
    }
    e.update(overrides)
    return Arg(name, "int", e)


def F(name, *, minimum=None, min_excl=False, maximum=None, max_excl=False, huge=ANY,
      none=ERROR, **overrides) -> Arg:
    """A real scalar with optional bounds."""
    e = {"None": none, "huge": huge if maximum is None else ERROR}
    if minimum is not None:
        e["negative"] = ERROR if minimum > -1 else ANY
        e["zero"] = ERROR if (minimum > 0 or (minimum == 0 and min_excl)) else ANY
    else:
        e["negative"] = ANY
        e["zero"] = ANY
    if maximum is not None and (maximum < 0 or (maximum == 0 and max_excl)):
        e["zero"] = ERROR
    e.update(overrides)
    return Arg(name, "float", e)


def C(name, choices, *, none=ERROR, **overrides) -> Arg:
    e = {"None": none}
    e.update(overrides)
    return Arg(name, "choice", e, choices=tuple(choices))


def D(name, keys: dict[str, Arg], required=(), *, none=ERROR, **overrides) -> Arg:
    e = {"None": none}
    e.update(overrides)
    return Arg(name, "dict", e, keys=keys, required=tuple(required))


def K(name="cache", **overrides) -> Arg:
    return Arg(name, "cache", dict(overrides))


def B(name, **overrides) -> Arg:
    return Arg(name, "bool", dict(overrides))


def P(name, damages, **overrides) -> Arg:
    return Arg(name, "path", dict(overrides), damages=tuple(damages))


# ------------------------------------------------------------------------------------------
# mutations: (name, function(value, rng) -> mutated value, default expectation)


def _arr(v) -> np.ndarray:
    return np.asarray(v)


def _na(cond: bool) -> None:
    if cond:
        raise NotApplicable


def _m_0d(v, r):
    a = _arr(v)
    _na(a.size == 0 or a.ndim == 0)
    return a.reshape(-1)[:1].reshape(()).copy()


def _m_empty(v, r):
    a = _arr(v)
    _na(a.ndim == 0)
    return a[:0].copy()


def _m_extra_dim(v, r):
    return _arr(v)[None].copy()


def _m_drop_dim(v, r):
    a = _arr(v)
    _na(a.ndim == 0)
    return a[0].copy()


def _m_wrong_last(v, r):
    a = _arr(v)
    _na(a.ndim == 0 or a.shape[-1] == 0)
    return np.concatenate([a, a[..., -1:]], axis=-1)


def _m_wrong_first(v, r):
    a = _arr(v)
    _na(a.ndim < 2)  # for 1-D arrays wrong_size_last is the same mutation
    return a[:-1].copy() if a.shape[0] > 1 else np.concatenate([a, a])


def _float_copy(a):
    return a.astype(np.float64) if a.dtype.kind != "f" else a.copy()


def _m_nan(v, r):
    a = _float_copy(_arr(v))
    _na(a.size == 0)
    a.flat[int(r.integers(a.size))] = np.nan
    return a


def _m_inf(v, r):
    a = _float_copy(_arr(v))
    _na(a.size == 0)
    a.flat[int(r.integers(a.size))] = -np.inf if r.integers(2) else np.inf
    return a


def _m_astype(dtype, transform=None):
    def m(v, r):
        a = _arr(v)
        if transform is not None:
            a = transform(a)
        with np.errstate(all="ignore"):
            return a.astype(dtype)
    return m


def _m_noncontig(v, r):
    a = _arr(v)
    _na(a.ndim == 0 or a.size == 0)
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    big[..., ::2] = a
    view = big[..., ::2]
    assert not view.flags.c_contiguous
    return view


def _m_fortran(v, r):
    a = _arr(v)
    _na(a.ndim < 2 or min(a.shape) < 2)
    return np.asfortranarray(a)


def _m_other_float(v, r):
    a = _arr(v)
    _na(a.dtype.kind != "f")
    return a.astype(np.float32 if a.dtype == np.float64 else np.float64)


def _m_readonly(v, r):
    a = _arr(v).copy()
    a.flags.writeable = False
    return a


def _m_list(v, r):
    a = _arr(v)
    _na(a.ndim == 0)
    return a.tolist()


def _m_ragged(v, r):
    a = _arr(v)
    _na(a.ndim == 0 or a.shape[0] < 2)
    rows = [np.atleast_1d(x).tolist() for x in a]
    rows[-1] = rows[-1][:-1] if len(rows[-1]) > 1 else rows[-1] + rows[-1]
    return rows


ARRAY_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("0-d", _m_0d, ERROR),
    ("empty", _m_empty, ERROR),
    ("extra_dim", _m_extra_dim, ERROR),
    ("drop_dim", _m_drop_dim, ERROR),
    ("wrong_size_last", _m_wrong_last, ERROR),
    ("wrong_size_first", _m_wrong_first, ERROR),
    ("nan", _m_nan, ERROR),
    ("inf", _m_inf, ERROR),
    ("int8", _m_astype(np.int8, lambda a: np.clip(np.round(a), -100, 100)), ANY),
    ("uint64", _m_astype(np.uint64, lambda a: np.abs(np.round(a))), ANY),
    ("float16", _m_astype(np.float16), ANY),
    ("complex", _m_astype(np.complex128, lambda a: a + 0.5j), ERROR),
    ("bool", _m_astype(np.bool_, lambda a: a > np.median(a) if a.size else a), ANY),
    ("object", _m_astype(object), ERROR),
    ("str", _m_astype(str), ERROR),
    ("noncontig", _m_noncontig, SAME),
    ("fortran", _m_fortran, SAME),
    ("readonly", _m_readonly, SAME),
    ("list", _m_list, SAME),
    # float32 <-> float64 next to arguments of the other dtype: computed in the promoted dtype
    # (or a clear error), never read with the wrong item size
    ("other_float", _m_other_float, SAME_OR_ERROR),
    ("ragged", _m_ragged, ERROR),
    ("string", lambda v, r: "abc", ERROR),
]


def _l_set(index, value):
    def m(v, r):
        a = _arr(v).astype(np.int64)
        _na(a.size == 0)
        a[index] = value
        return a
    return m


def _l_too_large(v, r):
    raise NotApplicable  # replaced per call: needs the number of classes (see Entry.num_classes)


LABEL_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("float_integral", lambda v, r: _arr(v).astype(np.float64), SAME),
    ("float_fraction", lambda v, r: _arr(v).astype(np.float64) + 0.5, ERROR),
    ("negative", _l_set(0, -1), ERROR),
    ("too_large", None, ERROR),  # y[0] = number of classes (filled in by the runner)
    ("huge", _l_set(0, HUGE), ERROR),
    ("wrong_length", lambda v, r: _arr(v)[:-1].copy(), ERROR),
    ("2d", lambda v, r: _arr(v)[:, None].copy(), ERROR),
    ("empty", lambda v, r: _arr(v)[:0].copy(), ERROR),
    ("nan", lambda v, r: np.where(np.arange(len(v)) == 0, np.nan, _arr(v).astype(float)), ERROR),
    ("complex", _m_astype(np.complex128), ERROR),
    ("object", _m_astype(object), ERROR),
    ("str", _m_astype(str), ERROR),
    ("int8", _m_astype(np.int8), SAME),
    ("uint64", _m_astype(np.uint64), SAME),
    ("noncontig", _m_noncontig, SAME),
    ("readonly", _m_readonly, SAME),
    ("list", _m_list, SAME),
    ("string", lambda v, r: "abc", ERROR),
]

INT_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("zero", lambda v, r: 0, ERROR),
    ("negative", lambda v, r: -1, ERROR),
    ("huge", lambda v, r: HUGE, ERROR),
    ("fraction", lambda v, r: 2.5, ERROR),
    ("integral_float", lambda v, r: float(v), ANY),
    ("nan", lambda v, r: float("nan"), ERROR),
    ("inf", lambda v, r: float("inf"), ERROR),
    ("str", lambda v, r: str(v), ERROR),
    ("bool", lambda v, r: True, ERROR),
    ("np_int", lambda v, r: np.int64(v), SAME),
    ("list", lambda v, r: [v], ERROR),
    ("complex", lambda v, r: complex(v, 1), ERROR),
    ("array_0d", lambda v, r: np.array(v), ANY),
]

FLOAT_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("nan", lambda v, r: float("nan"), ERROR),
    ("inf", lambda v, r: float("inf"), ERROR),
    ("neg_inf", lambda v, r: float("-inf"), ERROR),
    ("negative", lambda v, r: -1.0, ERROR),
    ("zero", lambda v, r: 0.0, ANY),
    ("huge", lambda v, r: 1e12, ANY),
    ("str", lambda v, r: str(v), ERROR),
    ("bool", lambda v, r: True, ERROR),
    ("complex", lambda v, r: complex(v, 1), ERROR),
    ("np_float", lambda v, r: np.float64(v), SAME),
    ("list", lambda v, r: [v], ERROR),
    ("array_1d", lambda v, r: np.array([v, v]), ERROR),
    ("array_0d", lambda v, r: np.array(v), ANY),
]

CHOICE_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("unknown", lambda v, r: "bogus", ERROR),
    ("int", lambda v, r: 3, ERROR),
    ("upper", lambda v, r: v.upper() if isinstance(v, str) and v.upper() != v else _na(True), ANY),
    ("list", lambda v, r: [v], ERROR),
    ("bytes", lambda v, r: v.encode() if isinstance(v, str) else _na(True), ERROR),
]

def _map_cache(v, fn):
    """``v`` (a cache: nested tuples/lists) with ``fn`` applied to every float array in it."""
    if isinstance(v, np.ndarray):
        return fn(v) if v.dtype.kind == "f" else v
    if isinstance(v, (tuple, list)):
        return type(v)(_map_cache(x, fn) for x in v)
    return v


def _cache_arrays(fn):
    def m(v, r):
        changed = _map_cache(v, fn)
        _na(not _has_array(v))
        return changed
    return m


def _has_array(v) -> bool:
    if isinstance(v, np.ndarray):
        return v.dtype.kind == "f"
    return isinstance(v, (tuple, list)) and any(_has_array(x) for x in v)


def _short(a):
    return a[..., :-1].copy() if a.ndim and a.shape[-1] > 1 else np.concatenate([a, a], axis=-1)


def _other_float(a):
    return a.astype(np.float32 if a.dtype == np.float64 else np.float64)


def _noncontig_or_same(a):
    return _m_noncontig(a, None) if a.ndim and a.size else a


#: names an error about a bad cache may use instead of "cache" (the arrays it holds)
CACHE_PARTS = ("x", "w", "b", "x_hat", "gamma", "inv_std", "mask", "out", "alpha", "dout")

CACHE_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("empty_tuple", lambda v, r: (), ERROR),
    ("string", lambda v, r: "cache", ERROR),
    ("short", lambda v, r: tuple(v)[:-1] if isinstance(v, tuple) and len(v) > 1 else _na(True),
     ERROR),
    ("int", lambda v, r: 3, ERROR),
    # hand-built or corrupted caches: compiled backward kernels must not index past them
    ("arrays_short", _cache_arrays(_short), ERROR),
    ("arrays_noncontig", _cache_arrays(_noncontig_or_same), SAME_OR_ERROR),
    ("arrays_other_float", _cache_arrays(_other_float), SAME_OR_ERROR),
    ("arrays_int", _cache_arrays(lambda a: np.round(a).astype(np.int64)), ANY),
]

INTSEQ_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("empty", lambda v, r: [], ERROR),
    ("zero", lambda v, r: [0], ERROR),
    ("negative", lambda v, r: [-1], ERROR),
    ("huge", lambda v, r: [HUGE], ERROR),
    ("fraction", lambda v, r: [2.5], ERROR),
    ("nan", lambda v, r: [float("nan")], ERROR),
    ("string", lambda v, r: "3", ERROR),
    ("scalar", lambda v, r: 3, ERROR),
    ("nested", lambda v, r: [list(v)], ERROR),
    ("tuple", lambda v, r: tuple(v), SAME),
    ("ndarray", lambda v, r: np.array(v), SAME),
]

BOOL_MUTATIONS = [
    ("None", lambda v, r: None, ANY),
    ("string", lambda v, r: "no", ANY),
    ("np_bool", lambda v, r: np.bool_(v), SAME),
    ("int", lambda v, r: int(v), SAME),
]

DTYPE_MUTATIONS = [
    ("None", lambda v, r: None, ANY),
    ("int8", lambda v, r: np.int8, ERROR),
    ("int_str", lambda v, r: "int32", ERROR),
    ("float16", lambda v, r: np.float16, ERROR),
    ("complex", lambda v, r: np.complex128, ERROR),
    ("unknown", lambda v, r: "bogus", ERROR),
    ("name", lambda v, r: np.dtype(v).name, SAME),
    ("int", lambda v, r: 3, ERROR),
]

PAIR_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("reversed", lambda v, r: (v[1], v[0]), ERROR),
    ("equal", lambda v, r: (v[0], v[0]), ERROR),
    ("short", lambda v, r: (v[0],), ERROR),
    ("long", lambda v, r: (v[0], v[1], v[1]), ERROR),
    ("nan", lambda v, r: (float("nan"), v[1]), ERROR),
    ("inf", lambda v, r: (v[0], float("inf")), ERROR),
    ("string", lambda v, r: "ab", ERROR),
    ("list", lambda v, r: list(v), SAME),
    ("ndarray", lambda v, r: np.array(v), SAME),
]

FNLIST_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("empty", lambda v, r: [], ERROR),
    ("not_callable", lambda v, r: [3], ERROR),
    ("string", lambda v, r: "abc", ERROR),
    ("int", lambda v, r: 3, ERROR),
    ("tuple", lambda v, r: tuple(v), SAME),
]

CALLABLE_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("int", lambda v, r: 3, ERROR),
    ("string", lambda v, r: "f", ERROR),
]

PATH_TYPE_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("int", lambda v, r: 3, ERROR),
    ("list", lambda v, r: [str(v)], ERROR),
    ("str", lambda v, r: str(v), SAME),
]

MUTATIONS: dict[str, list] = {
    "array": ARRAY_MUTATIONS,
    "labels": LABEL_MUTATIONS,
    "int": INT_MUTATIONS,
    "float": FLOAT_MUTATIONS,
    "choice": CHOICE_MUTATIONS,
    "cache": CACHE_MUTATIONS,
    "intseq": INTSEQ_MUTATIONS,
    "bool": BOOL_MUTATIONS,
    "dtype": DTYPE_MUTATIONS,
    "pair": PAIR_MUTATIONS,
    "fnlist": FNLIST_MUTATIONS,
    "callable": CALLABLE_MUTATIONS,
    "path": PATH_TYPE_MUTATIONS,
}

DICT_MUTATIONS = [
    ("None", lambda v, r: None, ERROR),
    ("list", lambda v, r: list(v.items()), ERROR),
    ("string", lambda v, r: "mode", ERROR),
]


# ------------------------------------------------------------------------------------------
# catalogue entries


@dataclass
class Entry:
    name: str  # e.g. "fastnn.layers.affine_forward"
    make: Callable[[dict, Path], dict]  # (config, tmp dir) -> valid arguments
    call: Callable[[dict], Any]  # arguments -> comparable result
    args: list[Arg]
    config: Any = None  # hypothesis strategy of the configuration
    num_classes: Callable[[dict], int] | None = None  # labels: classes implied by the other args
    rtol: float = 1e-5

    @property
    def module(self) -> str:
        parts = self.name.split(".")
        return ".".join(parts[:2])


def cases(entry: Entry) -> list[tuple[str, str, str]]:
    """Every (argument path, mutation, expectation) of ``entry``, in a fixed order.

    The argument path is the argument name, or ``name['key']`` for a dict key; the expectation
    is fixed by the specification, so the list does not depend on the configuration.
    """
    out = []
    for arg in entry.args:
        out.extend((arg.name, m, e) for m, e in _arg_mutations(arg))
        if arg.kind == "dict":
            for key, spec in arg.keys.items():
                path = f"{arg.name}[{key!r}]"
                out.append((path, "missing", ERROR if key in arg.required else ANY))
                out.extend((path, m, e) for m, e in _arg_mutations(spec))
    return out


def _arg_mutations(arg: Arg) -> list[tuple[str, str]]:
    if arg.kind == "dict":
        table = DICT_MUTATIONS
    else:
        table = MUTATIONS[arg.kind]
    out = [(name, arg.expectation(name, default)) for name, _, default in table]
    if arg.kind == "path":
        out += [(f"damage:{d}", arg.expectation(f"damage:{d}", ERROR)) for d in arg.damages]
    return [(n, e) for n, e in out if e != SKIP]


def mutation_function(kind: str, name: str):
    table = DICT_MUTATIONS if kind == "dict" else MUTATIONS[kind]
    for n, fn, _ in table:
        if n == name:
            return fn
    raise KeyError((kind, name))


def find_spec(entry: Entry, path: str) -> tuple[Arg, str | None, Arg | None]:
    """(top-level argument, dict key or None, key spec or None) of an argument path."""
    if "[" in path:
        top, key = path.split("[", 1)
        key = key[:-1].strip("'\"")
        arg = next(a for a in entry.args if a.name == top)
        return arg, key, arg.keys[key]
    return next(a for a in entry.args if a.name == path), None, None


# --------------------------------------------------------------------------------- helpers


def rng_of(cfg) -> np.random.Generator:
    return np.random.default_rng(cfg["seed"])


def randn(r, shape, dtype):
    return r.standard_normal(shape).astype(dtype)


def base_config(n=(2, 5), d=(2, 5), c=(2, 4), **extra):
    fields = {
        "n": st.integers(*n),
        "d": st.integers(*d),
        "c": st.integers(*c),
        "dtype": st.sampled_from(["float64", "float32"]),
        "seed": st.integers(0, 2**16),
    }
    fields.update(extra)
    return st.fixed_dictionaries(fields)


def labels(r, n, c):
    y = np.arange(n) % c  # every class present
    r.shuffle(y)
    return y.astype(np.int64)


def kw(func, *names):
    """Call ``func`` with the named arguments as keywords."""
    return lambda a: func(**{n: a[n] for n in names})


def method(meth, *names):
    """Call ``a['_self'].meth(**named arguments)``."""
    return lambda a: getattr(a["_self"], meth)(**{n: a[n] for n in names})


ENTRIES: list[Entry] = []


def add(name, make, call, args, config=None, **kwargs) -> Entry:
    entry = Entry(name, make, call, args, config if config is not None else base_config(), **kwargs)
    ENTRIES.append(entry)
    return entry


def _ncls_x(a):  # classes = columns of x (scores)
    return np.shape(a["x"])[1]


def _ncls_W(a):
    return np.shape(a["W"])[1]


# =========================================================================== fastnn.layers
def _build_layers():
    from fastnn import layers as Lr

    # layer inputs: NaN/inf propagate (finite=False) and an empty batch is arguably valid
    def X(name, **kw_):
        return A(name, finite=False, n_free=True, empty=ANY, **kw_)

    def DOUT(**kw_):
        return A("dout", finite=False, **kw_)

    def aff(cfg, tmp):
        r, t = rng_of(cfg), cfg["dtype"]
        n, d, m = cfg["n"], cfg["d"], cfg["c"]
        return {"x": randn(r, (n, 2, d), t), "w": randn(r, (2 * d, m), t), "b": randn(r, m, t)}

    add("fastnn.layers.affine_forward", aff, kw(Lr.affine_forward, "x", "w", "b"),
        [X("x"), A("w", finite=False), A("b", finite=False)])

    def with_cache(forward, make, *fwd_names, dout_from_out=True):
        def m(cfg, tmp):
            a = make(cfg, tmp)
            res = forward(**{k: a[k] for k in fwd_names})
            out, cache = res[0], res[-1]
            dout = randn(rng_of(cfg), np.shape(out), cfg["dtype"])
            return {"dout": dout, "cache": cache}
        return m

    aff_cache = with_cache(Lr.affine_forward, aff, "x", "w", "b")
    # the docstring allows a cache of (x, w) without b
    add("fastnn.layers.affine_backward", aff_cache, kw(Lr.affine_backward, "dout", "cache"),
        [DOUT(), K(short=ANY)])
    add("fastnn.layers.affine_backward_params", aff_cache,
        kw(Lr.affine_backward_params, "dout", "cache"), [DOUT(), K(short=ANY)])

    def elem(cfg, tmp):
        return {"x": randn(rng_of(cfg), (cfg["n"], cfg["d"]), cfg["dtype"])}

    def elem_a(alpha):
        def m(cfg, tmp):
            return {**elem(cfg, tmp), "alpha": alpha}
        return m

    XF = A("x", free=True, finite=False)
    for fname in ("relu", "sigmoid", "tanh"):
        fwd = getattr(Lr, f"{fname}_forward")
        bwd = getattr(Lr, f"{fname}_backward")
        add(f"fastnn.layers.{fname}_forward", elem, kw(fwd, "x"), [XF])
        add(f"fastnn.layers.{fname}_backward", with_cache(fwd, elem, "x"),
            kw(bwd, "dout", "cache"), [DOUT(), K()])
    add("fastnn.layers.sigmoid", elem, kw(Lr.sigmoid, "x"), [XF])
    add("fastnn.layers.leaky_relu_forward", elem_a(0.1), kw(Lr.leaky_relu_forward, "x", "alpha"),
        [XF, F("alpha")])
    add("fastnn.layers.leaky_relu_backward", with_cache(Lr.leaky_relu_forward, elem_a(0.1), "x",
                                                        "alpha"),
        kw(Lr.leaky_relu_backward, "dout", "cache"), [DOUT(), K()])
    add("fastnn.layers.elu_forward", elem_a(1.0), kw(Lr.elu_forward, "x", "alpha"),
        [XF, F("alpha", minimum=0.0)])
    add("fastnn.layers.elu_backward", with_cache(Lr.elu_forward, elem_a(1.0), "x", "alpha"),
        kw(Lr.elu_backward, "dout", "cache"), [DOUT(), K()])

    def scores(cfg, tmp):
        r = rng_of(cfg)
        return {"x": randn(r, (cfg["n"], cfg["c"]), cfg["dtype"]),
                "y": labels(r, cfg["n"], cfg["c"])}

    for fname in ("svm_loss", "softmax_loss"):
        add(f"fastnn.layers.{fname}", scores, kw(getattr(Lr, fname), "x", "y"),
            [A("x", finite=False, d_free=True), L("y")], num_classes=_ncls_x)

    def norm(param_name, param):
        def m(cfg, tmp):
            r, t = rng_of(cfg), cfg["dtype"]
            n, d = cfg["n"], cfg["d"]
            p = dict(param)
            if "running_mean" in p:
                p["running_mean"] = randn(r, d, t)
                p["running_var"] = np.abs(randn(r, d, t)) + 0.5
            return {"x": randn(r, (n, d), t), "gamma": randn(r, d, t), "beta": randn(r, d, t),
                    param_name: p}
        return m

    BN = D("bn_param", {
        "mode": C("mode", ("train", "test")),
        "eps": F("eps", minimum=0.0),
        "momentum": F("momentum", minimum=0.0, maximum=1.0),
        # None: created as zeros/ones on the first call; a train-mode output does not use them
        "running_mean": A("running_mean", finite=False, **{"None": SAME}),
        "running_var": A("running_var", finite=False, **{"None": SAME}),
    }, required=("mode",))
    LN = D("ln_param", {"eps": F("eps", minimum=0.0)})
    GB = [A("gamma", finite=False), A("beta", finite=False)]
    bn_make = norm("bn_param", {"mode": "train", "eps": 1e-5, "momentum": 0.9,
                                "running_mean": None})
    ln_make = norm("ln_param", {"eps": 1e-5})
    # running averages do not change a train-mode output: compare (out, cache) only
    add("fastnn.layers.batchnorm_forward", bn_make,
        kw(Lr.batchnorm_forward, "x", "gamma", "beta", "bn_param"),
        [A("x", finite=False, n_free=True, empty=ANY), *GB, BN])
    add("fastnn.layers.layernorm_forward", ln_make,
        kw(Lr.layernorm_forward, "x", "gamma", "beta", "ln_param"),
        [A("x", finite=False, n_free=True, empty=ANY), *GB, LN])
    bn_cache = with_cache(Lr.batchnorm_forward, bn_make, "x", "gamma", "beta", "bn_param")
    add("fastnn.layers.batchnorm_backward", bn_cache, kw(Lr.batchnorm_backward, "dout", "cache"),
        [DOUT(), K()])
    add("fastnn.layers.batchnorm_backward_alt", bn_cache,
        kw(Lr.batchnorm_backward_alt, "dout", "cache"), [DOUT(), K()])
    add("fastnn.layers.layernorm_backward",
        with_cache(Lr.layernorm_forward, ln_make, "x", "gamma", "beta", "ln_param"),
        kw(Lr.layernorm_backward, "dout", "cache"), [DOUT(), K()])

    # spatial norms: x (N, C, H, W) with H = d, W = 3; group norm: C = 2c channels in G = 2 groups
    def spatial(param_name, param, groups=False):
        def m(cfg, tmp):
            r, t = rng_of(cfg), cfg["dtype"]
            ch = 2 * cfg["c"] if groups else cfg["c"]
            vec = (1, ch, 1, 1) if groups else ch
            p = dict(param)
            if "running_mean" in p:
                p["running_mean"] = randn(r, ch, t)
                p["running_var"] = np.abs(randn(r, ch, t)) + 0.5
            a = {"x": randn(r, (cfg["n"], ch, cfg["d"], 3), t), "gamma": randn(r, vec, t),
                 "beta": randn(r, vec, t), param_name: p}
            return {**a, "G": 2} if groups else a
        return m

    SX = X("x", d_free=True)
    sbn_make = spatial("bn_param", {"mode": "train", "eps": 1e-5, "momentum": 0.9,
                                    "running_mean": None})
    sgn_make = spatial("gn_param", {"eps": 1e-5}, groups=True)
    add("fastnn.layers.spatial_batchnorm_forward", sbn_make,
        kw(Lr.spatial_batchnorm_forward, "x", "gamma", "beta", "bn_param"), [SX, *GB, BN])
    add("fastnn.layers.spatial_groupnorm_forward", sgn_make,
        kw(Lr.spatial_groupnorm_forward, "x", "gamma", "beta", "G", "gn_param"),
        [SX, *GB, I("G"), D("gn_param", {"eps": F("eps", minimum=0.0)})])
    add("fastnn.layers.spatial_batchnorm_backward",
        with_cache(Lr.spatial_batchnorm_forward, sbn_make, "x", "gamma", "beta", "bn_param"),
        kw(Lr.spatial_batchnorm_backward, "dout", "cache"), [DOUT(), K()])
    add("fastnn.layers.spatial_groupnorm_backward",
        with_cache(Lr.spatial_groupnorm_forward, sgn_make, "x", "gamma", "beta", "G",
                   "gn_param"),
        kw(Lr.spatial_groupnorm_backward, "dout", "cache"), [DOUT(), K()])

    # convolutions: x (N, C, H, W) with H = d + 4, W = 5; w (2, C, 3, 3), dilation 2 (so a cache
    # whose x and w both lose a column no longer matches dout)
    def conv(cfg, tmp):
        r, t, c = rng_of(cfg), cfg["dtype"], cfg["c"]
        return {"x": randn(r, (cfg["n"], c, cfg["d"] + 4, 5), t), "w": randn(r, (2, c, 3, 3), t),
                "b": randn(r, 2, t), "conv_param": {"stride": 1, "pad": 1, "dilation": 2}}

    CP = D("conv_param", {"stride": I("stride"), "pad": I("pad", minimum=0),
                          "dilation": I("dilation")}, required=("stride", "pad"))
    for speed in ("naive", "fast"):
        fwd = getattr(Lr, f"conv_forward_{speed}")
        add(f"fastnn.layers.conv_forward_{speed}", conv, kw(fwd, "x", "w", "b", "conv_param"),
            [X("x", d_free=True), A("w", finite=False, d_free=True), A("b", finite=False), CP])
        add(f"fastnn.layers.conv_backward_{speed}",
            with_cache(fwd, conv, "x", "w", "b", "conv_param"),
            kw(getattr(Lr, f"conv_backward_{speed}"), "dout", "cache"), [DOUT(), K()])

    # pooling: x (N, C, 2d, 4) with 2x2 stride-2 windows (a W of 5 no longer fits: an error)
    def pooled(cfg, tmp):
        r, t = rng_of(cfg), cfg["dtype"]
        return {"x": randn(r, (cfg["n"], cfg["c"], 2 * cfg["d"], 4), t),
                "pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2}}

    def planes(cfg, tmp):
        return {"x": randn(rng_of(cfg), (cfg["n"], cfg["c"], cfg["d"], 3), cfg["dtype"])}

    PP = D("pool_param", {key: I(key) for key in ("pool_height", "pool_width", "stride")},
           required=("pool_height", "pool_width", "stride"))
    for kind in ("max", "avg"):
        for variant in ("naive", "fast"):
            fwd = getattr(Lr, f"{kind}_pool_forward_{variant}")
            add(f"fastnn.layers.{kind}_pool_forward_{variant}", pooled,
                kw(fwd, "x", "pool_param"), [X("x"), PP])
            add(f"fastnn.layers.{kind}_pool_backward_{variant}",
                with_cache(fwd, pooled, "x", "pool_param"),
                kw(getattr(Lr, f"{kind}_pool_backward_{variant}"), "dout", "cache"),
                [DOUT(), K()])
    add("fastnn.layers.global_avg_pool_forward", planes, kw(Lr.global_avg_pool_forward, "x"),
        [X("x", d_free=True)])
    add("fastnn.layers.global_avg_pool_backward",
        with_cache(Lr.global_avg_pool_forward, planes, "x"),
        kw(Lr.global_avg_pool_backward, "dout", "cache"), [DOUT(), K()])

    def drop(cfg, tmp):
        return {**elem(cfg, tmp), "dropout_param": {"mode": "train", "p": 0.5, "seed": 3}}

    DP = D("dropout_param", {
        "mode": C("mode", ("train", "test")),
        "p": F("p", minimum=0.0, min_excl=True, maximum=1.0),
        "seed": I("seed", minimum=0, maximum=2**32 - 1, none=ANY, list=ANY),
    }, required=("mode", "p"))
    add("fastnn.layers.dropout_forward", drop, kw(Lr.dropout_forward, "x", "dropout_param"),
        [XF, DP])
    add("fastnn.layers.dropout_backward", with_cache(Lr.dropout_forward, drop, "x",
                                                     "dropout_param"),
        kw(Lr.dropout_backward, "dout", "cache"), [DOUT(), K()])

    def aff_norm(param_name, param):
        def m(cfg, tmp):
            a = aff(cfg, tmp)
            r, t, mm = rng_of(cfg), cfg["dtype"], cfg["c"]
            return {**a, "gamma": randn(r, mm, t), "beta": randn(r, mm, t),
                    param_name: dict(param)}
        return m

    AFF = [X("x"), A("w", finite=False), A("b", finite=False)]
    add("fastnn.layers.affine_relu_forward", aff, kw(Lr.affine_relu_forward, "x", "w", "b"), AFF)
    add("fastnn.layers.affine_relu_backward",
        with_cache(Lr.affine_relu_forward, aff, "x", "w", "b"),
        kw(Lr.affine_relu_backward, "dout", "cache"), [DOUT(), K()])
    abn = aff_norm("bn_param", {"mode": "train"})
    aln = aff_norm("ln_param", {})
    add("fastnn.layers.affine_bn_relu_forward", abn,
        kw(Lr.affine_bn_relu_forward, "x", "w", "b", "gamma", "beta", "bn_param"),
        [*AFF, *GB, D("bn_param", {"mode": C("mode", ("train", "test"))}, required=("mode",))])
    add("fastnn.layers.affine_bn_relu_backward",
        with_cache(Lr.affine_bn_relu_forward, abn, "x", "w", "b", "gamma", "beta", "bn_param"),
        kw(Lr.affine_bn_relu_backward, "dout", "cache"), [DOUT(), K()])
    add("fastnn.layers.affine_ln_relu_forward", aln,
        kw(Lr.affine_ln_relu_forward, "x", "w", "b", "gamma", "beta", "ln_param"),
        [*AFF, *GB, D("ln_param", {})])
    add("fastnn.layers.affine_ln_relu_backward",
        with_cache(Lr.affine_ln_relu_forward, aln, "x", "w", "b", "gamma", "beta", "ln_param"),
        kw(Lr.affine_ln_relu_backward, "dout", "cache"), [DOUT(), K()])

    # conv sandwiches: x (N, C, 2d, 4), w (2, C, 3, 3), stride 1, pad 1 (then 2x2 pooling fits)
    def conv_sw(cfg, tmp):
        r, t, c = rng_of(cfg), cfg["dtype"], cfg["c"]
        return {"x": randn(r, (cfg["n"], c, 2 * cfg["d"], 4), t), "w": randn(r, (2, c, 3, 3), t),
                "b": randn(r, 2, t), "gamma": randn(r, 2, t), "beta": randn(r, 2, t),
                "conv_param": {"stride": 1, "pad": 1}, "bn_param": {"mode": "train"},
                "pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2}}

    # a wider x or kernel is another valid convolution (the output width changes)
    CSW = [X("x", d_free=True), A("w", finite=False, d_free=True), A("b", finite=False),
           D("conv_param", {"stride": I("stride"), "pad": I("pad", minimum=0)},
             required=("stride", "pad"))]
    SW_BN = D("bn_param", {"mode": C("mode", ("train", "test"))}, required=("mode",))
    SW_PP = D("pool_param", {key: I(key) for key in ("pool_height", "pool_width", "stride")},
              required=("pool_height", "pool_width", "stride"))
    for combo, names, extra_args in (
            ("conv_relu", ("x", "w", "b", "conv_param"), []),
            ("conv_bn_relu", ("x", "w", "b", "gamma", "beta", "conv_param", "bn_param"),
             [*GB, SW_BN]),
            ("conv_relu_pool", ("x", "w", "b", "conv_param", "pool_param"), [SW_PP])):
        fwd = getattr(Lr, f"{combo}_forward")
        add(f"fastnn.layers.{combo}_forward", conv_sw, kw(fwd, *names), [*CSW, *extra_args])
        add(f"fastnn.layers.{combo}_backward", with_cache(fwd, conv_sw, *names),
            kw(getattr(Lr, f"{combo}_backward"), "dout", "cache"), [DOUT(), K()])


# ============================================================================ fastnn.optim
def _build_optim():
    from fastnn import optim as O

    lr = F("learning_rate", minimum=0.0)
    unit = functools.partial(F, minimum=0.0, maximum=1.0)
    rules = {
        "sgd": ({"learning_rate": 1e-2}, {"learning_rate": lr}),
        "sgd_momentum": ({"learning_rate": 1e-2, "momentum": 0.9, "velocity": "state"},
                         {"learning_rate": lr, "momentum": unit("momentum"),
                          "velocity": A("velocity", finite=False)}),
        "nesterov_momentum": ({"learning_rate": 1e-2, "momentum": 0.9, "velocity": "state"},
                              {"learning_rate": lr, "momentum": unit("momentum"),
                               "velocity": A("velocity", finite=False)}),
        "adagrad": ({"learning_rate": 1e-2, "epsilon": 1e-8, "cache": "state2"},
                    {"learning_rate": lr, "epsilon": F("epsilon", minimum=0.0),
                     "cache": A("cache", finite=False, negative=ERROR)}),
        "rmsprop": ({"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8, "cache": "state2"},
                    {"learning_rate": lr, "decay_rate": unit("decay_rate"),
                     "epsilon": F("epsilon", minimum=0.0),
                     "cache": A("cache", finite=False)}),
        "adam": ({"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
                  "m": "state", "v": "state2", "t": 3},
                 {"learning_rate": lr, "beta1": unit("beta1", max_excl=True),
                  "beta2": unit("beta2", max_excl=True), "epsilon": F("epsilon", minimum=0.0),
                  "m": A("m", finite=False), "v": A("v", finite=False),
                  "t": I("t", minimum=0, huge=ANY)}),
    }
    for rule, (config, keys) in rules.items():
        func = getattr(O, rule)
        for spec in keys.values():  # a missing state array is a fresh (zero) state
            if spec.kind == "array":
                spec.expect["None"] = ANY

        def make(cfg, tmp, config=config):
            r, t = rng_of(cfg), cfg["dtype"]
            shape = (cfg["n"], cfg["d"])
            conf = {}
            for k, v in config.items():
                if v == "state":
                    v = randn(r, shape, t)
                elif v == "state2":
                    v = np.abs(randn(r, shape, t))
                conf[k] = v
            return {"w": randn(r, shape, t), "dw": randn(r, shape, t), "config": conf}

        def call(a, func=func):
            w, conf = func(a["w"], a["dw"], a["config"])
            return w, {k: v for k, v in conf.items()}

        W = {"finite": False, "int8": ANY, "uint64": ANY, "bool": ANY, "float16": ANY}
        conf_spec = D("config", dict(keys), none=ANY)
        add(f"fastnn.optim.{rule}", make, call,
            [A("w", **W), A("dw", **W), conf_spec])

        def make_inplace(cfg, tmp, make=make):
            a = make(cfg, tmp)
            a["out"] = a["w"]
            return a

        def call_inplace(a, func=func):
            w, conf = func(a["w"], a["dw"], a["config"], out=a["out"])
            return np.array(w), {k: v for k, v in conf.items()}

        add(f"fastnn.optim.{rule}[out=w]", make_inplace, call_inplace,
            [A("out", io=True, finite=False, noncontig=SAME, fortran=SAME, **{"None": SAME}),
             D("config", dict(keys), none=ANY)])

    def evaluate(schedule):
        return [float(schedule(s)) for s in (0, 1, 5, 50)]

    def sched(cls, **fixed):
        def make(cfg, tmp):
            return dict(fixed)
        return make, (lambda a: evaluate(cls(**a)))

    steps = functools.partial(I, huge=ANY)
    const = st.fixed_dictionaries({"seed": st.integers(0, 10)})
    m, c = sched(O.StepSchedule, step_size=3, gamma=0.5)
    add("fastnn.optim.StepSchedule", m, c, [steps("step_size"), F("gamma", minimum=0.0)], const)
    m, c = sched(O.CosineSchedule, total_steps=20, min_factor=0.1)
    add("fastnn.optim.CosineSchedule", m, c,
        [steps("total_steps"), F("min_factor", minimum=0.0, maximum=1.0)], const)
    m, c = sched(O.LinearSchedule, total_steps=20, end_factor=0.1)
    add("fastnn.optim.LinearSchedule", m, c,
        [steps("total_steps"), F("end_factor", minimum=0.0, maximum=1.0)], const)
    m, c = sched(O.InverseSqrtSchedule, timescale=4)
    add("fastnn.optim.InverseSqrtSchedule", m, c, [steps("timescale")], const)
    m, c = sched(O.LinearWarmup, schedule=O.StepSchedule(3), warmup_steps=2)
    add("fastnn.optim.LinearWarmup", m, c,
        [Arg("schedule", "callable", {"None": ANY}), steps("warmup_steps")], const)
    add("fastnn.optim.Schedule.__call__", lambda cfg, tmp: {"step": 7},
        lambda a: float(O.CosineSchedule(20)(a["step"])),
        [I("step", minimum=0, huge=ANY)], const)
    # one entry per family of schedules, so that every mutated argument is one the schedule uses
    for name, extra, specs in (
        ("step", {"step_epochs": 1.0, "gamma": 0.5},
         [F("step_epochs", minimum=0.0, min_excl=True, none=ANY), F("gamma", minimum=0.0)]),
        ("cosine", {"min_factor": 0.1}, [F("min_factor", minimum=0.0, maximum=1.0)]),
        ("inverse_sqrt", {}, []),
    ):
        add(f"fastnn.optim.make_schedule[{name}]",
            lambda cfg, tmp, name=name, extra=extra: {
                "name": name, "total_steps": 30, "steps_per_epoch": 5, "warmup_steps": 2, **extra},
            lambda a: evaluate(O.make_schedule(a["name"], **{k: v for k, v in a.items()
                                                           if k != "name"})),
            [C("name", O.SCHEDULES), steps("total_steps"), steps("steps_per_epoch"),
             steps("warmup_steps", minimum=0), *specs], const)
    add("fastnn.optim.get_update_rule", lambda cfg, tmp: {"name": "adam"},
        lambda a: O.get_update_rule(a["name"]).__name__, [C("name", O.UPDATE_RULES)], const)


# ========================================================================== fastnn.kernels
def _build_kernels():
    from fastnn import kernels as Kn
    from fastnn.kernels import conv as Kc
    from fastnn.kernels import normalization as Kno
    from fastnn.kernels import optim as Ko
    from fastnn.kernels import pool as Kp
    from fastnn.kernels import spatial_normalization as Ksn

    def pair(cfg, tmp):
        r, t = rng_of(cfg), cfg["dtype"]
        return {"X": randn(r, (cfg["n"], cfg["d"]), t),
                "Y": randn(r, (cfg["n"] + 2, cfg["d"]), t)}

    IMPL = functools.partial(C, none=SAME)
    for impl in ("compiled", "vectorized", "naive"):
        add(f"fastnn.kernels.pairwise_distances[{impl}]",
            lambda cfg, tmp, impl=impl: {**pair(cfg, tmp), "metric": "l2", "impl": impl},
            kw(Kn.pairwise_distances, "X", "Y", "metric", "impl"),
            [A("X", n_free=True), A("Y", n_free=True), C("metric", ("l2", "sqeuclidean", "l1")),
             IMPL("impl", ("naive", "one_loop", "vectorized", "compiled"))], rtol=1e-4)
        add(f"fastnn.kernels.pairwise_distances[{impl},l1]",
            lambda cfg, tmp, impl=impl: {**pair(cfg, tmp), "metric": "l1", "impl": impl},
            kw(Kn.pairwise_distances, "X", "Y", "metric", "impl"),
            [A("X", n_free=True), A("Y", n_free=True)], rtol=1e-4)
    for impl in ("compiled", "vectorized"):
        for metric in ("l2", "l1"):
            add(f"fastnn.kernels.knn_search[{impl},{metric}]",
                lambda cfg, tmp, impl=impl, metric=metric: {
                    **pair(cfg, tmp), "k": 2, "metric": metric, "impl": impl, "chunk_size": None},
                kw(Kn.knn_search, "X", "Y", "k", "metric", "impl", "chunk_size"),
                [A("X", n_free=True), A("Y", n_free=True, wrong_size_first=ANY),
                 I("k"), C("metric", ("l2", "sqeuclidean", "l1")),
                 IMPL("impl", ("naive", "vectorized", "compiled")),
                 I("chunk_size", huge=ANY, none=SAME)], rtol=1e-4)

    hog_cfg = base_config(h=st.integers(6, 11), w=st.integers(6, 11), p=st.integers(2, 3))

    def images(cfg, tmp):
        r = rng_of(cfg)
        imgs = r.uniform(0, 255, (cfg["n"], cfg["h"], cfg["w"], 3)).astype(cfg["dtype"])
        return {"images": imgs}

    IMG = {"wrong_size_last": ANY, "wrong_size_first": ANY, "drop_dim": ANY}
    for impl in ("compiled", "vectorized"):
        add(f"fastnn.kernels.hog_descriptors[{impl}]",
            lambda cfg, tmp, impl=impl: {**images(cfg, tmp), "pixels_per_cell": cfg["p"],
                                         "orientations": 9, "impl": impl, "num_threads": 1},
            kw(Kn.hog_descriptors, "images", "pixels_per_cell", "orientations", "impl",
               "num_threads"),
            [A("images", **IMG), I("pixels_per_cell"), I("orientations"),
             IMPL("impl", ("naive", "vectorized", "compiled")),
             I("num_threads", none=ANY, huge=ANY)],  # (a huge thread count may be clamped)
            hog_cfg, rtol=1e-4)

    def nf(cfg, tmp):
        r, t = rng_of(cfg), cfg["dtype"]
        n, d = cfg["n"], cfg["d"]
        return {"x": randn(r, (n, d), t), "gamma": randn(r, d, t), "beta": randn(r, d, t),
                "eps": 1e-5}

    NX = A("x", finite=False, n_free=True)
    NV = functools.partial(A, finite=False)
    for impl in ("compiled", "vectorized"):
        for op in ("batchnorm_forward_train", "layernorm_forward"):
            add(f"fastnn.kernels.normalization.{op}[{impl}]",
                lambda cfg, tmp, impl=impl: {**nf(cfg, tmp), "impl": impl},
                kw(getattr(Kno, op), "x", "gamma", "beta", "eps", "impl"),
                [NX, NV("gamma"), NV("beta"), F("eps", minimum=0.0),
                 IMPL("impl", ("naive", "vectorized", "compiled"))])

        def bwd(cfg, tmp, impl=impl, per_row=False):
            r, t = rng_of(cfg), cfg["dtype"]
            n, d = cfg["n"], cfg["d"]
            inv = np.abs(randn(r, (n, 1) if per_row else d, t)) + 0.5
            return {"dout": randn(r, (n, d), t), "x_hat": randn(r, (n, d), t),
                    "gamma": randn(r, d, t), "inv_std": inv, "impl": impl}

        names = ("dout", "x_hat", "gamma", "inv_std", "impl")
        add(f"fastnn.kernels.normalization.batchnorm_backward_closed_form[{impl}]", bwd,
            kw(Kno.batchnorm_backward_closed_form, *names),
            [NV("dout"), NV("x_hat"), NV("gamma"),
             NV("inv_std", negative=ERROR), IMPL("impl", ("naive", "vectorized", "compiled"))])
        add(f"fastnn.kernels.normalization.layernorm_backward[{impl}]",
            functools.partial(bwd, per_row=True),
            kw(Kno.layernorm_backward, *names),
            [NV("dout"), NV("x_hat"), NV("gamma"), NV("inv_std"),
             IMPL("impl", ("naive", "vectorized", "compiled"))])

    # spatial norms: x (N, C, H, W) with C = 2c channels in G = 2 groups, H = d, W = 3
    def snf(cfg, tmp, impl, groups=False):
        r, t = rng_of(cfg), cfg["dtype"]
        ch = 2 * cfg["c"]
        a = {"x": randn(r, (cfg["n"], ch, cfg["d"], 3), t), "gamma": randn(r, ch, t),
             "beta": randn(r, ch, t), "eps": 1e-5, "impl": impl}
        return {**a, "G": 2} if groups else a

    def snb(cfg, tmp, impl, groups=False):
        r, t = rng_of(cfg), cfg["dtype"]
        n, ch = cfg["n"], 2 * cfg["c"]
        stats = (n, 2) if groups else ch
        return {"dout": randn(r, (n, ch, cfg["d"], 3), t),
                "x": randn(r, (n, ch, cfg["d"], 3), t), "gamma": randn(r, ch, t),
                "mean": randn(r, stats, t), "inv_std": np.abs(randn(r, stats, t)) + 0.5,
                "impl": impl}

    SNX = A("x", finite=False, n_free=True, d_free=True)
    S_IMPL = IMPL("impl", ("naive", "vectorized", "compiled"))
    fwd_names = ("x", "gamma", "beta", "eps", "impl")
    bwd_names = ("dout", "x", "gamma", "mean", "inv_std", "impl")
    bwd_args = [NV("dout"), NV("x"), NV("gamma"), NV("mean"), NV("inv_std"), S_IMPL]
    for impl in ("compiled", "vectorized"):
        add(f"fastnn.kernels.spatial_normalization.spatial_batchnorm_forward_train[{impl}]",
            functools.partial(snf, impl=impl),
            kw(Ksn.spatial_batchnorm_forward_train, *fwd_names),
            [SNX, NV("gamma"), NV("beta"), F("eps", minimum=0.0), S_IMPL])
        add(f"fastnn.kernels.spatial_normalization.spatial_groupnorm_forward[{impl}]",
            functools.partial(snf, impl=impl, groups=True),
            kw(Ksn.spatial_groupnorm_forward, "x", "gamma", "beta", "G", "eps", "impl"),
            [SNX, NV("gamma"), NV("beta"), I("G"), F("eps", minimum=0.0), S_IMPL])
        add(f"fastnn.kernels.spatial_normalization.spatial_batchnorm_backward[{impl}]",
            functools.partial(snb, impl=impl),
            kw(Ksn.spatial_batchnorm_backward, *bwd_names), bwd_args)
        add(f"fastnn.kernels.spatial_normalization.spatial_groupnorm_backward[{impl}]",
            functools.partial(snb, impl=impl, groups=True),
            kw(Ksn.spatial_groupnorm_backward, *bwd_names), bwd_args)

    # convolution kernels: x (N, C, H, W) with H = d + 2, W = 4; w (2, C, 2, 3), pad 1
    def cf(cfg, tmp, impl):
        r, t, c = rng_of(cfg), cfg["dtype"], cfg["c"]
        return {"x": randn(r, (cfg["n"], c, cfg["d"] + 2, 4), t), "w": randn(r, (2, c, 2, 3), t),
                "b": randn(r, 2, t), "stride": 1, "pad": 1, "dilation": 1, "impl": impl}

    def cb(cfg, tmp, impl):
        a = cf(cfg, tmp, impl)
        dout = randn(rng_of(cfg), (cfg["n"], 2, cfg["d"] + 3, 4), cfg["dtype"])
        return {**{k: v for k, v in a.items() if k != "b"}, "dout": dout, "need_dx": True}

    def i2c(cfg, tmp, impl):
        a = cf(cfg, tmp, impl)
        return {"x": a["x"], "field_height": 2, "field_width": 3, "padding": 1, "stride": 1,
                "dilation": 1, "impl": impl}

    def c2i(cfg, tmp, impl):
        n, c, d = cfg["n"], cfg["c"], cfg["d"]
        cols = randn(rng_of(cfg), (c * 6, (d + 3) * 4 * n), cfg["dtype"])
        return {"cols": cols, "x_shape": (n, c, d + 2, 4), "field_height": 2, "field_width": 3,
                "padding": 1, "stride": 1, "dilation": 1, "impl": impl}

    C_IMPL = IMPL("impl", ("naive", "vectorized", "compiled"))
    HYPER = [I("stride"), I("pad", minimum=0), I("dilation")]
    FIELD = [I("field_height"), I("field_width"), I("padding", minimum=0), I("stride"),
             I("dilation")]
    CX = A("x", finite=False, n_free=True, d_free=True)
    for impl in ("compiled", "vectorized", "naive"):
        add(f"fastnn.kernels.conv.conv_forward[{impl}]", functools.partial(cf, impl=impl),
            kw(Kc.conv_forward, "x", "w", "b", "stride", "pad", "dilation", "impl"),
            [CX, NV("w", d_free=True), NV("b"), *HYPER, C_IMPL])
        add(f"fastnn.kernels.conv.conv_backward[{impl}]", functools.partial(cb, impl=impl),
            kw(Kc.conv_backward, "dout", "x", "w", "stride", "pad", "dilation", "need_dx",
               "impl"),
            [NV("dout"), NV("x"), NV("w"), *HYPER, B("need_dx"), C_IMPL])
        add(f"fastnn.kernels.conv.im2col[{impl}]", functools.partial(i2c, impl=impl),
            kw(Kc.im2col, "x", "field_height", "field_width", "padding", "stride", "dilation",
               "impl"), [CX, *FIELD, C_IMPL])
        add(f"fastnn.kernels.conv.col2im[{impl}]", functools.partial(c2i, impl=impl),
            kw(Kc.col2im, "cols", "x_shape", "field_height", "field_width", "padding", "stride",
               "dilation", "impl"), [NV("cols"), Arg("x_shape", "intseq"), *FIELD, C_IMPL])

    # pooling: x (N, C, 2d, 4), 2x2 stride-2 windows; argmax any index of the 2d x 4 plane
    def pool_fwd(cfg, tmp, impl, window=True):
        r, t = rng_of(cfg), cfg["dtype"]
        a = {"x": randn(r, (cfg["n"], cfg["c"], 2 * cfg["d"], 4), t), "impl": impl}
        return {**a, "pool_height": 2, "pool_width": 2, "stride": 2} if window else a

    def pool_bwd(cfg, tmp, impl, kind):
        r, t = rng_of(cfg), cfg["dtype"]
        n, c, d = cfg["n"], cfg["c"], cfg["d"]
        x_shape = (n, c, 2 * d, 4)
        if kind == "global":
            return {"dout": randn(r, (n, c), t), "x_shape": x_shape, "impl": impl}
        a = {"dout": randn(r, (n, c, d, 2), t), "x_shape": x_shape, "impl": impl}
        if kind == "max":
            return {**a, "argmax": r.integers(0, 8 * d, (n, c, d, 2))}
        return {**a, "pool_height": 2, "pool_width": 2, "stride": 2}

    P_IMPL = IMPL("impl", ("naive", "vectorized", "compiled"))
    WINDOW = [I("pool_height"), I("pool_width"), I("stride")]
    XS = Arg("x_shape", "intseq")
    for impl in ("compiled", "vectorized"):
        for kind in ("max", "avg"):
            add(f"fastnn.kernels.pool.{kind}_pool_forward[{impl}]",
                functools.partial(pool_fwd, impl=impl),
                kw(getattr(Kp, f"{kind}_pool_forward"), "x", "pool_height", "pool_width",
                   "stride", "impl"),
                [A("x", finite=False, n_free=True), *WINDOW, P_IMPL])
        add(f"fastnn.kernels.pool.max_pool_backward[{impl}]",
            functools.partial(pool_bwd, impl=impl, kind="max"),
            kw(Kp.max_pool_backward, "dout", "argmax", "x_shape", "impl"),
            [A("dout", finite=False), A("argmax"), XS, P_IMPL])
        add(f"fastnn.kernels.pool.avg_pool_backward[{impl}]",
            functools.partial(pool_bwd, impl=impl, kind="avg"),
            kw(Kp.avg_pool_backward, "dout", "x_shape", "pool_height", "pool_width", "stride",
               "impl"),
            [A("dout", finite=False), XS, *WINDOW, P_IMPL])
        add(f"fastnn.kernels.pool.global_avg_pool_forward[{impl}]",
            functools.partial(pool_fwd, impl=impl, window=False),
            kw(Kp.global_avg_pool_forward, "x", "impl"),
            [A("x", finite=False, n_free=True, d_free=True), P_IMPL])
        add(f"fastnn.kernels.pool.global_avg_pool_backward[{impl}]",
            functools.partial(pool_bwd, impl=impl, kind="global"),
            kw(Kp.global_avg_pool_backward, "dout", "x_shape", "impl"),
            [A("dout", finite=False), XS, P_IMPL])

    # in-place update kernels: w and the states are IN/OUT (C-contiguous, same float dtype)
    IO = functools.partial(A, io=True, finite=False)
    DW = A("dw", finite=False, list=ERROR, int8=ERROR, uint64=ERROR, float16=ERROR, bool=ERROR,
           other_float=ERROR)
    unit = functools.partial(F, minimum=0.0, maximum=1.0, str=ERROR)
    for impl in ("compiled", "vectorized"):
        def st_make(cfg, tmp, states, hyper, impl=impl):
            r, t = rng_of(cfg), cfg["dtype"]
            shape = (cfg["n"], cfg["d"])
            a = {"w": randn(r, shape, t), "dw": randn(r, shape, t)}
            for s in states:
                a[s] = np.abs(randn(r, shape, t))
            return {**a, **hyper, "impl": impl}

        def st_call(func, names, states):
            def c(a):
                func(**{n: a[n] for n in names})
                return [np.array(a[k]) for k in ("w", *states)]
            return c

        specs = {
            "adam_update": (("m", "v"), {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999,
                                         "epsilon": 1e-8, "t": 2},
                            [F("learning_rate", minimum=0.0, str=ERROR),
                             unit("beta1", max_excl=True), unit("beta2", max_excl=True),
                             F("epsilon", minimum=0.0, str=ERROR), I("t", huge=ANY)]),
            "sgd_momentum_update": (("velocity",), {"learning_rate": 1e-2, "momentum": 0.9},
                                    [F("learning_rate", minimum=0.0, str=ERROR),
                                     unit("momentum")]),
            "rmsprop_update": (("cache",), {"learning_rate": 1e-2, "decay_rate": 0.99,
                                            "epsilon": 1e-8},
                               [F("learning_rate", minimum=0.0, str=ERROR), unit("decay_rate"),
                                F("epsilon", minimum=0.0, str=ERROR)]),
        }
        for op, (states, hyper, hyper_specs) in specs.items():
            names = ("w", "dw", *states, *hyper, "impl")
            add(f"fastnn.kernels.optim.{op}[{impl}]",
                functools.partial(st_make, states=states, hyper=hyper),
                st_call(getattr(Ko, op), names, states),
                [IO("w"), DW, *[IO(s) for s in states], *hyper_specs,
                 IMPL("impl", ("naive", "vectorized", "compiled"))])

    const = st.fixed_dictionaries({"seed": st.integers(0, 10)})
    add("fastnn.kernels.available_impls", lambda cfg, tmp: {"op_name": "pairwise_distances"},
        kw(Kn.available_impls, "op_name"), [C("op_name", Kn.operations())], const)
    add("fastnn.kernels.get_impl", lambda cfg, tmp: {"op_name": "hog", "impl": "vectorized"},
        lambda a: Kn.get_impl(a["op_name"], a["impl"]).__name__,
        [C("op_name", Kn.operations()), C("impl", ("vectorized",), none=ANY)], const)


# ====================================================================== fastnn.classifiers
def _build_classifiers():
    from fastnn import classifiers as Cl

    def data(cfg, n_extra=3):
        r, t = rng_of(cfg), cfg["dtype"]
        n = cfg["n"] + n_extra
        return randn(r, (n, cfg["d"]), t), labels(r, n, cfg["c"]), r

    def knn_obs(knn):
        return (knn.X_train, knn.y_train)

    add("fastnn.classifiers.KNearestNeighbor", lambda cfg, tmp: {"metric": "l1"},
        lambda a: Cl.KNearestNeighbor(metric=a["metric"]).metric, [C("metric", ("l2", "l1"))],
        st.fixed_dictionaries({"seed": st.integers(0, 10)}))
    for meth in ("train", "fit"):
        def make(cfg, tmp):
            X, y, _ = data(cfg)
            return {"X": X, "y": y}

        def call(a, meth=meth):
            knn = Cl.KNearestNeighbor()
            getattr(knn, meth)(a["X"], a["y"])
            return knn_obs(knn)
        add(f"fastnn.classifiers.KNearestNeighbor.{meth}", make, call,
            [A("X", d_free=True), L("y", num_classes=False)])

    def trained(cfg, metric="l2"):
        X, y, r = data(cfg)
        knn = Cl.KNearestNeighbor(metric=metric)
        knn.train(X, y)
        Xt = randn(r, (cfg["n"], cfg["d"]), cfg["dtype"])
        return knn, Xt, r

    TX = A("X", n_free=True, empty=ANY)
    for metric in ("l2", "l1"):
        add(f"fastnn.classifiers.KNearestNeighbor.predict[{metric}]",
            lambda cfg, tmp, metric=metric: dict(zip(("_self", "X"), trained(cfg, metric)[:2]),
                                                 k=2, num_loops=0),
            method("predict", "X", "k", "num_loops"),
            [TX, I("k"), I("num_loops", minimum=0, maximum=2)])
    for meth in ("compute_distances_no_loops", "compute_distances_one_loop",
                 "compute_distances_two_loops"):
        add(f"fastnn.classifiers.KNearestNeighbor.{meth}",
            lambda cfg, tmp: dict(zip(("_self", "X"), trained(cfg)[:2])), method(meth, "X"),
            [TX], rtol=1e-4)

    def pl(cfg, tmp):
        knn, Xt, r = trained(cfg)
        return {"_self": knn, "dists": np.abs(randn(r, (Xt.shape[0], knn.X_train.shape[0]),
                                                    cfg["dtype"])), "k": 2}
    add("fastnn.classifiers.KNearestNeighbor.predict_labels", pl,
        method("predict_labels", "dists", "k"),
        [A("dists", n_free=True, empty=ANY, inf=ANY, negative=ERROR), I("k")])

    def sc(cfg, tmp):
        knn, Xt, r = trained(cfg)
        return {"_self": knn, "X": Xt, "y": labels(r, Xt.shape[0], cfg["c"]), "k": 1}
    add("fastnn.classifiers.KNearestNeighbor.score", sc, method("score", "X", "y", "k"),
        [A("X", wrong_size_first=ERROR), L("y", num_classes=False), I("k")])
    add("fastnn.classifiers.KNearestNeighbor.kneighbors",
        lambda cfg, tmp: {**dict(zip(("_self", "X"), trained(cfg)[:2])), "k": 2},
        method("kneighbors", "X", "k"), [TX, I("k")], rtol=1e-4)

    def loss_make(cfg, tmp):
        X, y, r = data(cfg, 0)
        return {"W": randn(r, (cfg["d"], cfg["c"]), cfg["dtype"]) * 0.1, "X": X, "y": y,
                "reg": 0.1}
    for fname in ("svm_loss_naive", "svm_loss_vectorized", "softmax_loss_naive",
                  "softmax_loss_vectorized"):
        add(f"fastnn.classifiers.{fname}", loss_make, kw(getattr(Cl, fname), "W", "X", "y", "reg"),
            [A("W", d_free=True), A("X"), L("y"), F("reg", minimum=0.0)], num_classes=_ncls_W,
            rtol=1e-4)

    for cls in ("LinearSVM", "Softmax"):
        klass = getattr(Cl, cls)

        def tr_make(cfg, tmp):
            X, y, _ = data(cfg)
            return {"X": X, "y": y, "learning_rate": 1e-2, "reg": 1e-3, "num_iters": 5,
                    "batch_size": 3, "verbose": False}

        def tr_call(a, klass=klass):
            model = klass(seed=0)
            hist = model.train(**a)
            return hist, model.W
        add(f"fastnn.classifiers.{cls}.train", tr_make, tr_call,
            [A("X", d_free=True), L("y", num_classes=False, huge=ERROR),
             F("learning_rate", minimum=0.0, min_excl=True), F("reg", minimum=0.0),
             I("num_iters", minimum=0, huge=SKIP), I("batch_size"), B("verbose")], rtol=1e-3)

        def fitted(cfg, klass=klass):
            X, y, r = data(cfg)
            model = klass(seed=0)
            model.train(X, y, num_iters=3, batch_size=2)
            return model, r

        def pr_make(cfg, tmp, fitted=fitted):
            model, r = fitted(cfg)
            return {"_self": model, "X": randn(r, (cfg["n"], cfg["d"]), cfg["dtype"])}
        add(f"fastnn.classifiers.{cls}.predict", pr_make, method("predict", "X"),
            [A("X", n_free=True, empty=ANY)])

        def lo_make(cfg, tmp, fitted=fitted):
            model, r = fitted(cfg)
            return {"_self": model, "X_batch": randn(r, (cfg["n"], cfg["d"]), cfg["dtype"]),
                    "y_batch": labels(r, cfg["n"], model.W.shape[1]), "reg": 0.1}
        add(f"fastnn.classifiers.{cls}.loss", lo_make,
            method("loss", "X_batch", "y_batch", "reg"),
            [A("X_batch"), L("y_batch"), F("reg", minimum=0.0)],
            num_classes=lambda a: a["_self"].W.shape[1], rtol=1e-4)

    def lc_make(cfg, tmp):
        return {"regularization": "elasticnet", "l1_ratio": 0.5, "seed": 1}

    def lc_call(a):
        model = Cl.LinearSVM(**a)
        X = np.arange(12.0).reshape(6, 2)
        model.train(X, np.arange(6) % 2, num_iters=2, batch_size=2)
        return model.W
    add("fastnn.classifiers.LinearClassifier", lc_make, lc_call,
        [C("regularization", ("l2", "l1", "elasticnet")),
         F("l1_ratio", minimum=0.0, maximum=1.0), I("seed", minimum=0, huge=ANY, none=ANY, list=ANY)],
        st.fixed_dictionaries({"seed": st.integers(0, 10)}))

    def params_of(model):
        return dict(model.params)

    WS = F("weight_scale", minimum=0.0, str=ERROR)
    add("fastnn.classifiers.TwoLayerNet",
        lambda cfg, tmp: {"input_dim": cfg["d"], "hidden_dim": 3, "num_classes": cfg["c"],
                          "weight_scale": 1e-2, "reg": 0.1, "dtype": np.float64},
        lambda a: params_of(Cl.TwoLayerNet(**a)),
        [I("input_dim"), I("hidden_dim"), I("num_classes"), WS, F("reg", minimum=0.0),
         Arg("dtype", "dtype")])
    add("fastnn.classifiers.FullyConnectedNet",
        lambda cfg, tmp: {"hidden_dims": [3, 4], "input_dim": cfg["d"], "num_classes": cfg["c"],
                          "dropout_keep_ratio": 0.5, "normalization": "batchnorm", "reg": 0.1,
                          "weight_scale": 1e-2, "dtype": np.float64, "seed": 1},
        lambda a: params_of(Cl.FullyConnectedNet(**a)),
        [Arg("hidden_dims", "intseq"), I("input_dim"), I("num_classes"),
         F("dropout_keep_ratio", minimum=0.0, min_excl=True, maximum=1.0),
         C("normalization", ("batchnorm", "layernorm"), none=ANY), F("reg", minimum=0.0), WS,
         Arg("dtype", "dtype"), I("seed", minimum=0, maximum=2**32 - 1, none=ANY, list=ANY)])

    def net_loss(cls_name):
        def make(cfg, tmp):
            r = rng_of(cfg)
            if cls_name == "TwoLayerNet":
                model = Cl.TwoLayerNet(input_dim=2 * cfg["d"], hidden_dim=4,
                                       num_classes=cfg["c"], dtype=cfg["dtype"])
            else:
                model = Cl.FullyConnectedNet([4, 3], input_dim=2 * cfg["d"], num_classes=cfg["c"],
                                             dropout_keep_ratio=0.7, normalization="batchnorm",
                                             dtype=cfg["dtype"], seed=2)
                model.dropout_param["seed"] = 5
            return {"_self": model, "X": randn(r, (cfg["n"], 2, cfg["d"]), cfg["dtype"]),
                    "y": labels(r, cfg["n"], cfg["c"])}

        def call(a):
            model = a["_self"]
            saved = [dict(p) for p in getattr(model, "bn_params", [])]
            try:
                return model.loss(a["X"], a["y"])
            finally:  # the running averages must not leak into the next (mutated) call
                for p, s in zip(getattr(model, "bn_params", []), saved):
                    p.clear()
                    p.update(s)
        add(f"fastnn.classifiers.{cls_name}.loss", make, call,
            [A("X", finite=False), L("y", **{"None": ANY})],
            num_classes=lambda a: a["_self"].num_classes, rtol=1e-3)
    net_loss("TwoLayerNet")
    net_loss("FullyConnectedNet")

    # convolutional nets: images (N, 1, 4, 4) -> c classes
    add("fastnn.classifiers.ThreeLayerConvNet",
        lambda cfg, tmp: {"input_dim": [1, 4, 4], "num_filters": 2, "filter_size": 3,
                          "hidden_dim": 3, "num_classes": cfg["c"], "weight_scale": 1e-2,
                          "reg": 0.1, "dtype": np.float64},
        lambda a: params_of(Cl.ThreeLayerConvNet(**a)),
        [Arg("input_dim", "intseq"), I("num_filters"), I("filter_size"), I("hidden_dim"),
         I("num_classes"), WS, F("reg", minimum=0.0), Arg("dtype", "dtype")])
    add("fastnn.classifiers.ConvNet",
        lambda cfg, tmp: {"spec": f"conv2-bn-relu-pool,fc3-relu,fc{cfg['c']}",
                          "input_dim": [1, 4, 4], "num_classes": cfg["c"], "reg": 0.1,
                          "weight_scale": 1e-2, "dtype": np.float64, "seed": 1},
        lambda a: params_of(Cl.ConvNet(**a)),
        [Arg("input_dim", "intseq"), I("num_classes", huge=ERROR),
         F("reg", minimum=0.0), F("weight_scale", minimum=0.0, str=ERROR),
         Arg("dtype", "dtype"), I("seed", minimum=0, none=ANY, huge=ANY, list=ERROR)])

    def conv_net_loss(cls_name):
        def make(cfg, tmp):
            r = rng_of(cfg)
            if cls_name == "ThreeLayerConvNet":
                model = Cl.ThreeLayerConvNet(input_dim=(1, 4, 4), num_filters=2, filter_size=3,
                                             hidden_dim=3, num_classes=cfg["c"],
                                             dtype=cfg["dtype"])
            else:
                model = Cl.ConvNet(f"conv2-bn-relu-pool,fc3-relu,fc{cfg['c']}",
                                   input_dim=(1, 4, 4), num_classes=cfg["c"],
                                   dtype=cfg["dtype"], seed=2)
            return {"_self": model, "X": randn(r, (cfg["n"], 1, 4, 4), cfg["dtype"]),
                    "y": labels(r, cfg["n"], cfg["c"])}

        def call(a):
            model = a["_self"]
            state = model.get_state() if hasattr(model, "get_state") else {}
            try:
                return model.loss(a["X"], a["y"])
            finally:  # the running averages must not leak into the next (mutated) call
                if state:
                    model.set_state(state)
        add(f"fastnn.classifiers.{cls_name}.loss", make, call,
            [A("X", finite=False), L("y", **{"None": ANY})],
            num_classes=lambda a: a["_self"].num_classes, rtol=1e-3)
    conv_net_loss("ThreeLayerConvNet")
    conv_net_loss("ConvNet")


# ===================================================================== fastnn.preprocessing
def _build_preprocessing():
    from fastnn import preprocessing as Pp

    def X(cfg, extra=4):
        r = rng_of(cfg)
        return randn(r, (cfg["n"] + extra, cfg["d"]), cfg["dtype"]) * 3 + 1, r

    def fitted_attrs(obj):
        return {k: v for k, v in vars(obj).items()}

    classes = {
        "MeanSubtraction": lambda: Pp.MeanSubtraction(),
        "StandardScaler": lambda: Pp.StandardScaler(),
        "MinMaxScaler": lambda: Pp.MinMaxScaler(),
        "PCA": lambda: Pp.PCA(n_components=2, whiten=True),
        "ZCAWhitening": lambda: Pp.ZCAWhitening(),
    }
    for name, build in classes.items():
        add(f"fastnn.preprocessing.{name}.fit", lambda cfg, tmp: {"X": X(cfg)[0]},
            lambda a, build=build: fitted_attrs(build().fit(a["X"])),
            [A("X", n_free=True, d_free=True, extra_dim=ANY)], rtol=1e-4)

        def tmake(cfg, tmp, build=build):
            Xf, r = X(cfg)
            obj = build().fit(Xf)
            return {"_self": obj, "X": randn(r, (cfg["n"], cfg["d"]), cfg["dtype"])}
        add(f"fastnn.preprocessing.{name}.transform", tmake, method("transform", "X"),
            [A("X", n_free=True, empty=ANY)], rtol=1e-4)
        if name != "ZCAWhitening":
            argname = "Z" if name == "PCA" else "X"

            def imake(cfg, tmp, build=build, argname=argname):
                Xf, _ = X(cfg)
                obj = build().fit(Xf)
                return {"_self": obj, argname: obj.transform(Xf[: cfg["n"]])}
            add(f"fastnn.preprocessing.{name}.inverse_transform", imake,
                method("inverse_transform", argname), [A(argname, n_free=True, empty=ANY)],
                rtol=1e-4)
    const = st.fixed_dictionaries({"seed": st.integers(0, 10)})
    add("fastnn.preprocessing.StandardScaler", lambda cfg, tmp: {"eps": 1e-8},
        lambda a: fitted_attrs(Pp.StandardScaler(**a)), [F("eps", minimum=0.0)], const)
    add("fastnn.preprocessing.MinMaxScaler", lambda cfg, tmp: {"feature_range": (-1.0, 2.0)},
        lambda a: fitted_attrs(Pp.MinMaxScaler(**a)), [Arg("feature_range", "pair")], const)
    add("fastnn.preprocessing.PCA",
        lambda cfg, tmp: {"n_components": 2, "whiten": False, "epsilon": 1e-5},
        lambda a: fitted_attrs(Pp.PCA(**a)),
        [I("n_components", none=ANY, huge=ANY), B("whiten"), F("epsilon", minimum=0.0)], const)
    add("fastnn.preprocessing.ZCAWhitening", lambda cfg, tmp: {"epsilon": 1e-5},
        lambda a: fitted_attrs(Pp.ZCAWhitening(**a)), [F("epsilon", minimum=0.0)], const)
    add("fastnn.preprocessing.add_bias_column", lambda cfg, tmp: {"X": X(cfg, 0)[0]},
        kw(Pp.add_bias_column, "X"),
        [A("X", n_free=True, d_free=True, empty=ANY, extra_dim=ANY, finite=False)])


# ========================================================================== fastnn.features
def _build_features():
    from fastnn import features as Fe

    cfg_img = base_config(h=st.integers(6, 10), w=st.integers(6, 10), p=st.integers(2, 3))

    def image(cfg):
        r = rng_of(cfg)
        return r.uniform(0, 255, (cfg["h"], cfg["w"], 3)).astype(cfg["dtype"]), r

    add("fastnn.features.hog_feature",
        lambda cfg, tmp: {"im": image(cfg)[0], "pixels_per_cell": cfg["p"], "orientations": 9},
        kw(Fe.hog_feature, "im", "pixels_per_cell", "orientations"),
        [A("im", wrong_size_last=ANY, wrong_size_first=ANY, drop_dim=ANY), I("pixels_per_cell"),
         I("orientations")], cfg_img, rtol=1e-4)
    add("fastnn.features.hog_features",
        lambda cfg, tmp: {"images": np.stack([image({**cfg, "seed": cfg["seed"] + i})[0]
                                              for i in range(cfg["n"])]),
                          "pixels_per_cell": cfg["p"], "orientations": 9, "impl": "compiled"},
        kw(Fe.hog_features, "images", "pixels_per_cell", "orientations", "impl"),
        [A("images", wrong_size_last=ANY, wrong_size_first=ANY, drop_dim=ANY),
         I("pixels_per_cell"), I("orientations"),
         C("impl", ("naive", "vectorized", "compiled"), none=SAME)], cfg_img, rtol=1e-4)
    add("fastnn.features.color_histogram_hsv",
        lambda cfg, tmp: {"im": image(cfg)[0], "nbin": 10, "xmin": 0.0, "xmax": 255.0,
                          "normalized": True},
        kw(Fe.color_histogram_hsv, "im", "nbin", "xmin", "xmax", "normalized"),
        [A("im", wrong_size_first=ANY, negative=ERROR), I("nbin"), F("xmin", huge=ERROR),
         F("xmax", minimum=0.0, min_excl=True), B("normalized")], cfg_img, rtol=1e-4)
    add("fastnn.features.rgb2gray", lambda cfg, tmp: {"rgb": image(cfg)[0]},
        kw(Fe.rgb2gray, "rgb"),
        [A("rgb", free=True, finite=False, wrong_size_last=ANY, drop_dim=ANY, **{"0-d": ERROR})],
        cfg_img, rtol=1e-4)

    def ex_make(cfg, tmp):
        r = rng_of(cfg)
        imgs = r.uniform(0, 255, (cfg["n"], cfg["h"], cfg["w"], 3)).astype(cfg["dtype"])
        return {"imgs": imgs,
                "feature_fns": [functools.partial(Fe.hog_feature, pixels_per_cell=cfg["p"]),
                                Fe.color_histogram_hsv],
                "verbose": False}
    add("fastnn.features.extract_features", ex_make,
        kw(Fe.extract_features, "imgs", "feature_fns", "verbose"),
        [A("imgs", wrong_size_first=ANY, drop_dim=ANY, wrong_size_last=ERROR),
         Arg("feature_fns", "fnlist"), B("verbose")], cfg_img, rtol=1e-4)


# ==================================================================== fastnn.gradient_check
def _square_sum(x):
    return float(np.sum(np.asarray(x, dtype=np.float64) ** 2))


def _double(x):
    return np.asarray(x) * 2.0


def _build_gradient_check():
    from fastnn import gradient_check as G

    # x is perturbed in place: a float x must be writeable; integer/bool x is differentiated as a
    # float64 copy (issue 7: it used to be truncated to integer steps), so it is valid input
    GX = {"free": True, "finite": False, "list": ANY, "readonly": ERROR, "int8": ANY,
          "uint64": ANY, "bool": ANY, "float16": ANY, "complex": ANY, "object": ANY,
          "other_float": ANY}  # float32 differences are inaccurate by nature (docstring: float64)
    H = F("h", minimum=0.0, min_excl=True, negative=ANY)
    gcfg = base_config(dtype=st.just("float64"))

    def x_of(cfg):
        r = rng_of(cfg)
        return randn(r, (cfg["n"], cfg["d"]), "float64"), r

    add("fastnn.gradient_check.eval_numerical_gradient",
        lambda cfg, tmp: {"f": _square_sum, "x": x_of(cfg)[0], "verbose": False, "h": 1e-5},
        kw(G.eval_numerical_gradient, "f", "x", "verbose", "h"),
        [Arg("f", "callable"), A("x", **GX), B("verbose"), H], gcfg, rtol=1e-4)

    def arr_make(cfg, tmp):
        x, r = x_of(cfg)
        return {"f": _double, "x": x, "df": randn(r, x.shape, "float64"), "h": 1e-5}
    add("fastnn.gradient_check.eval_numerical_gradient_array", arr_make,
        kw(G.eval_numerical_gradient_array, "f", "x", "df", "h"),
        [Arg("f", "callable"), A("x", **GX), A("df", finite=False), H], gcfg, rtol=1e-4)

    def sparse_make(cfg, tmp):
        x, _ = x_of(cfg)
        return {"f": _square_sum, "x": x, "analytic_grad": 2 * x, "num_checks": 4, "h": 1e-5,
                "seed": 0, "verbose": False}
    add("fastnn.gradient_check.grad_check_sparse", sparse_make,
        kw(G.grad_check_sparse, "f", "x", "analytic_grad", "num_checks", "h", "seed", "verbose"),
        [Arg("f", "callable"),
         A("x", **{**GX, "0-d": ANY, "empty": ERROR, "extra_dim": ERROR, "drop_dim": ERROR,
                   "wrong_size_last": ERROR, "wrong_size_first": ERROR}),
         A("analytic_grad", finite=False), I("num_checks", minimum=0), H,
         I("seed", minimum=0, huge=ANY, none=ANY, list=ANY), B("verbose")], gcfg, rtol=1e-4)

    # The documented use (API.md): f is a closure that reads the caller's array x itself, so x
    # must be perturbed in place. An x that cannot be (an integer/bool array differentiated as a
    # copy, a list) would silently give zero gradients: invalid here.
    GXC = {**GX, "int8": ERROR, "uint64": ERROR, "bool": ERROR, "list": ERROR, "object": ERROR}

    def closure_call(func, *names):
        def call(a):
            x = a["x"]
            def f(_):
                return float(np.sum(np.asarray(x, dtype=np.float64) ** 2))
            def f_arr(_):
                return np.asarray(x, dtype=np.float64) * 2.0
            chosen = f_arr if func is G.eval_numerical_gradient_array else f
            return func(chosen, x, **{n: a[n] for n in names})
        return call

    add("fastnn.gradient_check.eval_numerical_gradient[closure]",
        lambda cfg, tmp: {"x": x_of(cfg)[0], "verbose": False, "h": 1e-5},
        closure_call(G.eval_numerical_gradient, "verbose", "h"), [A("x", **GXC)], gcfg, rtol=1e-4)
    add("fastnn.gradient_check.eval_numerical_gradient_array[closure]",
        lambda cfg, tmp: {"x": x_of(cfg)[0], "df": np.ones((cfg["n"], cfg["d"])), "h": 1e-5},
        closure_call(G.eval_numerical_gradient_array, "df", "h"),
        [A("x", **{**GXC, "empty": ERROR, "extra_dim": ERROR, "drop_dim": ERROR,
                   "wrong_size_last": ERROR, "wrong_size_first": ERROR, "0-d": ERROR})],
        gcfg, rtol=1e-4)
    add("fastnn.gradient_check.grad_check_sparse[closure]",
        lambda cfg, tmp: {"x": (x := x_of(cfg)[0]), "analytic_grad": 2 * x, "num_checks": 4,
                          "h": 1e-5, "seed": 0, "verbose": False},
        closure_call(G.grad_check_sparse, "analytic_grad", "num_checks", "h", "seed", "verbose"),
        [A("x", **{**GXC, "0-d": ANY, "empty": ERROR, "extra_dim": ERROR, "drop_dim": ERROR,
                   "wrong_size_last": ERROR, "wrong_size_first": ERROR})], gcfg, rtol=1e-4)

    def rel_make(cfg, tmp):
        r = rng_of(cfg)
        return {"x": randn(r, (cfg["n"], cfg["d"]), cfg["dtype"]),
                "y": randn(r, (cfg["n"], cfg["d"]), cfg["dtype"])}
    add("fastnn.gradient_check.rel_error", rel_make, kw(G.rel_error, "x", "y"),
        [A("x", finite=False, **{"0-d": ANY}), A("y", finite=False, **{"0-d": ANY})], rtol=1e-4)


# ==================================================================== fastnn.model_selection
def _build_model_selection():
    from fastnn import model_selection as Ms

    add("fastnn.model_selection.k_fold_split",
        lambda cfg, tmp: {"n": cfg["n"] + 5, "num_folds": 3, "shuffle": True, "seed": 4},
        lambda a: [list(map(np.asarray, s)) for s in Ms.k_fold_split(
            a["n"], a["num_folds"], shuffle=a["shuffle"], seed=a["seed"])],
        [I("n", minimum=2), I("num_folds", minimum=2), B("shuffle"),
         I("seed", minimum=0, huge=ANY, none=ANY, list=ANY)])

    def cv_make(cfg, tmp):
        r = rng_of(cfg)
        n = cfg["n"] + 9
        return {"X": randn(r, (n, cfg["d"]), cfg["dtype"]), "y": labels(r, n, cfg["c"]),
                "k_choices": [1, 3], "num_folds": 3, "metric": "l2", "shuffle": False,
                "seed": None, "show_progress": False}

    add("fastnn.model_selection.cross_validate_knn", cv_make,
        lambda a: Ms.cross_validate_knn(a.pop("X"), a.pop("y"), **a).scores,
        [A("X", d_free=True), L("y", num_classes=False), Arg("k_choices", "intseq"),
         I("num_folds", minimum=2), C("metric", ("l2", "l1")), B("shuffle"),
         I("seed", minimum=0, huge=ANY, none=ANY, list=ANY), B("show_progress")])


# ======================================================================= fastnn.solver, metrics
def _build_solver():
    from fastnn import metrics as Me
    from fastnn import solver as So
    from fastnn.classifiers import TwoLayerNet

    def data(cfg):
        r, t, c = rng_of(cfg), cfg["dtype"], cfg["c"]
        n = cfg["n"] + 6
        return {"X_train": randn(r, (n, cfg["d"]), t), "y_train": labels(r, n, c),
                "X_val": randn(r, (4, cfg["d"]), t), "y_val": labels(r, 4, c)}

    def model(cfg):
        return TwoLayerNet(input_dim=cfg["d"], hidden_dim=4, num_classes=cfg["c"],
                           dtype=cfg["dtype"])

    def make(cfg, tmp):
        return {"_model": model(cfg), "data": data(cfg), "update_rule": "adam",
                "optim_config": {"learning_rate": 1e-2}, "lr_decay": 0.9, "batch_size": 3,
                "num_epochs": 2, "num_train_samples": 5, "num_val_samples": None,
                "print_every": 2, "verbose": False, "seed": 3}

    def call(a):
        kwargs = {k: v for k, v in a.items() if k not in ("_model", "data")}
        solver = So.Solver(a["_model"], a["data"], **kwargs)
        solver.train()
        return solver.loss_history, solver.train_acc_history, solver.val_acc_history

    DATA = D("data", {"X_train": A("X_train", n_free=True), "y_train": L("y_train"),
                      "X_val": A("X_val", n_free=True, empty=ANY), "y_val": L("y_val")},
             required=("X_train", "y_train", "X_val", "y_val"))
    add("fastnn.solver.Solver", make, call,
        [DATA, C("update_rule", ("sgd", "sgd_momentum", "nesterov_momentum", "adagrad", "rmsprop",
                                 "adam")),
         D("optim_config", {"learning_rate": F("learning_rate", minimum=0.0)}),
         F("lr_decay", minimum=0.0, min_excl=True), I("batch_size"),
         I("num_epochs", minimum=0, huge=SKIP), I("num_train_samples", huge=ANY, none=ANY),
         I("num_val_samples", huge=ANY, none=ANY), I("print_every", huge=ANY), B("verbose"),
         I("seed", minimum=0, maximum=2**32 - 1, none=ANY)],
        num_classes=lambda a: a["_model"].num_classes, rtol=1e-3)

    def acc_make(cfg, tmp):
        d = data(cfg)
        solver = So.Solver(model(cfg), d, num_epochs=0, verbose=False, seed=1)
        return {"_self": solver, "X": d["X_val"], "y": d["y_val"], "num_samples": None,
                "batch_size": 2}
    add("fastnn.solver.Solver.check_accuracy", acc_make,
        method("check_accuracy", "X", "y", "num_samples", "batch_size"),
        [A("X", wrong_size_last=ERROR), L("y", num_classes=False),
         I("num_samples", none=ANY, huge=ANY), I("batch_size", huge=ANY)])

    def m_make(cfg, tmp):
        r = rng_of(cfg)
        return {"y_true": labels(r, cfg["n"] + 3, cfg["c"]),
                "y_pred": labels(r, cfg["n"] + 3, cfg["c"])}
    add("fastnn.metrics.accuracy", m_make, kw(Me.accuracy, "y_true", "y_pred"),
        [L("y_true", num_classes=False), L("y_pred", num_classes=False)])


# ===================================================== damaged files (serialization, data)
def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path, rng) -> None:
    path.write_bytes(rng.integers(0, 256, max(64, path.stat().st_size // 4),
                                  dtype=np.uint8).tobytes())


def _rewrite_npz(path: Path, edit) -> None:
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    edit(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _edit_header(edit):
    def e(arrays):
        header = json.loads(str(arrays["__fastnn__"]))
        edit(header)
        arrays["__fastnn__"] = np.array(json.dumps(header))
    return e


def _set(d, keys, value):
    for k in keys[:-1]:
        d = d[k]
    d[keys[-1]] = value


MODEL_DAMAGES = {
    "missing": lambda p, r: p.unlink(),
    "empty": lambda p, r: p.write_bytes(b""),
    "truncated": lambda p, r: _truncate(p),
    "garbage": _garbage,
    "directory": lambda p, r: (p.unlink(), p.mkdir()),
    "no_header": lambda p, r: _rewrite_npz(p, lambda a: a.pop("__fastnn__")),
    "header_not_json": lambda p, r: _rewrite_npz(
        p, lambda a: a.__setitem__("__fastnn__", np.array("{not json"))),
    "header_list": lambda p, r: _rewrite_npz(
        p, lambda a: a.__setitem__("__fastnn__", np.array("[1, 2]"))),
    "header_2d": lambda p, r: _rewrite_npz(
        p, lambda a: a.__setitem__("__fastnn__", np.zeros((2, 2)))),
    "version_string": lambda p, r: _rewrite_npz(p, _edit_header(
        lambda h: h.__setitem__("version", "1"))),
    "version_newer": lambda p, r: _rewrite_npz(p, _edit_header(
        lambda h: h.__setitem__("version", 99))),
    "model_not_dict": lambda p, r: _rewrite_npz(p, _edit_header(
        lambda h: h.__setitem__("model", [1]))),
    "class_unknown": lambda p, r: _rewrite_npz(p, _edit_header(
        lambda h: _set(h, ["model", "class"], "os.system"))),
    "class_int": lambda p, r: _rewrite_npz(p, _edit_header(
        lambda h: _set(h, ["model", "class"], 3))),
    "config_list": lambda p, r: _rewrite_npz(p, _edit_header(
        lambda h: _set(h, ["model", "config"], [1, 2]))),
    "config_negative_dim": lambda p, r: _rewrite_npz(p, _edit_header(
        lambda h: _set(h, ["model", "config", "hidden_dim"], -1))),
    "config_huge_dim": lambda p, r: _rewrite_npz(p, _edit_header(
        lambda h: _set(h, ["model", "config", "input_dim"], HUGE))),
    "config_unknown_key": lambda p, r: _rewrite_npz(p, _edit_header(
        lambda h: _set(h, ["model", "config", "bogus"], 1))),
    "param_missing": lambda p, r: _rewrite_npz(p, lambda a: a.pop("params/W1")),
    "param_extra": lambda p, r: _rewrite_npz(p, lambda a: a.__setitem__("params/W9", np.ones(2))),
    "param_shape": lambda p, r: _rewrite_npz(
        p, lambda a: a.__setitem__("params/W1", np.ones((2, 2)))),
    "param_string": lambda p, r: _rewrite_npz(
        p, lambda a: a.__setitem__("params/b1", np.array(["a"] * a["params/b1"].size))),
    "param_complex": lambda p, r: _rewrite_npz(
        p, lambda a: a.__setitem__("params/b1", a["params/b1"] + 1j)),
    "param_nan": lambda p, r: _rewrite_npz(
        p, lambda a: a.__setitem__("params/b1", a["params/b1"] * np.nan)),
    "bn_bad_index": lambda p, r: _rewrite_npz(
        p, lambda a: a.__setitem__("bn_params/x/running_mean", np.ones(3))),
}


_GENERIC_DAMAGES = ("missing", "empty", "truncated", "garbage", "directory", "no_header",
                    "header_not_json", "header_list", "header_2d", "version_string",
                    "version_newer", "param_missing", "param_shape", "param_string",
                    "param_complex", "param_nan")


def _ck(keys, value):
    return lambda p, r: _rewrite_npz(p, _edit_header(lambda h: _set(h, keys, value)))


def _ck_del(keys):
    def edit(h):
        d = h
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return lambda p, r: _rewrite_npz(p, _edit_header(edit))


def _ck_array(key, value):
    return lambda p, r: _rewrite_npz(
        p, lambda a: a.__setitem__(key, value(a[key]) if callable(value) else value))


CHECKPOINT_DAMAGES = {
    **{k: MODEL_DAMAGES[k] for k in _GENERIC_DAMAGES},
    "format_model_file": _ck(["format"], "fastnn-model"),
    "state_missing": _ck_del(["state"]),
    "epoch_negative": _ck(["state", "epoch"], -1),
    "epoch_string": _ck(["state", "epoch"], "1"),
    "iteration_float": _ck(["state", "iteration"], 2.5),
    "optim_t_string": _ck(["state", "optim_configs", "W1", "t"], "3"),
    "optim_lr_nan": _ck(["state", "optim_configs", "W1", "learning_rate"], float("nan")),
    "optim_configs_list": _ck(["state", "optim_configs"], [1, 2]),
    "optim_config_missing": _ck_del(["state", "optim_configs", "W1"]),
    "history_string": _ck(["state", "history"], "x"),
    "rng_name": _ck(["state", "global_rng", "name"], "bogus"),
    "rng_state_list": _ck(["state", "rng"], [1, 2, 3]),
    "best_val_acc_string": _ck(["state", "best_val_acc"], "0.5"),
    "optim_array_shape": _ck_array("optim/W1/m", np.ones((2, 2), np.float32)),
    "optim_array_missing": lambda p, r: _rewrite_npz(p, lambda a: a.pop("optim/W1/m")),
    "optim_array_string": _ck_array("optim/W1/m", lambda v: v.astype(str)),
    "rng_keys_short": _ck_array("global_rng/keys", lambda v: v[:10]),
    "rng_keys_float": _ck_array("global_rng/keys", lambda v: v.astype(np.float64) + 0.5),
    "loss_history_2d": _ck_array("loss_history", lambda v: v[None, :]),
    "loss_history_string": _ck_array("loss_history", lambda v: v.astype(str)),
}

#: entries whose path argument names one file that the damage edits in place
FILE_DAMAGES = {
    "fastnn.serialization.load_model": MODEL_DAMAGES,
    "fastnn.solver.Solver.load_checkpoint": CHECKPOINT_DAMAGES,
}


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def _mnist_dir(root: Path, r, n=5, gz=True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    images = r.integers(0, 256, (n, 28, 28))
    labs = r.integers(0, 10, n)
    for base, arr in zip(MNIST_FILES, (images, labs)):
        data = _idx_bytes(arr)
        if gz:
            _write(root / f"{base}.gz", gzip.compress(data, mtime=0))
        else:
            _write(root / base, data)
    return root


def _idx_edit(which: int, edit):
    """Damage the raw IDX bytes of the images (0) or labels (1) file (kept gzip'ed)."""
    def d(root: Path, r):
        path = root / f"{MNIST_FILES[which]}.gz"
        data = bytearray(gzip.decompress(path.read_bytes()))
        data = edit(data, r)
        path.write_bytes(gzip.compress(bytes(data), mtime=0))
        return path
    return d


def _replace(data, offset, new):
    data[offset: offset + len(new)] = new
    return data


def _raw(root: Path, which: int, data: bytes) -> Path:
    (root / f"{MNIST_FILES[which]}.gz").unlink()
    path = root / MNIST_FILES[which]
    path.write_bytes(data)
    return path


MNIST_DAMAGES = {
    "dir_missing": lambda root, r: (root / "nowhere"),
    "images_missing": lambda root, r: ((root / f"{MNIST_FILES[0]}.gz").unlink(),
                                       root / MNIST_FILES[0])[1],
    "labels_empty": lambda root, r: (_write(root / f"{MNIST_FILES[1]}.gz", b""),
                                     root / MNIST_FILES[1])[1],
    "images_truncated_gz": lambda root, r: (_truncate(root / f"{MNIST_FILES[0]}.gz"),
                                            root / MNIST_FILES[0])[1],
    "images_garbage": lambda root, r: (_garbage(root / f"{MNIST_FILES[0]}.gz", r),
                                       root / MNIST_FILES[0])[1],
    "images_bad_magic": _idx_edit(0, lambda d, r: _replace(d, 0, b"\x12\x34")),
    "images_wrong_type": _idx_edit(0, lambda d, r: _replace(d, 2, b"\x0d")),
    "images_wrong_rank": _idx_edit(0, lambda d, r: _replace(d, 3, b"\x02")),
    "images_huge_dims": _idx_edit(0, lambda d, r: _replace(d, 4, struct.pack(">I", 2**31))),
    "images_zero_dims": _idx_edit(0, lambda d, r: _replace(d, 4, struct.pack(">I", 0))),
    "images_trailing": _idx_edit(0, lambda d, r: d + b"\x00\x01"),
    "images_truncated": _idx_edit(0, lambda d, r: d[:-100]),
    "labels_count_mismatch": _idx_edit(1, lambda d, r: _replace(d, 4, struct.pack(">I", 4))[:-1]),
    "labels_out_of_range": _idx_edit(1, lambda d, r: _replace(d, 8, b"\xc8")),
    "labels_huge_raw": lambda root, r: _raw(
        root, 1, struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", 2**32 - 1) + b"\x00" * 5),
    "images_2gb_gz": lambda root, r: (
        _write(root / f"{MNIST_FILES[0]}.gz", gzip.compress(
            struct.pack(">HBB", 0, 8, 3) + struct.pack(">3I", 2**20, 2**10, 2**10), mtime=0)),
        root / MNIST_FILES[0])[1],
}


def _cifar_batch(r, n=3, labels_=None) -> dict:
    return {b"batch_label": b"x", b"data": r.integers(0, 256, (n, 3072)).astype(np.uint8),
            b"labels": list(map(int, r.integers(0, 10, n))) if labels_ is None else labels_,
            b"filenames": [b"f"] * n}


CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _cifar_dir(root: Path, r) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in CIFAR_FILES:
        _write(root / name, pickle.dumps(_cifar_batch(r), protocol=2))
    return root


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def _cifar_put(obj, name="data_batch_3"):
    def d(root: Path, r):
        path = root / name
        path.write_bytes(obj(r) if callable(obj) else obj)
        return path
    return d


def _batch_with(**changes):
    def make(r):
        b = _cifar_batch(r)
        for k, v in changes.items():
            b[k.encode()] = v(r) if callable(v) else v
            if v is None:
                del b[k.encode()]
        return pickle.dumps(b, protocol=2)
    return make


CIFAR_DAMAGES = {
    "dir_missing": lambda root, r: root / "nowhere",
    "batch_missing": lambda root, r: ((root / "data_batch_2").unlink(), root / "data_batch_2")[1],
    "test_missing": lambda root, r: ((root / "test_batch").unlink(), root / "test_batch")[1],
    "batch_empty": _cifar_put(b"", "data_batch_1"),
    "batch_truncated": lambda root, r: (_truncate(root / "data_batch_4"),
                                        root / "data_batch_4")[1],
    "batch_garbage": lambda root, r: (_garbage(root / "test_batch", r), root / "test_batch")[1],
    "batch_is_dir": lambda root, r: ((root / "data_batch_5").unlink(),
                                     (root / "data_batch_5").mkdir(), root / "data_batch_5")[2],
    "not_a_dict": _cifar_put(pickle.dumps([1, 2, 3], protocol=2)),
    "unsafe_pickle": _cifar_put(pickle.dumps({b"data": _Evil()}, protocol=2)),
    "no_data": _cifar_put(_batch_with(data=None)),
    "no_labels": _cifar_put(_batch_with(labels=None)),
    "data_float": _cifar_put(_batch_with(data=lambda r: np.zeros((3, 3072)))),
    "data_wrong_width": _cifar_put(_batch_with(data=lambda r: np.zeros((3, 100), np.uint8))),
    "data_1d": _cifar_put(_batch_with(data=lambda r: np.zeros(3072, np.uint8))),
    "data_list": _cifar_put(_batch_with(data=lambda r: [[0] * 3072] * 3)),
    "labels_short": _cifar_put(_batch_with(labels=[1, 2])),
    "labels_out_of_range": _cifar_put(_batch_with(labels=[1, 2, 10])),
    "labels_negative": _cifar_put(_batch_with(labels=[1, -2, 3])),
    "labels_strings": _cifar_put(_batch_with(labels=[b"a", b"b", b"c"])),
    "labels_float": _cifar_put(_batch_with(labels=[1.5, 2.0, 3.0])),
    "labels_huge": _cifar_put(_batch_with(labels=[2**70, 1, 2])),
    "labels_nested": _cifar_put(_batch_with(labels=[[1], [2], [3]])),
}


def _build_files():
    from fastnn import serialization as Se
    from fastnn.classifiers import TwoLayerNet
    from fastnn.data import cifar, mnist

    const = st.fixed_dictionaries({"seed": st.integers(0, 2**16)})

    def model_make(cfg, tmp):
        np.random.seed(cfg["seed"])
        path = Se.save_model(tmp / "model.npz", TwoLayerNet(input_dim=4, hidden_dim=3,
                                                           num_classes=2))
        return {"path": path}

    add("fastnn.serialization.load_model", model_make,
        lambda a: dict(Se.load_model(a["path"]).params),
        [P("path", MODEL_DAMAGES, **{"damage:param_nan": ANY,
                                     "damage:config_unknown_key": ERROR})], const)

    def mn_make(cfg, tmp):
        return {"root": _mnist_dir(tmp / "mnist", rng_of(cfg)), "kind": "train"}
    add("fastnn.data.load_mnist", mn_make, kw(mnist.load_mnist, "root", "kind"),
        [P("root", MNIST_DAMAGES, **{"damage:images_zero_dims": ERROR}),
         C("kind", ("train", "t10k", "test"))], const)

    def idx_make(cfg, tmp):
        root = _mnist_dir(tmp / "mnist", rng_of(cfg), gz=cfg["seed"] % 2 == 0)
        name = MNIST_FILES[0] + (".gz" if cfg["seed"] % 2 == 0 else "")
        return {"path": root / name, "expected_ndim": 3}
    add("fastnn.data.read_idx", idx_make, kw(mnist.read_idx, "path", "expected_ndim"),
        [P("path", ()), I("expected_ndim", none=SAME, huge=ERROR)], const)

    def cf_make(cfg, tmp):
        return {"root": _cifar_dir(tmp / "cifar-10-batches-py", rng_of(cfg))}
    add("fastnn.data.load_CIFAR10", cf_make, kw(cifar.load_CIFAR10, "root"),
        [P("root", CIFAR_DAMAGES)], const)
    add("fastnn.data.load_CIFAR_batch",
        lambda cfg, tmp: {"filename": cf_make(cfg, tmp)["root"] / "data_batch_1"},
        kw(cifar.load_CIFAR_batch, "filename"), [P("filename", ())], const)

    def gc_make(cfg, tmp):
        return {"num_training": 10, "num_validation": 3, "num_test": 2, "subtract_mean": True,
                "root": cf_make(cfg, tmp)["root"]}
    add("fastnn.data.get_CIFAR10_data", gc_make,
        kw(cifar.get_CIFAR10_data, "num_training", "num_validation", "num_test",
           "subtract_mean", "root"),
        [I("num_training"), I("num_validation", minimum=0), I("num_test", minimum=0),
         B("subtract_mean"), P("root", (), **{"None": SKIP})], const)

    from fastnn.solver import Solver

    def solver_for(cfg):
        r = rng_of(cfg)
        data = {"X_train": randn(r, (10, 3), "float64"), "y_train": np.arange(10) % 2,
                "X_val": randn(r, (4, 3), "float64"), "y_val": np.arange(4) % 2}
        model = TwoLayerNet(input_dim=3, hidden_dim=4, num_classes=2)
        return Solver(model, data, update_rule="adam", num_epochs=1, batch_size=3,
                      verbose=False, seed=1)

    def ck_make(cfg, tmp):
        np.random.seed(cfg["seed"])
        trained = solver_for(cfg)
        trained.train()
        path = trained.save_checkpoint(tmp / "checkpoint.npz")
        return {"_self": solver_for(cfg), "path": path}

    def ck_call(a):
        solver = a["_self"]
        solver.load_checkpoint(a["path"])
        return (solver.loss_history, solver.epoch, dict(solver.model.params),
                solver.best_val_acc)

    add("fastnn.solver.Solver.load_checkpoint", ck_make, ck_call,
        [P("path", CHECKPOINT_DAMAGES, **{"damage:param_nan": ANY})], const)


def damage(entry: Entry, arg: Arg, name: str, args: dict, rng) -> tuple[dict, list[str]]:
    """Apply the file damage ``name`` to the valid arguments; returns (arguments, names the error
    message may use: the damaged file, its folder)."""
    path = Path(args[arg.name])
    if entry.name in FILE_DAMAGES:
        FILE_DAMAGES[entry.name][name](path, rng)
        return args, [path.name, str(path)]
    table = MNIST_DAMAGES if "mnist" in entry.name else CIFAR_DAMAGES
    target = table[name](path, rng)
    new = dict(args)
    if name == "dir_missing":
        new[arg.name] = target
    return new, [Path(target).name, str(target)]


_BUILT = False


# ===================================================== fastnn.data.augment, fastnn.visualize
def _build_augment():
    from fastnn import visualize as V
    from fastnn.data import augment as Au

    def batch(**extra):
        def m(cfg, tmp):
            r = rng_of(cfg)
            return {"x": randn(r, (cfg["n"], cfg["c"], cfg["d"] + 2, 5), cfg["dtype"]),
                    "rng": cfg["seed"], **extra}
        return m

    # any batch shape (N, C, H, W) is valid; NaN passes through; the seed decides everything
    XB = A("x", finite=False, n_free=True, d_free=True, empty=ANY)
    RNG = I("rng", minimum=0, none=ANY, huge=ANY)
    add("fastnn.data.augment.random_flip", batch(p=0.5), kw(Au.random_flip, "x", "rng", "p"),
        [XB, RNG, F("p", minimum=0.0, maximum=1.0)])
    add("fastnn.data.augment.random_crop", batch(padding=2),
        kw(Au.random_crop, "x", "rng", "padding"), [XB, RNG, I("padding", minimum=0)])
    # a square larger than the image is valid: it zeroes the whole image
    add("fastnn.data.augment.cutout", batch(size=2), kw(Au.cutout, "x", "rng", "size"),
        [XB, RNG, I("size", minimum=0, huge=ANY)])
    add("fastnn.data.augment.color_jitter", batch(brightness=0.2, contrast=0.3),
        kw(Au.color_jitter, "x", "rng", "brightness", "contrast"),
        [XB, RNG, F("brightness", minimum=0.0), F("contrast", minimum=0.0, maximum=1.0)])
    add("fastnn.visualize.filter_grid",
        lambda cfg, tmp: {"W": randn(rng_of(cfg), (cfg["n"], 3, 3, cfg["d"]), cfg["dtype"]),
                          "padding": 1},
        kw(V.filter_grid, "W", "padding"),
        [A("W", n_free=True, d_free=True), I("padding", minimum=0)])


# ================================================= fastnn.layers (recurrent), clipping
def _build_recurrent():
    from fastnn import layers as Lr
    from fastnn import optim as O
    from fastnn.kernels import recurrent as Kr
    from fastnn.kernels import recurrent_sequence as Ks

    # sequences: N = n, T = c, D = d, H = 3; layer inputs propagate NaN/inf
    def X(name, **kw_):
        return A(name, finite=False, **kw_)

    def seq(gates, c0=False):
        def m(cfg, tmp):
            r, t = rng_of(cfg), cfg["dtype"]
            n, steps, d, h = cfg["n"], cfg["c"], cfg["d"], 3
            a = {"x": randn(r, (n, steps, d), t), "h0": randn(r, (n, h), t),
                 "Wx": randn(r, (d, gates * h), t) * 0.5, "Wh": randn(r, (h, gates * h), t) * 0.5,
                 "b": randn(r, gates * h, t)}
            if c0:
                a["c0"] = randn(r, (n, h), t)
            return a
        return m

    SEQ = [X("x", wrong_size_first=ANY, empty=ANY), X("h0"), X("Wx"), X("Wh"), X("b")]
    add("fastnn.layers.rnn_forward", seq(1), kw(Lr.rnn_forward, "x", "h0", "Wx", "Wh", "b"), SEQ)
    add("fastnn.layers.lstm_forward", seq(4, c0=True),
        kw(Lr.lstm_forward, "x", "h0", "Wx", "Wh", "b", "c0"), [*SEQ, X("c0", **{"None": ANY})])

    def seq_cache(forward, gates):
        def m(cfg, tmp):
            a = seq(gates)(cfg, tmp)
            h, cache = forward(**a)
            return {"dh": randn(rng_of(cfg), h.shape, cfg["dtype"]), "cache": cache}
        return m

    add("fastnn.layers.rnn_backward", seq_cache(Lr.rnn_forward, 1),
        kw(Lr.rnn_backward, "dh", "cache"), [X("dh"), K()])
    add("fastnn.layers.lstm_backward", seq_cache(Lr.lstm_forward, 4),
        kw(Lr.lstm_backward, "dh", "cache"), [X("dh"), K()])
    add("fastnn.layers.lstm_last_state", seq_cache(Lr.lstm_forward, 4),
        kw(Lr.lstm_last_state, "cache"), [K(arrays_short=ANY)])
    add("fastnn.layers.rnn_last_state", seq_cache(Lr.rnn_forward, 1),
        kw(Lr.rnn_last_state, "cache"), [K(arrays_short=ANY)])

    def step(gates, c=False):
        def m(cfg, tmp):
            r, t = rng_of(cfg), cfg["dtype"]
            n, d, h = cfg["n"], cfg["d"], cfg["c"]
            a = {"x": randn(r, (n, d), t), "prev_h": randn(r, (n, h), t),
                 "Wx": randn(r, (d, gates * h), t), "Wh": randn(r, (h, gates * h), t),
                 "b": randn(r, gates * h, t)}
            if c:
                a["prev_c"] = randn(r, (n, h), t)
            return a
        return m

    STEP = [X("x", wrong_size_first=ANY, empty=ANY), X("prev_h"), X("Wx"), X("Wh"), X("b")]
    add("fastnn.layers.rnn_step_forward", step(1),
        kw(Lr.rnn_step_forward, "x", "prev_h", "Wx", "Wh", "b"), STEP)
    add("fastnn.layers.lstm_step_forward", step(4, c=True),
        kw(Lr.lstm_step_forward, "x", "prev_h", "prev_c", "Wx", "Wh", "b"), [*STEP, X("prev_c")])

    def rnn_step_cache(cfg, tmp):
        h, cache = Lr.rnn_step_forward(**step(1)(cfg, tmp))
        return {"dnext_h": randn(rng_of(cfg), h.shape, cfg["dtype"]), "cache": cache}

    def lstm_step_cache(cfg, tmp):
        h, _, cache = Lr.lstm_step_forward(**step(4, c=True)(cfg, tmp))
        r = rng_of(cfg)
        return {"dnext_h": randn(r, h.shape, cfg["dtype"]),
                "dnext_c": randn(r, h.shape, cfg["dtype"]), "cache": cache}

    add("fastnn.layers.rnn_step_backward", rnn_step_cache,
        kw(Lr.rnn_step_backward, "dnext_h", "cache"), [X("dnext_h"), K()])
    add("fastnn.layers.lstm_step_backward", lstm_step_cache,
        kw(Lr.lstm_step_backward, "dnext_h", "dnext_c", "cache"),
        [X("dnext_h"), X("dnext_c"), K()])

    # temporal layers: N = n, T = c, D = d, V = d + 2 words / classes
    def ids(r, n, steps, v):
        return r.integers(0, v, (n, steps))

    IDS = {"wrong_length": ANY, "empty": ANY, "nan": SKIP}  # any (N, T) of valid ids is valid

    def emb(cfg, tmp):
        r = rng_of(cfg)
        v = cfg["d"] + 2
        return {"x": ids(r, cfg["n"], cfg["c"], v), "W": randn(r, (v, cfg["d"]), cfg["dtype"])}

    add("fastnn.layers.word_embedding_forward", emb, kw(Lr.word_embedding_forward, "x", "W"),
        [L("x", **IDS), X("W", n_free=True, d_free=True)],
        num_classes=lambda a: np.shape(a["W"])[0])

    def emb_cache(cfg, tmp):
        out, cache = Lr.word_embedding_forward(**emb(cfg, tmp))
        return {"dout": randn(rng_of(cfg), out.shape, cfg["dtype"]), "cache": cache}

    add("fastnn.layers.word_embedding_backward", emb_cache,
        kw(Lr.word_embedding_backward, "dout", "cache"), [X("dout"), K()])

    def taff(cfg, tmp):
        r, t = rng_of(cfg), cfg["dtype"]
        n, steps, d, m = cfg["n"], cfg["c"], cfg["d"], 4
        return {"x": randn(r, (n, steps, d), t), "w": randn(r, (d, m), t), "b": randn(r, m, t)}

    add("fastnn.layers.temporal_affine_forward", taff,
        kw(Lr.temporal_affine_forward, "x", "w", "b"),
        [X("x", wrong_size_first=ANY, empty=ANY), X("w"), X("b")])

    def taff_cache(cfg, tmp):
        out, cache = Lr.temporal_affine_forward(**taff(cfg, tmp))
        return {"dout": randn(rng_of(cfg), out.shape, cfg["dtype"]), "cache": cache}

    add("fastnn.layers.temporal_affine_backward", taff_cache,
        kw(Lr.temporal_affine_backward, "dout", "cache"), [X("dout"), K()])

    def tsl(cfg, tmp):
        r = rng_of(cfg)
        n, steps, v = cfg["n"], cfg["c"], cfg["d"] + 2
        return {"x": randn(r, (n, steps, v), cfg["dtype"]), "y": ids(r, n, steps, v),
                "mask": r.random((n, steps)) > 0.3}

    add("fastnn.layers.temporal_softmax_loss", tsl,
        kw(Lr.temporal_softmax_loss, "x", "y", "mask"),
        [X("x", d_free=True), L("y", nan=SKIP),
         A("mask", int8=ANY, uint64=ANY, float16=ANY, bool=SAME, other_float=ANY)],
        num_classes=lambda a: np.shape(a["x"])[-1])

    # gradient clipping: any shapes, NaN propagates, empty gradients are fine
    G = D("grads", {k: A(k, free=True, finite=False) for k in ("W", "b")})

    def grads(cfg, tmp):
        r, t = rng_of(cfg), cfg["dtype"]
        return {"grads": {"W": randn(r, (cfg["n"], cfg["d"]), t) * 10,
                          "b": randn(r, cfg["d"], t)}, "max_norm": 1.0, "limit": 0.5}

    add("fastnn.optim.clip_by_global_norm", grads,
        kw(O.clip_by_global_norm, "grads", "max_norm"),
        [G, F("max_norm", minimum=0.0, min_excl=True)])
    add("fastnn.optim.clip_by_value", grads, kw(O.clip_by_value, "grads", "limit"),
        [G, F("limit", minimum=0.0, min_excl=True)])

    # the kernels' public entries (the compiled one; tests/kernels covers the three impls)
    IMPL = functools.partial(C, none=SAME)
    impls = ("naive", "vectorized", "compiled")

    def cell(cfg, tmp):
        r, t = rng_of(cfg), cfg["dtype"]
        n, h = cfg["n"], cfg["d"]
        return {"a": randn(r, (n, 4 * h), t), "prev_c": randn(r, (n, h), t),
                "dnext_h": randn(r, (n, h), t), "dnext_c": randn(r, (n, h), t),
                "gates": r.random((n, 4 * h)).astype(t), "tanh_c": np.tanh(randn(r, (n, h), t)),
                "next_h": np.tanh(randn(r, (n, h), t)), "impl": "compiled"}

    add("fastnn.kernels.recurrent.lstm_cell_forward", cell,
        kw(Kr.lstm_cell_forward, "a", "prev_c", "impl"),
        [X("a"), X("prev_c"), IMPL("impl", impls)])
    add("fastnn.kernels.recurrent.lstm_cell_backward", cell,
        kw(Kr.lstm_cell_backward, "dnext_h", "dnext_c", "gates", "tanh_c", "prev_c", "impl"),
        [X("dnext_h"), X("dnext_c"), X("gates"), X("tanh_c"), X("prev_c"), IMPL("impl", impls)])
    add("fastnn.kernels.recurrent.rnn_cell_forward", cell,
        kw(Kr.rnn_cell_forward, "a", "impl"),
        [X("a", wrong_size_first=ANY, wrong_size_last=ANY), IMPL("impl", impls)])
    add("fastnn.kernels.recurrent.rnn_cell_backward", cell,
        kw(Kr.rnn_cell_backward, "dnext_h", "next_h", "impl"),
        [X("dnext_h"), X("next_h"), IMPL("impl", impls)])

    def kseq(cfg, tmp):
        a = seq(4, c0=True)(cfg, tmp)
        _, hs, cs, gates, tanh_c = Ks.lstm_sequence_forward(**a)
        n, steps = a["x"].shape[:2]
        return {**a, "dh": randn(rng_of(cfg), (n, steps, 3), cfg["dtype"]),
                "hs": hs, "cs": cs, "gates": gates, "tanh_c": tanh_c, "impl": "compiled"}

    add("fastnn.kernels.recurrent_sequence.lstm_sequence_forward", kseq,
        kw(Ks.lstm_sequence_forward, "x", "h0", "c0", "Wx", "Wh", "b", "impl"),
        [X("x", wrong_size_first=ANY), X("h0"), X("c0"), X("Wx"), X("Wh"), X("b"),
         IMPL("impl", impls)])
    add("fastnn.kernels.recurrent_sequence.lstm_sequence_backward", kseq,
        kw(Ks.lstm_sequence_backward, "dh", "x", "Wx", "Wh", "hs", "cs", "gates", "tanh_c",
           "impl"),
        [X("dh"), X("x"), X("Wx"), X("Wh"), X("hs"), X("cs"), X("gates"), X("tanh_c"),
         IMPL("impl", impls)])


def _build_rnn():
    import _fuzz_rnn  # tests/ is on sys.path (see test_public_api_fuzz)

    _fuzz_rnn.build_rnn(sys.modules[__name__])


def build() -> list[Entry]:
    global _BUILT
    if not _BUILT:
        for b in (_build_layers, _build_optim, _build_kernels, _build_classifiers,
                  _build_preprocessing, _build_features, _build_gradient_check,
                  _build_model_selection, _build_solver, _build_files, _build_augment,
                  _build_recurrent):
            b()
        _build_rnn()  # the recurrent models and text/caption data (tests/_fuzz_rnn.py)
        _BUILT = True
    return ENTRIES


def _selftest_call(a):
    """Misbehaves on purpose, to test the harness (crash, hangs, unclear error)."""
    import signal
    import time

    x = a["x"]
    if x == 0:
        os.kill(os.getpid(), signal.SIGSEGV)
    if x == -1:
        time.sleep(60)
    if x == HUGE:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(60)
    if isinstance(x, str):
        raise ValueError("bad value")  # noqa: TRY004 - an unclear error on purpose
    if x is None or isinstance(x, bool):
        raise TypeError(f"x must be an integer, got {x!r}")
    return int(x) if isinstance(x, (int, np.integer)) else x


SELFTEST = Entry("selftest.harness", lambda cfg, tmp: {"x": 3}, _selftest_call, [I("x")],
                 st.fixed_dictionaries({"seed": st.just(0)}))


def by_name() -> dict[str, Entry]:
    return {**{e.name: e for e in build()}, SELFTEST.name: SELFTEST}


__all__ = ["ANY", "ERROR", "SAME", "Entry", "NotApplicable", "build", "by_name", "cases",
           "damage", "find_spec", "mutation_function"]
_ = zipfile  # (np.load raises zipfile errors for damaged archives)
