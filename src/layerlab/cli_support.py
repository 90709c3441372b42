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

from .errors import LayerlabError, SpecError

__all__ = ["LabTyper", "out", "err", "print_json", "report_error", "json_safe"]

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


def report_error(exc: LayerlabError) -> None:
    """Print a user error; a SpecError lists each problem with its fix."""
    if isinstance(exc, SpecError) and len(exc.problems) > 1:
        err.print(f"[bold red]error:[/] {len(exc.problems)} problems")
        for p in exc.problems:
            err.print(f"  [red]✗[/] {_escape(str(p))}")
    else:
        err.print(f"[bold red]error:[/] {_escape(str(exc))}")


def _escape(text: str) -> str:
    from rich.markup import escape
    return escape(text)


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
                    report_error(exc)
                    raise typer.Exit(exc.exit_code) from None
            register(wrapper)
            return fn
        return decorator
