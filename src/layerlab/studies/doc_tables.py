"""Study results as Markdown blocks spliced into docs/studies.md, so its figures come from runs.

``scripts/study_tables.py`` (``make study-tables``) runs each study and replaces the text
between its two marker comments with ``result_markdown(result)``; everything outside the
markers is left as written. A missing or doubled marker is an error naming the study and the
file, and nothing is written.
"""
from __future__ import annotations

import datetime
import os
import platform
import re
import tempfile
from pathlib import Path

from ..errors import LayerlabError
from .record import StudyResult, Table

__all__ = ["begin_marker", "end_marker", "table_markdown", "result_markdown", "replace_block", "write_blocks"]


def begin_marker(name: str) -> str:
    return f"<!-- study-tables {name} begin: written by `make study-tables`, do not edit by hand -->"


def end_marker(name: str) -> str:
    return f"<!-- study-tables {name} end -->"


def _cell(value) -> str:
    text = "—" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table) -> str:
    lines = [f"**{_cell(table.title)}**", "", "| " + " | ".join(_cell(c) for c in table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"*{_cell(table.note)}*"]
    return "\n".join(lines)


def result_markdown(result: StudyResult, *, command: str, quick: bool = False) -> str:
    """One study's block: what ran, where and how long, its tables and its paragraph."""
    import torch
    when = datetime.date.today().isoformat()
    where = f"{os.cpu_count()} CPU cores, {'CUDA' if torch.cuda.is_available() else 'no GPU'}, torch {torch.__version__}"
    head = (f"`{command}`{' (reduced form)' if quick else ''} — {result.title}. Measured {when} on "
            f"{platform.machine()} ({where}) in {result.elapsed_s:.0f} s of wall-clock time (one run; other "
            f"work may have shared the cores).")
    parts = [head, *[table_markdown(t) for t in result.tables]]
    if result.text:
        parts.append(result.text)
    return "\n\n".join(parts)


def replace_block(text: str, name: str, body: str, *, where: str = "docs/studies.md") -> str:
    """``text`` with the block of ``name`` between its markers replaced by ``body``."""
    begin, end = begin_marker(name), end_marker(name)
    pattern = re.compile(re.escape(begin) + r"\n.*?\n?" + re.escape(end), re.S)
    found = len(pattern.findall(text))
    if found != 1:
        raise LayerlabError(f"{where} must hold exactly one block for {name!r} (found {found}); add the two lines "
                            f"{begin!r} and {end!r} where its tables go")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text)


def write_blocks(path: str | Path, blocks: dict[str, str]) -> Path:
    """Replace every block in ``blocks`` in the file at ``path``, atomically (all or nothing)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    for name, body in blocks.items():
        text = replace_block(text, name, body, where=str(path))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
