"""The stages a run passes through before its first update, recorded as ``stage`` run events.

So the dashboard can say what a run is waiting for instead of "waiting for the first
measurements": ``queued`` (payload ``position``: 1-based place in the server's queue),
``starting`` (a worker process took it; ``warm``: torch was imported already),
``loading_data`` (``resident``: the data set was already in the worker's memory),
``evaluating`` (the untrained model on the test split, step 0) and ``training``. The pool,
the worker and the trainer each record the stages they see; the latest event is the stage.
Pure Python (no torch), so the server's pool can use it.
"""
from __future__ import annotations

import logging

__all__ = ["STAGE_EVENT", "STAGES", "record_stage"]

log = logging.getLogger(__name__)

STAGE_EVENT = "stage"
STAGES = ("queued", "starting", "loading_data", "evaluating", "training")


def record_stage(store, run_id: int, stage: str, **detail) -> None:
    """Store that run ``run_id`` entered ``stage``; a failed write is logged (a display, not the run)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    try:
        store.add_event(run_id, STAGE_EVENT, {"stage": stage, **detail})
    except Exception:  # noqa: BLE001 - losing the stage display must not fail the run
        log.exception("could not record stage %s of run %s", stage, run_id)
