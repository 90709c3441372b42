"""Reading run rows back: one run, or a filtered list, newest first, as plain dicts.

Apart from the writes because readers are many (the CLI, the web UI's streams, reports) and
want the same shape every time: JSON columns decoded, ``stop_requested`` a bool, and the
run's best finite ``test_accuracy`` joined in. Readers also run the throttled
:meth:`~layerlab.store.liveness.LivenessMixin.mark_interrupted`, so no viewer shows a dead run
as running.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection

from ..errors import RunNotFound
from .encoding import loads
from .liveness import LivenessMixin
from .runs import check_run_id, check_kind, check_status
from .schema import runs
from .series import best_accuracy

__all__ = ["ReadsMixin"]

_RUN_JSON = ("spec", "versions", "results")


def _run_dict(row: Any, best: float | None) -> dict:
    run = dict(row)
    for key in _RUN_JSON:
        run[key] = loads(run[key])
    run["stop_requested"] = bool(run["stop_requested"])
    run["best_test_accuracy"] = best
    return run


class ReadsMixin(LivenessMixin):
    """Run queries of :class:`~layerlab.store.Store`."""

    def get_run(self, run_id: int) -> dict:
        """Every field of the run, JSON decoded, plus ``best_test_accuracy`` (None without it)."""
        self._maybe_mark_interrupted()

        def do(conn: Connection) -> dict | None:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                return None
            return _run_dict(row, best_accuracy(conn, [run_id]).get(run_id))

        run = self._tx(do, write=False)
        if run is None:
            raise RunNotFound(f"run {run_id} not found")
        return run

    def list_runs(
        self,
        *,
        status: str | None = None,
        dataset: str | None = None,
        search: str | None = None,
        limit: int = 200,
        kind: str | None = None,
        parent: int | None = None,
        model: str | None = None,
    ) -> list[dict]:
        """Runs, newest first, as :meth:`get_run` dicts.

        ``search`` matches a case-insensitive substring of the name, model summary or data set;
        ``kind``, ``parent`` (a record's members) and ``model`` (the exact summary) filter.
        """
        self._maybe_mark_interrupted()
        query = select(runs).order_by(runs.c.id.desc()).limit(max(0, int(limit)))
        if status is not None:
            query = query.where(runs.c.status == check_status(status))
        if dataset is not None:
            query = query.where(runs.c.dataset == dataset)
        if kind is not None:
            query = query.where(runs.c.kind == check_kind(kind))
        if parent is not None:
            query = query.where(runs.c.parent == check_run_id(parent, "the parent filter"))
        if model is not None:
            query = query.where(runs.c.model == model)
        if search:
            pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(*(func.lower(col).like(pattern, escape="\\")
                                      for col in (runs.c.name, runs.c.model, runs.c.dataset))))

        def do(conn: Connection) -> list[dict]:
            rows = conn.execute(query).mappings().all()
            best = best_accuracy(conn, [r["id"] for r in rows])
            return [_run_dict(r, best.get(r["id"])) for r in rows]

        return self._tx(do, write=False)
