"""Sweep axes: which spec fields vary and over what, and how they expand into trials.

An axis is written like an override, with alternatives: ``train.lr=1e-4,1e-3,0.1`` (a list
of values, each read as YAML), ``model=preset/linear,preset/fc100-relu-fc10`` (alternative
models) or ``train.lr=1e-5:1`` (a range, for random search only: sampled log-uniformly when
both ends are positive, uniformly otherwise; integers stay integers). Commas inside brackets
belong to one value: ``model[0].reshape.shape=[1,4]`` is one value, a list.

Several axes make a cartesian grid (the first axis varies slowest). ``sample(axes, n, seed)``
draws ``n`` combinations instead: a choice among listed values, a draw within a range. Both
are deterministic: the same axes and seed give the same trials, in the same order.
"""
from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import Problem, SpecError
from ..spec import PRESET_PREFIX, _split_path, load_yaml_value

__all__ = ["Axis", "parse_axis", "parse_axes", "grid", "sample", "value_text", "axis_label"]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*:\s*({_NUMBER})\s*$")


@dataclass(frozen=True)
class Axis:
    """One varied field: its dotted ``path`` and either ``values`` or a ``low:high`` range."""

    path: str
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    integer: bool = False      # a range of integers (both ends written as integers)

    @property
    def is_range(self) -> bool:
        return self.low is not None

    @property
    def log(self) -> bool:
        """Sampled (and best plotted) on a log scale: a positive range, or a learning rate."""
        if self.is_range:
            return self.low > 0 and self.high > 0
        nums = [v for v in self.values if _is_number(v)]
        if len(nums) < 2 or len(nums) != len(self.values) or min(nums) <= 0:
            return False
        return self.path.endswith("lr") or max(nums) / min(nums) >= 100

    def to_dict(self) -> dict:
        if self.is_range:
            return {"path": self.path, "low": self.low, "high": self.high, "integer": self.integer}
        return {"path": self.path, "values": list(self.values)}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside brackets or braces."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_axis(text: str) -> Axis:
    """``path=v1,v2,...`` or ``path=low:high`` into an Axis; a SpecError says what is wrong."""
    if "=" not in text:
        raise SpecError(Problem(f"sweep axis {text!r} must look like path=v1,v2,... or path=low:high",
                                "e.g. --set train.lr=1e-3,1e-2,0.1"))
    path, raw = (s.strip() for s in text.split("=", 1))
    _split_path(path)  # a SpecError for an unreadable path
    if not raw:
        raise SpecError(Problem("no values given", "write e.g. train.lr=1e-3,1e-2 or train.lr=1e-4:1", field=path))
    m = _RANGE.match(raw)
    if m and "," not in raw:
        lo_text, hi_text = m.group(1), m.group(2)
        lo, hi = float(lo_text), float(hi_text)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            raise SpecError(Problem(f"a range must have low < high, both finite. Received: {raw!r}",
                                    "e.g. train.lr=1e-5:1", field=path))
        integer = all(re.fullmatch(r"[-+]?\d+", t) for t in (lo_text, hi_text))
        return Axis(path, low=lo, high=hi, integer=integer)
    values = []
    for item in _split_top(raw):
        item = item.strip()
        if not item:
            raise SpecError(Problem(f"empty value in {raw!r}", "remove the extra comma", field=path))
        try:
            value = load_yaml_value(item)  # the spec limits: no alias bombs, no 5,000-digit integers
        except yaml.YAMLError as exc:
            raise SpecError(Problem(f"cannot read the value {item!r}: {getattr(exc, 'problem', exc)}",
                                    "values are YAML: 0.1, adam, [1, 4]", field=path)) from None
        if isinstance(value, str) and re.fullmatch(_NUMBER, value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        values.append(value)
    if len(set(map(repr, values))) != len(values):
        raise SpecError(Problem(f"values repeat in {raw!r}", "list each value once", field=path))
    return Axis(path, values=tuple(values))


def parse_axes(texts: list[str]) -> list[Axis]:
    axes = [parse_axis(t) for t in texts]
    seen = set()
    for a in axes:
        if a.path in seen:
            raise SpecError(Problem("the same field is swept twice", "give all its values in one --set", field=a.path))
        seen.add(a.path)
    return axes


def grid(axes: list[Axis]) -> list[dict[str, Any]]:
    """Every combination, first axis slowest: ``[{path: value, ...}, ...]``."""
    ranged = [a.path for a in axes if a.is_range]
    if ranged:
        raise SpecError(Problem("a range can only be sampled; a grid needs listed values",
                                "list the values (train.lr=1e-4,1e-3) or sample the range with --random N",
                                field=ranged[0]))
    if not axes:
        return [{}]
    return [dict(zip([a.path for a in axes], combo)) for combo in itertools.product(*(a.values for a in axes))]


def _draw(axis: Axis, rng: random.Random) -> Any:
    if not axis.is_range:
        return rng.choice(axis.values)
    if axis.log:
        value = math.exp(rng.uniform(math.log(axis.low), math.log(axis.high)))
    else:
        value = rng.uniform(axis.low, axis.high)
    if axis.integer:
        return int(min(axis.high, max(axis.low, round(value))))
    return float(f"{value:.4g}")  # readable labels; 4 significant digits are plenty for a search


def sample(axes: list[Axis], n: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` random combinations (seeded): a choice among listed values, a draw in a range."""
    if not isinstance(n, int) or n < 1:
        raise SpecError(Problem(f"--random must be a positive integer. Received: {n!r}", "e.g. --random 8"))
    rng = random.Random(seed)
    return [{a.path: _draw(a, rng) for a in axes} for _ in range(n)]


def value_text(value: Any) -> str:
    """A value as shown in tables, names and legends: presets by name, floats compactly."""
    if isinstance(value, str):
        return value.removeprefix(PRESET_PREFIX)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


def axis_label(path: str, paths: list[str]) -> str:
    """The last key of a path (``train.lr`` -> ``lr``) unless another axis ends the same way."""
    short = path.rsplit(".", 1)[-1]
    clash = sum(p.rsplit(".", 1)[-1] == short for p in paths) > 1
    return path if clash or short.startswith("[") else short
