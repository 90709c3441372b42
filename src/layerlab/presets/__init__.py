"""Named model presets: the Model Builder's, the practicum's and the Keras examples' models.

Each preset is a complete spec in a YAML file beside this module, plus a one-line
``description``; ``model: preset/NAME`` in any spec reuses a preset's layers.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources

import yaml

__all__ = ["preset_names", "preset_data", "preset_description"]


@lru_cache(maxsize=1)
def _all() -> dict[str, dict]:
    out = {}
    for item in sorted(resources.files(__package__).iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            out[item.name[: -len(".yaml")]] = yaml.safe_load(item.read_text(encoding="utf-8"))
    return out


def preset_names() -> list[str]:
    return list(_all())


def preset_data(name: str) -> dict:
    """The preset's spec data (a fresh copy, without its description)."""
    data = copy.deepcopy(_all()[name])
    data.pop("description", None)
    return data


def preset_description(name: str) -> str:
    return _all()[name].get("description", "")
