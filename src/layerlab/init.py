"""Weight initialisers, resolved by name through one registry.

An initialiser sets the weights of ``fc`` and ``conv`` layers; every initialiser but
``default`` also sets their biases to zero (the Keras convention), so ``zeros`` really
is all zeros. ``default`` keeps PyTorch's own initialisation. The value in a spec is a
name (``he_normal``) or a name with parameters (``{normal: {std: 0.01}}``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .errors import Problem
from .lazy_torch import nn, torch  # imported when weights are first set, not to validate a spec
from .params import Param, params_model, validate_params

__all__ = ["Initialiser", "INITIALISERS", "parse_init", "apply_init", "init_names", "MODEL_BUILDER_CONV_STD"]


@dataclass(frozen=True)
class Initialiser:
    name: str
    doc: str
    fill: Callable[[torch.Tensor, dict], None] | None
    params: tuple[Param, ...] = ()
    source: str = ""  # where an initialiser copied from another tool was checked (docs/layers.md cites it)

    def to_json(self) -> dict:
        return {"name": self.name, "doc": self.doc, "params": [p.to_json() for p in self.params]}


def _fans(w: torch.Tensor) -> tuple[int, int]:
    receptive = math.prod(w.shape[2:]) if w.dim() > 2 else 1
    return w.shape[1] * receptive, w.shape[0] * receptive


def _variance_scaling(w: torch.Tensor, p: dict) -> None:
    fan_in, fan_out = _fans(w)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[p["mode"]]
    var = p["scale"] / max(1.0, fan)
    if p["distribution"] == "uniform":
        limit = math.sqrt(3.0 * var)
        nn.init.uniform_(w, -limit, limit)
    elif p["distribution"] == "normal":
        nn.init.normal_(w, 0.0, math.sqrt(var))
    else:  # truncated normal at 2 std, rescaled so the variance is as asked (Keras' constant)
        std = math.sqrt(var) / 0.87962566103423978
        nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std)


# The deeplearn.js Model Builder (demos/model-builder/layer_builder.ts): a "Fully connected" layer
# takes VarianceScalingInitializer() with its defaults (scale 1, fan_in, "normal"), which draws
# truncatedNormal(0, sqrt(1 / fan_in)) (src/initializers.ts); a "Convolution" layer draws
# randTruncatedNormal(0, 0.1); biases are zeros. Its truncated normal redraws any value beyond
# 2 standard deviations (src/util.ts randGauss, later ops/rand_util.ts MPRandGauss) and, unlike
# Keras, does not rescale: the std given is the std before truncation (about 0.88 of it after).
MODEL_BUILDER_CONV_STD = 0.1
MODEL_BUILDER_SOURCE = (
    "deeplearn.js (PAIR-code/deeplearnjs, now tensorflow/tfjs-core): `demos/model-builder/layer_builder.ts` "
    "(fc: `new VarianceScalingInitializer()` and `ZerosInitializer`; conv: `randTruncatedNormal(wShape, 0, 0.1)` "
    "and zero bias), `src/initializers.ts` (VarianceScalingInitializer defaults scale 1, `fan_in`, `normal`, "
    "drawing `truncatedNormal(shape, 0, sqrt(scale / n))`) and `src/util.ts` `randGauss(mean, std, truncated)` "
    "(a draw beyond 2 std is redrawn; the std is not rescaled after truncation)")


def _model_builder(w: torch.Tensor, p: dict) -> None:
    fan_in, _ = _fans(w)
    std = MODEL_BUILDER_CONV_STD if w.dim() > 2 else math.sqrt(1.0 / max(1, fan_in))
    nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std)


_INITS = [
    Initialiser("default", "PyTorch's own initialisation (Kaiming-uniform with a=sqrt(5) for fc and conv).", None),
    Initialiser("zeros", "All weights and biases zero: every unit computes the same thing, so hidden layers never learn.",
                lambda w, p: nn.init.zeros_(w)),
    Initialiser("constant", "All weights equal to `value`.", lambda w, p: nn.init.constant_(w, p["value"]),
                (Param("value", float, 0.1, "the weight value"),)),
    Initialiser("normal", "Weights from a normal distribution N(mean, std²).",
                lambda w, p: nn.init.normal_(w, p["mean"], p["std"]),
                (Param("std", float, 0.05, "standard deviation", gt=0.0), Param("mean", float, 0.0, "mean"))),
    Initialiser("uniform", "Weights uniform in [low, high].",
                lambda w, p: nn.init.uniform_(w, p["low"], p["high"]),
                (Param("low", float, -0.05, "lower bound"), Param("high", float, 0.05, "upper bound"))),
    Initialiser("xavier_uniform", "Glorot/Xavier uniform: variance 2 / (fan_in + fan_out); suits tanh and sigmoid.",
                lambda w, p: nn.init.xavier_uniform_(w, gain=p["gain"]), (Param("gain", float, 1.0, "scale factor", gt=0.0),)),
    Initialiser("xavier_normal", "Glorot/Xavier normal: variance 2 / (fan_in + fan_out).",
                lambda w, p: nn.init.xavier_normal_(w, gain=p["gain"]), (Param("gain", float, 1.0, "scale factor", gt=0.0),)),
    Initialiser("he_uniform", "He/Kaiming uniform: variance 2 / fan_in; suits ReLU.",
                lambda w, p: nn.init.kaiming_uniform_(w, nonlinearity="relu")),
    Initialiser("he_normal", "He/Kaiming normal: variance 2 / fan_in; suits ReLU.",
                lambda w, p: nn.init.kaiming_normal_(w, nonlinearity="relu")),
    Initialiser("variance_scaling", "Keras' VarianceScaling: variance scale / fan, fan and distribution chosen.",
                _variance_scaling,
                (Param("scale", float, 1.0, "variance multiplier", gt=0.0),
                 Param("mode", str, "fan_in", "which fan divides the scale", choices=("fan_in", "fan_out", "fan_avg")),
                 Param("distribution", str, "truncated_normal", "distribution to draw from",
                       choices=("truncated_normal", "normal", "uniform")))),
    Initialiser("model-builder", "The deeplearn.js Model Builder's: fc weights from a normal of std sqrt(1/fan_in), "
                "conv weights std 0.1, both cut at 2 std and not rescaled; zero bias.", _model_builder,
                source=MODEL_BUILDER_SOURCE),
]
INITIALISERS: dict[str, Initialiser] = {i.name: i for i in _INITS}
_MODELS = {i.name: params_model(f"init_{i.name}", i.params) for i in _INITS}


def init_names() -> list[str]:
    return list(INITIALISERS)


def parse_init(value, *, path: str = "train.init", layer: int | None = None,
               kind: str | None = None) -> tuple[tuple[str, dict] | None, list[Problem]]:
    """``'he_normal'`` or ``{'normal': {'std': 0.01}}`` -> ((name, params), problems)."""
    if isinstance(value, str):
        name, params = value, {}
    elif isinstance(value, dict) and len(value) == 1:
        name, params = next(iter(value.items()))
        params = params or {}
        if not isinstance(params, dict):
            return None, [Problem(f"parameters of {name!r} must be a mapping, got {params!r}",
                                  f"write {{{name}: {{...}}}}", layer, kind, path)]
    else:
        return None, [Problem(f"must be an initialiser name or {{name: {{params}}}}, got {value!r}",
                              f"use one of: {', '.join(INITIALISERS)}", layer, kind, path)]
    if name not in INITIALISERS:
        return None, [Problem(f"unknown initialiser {name!r}", f"use one of: {', '.join(INITIALISERS)}",
                              layer, kind, path)]
    known = [p.name for p in INITIALISERS[name].params]
    prefix = tuple(path.split(".")) + ((name,) if isinstance(value, dict) else ())
    clean, problems = validate_params(_MODELS[name], params, prefix=prefix, known=known, layer=layer, kind=kind,
                                      defaults={p.name: p.default for p in INITIALISERS[name].params})
    return (None if problems else (name, clean)), problems


def apply_init(module: nn.Module, init: tuple[str, dict]) -> None:
    """Set ``module``'s weight (and zero its bias) with the initialiser; ``default`` leaves it alone."""
    name, params = init
    entry = INITIALISERS[name]
    if entry.fill is None:
        return
    with torch.no_grad():
        entry.fill(module.weight, params)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
