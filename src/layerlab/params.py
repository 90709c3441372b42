"""Declared parameters and the one message template for bad values.

A ``Param`` says a parameter's type, default, range and meaning once; from it come the
pydantic validator (so layers, initialisers and training settings all reject bad values
with the same words), the JSON schema the browser draws forms from, and the docs.
Constraints produce the message, as in scikit-learn's ``_param_validation``:
``model[3].conv2d.stride: must be >= 1, got 0``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

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
        if self.type is float:
            out["finite"] = True  # NaN and infinities are refused (see _STRICT)
        return out


# allow_inf_nan=False: every float parameter must be finite (an inf slope or std is never meant).
_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


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
    if value is None:  # an empty field in the browser, `units:` with no value in YAML
        return "nothing (the field is empty)"
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


def _example(default: Any, ok: Callable[[Any], bool] = lambda v: True) -> str:
    """', e.g. 10' from the field's default, when it has one that the rule accepts."""
    if default is None or isinstance(default, (dict, bool)) or not ok(default):
        return ""
    return f", e.g. {_got(default)}"


def _hint(err: dict, name: str, default: Any, known: list[str]) -> str:
    """The fix for one pydantic error, in the same words everywhere: 'set units to 1 or more, e.g. 10'."""
    kind, ctx = err["type"], err.get("ctx", {})

    def bound(op):
        return lambda v: isinstance(v, (int, float)) and op(v)

    templates: dict[str, Callable[[], str]] = {
        "greater_than_equal": lambda: f"set {name} to {ctx.get('ge')} or more"
                                      + _example(default, bound(lambda v: v >= ctx.get("ge"))),
        "greater_than": lambda: f"set {name} to more than {ctx.get('gt')}"
                                + _example(default, bound(lambda v: v > ctx.get("gt"))),
        "less_than_equal": lambda: f"set {name} to {ctx.get('le')} or less"
                                   + _example(default, bound(lambda v: v <= ctx.get("le"))),
        "less_than": lambda: f"set {name} to less than {ctx.get('lt')}"
                             + _example(default, bound(lambda v: v < ctx.get("lt"))),
        "literal_error": lambda: f"use one of {ctx.get('expected')}",
        "extra_forbidden": lambda: f"remove {name!r}" + (f" or use one of: {', '.join(known)}" if known else ""),
        "missing": lambda: f"add {name}" + _example(default),
        "int_type": lambda: f"write {name} as a whole number" + _example(default),
        "int_from_float": lambda: f"write {name} as a whole number" + _example(default),
        "int_parsing": lambda: f"write {name} as a whole number" + _example(default),
        "float_type": lambda: f"write {name} as a number" + _example(default),
        "float_parsing": lambda: f"write {name} as a number" + _example(default),
        "finite_number": lambda: f"set {name} to a finite number" + _example(default),
        "bool_type": lambda: f"write {name} as true or false",
        "bool_parsing": lambda: f"write {name} as true or false",
        "string_type": lambda: f"write {name} as a name" + _example(default),
        "list_type": lambda: f"write {name} as a list" + _example(default),
        "too_short": lambda: f"give {name} at least {ctx.get('min_length')} items",
        "too_long": lambda: f"give {name} at most {ctx.get('max_length')} items",
    }
    make = templates.get(kind)
    return make() if make else f"check the value of {name}" + _example(default)


def _field_name(loc: tuple) -> str:
    """The name a user wrote for the field: the last named part of its path."""
    return next((str(p) for p in reversed(loc) if isinstance(p, str)), "the value")


def problems_from_validation(exc: ValidationError, *, prefix: tuple = (), known: list[str] | None = None,
                             layer: int | None = None, kind: str | None = None,
                             defaults: dict[str, Any] | None = None) -> list[Problem]:
    """Every error of a pydantic ValidationError as a Problem with the field's full path and a fix.

    A value no member of a union accepts gives one problem: 'must be a string or a mapping, got 5'.
    ``defaults`` (field name -> default) give the fixes their examples.
    """
    by_path: dict[str, tuple[tuple, list[dict]]] = {}
    for err in exc.errors():
        loc = tuple(prefix) + tuple(p for p in err["loc"] if not _is_union_tag(p))
        by_path.setdefault(format_path(loc), (loc, []))[1].append(err)
    problems = []
    for path, (loc, errs) in by_path.items():
        messages = [_message(err, known or []) for err in errs]
        if len(messages) > 1 and all(", got " in m and m.startswith("must be ") for m in messages):
            wanted = " or ".join(m[len("must be "):m.rindex(", got ")] for m in messages)
            messages = [f"must be {wanted}{messages[0][messages[0].rindex(', got '):]}"]
        name = _field_name(loc)
        for err, message in zip(errs, messages):
            hint = _hint(err, name, (defaults or {}).get(name), known or [])
            problems.append(Problem(message=message, hint=hint, layer=layer, kind=kind, field=path))
    return problems


def validate_params(model: type[BaseModel], values: dict, *, prefix: tuple, known: list[str],
                    layer: int | None = None, kind: str | None = None,
                    defaults: dict[str, Any] | None = None) -> tuple[dict, list[Problem]]:
    """Validate ``values`` against a params model: (clean values with defaults, problems)."""
    try:
        return model.model_validate(values).model_dump(), []
    except ValidationError as exc:
        return {}, problems_from_validation(exc, prefix=prefix, known=known, layer=layer, kind=kind,
                                            defaults=defaults)
