"""Server-sent events for one run: new metric rows, events and status changes as they are stored.

The store is the one source of truth, so the stream works the same for runs of this server's
workers, of ``layerlab train`` in a terminal, or of any other process writing to the store.
One reader per run (``_Feed``) asks the store every ``poll`` seconds (in a thread: the calls
block) for events and metric rows after the last ids it read and hands them to every client
streaming that run, so 500 viewers cost one poll, not 500. Messages (``event:`` name, JSON
``data:``):

* ``run``      the run's summary; first, and again after every status change
* ``metrics``  ``{"rows": [{id, name, step, examples, wall_time, value}, ...]}`` in id order
* one message per store event, named by its kind (``status``, ``stage``, ``prediction``,
  ``diagnosis``, ``divergence``, ``epoch``, ...): ``{id, kind, payload, time}`` in id order
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
import weakref
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
        "examples": run.get("examples"),
        "best_test_accuracy": results.best_test_accuracy if results else run.get("best_test_accuracy"),
        "test_accuracy": results.test_accuracy if results else None, "diagnosis": run.get("diagnosis"),
        "error": run.get("error"), "stop_requested": run.get("stop_requested"),
        "host": run.get("host"), "pid": run.get("pid"), **_training(run, results),
    }


def _training(run: dict, results: RunResults | None) -> dict:
    """The optimiser, lr and parameter count the runs table shows, and the verdict once there are results."""
    train = ((run.get("spec") or {}).get("train") or {}) if isinstance(run.get("spec"), dict) else {}
    lr = train.get("lr")
    return {"optimizer": train.get("optimizer"), "lr": lr if isinstance(lr, (int, float)) else None,
            "params": results.params if results else None, "outcome": results.outcome if results else None}


def _message(event: str, data, cursor: tuple[int, int]) -> str:
    text = json.dumps(json_safe(data), separators=(",", ":"), allow_nan=False)
    return f"id: {cursor[0]}-{cursor[1]}\nevent: {event}\ndata: {text}\n\n"


class _Feed:
    """One reader of a run's new rows for every client streaming it, so N viewers cost one poll, not N.

    It starts at what is stored when it starts, reads new events and metric rows every ``poll``
    seconds (re-reading the run every ``RECHECK_S`` and after a status event), and hands each
    batch, as it is, to every subscriber's queue: ``("rows", rows, events)``, ``("run", run)``
    on a status change, and ``("end", run)`` once the run is over and everything is read.
    """

    def __init__(self, store, run_id: int, poll: float, hub: dict):
        self.store, self.run_id, self.poll, self.hub = store, run_id, poll, hub
        self.queues: set[asyncio.Queue] = set()
        self.done = False
        self.task = asyncio.get_running_loop().create_task(self._read())

    def _publish(self, item: tuple) -> None:
        for q in self.queues:
            q.put_nowait(item)

    async def _read(self) -> None:
        store, run_id = self.store, self.run_id
        try:
            m_after, e_after = await asyncio.to_thread(store.last_ids, run_id)
            run = await asyncio.to_thread(store.get_run, run_id)
            status, last_check = run["status"], time.monotonic()
            while self.queues:
                over = status not in ACTIVE_STATUSES  # judged before reading: its rows are all stored by now
                events = await asyncio.to_thread(store.events, run_id, after_id=e_after, limit=EVENT_BATCH)
                rows = await asyncio.to_thread(store.metrics, run_id, after_id=m_after, limit=METRIC_BATCH)
                m_after = rows[-1]["id"] if rows else m_after
                e_after = events[-1]["id"] if events else e_after
                if rows or events:
                    self._publish(("rows", rows, events))
                full = len(rows) == METRIC_BATCH or len(events) == EVENT_BATCH
                now = time.monotonic()
                if any(ev["kind"] == "status" for ev in events) or now - last_check >= RECHECK_S:
                    last_check = now
                    run = await asyncio.to_thread(store.get_run, run_id)
                    if run["status"] != status:
                        status = run["status"]
                        self._publish(("run", run))
                    continue  # read once more: rows written before the new status are then surely seen
                if over and not full:
                    self._publish(("end", run))
                    return
                if not full:
                    await asyncio.sleep(self.poll)
        except Exception as exc:  # noqa: BLE001 - the store failed: every viewer is told, none hangs
            self._publish(("error", exc))
        finally:
            self.done = True
            if self.hub.get(run_id) is self:
                del self.hub[run_id]


_HUBS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # store -> {event loop -> {run_id: _Feed}}


def _subscribe(store, run_id: int, poll: float) -> tuple[_Feed, asyncio.Queue]:
    loops = _HUBS.setdefault(store, {})
    hub = loops.setdefault(asyncio.get_running_loop(), {})
    feed = hub.get(run_id)
    if feed is None or feed.done:
        feed = hub[run_id] = _Feed(store, run_id, poll, hub)
    queue: asyncio.Queue = asyncio.Queue()
    feed.queues.add(queue)
    return feed, queue


async def run_stream(store, run_id: int, *, cursor: tuple[int, int] = (0, 0), poll: float = 0.3,
                     is_disconnected: Callable[[], Awaitable[bool]] | None = None,
                     shutting_down: Callable[[], bool] | None = None) -> AsyncIterator[str]:
    """Yield SSE text for run ``run_id`` from ``cursor`` until the run is over (see module doc).

    The client subscribes to the run's shared ``_Feed`` first, then reads what is stored after
    its cursor itself (a reconnect's backlog); from then on it forwards the feed's batches,
    skipping rows it already sent, so no row is missed or sent twice.
    """
    m_after, e_after = cursor
    run = await asyncio.to_thread(store.get_run, run_id)
    yield "retry: 2000\n\n"
    yield _message("run", run_summary(run), (m_after, e_after))
    feed, queue = _subscribe(store, run_id, poll)
    try:
        while True:  # the backlog, read by this client alone
            events = await asyncio.to_thread(store.events, run_id, after_id=e_after, limit=EVENT_BATCH)
            rows = await asyncio.to_thread(store.metrics, run_id, after_id=m_after, limit=METRIC_BATCH)
            for text, m_after, e_after in _batch(rows, events, m_after, e_after):
                yield text
            if len(rows) < METRIC_BATCH and len(events) < EVENT_BATCH:
                break
        last_sent = time.monotonic()
        while True:
            if (is_disconnected is not None and await is_disconnected()) or (shutting_down and shutting_down()):
                return
            try:
                item = await asyncio.wait_for(queue.get(), timeout=min(1.0, KEEPALIVE_S))
            except asyncio.TimeoutError:
                if time.monotonic() - last_sent >= KEEPALIVE_S:
                    last_sent = time.monotonic()
                    yield ": keep-alive\n\n"
                continue
            last_sent = time.monotonic()
            if item[0] == "rows":
                for text, m_after, e_after in _batch(item[1], item[2], m_after, e_after):
                    yield text
            elif item[0] == "run":
                yield _message("run", run_summary(item[1]), (m_after, e_after))
            elif item[0] == "end":
                yield _message("end", {"status": item[1]["status"], "run": item[1]}, (m_after, e_after))
                return
            else:
                raise item[1]
    finally:
        feed.queues.discard(queue)


def _batch(rows: list[dict], events: list[dict], m_after: int, e_after: int):
    """SSE messages for the rows and events after the client's cursor: ``(text, m_after, e_after)``."""
    rows = [r for r in rows if r["id"] > m_after]
    if rows:
        m_after = rows[-1]["id"]
        yield _message("metrics", {"rows": rows}, (m_after, e_after)), m_after, e_after
    for ev in events:
        if ev["id"] <= e_after:
            continue
        e_after = ev["id"]
        yield (_message(_KIND.sub("_", ev["kind"].lower()) or "event",
                        {"id": ev["id"], "kind": ev["kind"], "payload": ev["payload"], "time": ev["time"]},
                        (m_after, e_after)), m_after, e_after)
