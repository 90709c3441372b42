"""Request bodies, validated by pydantic before a route sees them (extra fields are refused)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RunCreate", "RunRename", "SpecText", "SpecExport", "MAX_SPEC_TEXT"]

MAX_SPEC_TEXT = 200_000  # characters of an uploaded YAML/JSON spec (the body limit is 256 KiB)

_STRICT = ConfigDict(extra="forbid")


class RunCreate(BaseModel):
    """Start a run: the spec as data (what /api/check accepts) and an optional run name."""

    model_config = _STRICT
    spec: dict[str, Any] = Field(..., description="spec data: {name, data, model, train}")
    name: str | None = Field(None, min_length=1, max_length=200, description="run name (default: the spec's)")


class RunRename(BaseModel):
    model_config = _STRICT
    name: str = Field(..., min_length=1, max_length=200)


class SpecText(BaseModel):
    """An uploaded spec file's text; parsed as data only (yaml.safe_load / json.loads)."""

    model_config = _STRICT
    text: str = Field(..., max_length=MAX_SPEC_TEXT)
    format: Literal["auto", "yaml", "json"] = "auto"
    filename: str | None = Field(None, max_length=200, description="only used to guess the format")


class SpecExport(BaseModel):
    model_config = _STRICT
    spec: dict[str, Any]
    format: Literal["yaml", "json"] = "yaml"
