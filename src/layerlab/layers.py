"""The layer catalogue: one entry per layer kind, read by the checker, builder, UI and docs.

An entry is a small, complete contract (after Keras' ``Dense``): its parameters with
defaults and ranges, a pure ``output_shape(input_shape, params)``, its parameter count and
multiply-adds, a torch factory and a one-line doc. Shapes are PyTorch's without the batch
dimension: ``(features,)``, ``(channels, length)`` or ``(channels, height, width)``.
Adding a layer kind touches this file only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

from .errors import SpecError
from .lazy_torch import nn  # torch is imported when a factory first runs, not to check shapes
from .params import Param, params_model

__all__ = ["LayerKind", "ShapeError", "CATALOGUE", "get_kind", "kind_names", "catalogue_json", "Shape"]

Shape = tuple[int, ...]


class ShapeError(Exception):
    """Raised by a shape rule: what the layer received, what it needs, and the fix."""

    def __init__(self, message: str, hint: str = "", field: str | None = None):
        super().__init__(message)
        self.message, self.hint, self.field = message, hint, field


def shape_text(shape: Shape) -> str:
    """(1, 28, 28) -> '1×28×28'; a flat shape reads as '784 values'."""
    if len(shape) == 1:
        return f"{shape[0]} values"
    return "×".join(str(d) for d in shape)


def _numel(shape: Shape) -> int:
    return math.prod(shape)


@dataclass(frozen=True)
class LayerKind:
    """A layer kind's whole contract."""

    name: str
    doc: str
    category: str
    output_shape: Callable[[Shape, dict], Shape]
    factory: Callable[[Shape, dict], nn.Module]
    params: tuple[Param, ...] = ()
    count_params: Callable[[Shape, dict], int] = lambda s, p: 0
    mult_adds: Callable[[Shape, Shape, dict], int] = lambda i, o, p: 0
    aliases: tuple[str, ...] = ()
    weighted: bool = False       # has weights an initialiser sets

    @cached_property
    def all_params(self) -> tuple[Param, ...]:
        """Declared params plus the per-layer ``init`` of weighted layers."""
        if self.weighted:
            return self.params + (Param("init", str, None, "initialiser for this layer's weights "
                                        "(overrides train.init); a name from `layerlab inits`",
                                        accepts=str | dict | None),)
        return self.params

    @cached_property
    def validator(self):
        return params_model(f"{self.name}_params", self.all_params)

    def param_names(self) -> list[str]:
        return [p.name for p in self.all_params]

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.all_params}

    def to_json(self) -> dict:
        return {"kind": self.name, "doc": self.doc, "category": self.category,
                "aliases": list(self.aliases), "weighted": self.weighted,
                "params": [p.to_json() for p in self.all_params]}


# ---------------------------------------------------------------------------------------------
# Shape rules. Each is pure: (input shape, params) -> output shape, or ShapeError.

def _need_rank(kind: str, shape: Shape, rank: int, what: str, hint: str) -> None:
    if len(shape) != rank:
        got = ("a flat vector of " + shape_text(shape)) if len(shape) == 1 else shape_text(shape)
        raise ShapeError(f"{kind} needs {what}, but receives {got}", hint)


_NEEDS = {1: "a flat input (features,)", 2: "a 1-D signal (channels, length)",
          3: "an image (channels, height, width)"}


def _window(kind: str, size: int, axis: str, p: dict, *, pool: bool) -> int:
    """Output length of a sliding window: floor((size + 2*pad - field) / stride) + 1, which must be >= 1."""
    f, s, pad = p["field"], p["stride"], p["pad"]
    if pool and 2 * pad > f:
        raise ShapeError(f"{kind} pad {pad} is more than half its field {f}",
                         f"lower pad to at most {f // 2} or raise field to at least {2 * pad}", "pad")
    out = (size + 2 * pad - f) // s + 1
    if out < 1:
        need_pad = math.ceil((f - size) / 2)
        raise ShapeError(
            f"{kind} output {axis} would be ({size} + 2×{pad} − {f}) / {s} + 1 = {out}, not a positive size:"
            f" the field {f} is larger than the padded input {size + 2 * pad}",
            f"lower field to at most {size + 2 * pad}" + (
                f" or raise pad to at least {need_pad}" if not pool else ""), "field")
    return out


def _conv_shape(rank: int):
    def rule(shape: Shape, p: dict) -> Shape:
        kind = f"conv{rank}d"
        _need_rank(kind, shape, rank + 1, _NEEDS[rank + 1], _rank_hint(rank + 1))
        axes = ("length",) if rank == 1 else ("height", "width")
        return (p["depth"],) + tuple(_window(kind, n, a, p, pool=False) for n, a in zip(shape[1:], axes))
    return rule


def _pool_shape(kind: str, rank: int):
    def rule(shape: Shape, p: dict) -> Shape:
        _need_rank(kind, shape, rank + 1, _NEEDS[rank + 1], _rank_hint(rank + 1))
        axes = ("length",) if rank == 1 else ("height", "width")
        return (shape[0],) + tuple(_window(kind, n, a, p, pool=True) for n, a in zip(shape[1:], axes))
    return rule


def _rank_hint(rank: int) -> str:
    # The checker rewrites this hint with the layer number and data set specifics.
    return {1: "add flatten before this layer",
            2: "add reshape to (channels, length) before this layer",
            3: "add reshape to (channels, height, width) before this layer"}[rank]


def _fc_shape(shape: Shape, p: dict) -> Shape:
    _need_rank("fc", shape, 1, _NEEDS[1], _rank_hint(1))
    return (p["units"],)


def _flatten_shape(shape: Shape, p: dict) -> Shape:
    return (_numel(shape),)


def _reshape_shape(shape: Shape, p: dict) -> Shape:
    target = list(p["shape"])
    if not target:
        raise ShapeError("reshape needs a non-empty shape", "give the target shape, e.g. [1, 28, 28]", "shape")
    n = _numel(shape)
    if target.count(-1) > 1:
        raise ShapeError("reshape can infer at most one size (-1)", "replace all but one -1 by a size", "shape")
    if any(d == 0 or d < -1 for d in target):
        raise ShapeError(f"reshape sizes must be positive (or one -1), got {target}",
                         "use positive sizes", "shape")
    known = _numel([d for d in target if d != -1])
    if -1 in target:
        if n % known:
            raise ShapeError(f"reshape to {target} cannot hold {n} values ({shape_text(shape)}): "
                             f"{n} is not a multiple of {known}", _reshape_hint(shape), "shape")
        target[target.index(-1)] = n // known
    elif known != n:
        raise ShapeError(f"reshape to {target} needs {known} values but receives {n} ({shape_text(shape)})",
                         _reshape_hint(shape), "shape")
    return tuple(target)


def _reshape_hint(shape: Shape) -> str:
    n = _numel(shape)
    side = math.isqrt(n)
    options = [f"[{n}]"]
    if len(shape) > 1:
        options.append("[" + ", ".join(str(d) for d in shape) + "]")
    elif side * side == n:
        options.append(f"[1, {side}, {side}]")
    else:
        options.append(f"[1, {n}]")
    return f"use a shape whose sizes multiply to {n}, e.g. {' or '.join(options)}"


def _same(shape: Shape, p: dict) -> Shape:
    return shape


def _batchnorm_shape(shape: Shape, p: dict) -> Shape:
    if len(shape) not in (1, 2, 3):
        raise ShapeError(f"batchnorm needs a 1-D, 2-D or 3-D input, but receives {shape_text(shape)}",
                         "add flatten or reshape before this layer")
    return shape


# ---------------------------------------------------------------------------------------------
# Torch factories: (input shape, params) -> module. Only called for shapes the rule accepted.

def _reshape(shape: Shape, p: dict) -> nn.Module:
    from .modules import Reshape  # a torch module class: defined where torch is imported
    return Reshape(_reshape_shape(shape, p))


def _batchnorm(shape: Shape, p: dict) -> nn.Module:
    cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
    return cls(shape[0], eps=p["epsilon"], momentum=p["momentum"])


def _conv_params(shape: Shape, p: dict, rank: int) -> int:
    return shape[0] * p["depth"] * p["field"] ** rank + (p["depth"] if p["bias"] else 0)


def _conv_mult_adds(i: Shape, o: Shape, p: dict, rank: int) -> int:
    return _numel(o) * i[0] * p["field"] ** rank


_WINDOW = (
    Param("field", int, 3, "window size (kernel size) along each spatial axis", ge=1, le=1024),
    Param("stride", int, 1, "step between windows", ge=1, le=1024),
    Param("pad", int, 0, "zeros added on each side of each spatial axis", ge=0, le=1024),
)
_CONV = _WINDOW + (
    Param("depth", int, 1, "number of filters (output channels)", ge=1, le=100_000),
    Param("bias", bool, True, "learn one bias per filter"),
)


def _conv_kind(rank: int) -> LayerKind:
    cls = "Conv1d" if rank == 1 else "Conv2d"
    what = "1-D signals (channels, length)" if rank == 1 else "images (channels, height, width)"
    return LayerKind(
        name=f"conv{rank}d", category="convolution", params=_CONV, weighted=True,
        doc=f"Convolution over {what}: `depth` filters of size `field`, moved by `stride`, input padded by `pad`.",
        output_shape=_conv_shape(rank),
        factory=lambda s, p: getattr(nn, cls)(s[0], p["depth"], p["field"], p["stride"], p["pad"], bias=p["bias"]),
        count_params=lambda s, p: _conv_params(s, p, rank),
        mult_adds=lambda i, o, p: _conv_mult_adds(i, o, p, rank),
    )


def _pool_kind(name: str, rank: int, cls: str, doc: str) -> LayerKind:
    """``cls``: the torch.nn class's name (looked up when the factory runs)."""
    return LayerKind(name=name, category="pooling", params=_WINDOW, doc=doc,
                     output_shape=_pool_shape(name, rank),
                     factory=lambda s, p: getattr(nn, cls)(p["field"], p["stride"], p["pad"]))


def _activation(name: str, doc: str, factory, params: tuple[Param, ...] = ()) -> LayerKind:
    return LayerKind(name=name, category="activation", doc=doc, params=params, output_shape=_same,
                     factory=factory)


_KINDS: list[LayerKind] = [
    LayerKind(
        name="flatten", category="reshaping", output_shape=_flatten_shape, factory=lambda s, p: nn.Flatten(),
        doc="Flatten each example to a vector (channels × height × width values).",
    ),
    LayerKind(
        name="reshape", category="reshaping", output_shape=_reshape_shape,
        factory=_reshape,
        params=(Param("shape", list, [1, 28, 28], "target shape without the batch; one size may be -1"),),
        doc="Reshape each example to `shape` (same number of values).",
    ),
    LayerKind(
        name="fc", category="core", aliases=("dense",), weighted=True,
        params=(Param("units", int, 10, "number of output values (neurons)", ge=1, le=10_000_000),
                Param("bias", bool, True, "learn one bias per unit")),
        output_shape=_fc_shape,
        factory=lambda s, p: nn.Linear(s[0], p["units"], bias=p["bias"]),
        count_params=lambda s, p: s[0] * p["units"] + (p["units"] if p["bias"] else 0),
        mult_adds=lambda i, o, p: i[0] * p["units"],
        doc="Fully connected (dense) layer: every output is a weighted sum of all inputs plus a bias.",
    ),
    _conv_kind(2),
    _conv_kind(1),
    _pool_kind("maxpool2d", 2, "MaxPool2d", "Max over each `field`×`field` window of each channel."),
    _pool_kind("maxpool1d", 1, "MaxPool1d", "Max over each `field`-long window of each channel."),
    _pool_kind("avgpool2d", 2, "AvgPool2d", "Mean over each `field`×`field` window of each channel."),
    _activation("relu", "Rectified linear unit: max(0, x).", lambda s, p: nn.ReLU()),
    _activation("leaky_relu", "Leaky ReLU: x for x > 0, slope × x otherwise.",
                lambda s, p: nn.LeakyReLU(p["slope"]),
                (Param("slope", float, 0.01, "slope for negative inputs", ge=0.0, le=1000.0),)),
    _activation("elu", "Exponential linear unit: x for x > 0, alpha × (exp(x) − 1) otherwise.",
                lambda s, p: nn.ELU(p["alpha"]), (Param("alpha", float, 1.0, "saturation value for negative inputs", gt=0.0, le=1000.0),)),
    _activation("sigmoid", "Logistic sigmoid: 1 / (1 + exp(−x)), squashes to (0, 1).", lambda s, p: nn.Sigmoid()),
    _activation("tanh", "Hyperbolic tangent, squashes to (−1, 1).", lambda s, p: nn.Tanh()),
    _activation("softmax", "Softmax over the features (channels): values become probabilities summing to 1. "
                "Not needed before cross-entropy, which applies it itself.", lambda s, p: nn.Softmax(dim=1)),
    _activation("linear", "Identity: passes values through unchanged (a linear output).",
                lambda s, p: nn.Identity()),
    LayerKind(
        name="dropout", category="regularisation", output_shape=_same,
        params=(Param("rate", float, 0.5, "fraction of values zeroed during training", ge=0.0, lt=1.0),),
        factory=lambda s, p: nn.Dropout(p["rate"]),
        doc="Dropout: during training, zero a random `rate` of values and scale the rest up.",
    ),
    LayerKind(
        name="batchnorm", category="regularisation", output_shape=_batchnorm_shape, factory=_batchnorm,
        params=(Param("momentum", float, 0.1, "weight of each batch in the running statistics", gt=0.0, le=1.0),
                Param("epsilon", float, 1e-5, "added to the variance for stability", gt=0.0, le=1.0)),
        count_params=lambda s, p: 2 * s[0],
        doc="Batch normalisation per feature (or channel), with a learned scale and shift.",
    ),
]

CATALOGUE: dict[str, LayerKind] = {k.name: k for k in _KINDS}
_ALIASES: dict[str, str] = {a: k.name for k in _KINDS for a in k.aliases}


def kind_names() -> list[str]:
    return list(CATALOGUE)


def resolve_kind(name: str) -> str | None:
    """Canonical kind name for a name or alias, or None."""
    if name in CATALOGUE:
        return name
    return _ALIASES.get(name)


def get_kind(name: str) -> LayerKind:
    canonical = resolve_kind(name)
    if canonical is None:
        raise SpecError(f"unknown layer kind {name!r}; known kinds: {', '.join(CATALOGUE)}")
    return CATALOGUE[canonical]


def catalogue_json() -> list[dict]:
    """The whole catalogue as JSON data (for the API, the UI's layer menu and the docs)."""
    return [k.to_json() for k in _KINDS]
