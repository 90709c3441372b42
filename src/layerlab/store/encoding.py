"""What the store's text columns hold: JSON in and out, and a spec's one-line summaries.

In one place so that every writer encodes alike: NaN and inf survive a round trip (a
diverged run's results must read back as NaN, not fail), pydantic models, NumPy/torch
values and paths become plain JSON, and anything else is a :class:`StoreError` naming what
could not be stored. The ``dataset``/``model``/``seed`` columns are denormalised from the
spec here so that listing and searching runs needs no JSON parsing in SQL.
"""
from __future__ import annotations

import json
import os
from typing import Any

from ..errors import StoreError

__all__ = ["dumps", "loads", "as_dict", "dataset_of", "model_summary", "seed_of"]


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):  # pydantic models
        return obj.model_dump(mode="json")
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON data")


def dumps(obj: Any, what: str) -> str:
    """JSON text; NaN and inf are written as ``NaN``/``Infinity`` so they read back."""
    try:
        return json.dumps(obj, allow_nan=True, default=_json_default, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise StoreError(f"cannot store {what}: {e}") from None


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def as_dict(spec: Any) -> dict:
    """The spec as JSON data: a dict as is, a ``layerlab.spec.Spec`` by ``to_dict()``."""
    if hasattr(spec, "to_dict"):
        spec = spec.to_dict()
    elif hasattr(spec, "model_dump"):
        spec = spec.model_dump(mode="json")
    if not isinstance(spec, dict):
        raise StoreError(f"a run's spec must be a dict. Received: {type(spec).__name__}")
    return spec


def dataset_of(spec: dict) -> str:
    """The data set's name, wherever a spec keeps it (``data: {dataset: mnist}``, ``data: mnist``)."""
    data = spec.get("data", spec.get("dataset"))
    if isinstance(data, dict):
        data = data.get("dataset", data.get("name"))
    return str(data) if data is not None else ""


def model_summary(spec: dict) -> str:
    """Layer kinds in order, ``flatten-fc128-relu-fc10``, as ``Spec.model_label()`` writes them.

    Layers may be ``"relu"``, ``{"fc": {"units": 128}}`` or ``{"kind": "fc", "units": 128}``.
    """
    model = spec.get("model")
    if isinstance(model, dict):
        model = model.get("layers")
    if not isinstance(model, list):
        return ""
    parts = []
    for layer in model:
        kind, params = str(layer), {}
        if isinstance(layer, dict) and "kind" in layer:
            kind, params = str(layer["kind"]), layer.get("params", layer)
        elif isinstance(layer, dict) and len(layer) == 1:
            kind, params = next(iter(layer.items()))
        units = params.get("units") if isinstance(params, dict) else None
        parts.append(f"{kind}{units}" if units is not None else str(kind))
    return "-".join(parts)[:500]


def seed_of(spec: dict) -> int | None:
    for section in (spec, spec.get("train"), spec.get("training")):
        if isinstance(section, dict) and isinstance(section.get("seed"), int):
            return section["seed"]
    return None
