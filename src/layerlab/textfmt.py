"""Numbers as people read them, one rule for every view (CLI, report, studies, plots).

Probabilities and accuracies print truthfully: a NaN (or the JSON string "NaN" the trainer
writes for it) prints as ``NaN%``, never as 0% or an error; a missing value prints as "—".
"""
from __future__ import annotations

import math
from typing import Any

__all__ = ["pct", "label_test_set", "file_stem"]


def pct(value: Any, digits: int = 2) -> str:
    """0.8608 -> '86.08%'; None -> '—'; NaN, 'NaN' or any non-numeric text -> 'NaN%'."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return "NaN%"
    value = float(value)
    if math.isnan(value):
        return "NaN%"
    return f"{100 * value:.{digits}f}%"


def label_test_set(examples: Any, split_size: Any) -> str:
    """What a test number was measured on: 'full test set', or '64 of 10,000 test examples' for a
    ``data.test_size`` subset; '' when the sizes are not known (runs stored before they were kept)."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (examples, split_size)):
        return ""
    if examples >= split_size:
        return "full test set"
    return f"{examples:,} of {split_size:,} test examples"


def file_stem(name: str, *, limit: int, default: str, strip: str = "") -> str:
    """``name`` as a download's file name: letters, digits, ``-_.`` kept, anything else ``-``; at most
    ``limit`` characters (after stripping ``strip`` from both ends), ``default`` when nothing is left."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(strip)[:limit]
    return safe or default
