"""Durations as people write them: ``90s``, ``2m``, ``1.5m``, ``1h``, or a bare number of minutes.

The one parser of a time budget: ``train.minutes`` reads its value through ``parse_minutes``
(so ``--set train.minutes=90s`` works), and ``layerlab train --time 2m`` only passes its text on
to that field. ``format_minutes`` writes a budget back the way it is usually said.
"""
from __future__ import annotations

import math
import re

__all__ = ["parse_minutes", "format_minutes", "DURATION_HELP"]

DURATION_HELP = "a number of minutes or a duration such as 90s, 2m, 1.5m or 1h"
_UNITS = {"s": 1 / 60, "sec": 1 / 60, "m": 1.0, "min": 1.0, "h": 60.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h)?\s*$", re.IGNORECASE)


def parse_minutes(value) -> float:
    """Minutes from ``2``, ``1.5``, ``"90s"``, ``"2m"``, ``"1.5 min"``, ``"1h"``; ValueError naming the text if not.

    A bare number (or a string holding one) is minutes. The result is finite; its range is the
    caller's to check (``TrainSpec.minutes``: more than 0).
    """
    if isinstance(value, bool):
        raise ValueError(f"must be {DURATION_HELP}, got {value!r}")
    try:
        if isinstance(value, (int, float)):
            minutes = float(value)
        elif isinstance(value, str):
            m = _DURATION.match(value)
            if m is None:
                raise ValueError(f"must be {DURATION_HELP}, got {value!r}")
            minutes = float(m.group(1)) * _UNITS[(m.group(2) or "m").lower()]
        else:
            raise ValueError(f"must be {DURATION_HELP}, got {value!r}")
    except OverflowError:  # an integer beyond any float, e.g. 10**400
        raise ValueError(f"must be a finite duration, got an integer of {len(str(value))} digits") from None
    if not math.isfinite(minutes):
        raise ValueError(f"must be a finite duration, got {value!r}")
    return minutes


def format_minutes(minutes: float | None) -> str:
    """1.5 -> '1.5 min', 0.75 -> '45 s', None -> '—'."""
    if minutes is None:
        return "—"
    if minutes < 1:
        return f"{minutes * 60:.3g} s"
    return f"{minutes:.3g} min"
