"""``nn``, ``init`` and ``torch`` that import PyTorch on first use, not when the catalogue loads.

The layer catalogue and the initialisers name torch classes in their factories, but checking
shapes, validating a spec, printing a summary or listing the catalogue never calls a factory.
Importing torch costs about a second, so ``layerlab validate`` and ``--help`` stay
torch-free (tests/test_cli_imports.py) while ``build`` gets the real modules.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["torch", "nn", "init"]


class _Lazy:
    """A module, imported the first time one of its attributes is read."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name}>"


torch = _Lazy("torch")
nn = _Lazy("torch.nn")
init = _Lazy("torch.nn.init")
