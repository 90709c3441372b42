"""What every CLI command shares: consoles, JSON output, and user errors mapped to exit 2.

Library code raises typed errors and never prints; this module decides what reaches the
terminal. Every command registered through ``LabTyper`` turns a ``LayerlabError`` into its
message on stderr and exit code 2, so the CLI shows the same words the API returns.
"""
from __future__ import annotations

import functools
import json
import math
import sys
from typing import Any

import typer
from rich.console import Console

from .errors import LayerlabError, Problem, SpecError

__all__ = ["LabTyper", "out", "err", "print_json", "print_problems", "report_error", "error_json", "json_safe",
           "escape_markup"]

# Off a terminal (pipes, CI logs, tests) rich would assume 80 columns and truncate tables.
_WIDTH = None if sys.stdout.isatty() else 160
out = Console(highlight=False, width=_WIDTH)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def json_safe(value: Any) -> Any:
    """NaN and infinities become the strings 'NaN', 'Infinity', '-Infinity' (valid JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(json_safe(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_problems(problems: list[Problem], warnings: list[Problem] = ()) -> None:
    """Each problem as '✗ where: message' with its fix below; warnings as '!' lines."""
    for p in problems:
        where = f"with {p.context}: " if p.context else ""
        where += f"{p.where}: " if p.where else ""
        err.print(f"[red]✗[/] {_escape(where)}{_escape(p.message)}")
        if p.hint:
            err.print(f"    [dim]fix:[/] {_escape(p.hint)}")
    for w in warnings:
        err.print(f"[yellow]![/] {_escape(w.message)}")
        if w.hint:
            err.print(f"    [dim]consider:[/] {_escape(w.hint)}")


def error_json(exc: LayerlabError) -> dict:
    """A user error as data: what ``--json`` commands print and the API returns."""
    body: dict[str, Any] = {"error": type(exc).__name__, "detail": str(exc)}
    if isinstance(exc, SpecError):
        body["problems"] = [p.to_dict() for p in exc.problems]
        if len(exc.problems) > 1:
            body["detail"] = f"invalid spec: {len(exc.problems)} problems: " + "; ".join(map(str, exc.problems))
    return body


def report_error(exc: LayerlabError, *, as_json: bool = False) -> None:
    """Print a user error: JSON on stdout for --json, else the message (each problem with its fix)."""
    if as_json:
        print_json(error_json(exc))
    elif isinstance(exc, SpecError):
        err.print(f"[bold red]error:[/] {len(exc.problems)} problem(s)" if len(exc.problems) > 1
                  else "[bold red]error:[/] invalid spec")
        print_problems(exc.problems)
    else:
        err.print(f"[bold red]error:[/] {_escape(str(exc))}")


def escape_markup(text: str) -> str:
    """Text for a rich console or table cell, shown as written (``[low, high]`` is not markup)."""
    from rich.markup import escape
    return escape(text)


_escape = escape_markup


class LabTyper(typer.Typer):
    """A Typer app whose commands map LayerlabError to a message and exit code 2."""

    def __init__(self, **kwargs):
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("pretty_exceptions_enable", False)
        kwargs.setdefault("add_completion", False)
        super().__init__(**kwargs)

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(fn):
            @functools.wraps(fn)
            def wrapper(*a, **k):
                try:
                    return fn(*a, **k)
                except LayerlabError as exc:
                    report_error(exc, as_json=bool(k.get("json_out")))
                    raise typer.Exit(exc.exit_code) from None
            register(wrapper)
            return fn
        return decorator
