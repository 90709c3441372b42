"""From a checked spec to a ``torch.nn.Module``.

Only specs that passed the shape checker are built, so every factory receives an input
shape its rule accepted. Submodules are named after their kind and position among that
kind (``fc1``, ``relu2``) so ``print(model)`` reads like the spec.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .errors import SpecError
from .init import apply_init, parse_init
from .layers import CATALOGUE
from .shapes import CheckResult, check
from .spec import LayerSpec, Spec, load_spec

__all__ = ["build", "build_layers", "layer_names"]


def layer_names(kinds: list[str]) -> list[str]:
    """Readable, unique submodule names: fc1, relu1, fc2, ..."""
    counts: dict[str, int] = {}
    names = []
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
        names.append(f"{kind}{counts[kind]}")
    return names


def build(source: Spec | dict | str, *, seed: int | None = None, result: CheckResult | None = None) -> nn.Sequential:
    """Build the spec's model with its initialisers; raise SpecError if the spec is invalid.

    ``seed`` (default: the spec's ``train.seed``) makes the initial weights reproducible without
    touching the caller's global random state.
    """
    spec = source if isinstance(source, Spec) else load_spec(source)
    result = result or check(spec)
    if not result.valid:
        raise SpecError(result.problems)
    model_init, _ = parse_init(spec.train.init)
    return build_layers(spec.model, [tuple(r.input_shape) for r in result.rows], init=model_init,
                        seed=spec.train.seed if seed is None else seed)


def build_layers(layers: list[LayerSpec], input_shapes: list[tuple[int, ...]], *,
                 init: tuple[str, dict] = ("default", {}), seed: int = 0) -> nn.Sequential:
    """Instantiate checked layers, given each one's input shape, under a private seed."""
    names = layer_names([layer.kind for layer in layers])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        modules = OrderedDict()
        for name, layer, shape in zip(names, layers, input_shapes):
            kind = CATALOGUE[layer.kind]
            module = kind.factory(shape, layer.params)
            if kind.weighted:
                apply_init(module, layer.init or init)
            modules[name] = module
    return nn.Sequential(modules)
