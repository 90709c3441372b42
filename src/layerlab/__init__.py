"""layerlab: a lab bench for small neural networks.

Build a model from layers, see whether its shapes flow (and if not, which layer breaks and
how to fix it), train it, and compare runs. The top-level names load lazily, so that
``import layerlab.store`` in a worker or the server does not pay for importing torch.
"""
from __future__ import annotations

import importlib

from .errors import DataError, LayerlabError, Problem, SpecError, StoreError

__version__ = "0.1.0"

_LAZY = {"build": "builder", "check": "shapes", "CheckResult": "shapes", "load_spec": "spec", "Spec": "spec"}

__all__ = ["build", "check", "load_spec", "Spec", "CheckResult", "Problem",
           "LayerlabError", "SpecError", "DataError", "StoreError", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'layerlab' has no attribute {name!r}")
