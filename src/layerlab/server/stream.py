"""Server-sent events for one run: new metric rows, events and status changes as they are stored.

The store is the one source of truth, so the stream works the same for runs of this server's
workers, of ``layerlab train`` in a terminal, or of any other process writing to the store.
Every ``poll`` seconds the generator asks the store (in a thread: the calls block) for events
and metric rows after the last ids it sent. Messages (``event:`` name, JSON ``data:``):

* ``run``      the run's summary; first, and again after every status change
* ``metrics``  ``{"rows": [{id, name, step, examples, wall_time, value}, ...]}`` in id order
* one message per store event, named by its kind (``status``, ``prediction``, ``diagnosis``,
  ``divergence``, ``epoch``, ...): ``{id, kind, payload, time}`` in id order
* ``end``      ``{"status", "run"}`` once the run is over (not queued or running) and every row
  written before that has been sent; then the stream closes.

Each message's ``id:`` is the cursor ``<metric id>-<event id>`` after it, so a client that
reconnects with ``Last-Event-ID`` (EventSource does so by itself) resumes where it left off.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from typing import AsyncIterator, Awaitable, Callable

from ..cli_support import json_safe
from ..studies.record import is_record
from ..train.results import RunResults

__all__ = ["run_stream", "parse_cursor", "run_summary", "ACTIVE_STATUSES"]

ACTIVE_STATUSES = ("queued", "running")
_CURSOR = re.compile(r"^\s*(\d{1,18})-(\d{1,18})\s*$")
_KIND = re.compile(r"[^a-z0-9_]")
METRIC_BATCH = 5000
EVENT_BATCH = 500
KEEPALIVE_S = 15.0
RECHECK_S = 3.0  # re-read the run itself this often (a dead trainer writes no status event)


def parse_cursor(text: str | None) -> tuple[int, int]:
    """``"12-5"`` -> (12, 5); anything else -> (0, 0) (start from the beginning)."""
    m = _CURSOR.match(text or "")
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def run_summary(run: dict) -> dict:
    """The run without its spec and bulky results, for lists and stream headers."""
    results = RunResults.from_json(run.get("results")) if not is_record(run) else None
    end = run.get("finished_at") or (time.time() if run.get("status") == "running" else None)
    duration = end - run["started_at"] if run.get("started_at") and end else None
    return {
        "id": run["id"], "name": run["name"], "status": run["status"], "dataset": run["dataset"],
        "model": run["model"], "seed": run.get("seed"), "device": run.get("device"),
        "created_at": run["created_at"], "started_at": run.get("started_at"), "finished_at": run.get("finished_at"),
        "updated_at": run.get("updated_at"), "duration_s": duration, "step": run.get("step"),
        "examples": run.get("examples"), "best_test_accuracy": run.get("best_test_accuracy"),
        "test_accuracy": results.test_accuracy if results else None, "diagnosis": run.get("diagnosis"),
        "error": run.get("error"), "stop_requested": run.get("stop_requested"),
        "host": run.get("host"), "pid": run.get("pid"),
    }


def _message(event: str, data, cursor: tuple[int, int]) -> str:
    text = json.dumps(json_safe(data), separators=(",", ":"), allow_nan=False)
    return f"id: {cursor[0]}-{cursor[1]}\nevent: {event}\ndata: {text}\n\n"


async def run_stream(store, run_id: int, *, cursor: tuple[int, int] = (0, 0), poll: float = 0.3,
                     is_disconnected: Callable[[], Awaitable[bool]] | None = None,
                     shutting_down: Callable[[], bool] | None = None) -> AsyncIterator[str]:
    """Yield SSE text for run ``run_id`` from ``cursor`` until the run is over (see module doc)."""
    m_after, e_after = cursor
    run = await asyncio.to_thread(store.get_run, run_id)
    yield "retry: 2000\n\n"
    yield _message("run", run_summary(run), (m_after, e_after))
    status = run["status"]
    last_check = last_sent = time.monotonic()
    while True:
        if is_disconnected is not None and await is_disconnected():
            return
        if shutting_down is not None and shutting_down():
            return
        over = status not in ACTIVE_STATUSES  # judged before reading rows: they are all stored by now
        events = await asyncio.to_thread(store.events, run_id, after_id=e_after, limit=EVENT_BATCH)
        rows = await asyncio.to_thread(store.metrics, run_id, after_id=m_after, limit=METRIC_BATCH)
        if rows:
            m_after = rows[-1]["id"]
            yield _message("metrics", {"rows": rows}, (m_after, e_after))
        status_changed = False
        for ev in events:
            e_after = ev["id"]
            yield _message(_KIND.sub("_", ev["kind"].lower()) or "event",
                           {"id": ev["id"], "kind": ev["kind"], "payload": ev["payload"], "time": ev["time"]},
                           (m_after, e_after))
            if ev["kind"] == "status":
                status_changed = True
        if rows or events:
            last_sent = time.monotonic()
        full = len(rows) == METRIC_BATCH or len(events) == EVENT_BATCH
        now = time.monotonic()
        if status_changed or now - last_check >= RECHECK_S:
            last_check = now
            run = await asyncio.to_thread(store.get_run, run_id)
            if run["status"] != status or status_changed:
                status = run["status"]
                yield _message("run", run_summary(run), (m_after, e_after))
            continue  # read once more: rows written before the new status are then surely seen
        if over and not full and not rows and not events:
            yield _message("end", {"status": status, "run": run}, (m_after, e_after))
            return
        if full:
            continue
        if now - last_sent >= KEEPALIVE_S:
            last_sent = now
            yield ": keep-alive\n\n"
        await asyncio.sleep(poll)
