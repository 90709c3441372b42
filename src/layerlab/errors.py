"""Typed user-facing errors.

User errors are not assertions (Starlette): bad input raises one of these, the CLI maps
them to exit code 2 and the API to a 4xx response, and the message is shown unchanged.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["LayerlabError", "Problem", "SpecError", "DataError", "StoreError"]


class LayerlabError(Exception):
    """Base class of every error caused by the user's input or environment."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, said so a student can fix it.

    ``layer`` is the 0-based index in ``model`` (None when the problem is not one layer's),
    ``field`` the dotted path of the offending field, ``hint`` the proposed fix.
    """

    message: str
    hint: str = ""
    layer: int | None = None
    kind: str | None = None
    field: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = self.field or (f"model[{self.layer}]" if self.layer is not None else "")
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} (fix: {self.hint})" if self.hint else text


class SpecError(LayerlabError):
    """A spec that cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class DataError(LayerlabError):
    """A data set that cannot be found, fetched, verified or read."""


class StoreError(LayerlabError):
    """A run or artifact that is missing, or a store that cannot be used."""
