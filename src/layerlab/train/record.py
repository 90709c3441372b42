"""Where a run's measurements go: the store (batched) and the caller's ``on_event`` callback.

Metric rows are buffered and written with one ``add_metrics`` call about once a second (and
before every checkpoint, so a checkpoint never gets ahead of the rows before it). The store
is asked whether someone requested a stop at most every ``stop_poll`` seconds, and told the
run is alive every ``heartbeat_every`` seconds.

Resume: rows with a step at or below ``metric_floor`` (events: ``event_floor``) already exist
from before the interruption and are not written again; see ``trainer.resume``.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

__all__ = ["Recorder"]

log = logging.getLogger(__name__)


class Recorder:
    def __init__(self, store, run_id: int | None, on_event: Callable[[dict], None] | None = None,
                 stop_event: threading.Event | None = None, *, metric_floor: int = -1, event_floor: int = -1,
                 flush_every: float = 1.0, heartbeat_every: float = 2.0, stop_poll: float = 0.5):
        self.store, self.run_id, self.on_event, self.stop_event = store, run_id, on_event, stop_event
        self.metric_floor, self.event_floor = metric_floor, event_floor
        self.flush_every, self.heartbeat_every, self.stop_poll = flush_every, heartbeat_every, stop_poll
        self.rows: list[tuple[str, int, int, float, float]] = []
        now = time.monotonic()
        self._next_flush = now + flush_every
        self._next_beat = now + heartbeat_every
        self.next_poll = now + stop_poll  # read by the hot loop
        self.stop_reason: str | None = None

    @property
    def persistent(self) -> bool:
        return self.store is not None and self.run_id is not None

    # -------------------------------------------------------------- metrics and events

    def metrics(self, values: dict[str, float], step: int, examples: int) -> None:
        if step <= self.metric_floor:
            return
        wall = time.time()
        self.rows.extend((name, step, examples, wall, float(v)) for name, v in values.items() if v is not None)

    def event(self, kind: str, payload: dict, step: int) -> None:
        """A stored event (prediction snapshot, epoch row, diagnosis); ``payload`` carries ``step``."""
        if self.persistent and step > self.event_floor:
            self.store.add_event(self.run_id, kind, payload)

    def emit(self, message: dict) -> None:
        """Tell the caller (the CLI's live display); a failing callback is logged, not fatal."""
        if self.on_event is None:
            return
        try:
            self.on_event(message)
        except Exception:  # noqa: BLE001 — a display bug must not kill a run
            log.exception("on_event callback failed for %s", message.get("type"))

    # -------------------------------------------------------------- store I/O

    def flush(self) -> None:
        if self.rows and self.persistent:
            self.store.add_metrics(self.run_id, self.rows)
        self.rows = []
        self._next_flush = time.monotonic() + self.flush_every

    def tick(self, step: int, examples: int) -> None:
        """At a log point: flush and heartbeat when due."""
        now = time.monotonic()
        if now >= self._next_flush:
            self.flush()
        if self.persistent and now >= self._next_beat:
            self.store.heartbeat(self.run_id, step=step, examples=examples)
            self._next_beat = now + self.heartbeat_every

    def should_stop(self) -> bool:
        """The stop event, or (at most every ``stop_poll`` s) the store's stop flag."""
        if self.stop_event is not None and self.stop_event.is_set():
            self.stop_reason = "stop event"
            return True
        now = time.monotonic()
        if now < self.next_poll:
            return False
        self.next_poll = now + self.stop_poll
        if self.persistent and self.store.stop_requested(self.run_id):
            self.stop_reason = "stop requested in the store"
            return True
        return False

    def put_artifact(self, name: str, data: bytes, *, kind: str, media_type: str) -> None:
        if self.persistent:
            self.store.put_artifact(self.run_id, name, data, kind=kind, media_type=media_type)

    def set_status(self, status: str, *, diagnosis: str | None = None, error: str | None = None) -> None:
        if self.persistent:
            self.store.set_status(self.run_id, status, diagnosis=diagnosis, error=error)
        self.emit({"type": "status", "status": status, "diagnosis": diagnosis, "error": error})
