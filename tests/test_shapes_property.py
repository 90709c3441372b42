"""The shape checker must agree with PyTorch.

Hypothesis draws random input shapes and random layer stacks from the whole catalogue.
For every stack the checker accepts, the built torch module runs and every layer's output
shape and parameter count equal the checker's. For every stack it rejects because a window
does not fit (a conv or pool whose output size is not positive, or a pool padded more than
half its field), torch refuses that layer too: the checker is neither too lax nor inventing
window problems torch does not have.
"""
from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerlab.builder import build_layers
from layerlab.layers import CATALOGUE
from layerlab.shapes import infer_shapes
from layerlab.spec import parse_layer

EXAMPLES = int(os.environ.get("LAYERLAB_PROPERTY_EXAMPLES", "400"))

_PARAM_DRAWS = {
    "units": st.integers(1, 9),
    "field": st.integers(1, 6),
    "stride": st.integers(1, 3),
    "pad": st.integers(0, 3),
    "depth": st.integers(1, 4),
    "bias": st.booleans(),
    "rate": st.sampled_from([0.0, 0.25, 0.5]),
    "slope": st.sampled_from([0.01, 0.2]),
    "alpha": st.sampled_from([0.5, 1.0]),
    "momentum": st.sampled_from([0.1, 0.9]),
    "epsilon": st.sampled_from([1e-5, 1e-3]),
}


def _factorisations(n: int) -> list[list[int]]:
    """Shapes of rank 1-3 whose sizes multiply to n (reshapes that should be accepted)."""
    out = [[n]]
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    out += [[d, n // d] for d in divisors]
    out += [[a, b, n // (a * b)] for a in divisors for b in divisors if (n // a) % b == 0 and a * b <= n]
    return out


@st.composite
def stacks(draw):
    """An input shape and a random layer stack, biased towards stacks that can run."""
    rank = draw(st.integers(1, 3))
    input_shape = tuple(draw(st.lists(st.integers(1, 10), min_size=rank, max_size=rank)))
    layers = []
    shape = input_shape
    for i in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(sorted(CATALOGUE)))
        entry = CATALOGUE[kind]
        params = {}
        for p in entry.params:
            if p.name == "shape":
                n = math.prod(shape) if shape is not None else 12
                valid = draw(st.sampled_from(_factorisations(n)))
                wild = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3))
                params["shape"] = valid if draw(st.booleans()) else wild
            elif p.name in _PARAM_DRAWS:
                params[p.name] = draw(_PARAM_DRAWS[p.name])
        layer, problems = parse_layer({kind: params}, i)
        assert not problems, problems
        layers.append(layer)
        rows, shape_problems, _ = infer_shapes(layers, input_shape)
        shape = tuple(rows[-1].output_shape) if not shape_problems else None
    return input_shape, layers


def _run_layer_by_layer(model: torch.nn.Sequential, x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes = []
    for module in model:
        x = module(x)
        shapes.append(tuple(x.shape[1:]))
    return shapes


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_checker_agrees_with_torch(case):
    input_shape, layers = case
    rows, problems, _ = infer_shapes(layers, input_shape)
    if not problems:
        model = build_layers(layers, [tuple(r.input_shape) for r in rows]).eval()
        with torch.no_grad():
            shapes = _run_layer_by_layer(model, torch.randn(2, *input_shape))
        assert shapes == [tuple(r.output_shape) for r in rows]
        for module, row in zip(model, rows):
            assert sum(p.numel() for p in module.parameters()) == row.params, row
        return
    # Rejected: the broken layer is marked, and a window problem is one torch has too.
    problem = problems[0]
    broken = rows[problem.layer]
    assert broken.status == "error" and broken.input_shape is not None
    assert all(r.status == "unchecked" for r in rows[problem.layer + 1:])
    assert problem.where == f"layer {problem.layer + 1} ({broken.kind})" and problem.category == "shape"
    if problem.field and problem.field.endswith((".field", ".pad")):
        layer = layers[problem.layer]
        with pytest.raises(RuntimeError):
            module = CATALOGUE[layer.kind].factory(tuple(broken.input_shape), layer.params)
            module(torch.randn(2, *broken.input_shape))


def test_generator_produces_both_outcomes():
    """Guard the strategy itself: it must reach accepted and rejected stacks in fair numbers."""
    outcomes = {"ok": 0, "rejected": 0}

    @settings(max_examples=200, deadline=None, database=None)
    @given(stacks())
    def count(case):
        _, problems, _ = infer_shapes(case[1], case[0])
        outcomes["rejected" if problems else "ok"] += 1

    count()
    assert outcomes["ok"] >= 30 and outcomes["rejected"] >= 30, outcomes
