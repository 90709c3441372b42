"""A run's append-only rows: metric series and events.

Apart from the run rows because they are written many times per second by one trainer and
read by id ranges (``after_id`` paging for live streams), never updated. A metric row is
``(name, step, examples, wall_time, value)``; values are faithful floats (NaN and inf read
back, see :class:`~layerlab.store.schema.FaithfulFloat`). An event is a kind and a JSON
payload (status changes, prediction snapshots, diagnostics, study membership).
"""
from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import and_, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import RunNotFound, StoreError
from .encoding import dumps, loads
from .engine import StoreBase
from .schema import events, metrics

__all__ = ["SeriesMixin", "write_event", "best_accuracy"]


def write_event(conn: Connection, run_id: int, kind: str, payload: dict | str, now: float) -> int:
    """Insert one event in the caller's transaction; return its id."""
    text = payload if isinstance(payload, str) else dumps(payload, "an event")
    result = conn.execute(insert(events).values(run_id=run_id, kind=kind, payload=text, time=now))
    return int(result.inserted_primary_key[0])


def best_accuracy(conn: Connection, run_ids: list[int]) -> dict[int, float]:
    """Best finite ``test_accuracy`` per run after step 0, as ``RunResults.best_test_accuracy`` defines it
    (the untrained model never counts; NaN is NULL on SQLite, > everything on PostgreSQL)."""
    if not run_ids:
        return {}
    value = metrics.c.value
    query = (select(metrics.c.run_id, func.max(value))
             .where(metrics.c.run_id.in_(run_ids), metrics.c.name == "test_accuracy", metrics.c.step > 0,
                    and_(value <= 1.0e308, value >= -1.0e308))
             .group_by(metrics.c.run_id))
    return {int(r): float(v) for r, v in conn.execute(query).all() if v is not None}


class SeriesMixin(StoreBase):
    """Metrics and events of :class:`~layerlab.store.Store`."""

    def add_metrics(self, run_id: int, rows: Iterable[tuple[str, int, int, float, float]]) -> None:
        """Append metric rows ``(name, step, examples, wall_time, value)`` in one transaction."""
        batch = []
        for i, row in enumerate(rows):
            try:
                name, step, examples, wall_time, value = row
                batch.append({"run_id": run_id, "name": str(name), "step": int(step),
                              "examples": int(examples), "wall_time": float(wall_time), "value": float(value)})
            except (TypeError, ValueError) as e:
                raise StoreError(f"metric row {i} must be (name, step, examples, wall_time, value). "
                                 f"Received: {row!r} ({e})") from None
            if not batch[-1]["name"]:
                raise StoreError(f"metric row {i} has an empty name")
        if not batch:
            return
        try:
            self._tx(lambda c: c.execute(insert(metrics), batch))
        except IntegrityError:
            raise RunNotFound(f"run {run_id} not found") from None

    def metrics(self, run_id: int, *, names: list[str] | None = None, after_id: int = 0,
                limit: int | None = None) -> list[dict]:
        """Metric rows with id > ``after_id``, by id: ``{"id","name","step","examples","wall_time","value"}``."""
        cols = [metrics.c.id, metrics.c.name, metrics.c.step, metrics.c.examples, metrics.c.wall_time, metrics.c.value]
        query = select(*cols).where(metrics.c.run_id == run_id, metrics.c.id > after_id).order_by(metrics.c.id)
        if names is not None:
            query = query.where(metrics.c.name.in_(list(names)))
        if limit is not None:
            query = query.limit(int(limit))
        rows = self._tx(lambda c: c.execute(query).mappings().all(), write=False)
        return [dict(r) for r in rows]

    def last_ids(self, run_id: int) -> tuple[int, int]:
        """(last metric row id, last event id) of the run, 0 where it has none: where "new" starts now."""
        m = select(func.max(metrics.c.id)).where(metrics.c.run_id == run_id)
        e = select(func.max(events.c.id)).where(events.c.run_id == run_id)
        got = self._tx(lambda c: (c.execute(m).scalar(), c.execute(e).scalar()), write=False)
        return int(got[0] or 0), int(got[1] or 0)

    def series(self, run_id: int, name: str) -> list[tuple[int, float]]:
        """One metric as ``(examples, value)`` pairs in the order written."""
        query = (select(metrics.c.examples, metrics.c.value)
                 .where(metrics.c.run_id == run_id, metrics.c.name == name).order_by(metrics.c.id))
        return [(int(e), float(v)) for e, v in self._tx(lambda c: c.execute(query).all(), write=False)]

    def add_event(self, run_id: int, kind: str, payload: dict) -> int:
        """Append an event (status change, prediction snapshot, diagnostic...); return its id."""
        if not kind:
            raise StoreError("an event needs a kind")
        text = dumps(payload, f"the {kind!r} event")
        try:
            return self._tx(lambda c: write_event(c, run_id, kind, text, time.time()))
        except IntegrityError:
            raise RunNotFound(f"run {run_id} not found") from None

    def events(self, run_id: int, *, after_id: int = 0, kinds: list[str] | None = None,
               limit: int | None = None) -> list[dict]:
        """Events with id > ``after_id``, by id: ``{"id","run_id","kind","payload","time"}``."""
        query = select(events).where(events.c.run_id == run_id, events.c.id > after_id).order_by(events.c.id)
        if kinds is not None:
            query = query.where(events.c.kind.in_(list(kinds)))
        if limit is not None:
            query = query.limit(int(limit))
        rows = self._tx(lambda c: c.execute(query).mappings().all(), write=False)
        return [{**r, "payload": loads(r["payload"])} for r in rows]
