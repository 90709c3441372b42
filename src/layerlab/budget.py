"""Memory a model needs to train, estimated from its shapes before anything is built, and the limit.

A run keeps, in float32: the weights, their gradients, the optimiser's state (one or two
buffers per weight, by optimiser), and for each update the batch's activations that autograd
saves for the backward pass — each layer's input (plus max-pool's int64 indices and
dropout's mask) and the output the loss reads. ``estimate`` adds these up from the checker's
rows; ``tests/test_budget.py`` holds it to within 2x of what torch really holds for every
preset (tensor bytes after one update, and saved-for-backward bytes by autograd's hooks).

The limit is ``LAYERLAB_MAX_MEMORY`` (``4GiB`` by default: a laptop's share; ``512M``,
``8G``, ``2.5GiB`` or a number of bytes). A spec whose estimate is over it is refused by the
checker with a ``budget`` problem naming the layer that holds the most, so nothing is built,
queued or written for it.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass

from .errors import Problem

__all__ = ["MemoryEstimate", "estimate", "memory_limit", "budget_problems", "format_bytes",
           "OPTIMIZER_STATE", "DEFAULT_LIMIT"]

FLOAT = 4                  # bytes of a float32 value
INDEX = 8                  # bytes of an int64 index (max-pool keeps one per output value)
DEFAULT_LIMIT = 4 * 2**30  # 4 GiB
LIMIT_ENV = "LAYERLAB_MAX_MEMORY"

# Buffers the optimiser keeps per weight (torch.optim's state).
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adagrad": 1, "adadelta": 2,
                   "adam": 2, "adamw": 2, "adamax": 2}

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs, by kind.

    ``by_layer[i]``: what layer ``i`` is answerable for — its weights with their gradients and
    optimiser state, and the batch of values it outputs (which the next layer keeps).
    """

    weights: int
    gradients: int
    optimizer_state: int
    activations: int          # for one batch of ``batch_size``
    batch_size: int
    by_layer: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_state + self.activations

    def to_json(self) -> dict:
        return {**asdict(self), "by_layer": list(self.by_layer), "total": self.total}


def _saved_values(kind: str, input_size: int, output_size: int) -> tuple[int, int]:
    """(float values, int64 values) autograd keeps for a layer, per example."""
    if kind in ("flatten", "reshape", "linear"):
        return 0, 0                       # views: nothing saved
    if kind in ("maxpool2d", "maxpool1d"):
        return input_size, output_size    # the input, and the arg-max of each window
    if kind == "dropout":
        return output_size + input_size // 4, 0  # the output and a one-byte mask
    return input_size, 0                  # fc, conv, activations, batchnorm: the input (or the output)


def estimate(rows, input_shape, *, batch_size: int, optimizer: str) -> MemoryEstimate:
    """The estimate for the checker's ``rows`` (every one with shapes) on inputs of ``input_shape``."""
    state = OPTIMIZER_STATE.get(optimizer, 2)
    params = sum(r.params for r in rows)
    by_layer, activations = [], 0
    for r in rows:
        n_in, n_out = math.prod(r.input_shape), math.prod(r.output_shape)
        floats, ints = _saved_values(r.kind, n_in, n_out)
        activations += batch_size * (floats * FLOAT + ints * INDEX)
        by_layer.append(batch_size * n_out * FLOAT + r.params * FLOAT * (2 + state))
    if rows:  # the batch itself, and the output the loss reads (and its gradient)
        activations += batch_size * FLOAT * (math.prod(input_shape) + 2 * math.prod(rows[-1].output_shape))
    return MemoryEstimate(weights=params * FLOAT, gradients=params * FLOAT, optimizer_state=params * FLOAT * state,
                          activations=activations, batch_size=batch_size, by_layer=tuple(by_layer))


def memory_limit() -> int:
    """Bytes a run may need: ``$LAYERLAB_MAX_MEMORY`` (e.g. ``8G``) or 4 GiB."""
    raw = os.environ.get(LIMIT_ENV, "").strip()
    if not raw:
        return DEFAULT_LIMIT
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", raw)
    if not m or m.group(2).lower() not in _UNITS or float(m.group(1)) <= 0:
        from .errors import LayerlabError
        raise LayerlabError(f"{LIMIT_ENV}={raw!r} is not a size; write e.g. 8G, 512M, 2.5GiB or a number of bytes")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; sizes in powers of 1024, as the limit's default reads."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def budget_problems(est: MemoryEstimate, rows, *, limit: int | None = None) -> list[Problem]:
    """A ``budget`` problem when the estimate is over the limit, naming the layer that holds the most."""
    limit = memory_limit() if limit is None else limit
    if est.total <= limit or not rows:
        return []
    i = max(range(len(rows)), key=lambda j: est.by_layer[j])
    row = rows[i]
    share = est.by_layer[i] / est.total
    sized = row.kind in ("fc", "conv2d", "conv1d")
    size_name = "units" if row.kind == "fc" else "depth"
    fewer = f"fewer {'units' if row.kind == 'fc' else 'filters'} in layer {i + 1} ({row.kind})"
    if row.params * FLOAT * 2 > est.by_layer[i] / 2:  # its weights, not its outputs, are the bulk
        what, shrink = f"its {row.params:,} parameters", fewer
        where = f"model[{i}].{row.kind}.{size_name}" if sized else f"model[{i}]"
    else:
        what = f"its outputs for a batch of {est.batch_size}"
        shrink = f"a smaller train.batch_size (now {est.batch_size})" + (f" or {fewer}" if sized else "")
        where = "train.batch_size"
    return [Problem(
        f"training needs about {format_bytes(est.total)} (weights {format_bytes(est.weights)}, gradients "
        f"{format_bytes(est.gradients)}, optimiser state {format_bytes(est.optimizer_state)}, activations "
        f"{format_bytes(est.activations)} at batch {est.batch_size}), over the {format_bytes(limit)} budget; "
        f"layer {i + 1} ({row.kind}) takes {share:.0%} with {what}",
        f"use {shrink}, or raise {LIMIT_ENV} (e.g. {LIMIT_ENV}=16G) if this machine has the memory",
        i, row.kind, where, "budget")]
