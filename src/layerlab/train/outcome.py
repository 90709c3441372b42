"""A run's verdict: did it learn? One definition for the dashboard badge, ``runs show``, ``runs list`` and the report.

The store's ``status`` says how a run *ended* (finished, stopped, diverged); a run that finished its budget at
chance accuracy ended normally but learned nothing, and every view must say so the same way. ``outcome(results)``
reads only :class:`~layerlab.train.results.RunResults` fields (no torch, no store), so it is computed once, when the
results are built or read back (``RunResults.__post_init__``), and served with them (docs/metrics.md, "Outcome").
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:  # pragma: no cover
    from .results import RunResults

__all__ = ["Outcome", "outcome", "run_outcome", "CHANCE_FACTOR", "NOT_LEARNING", "OUTCOME_KINDS"]

CHANCE_FACTOR = 1.5  # final test accuracy at most 1.5 × chance (15% on ten classes): it learned nothing
NOT_LEARNING = ("zero_init", "zero_gradients", "flat_loss")  # findings that mean the weights did not learn
OUTCOME_KINDS = ("learned", "failed_to_learn", "diverged", "stopped")


class Outcome(TypedDict):
    kind: str       # learned | failed_to_learn | diverged | stopped
    label: str      # what the badge says: "finished", "failed to learn", "diverged", "stopped"
    text: str | None  # the cause in evidence (failed_to_learn, diverged); None otherwise


def _pct(x: float) -> str:
    return "NaN%" if math.isnan(x) else f"{100 * x:.1f}%"


def outcome(r: "RunResults") -> Outcome:
    """The verdict on ``r``: ``failed_to_learn`` when a finished classification run's final test
    accuracy is at most ``CHANCE_FACTOR`` / classes, or a not-learning finding says the weights never learned."""
    if r.status == "diverged":
        return {"kind": "diverged", "label": "diverged", "text": r.diagnosis}
    classes = len(r.confusion["classes"]) if r.confusion and r.confusion.get("classes") else None
    acc = r.test_accuracy
    at_chance = r.status == "finished" and classes is not None and isinstance(acc, (int, float)) and \
        (math.isnan(acc) or acc <= CHANCE_FACTOR / classes)
    stuck = [d for d in r.diagnoses if d.get("kind") in NOT_LEARNING]
    if at_chance or stuck:
        parts = [f"test accuracy {_pct(acc)} is chance level (1 in {classes})"] if at_chance else []
        parts += [d["text"] for d in r.diagnoses if d.get("kind") != "diverged" and d.get("text")]
        return {"kind": "failed_to_learn", "label": "failed to learn", "text": "; ".join(parts)}
    if r.status == "stopped":
        return {"kind": "stopped", "label": "stopped", "text": None}
    return {"kind": "learned", "label": "finished", "text": None}


def run_outcome(run: dict) -> Outcome | None:
    """The outcome of a run as the store holds it (None before it has results, or for a study's record)."""
    from ..studies.record import is_record
    from .results import RunResults
    if is_record(run):
        return None
    results = RunResults.from_json(run.get("results"))
    return results.outcome if results is not None else None
