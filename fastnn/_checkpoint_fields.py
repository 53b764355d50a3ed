"""Field checks of Solver checkpoints (:mod:`fastnn.checkpoint`): every failure names the file
and the field, so a damaged checkpoint is rejected before anything is restored."""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from fastnn._npz import CheckpointError
from fastnn.optim import RULE_STATE

__all__ = ["Fields", "check_rule_state"]


class Fields:
    """Checks the fields of one checkpoint; every failure names the file and the field."""

    def __init__(self, label: str):
        self.label = label

    def fail(self, field: str, problem: str) -> CheckpointError:
        return CheckpointError(f"{self.label} is a damaged Solver checkpoint: field {field!r}: "
                               f"{problem}")

    def expect(self, ok: bool, field: str, expected: str, value: Any) -> Any:
        if not ok:
            shown = value if isinstance(value, str) else reprlib.repr(value)
            raise self.fail(field, f"expected {expected}, got {shown}")
        return value

    def mapping(self, mapping: Mapping, key: str, field: str) -> dict:
        value = mapping.get(key)
        return self.expect(isinstance(value, dict), field, "a dict", value)

    def real(self, value: Any, field: str, high: float = math.inf) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= high
        return float(self.expect(ok, field, f"a number in [0, {high}]", value))

    def vector(self, value: Any, field: str, length: int, kinds: str = "f") -> np.ndarray:
        ok = (isinstance(value, np.ndarray) and value.dtype.kind in kinds
              and value.shape == (length,))
        shown = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else "nothing"
        self.expect(ok, field, f"a 1-D array of {length} entries", shown)
        return value


def check_rule_state(f: Fields, rule: Any, configs: Mapping[str, dict[str, Any]],
                      params: Mapping[str, np.ndarray], iteration: int) -> None:
    """A built-in rule's state in every parameter's config: step counters are ints >= 0 and,
    once any update was made, every state array and counter is there (a missing one would
    silently restart the optimiser from zeros)."""
    arrays, counters = RULE_STATE.get(rule, ((), ())) if isinstance(rule, str) else ((), ())
    for p, config in configs.items():
        for key in counters:
            if key in config:
                value = config[key]
                f.expect(type(value) is int and value >= 0, f"state.optim_configs.{p}.{key}",
                         "an int >= 0 (steps taken)", value)
            elif iteration:
                raise f.fail(f"state.optim_configs.{p}.{key}", f"missing: the {rule} update "
                             f"rule's step counter must be stored after {iteration} update(s)")
        for key in arrays:
            if key not in config and iteration:
                raise f.fail(f"optim/{p}/{key}", f"missing: the {rule} update rule's state "
                             f"array (a float array of shape {np.shape(params[p])}) must be "
                             f"stored after {iteration} update(s)")
