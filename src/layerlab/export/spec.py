"""A spec as the text of a file to download: YAML (readable, the default) or JSON.

The server's ``POST /api/spec/export`` and the run export (``layerlab export --format spec``,
``GET /api/runs/{id}/export?format=spec``) both write spec files through ``spec_text``.
"""
from __future__ import annotations

import json

import yaml

__all__ = ["spec_text", "SPEC_MEDIA"]

SPEC_MEDIA = {"yaml": "application/yaml", "json": "application/json"}


def spec_text(spec: dict, fmt: str = "yaml") -> str:
    """``spec`` data as YAML (keys in the spec's order) or indented JSON, ending in a newline."""
    if fmt == "json":
        return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
