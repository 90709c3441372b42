"""Numbers as people read them, one rule for every view (CLI, report, studies, plots).

Probabilities and accuracies print truthfully: a NaN (or the JSON string "NaN" the trainer
writes for it) prints as ``NaN%``, never as 0% or an error; a missing value prints as "—".
"""
from __future__ import annotations

import math
from typing import Any

__all__ = ["pct"]


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
