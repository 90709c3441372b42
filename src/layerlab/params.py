"""Declared parameters and the one message template for bad values.

A ``Param`` says a parameter's type, default, range and meaning once; from it come the
pydantic validator (so layers, initialisers and training settings all reject bad values
with the same words), the JSON schema the browser draws forms from, and the docs.
Constraints produce the message, as in scikit-learn's ``_param_validation``:
``model[3].conv2d.stride: must be >= 1, got 0``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .errors import Problem

__all__ = ["Param", "params_model", "validate_params", "problems_from_validation", "format_path"]


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default, allowed range and a one-line doc."""

    name: str
    type: type
    default: Any
    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None
    accepts: Any = None  # a type annotation wider than `type` allows (e.g. a name or a mapping)

    def annotation(self) -> Any:
        if self.accepts is not None:
            return self.accepts
        if self.choices is not None:
            return Literal[self.choices]  # type: ignore[valid-type]
        if self.type is list:
            return list[int]
        if self.type is float:
            return float
        return self.type

    def field(self) -> Any:
        bounds = {k: v for k, v in (("ge", self.ge), ("gt", self.gt), ("le", self.le), ("lt", self.lt))
                  if v is not None}
        return Field(default=self.default, description=self.doc, **bounds)

    def to_json(self) -> dict:
        """The parameter as the UI and the docs see it."""
        kind = {int: "integer", float: "number", bool: "boolean", str: "string", list: "array"}[self.type]
        out = {"name": self.name, "type": kind, "default": self.default, "doc": self.doc}
        for key in ("ge", "gt", "le", "lt"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out

    def range_text(self) -> str:
        """The allowed values in words, for tables and docs."""
        if self.choices is not None:
            return " | ".join(str(c) for c in self.choices)
        low = f"{self.ge} <=" if self.ge is not None else (f"{self.gt} <" if self.gt is not None else "")
        high = f"<= {self.le}" if self.le is not None else (f"< {self.lt}" if self.lt is not None else "")
        if not (low or high):
            return ""
        return " ".join(p for p in (low, "x", high) if p)


_STRICT = ConfigDict(extra="forbid", strict=True)


def params_model(name: str, params: tuple[Param, ...], *, config: ConfigDict = _STRICT) -> type[BaseModel]:
    """A pydantic model for a parameter table (extra keys forbidden)."""
    fields = {p.name: (p.annotation(), p.field()) for p in params}
    return create_model(name, __config__=config, **fields)  # type: ignore[call-overload]


def format_path(loc: tuple | list) -> str:
    """('model', 3, 'conv2d', 'stride') -> 'model[3].conv2d.stride'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _got(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _message(err: dict, known: list[str]) -> str:
    """Translate one pydantic error into layerlab's template: 'must be ..., got ...'."""
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    templates = {
        "greater_than_equal": lambda: f"must be >= {ctx.get('ge')}, got {_got(value)}",
        "greater_than": lambda: f"must be > {ctx.get('gt')}, got {_got(value)}",
        "less_than_equal": lambda: f"must be <= {ctx.get('le')}, got {_got(value)}",
        "less_than": lambda: f"must be < {ctx.get('lt')}, got {_got(value)}",
        "literal_error": lambda: f"must be one of {ctx.get('expected')}, got {_got(value)}",
        "extra_forbidden": lambda: "unknown field" + (f"; known fields: {', '.join(known)}" if known else ""),
        "missing": lambda: "is required",
        "int_type": lambda: f"must be an integer, got {_got(value)}",
        "int_from_float": lambda: f"must be a whole number, got {_got(value)}",
        "int_parsing": lambda: f"must be an integer, got {_got(value)}",
        "float_type": lambda: f"must be a number, got {_got(value)}",
        "float_parsing": lambda: f"must be a number, got {_got(value)}",
        "bool_type": lambda: f"must be true or false, got {_got(value)}",
        "bool_parsing": lambda: f"must be true or false, got {_got(value)}",
        "string_type": lambda: f"must be a string, got {_got(value)}",
        "list_type": lambda: f"must be a list, got {_got(value)}",
        "dict_type": lambda: f"must be a mapping, got {_got(value)}",
        "model_type": lambda: f"must be a mapping, got {_got(value)}",
        "finite_number": lambda: f"must be a finite number, got {_got(value)}",
        "too_short": lambda: f"must have at least {ctx.get('min_length')} items, got {_got(value)}",
        "too_long": lambda: f"must have at most {ctx.get('max_length')} items, got {_got(value)}",
    }
    make = templates.get(kind)
    return make() if make else err["msg"]


_UNION_TAGS = {"str", "int", "float", "bool", "none", "list", "dict", "function-after", "function-plain"}


def _is_union_tag(part: Any) -> bool:
    """pydantic names the union member an error came from inside the location; users never wrote it."""
    return isinstance(part, str) and ("[" in part or part in _UNION_TAGS)


def problems_from_validation(exc: ValidationError, *, prefix: tuple = (), known: list[str] | None = None,
                             layer: int | None = None, kind: str | None = None) -> list[Problem]:
    """Every error of a pydantic ValidationError as a Problem with the field's full path.

    A value no member of a union accepts gives one problem: 'must be a string or a mapping, got 5'.
    """
    by_path: dict[str, list[dict]] = {}
    for err in exc.errors():
        loc = tuple(prefix) + tuple(p for p in err["loc"] if not _is_union_tag(p))
        by_path.setdefault(format_path(loc), []).append(err)
    problems = []
    for path, errs in by_path.items():
        messages = [_message(err, known or []) for err in errs]
        if len(messages) > 1 and all(", got " in m and m.startswith("must be ") for m in messages):
            wanted = " or ".join(m[len("must be "):m.rindex(", got ")] for m in messages)
            messages = [f"must be {wanted}{messages[0][messages[0].rindex(', got '):]}"]
        for err, message in zip(errs, messages):
            hint = ""
            if err["type"] == "extra_forbidden" and known:
                hint = f"remove {path.rsplit('.', 1)[-1]!r} or use one of: {', '.join(known)}"
            problems.append(Problem(message=message, hint=hint, layer=layer, kind=kind, field=path))
    return problems


def validate_params(model: type[BaseModel], values: dict, *, prefix: tuple, known: list[str],
                    layer: int | None = None, kind: str | None = None) -> tuple[dict, list[Problem]]:
    """Validate ``values`` against a params model: (clean values with defaults, problems)."""
    try:
        return model.model_validate(values).model_dump(), []
    except ValidationError as exc:
        return {}, problems_from_validation(exc, prefix=prefix, known=known, layer=layer, kind=kind)
