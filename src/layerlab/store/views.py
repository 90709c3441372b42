"""A run's stored views of its insides: decision boundaries and weight/gradient histograms.

Apart from events because they are bigger (a boundary is a few KB of quantised grids) and read
by kind and step, never streamed row by row. One row per ``(run, kind, step)``: ``put_view``
is an upsert, so a resumed run that passes a step again replaces its view instead of adding a
second. What ``meta`` and ``data`` hold is :mod:`layerlab.train.views`' business.
"""
from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..errors import RunNotFound, StoreError
from .encoding import dumps, loads
from .engine import StoreBase
from .schema import VIEW_KINDS, views

__all__ = ["ViewsMixin"]


class ViewsMixin(StoreBase):
    """Views of :class:`~layerlab.store.Store`."""

    def put_view(self, run_id: int, kind: str, step: int, examples: int, meta: dict, data: bytes = b"") -> None:
        """Store one evaluation point's view; one already stored at that step is replaced."""
        if kind not in VIEW_KINDS:
            raise StoreError(f"a view's kind must be one of {', '.join(VIEW_KINDS)}. Received: {kind!r}")
        row = {"run_id": run_id, "kind": kind, "step": int(step), "examples": int(examples),
               "meta": dumps(meta, f"the {kind} view"), "data": bytes(data), "created_at": time.time()}
        if self._backend == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        stmt = upsert(views).values(**row)
        stmt = stmt.on_conflict_do_update(index_elements=[views.c.run_id, views.c.kind, views.c.step],
                                          set_={k: stmt.excluded[k] for k in ("examples", "meta", "data", "created_at")})
        try:
            self._tx(lambda c: c.execute(stmt))
        except IntegrityError:
            raise RunNotFound(f"run {run_id} not found") from None

    def views(self, run_id: int, kind: str, *, step: int | None = None, latest: bool = False,
              with_data: bool = True) -> list[dict]:
        """``{"step","examples","meta","data"}`` rows of one kind by step: all, the one at ``step``, or the latest."""
        cols = [views.c.step, views.c.examples, views.c.meta] + ([views.c.data] if with_data else [])
        query = select(*cols).where(views.c.run_id == run_id, views.c.kind == kind)
        if step is not None:
            query = query.where(views.c.step == int(step))
        query = query.order_by(views.c.step.desc()).limit(1) if latest else query.order_by(views.c.step)
        rows = self._tx(lambda c: c.execute(query).mappings().all(), write=False)
        out = [{**r, "meta": loads(r["meta"])} for r in rows]
        for r in out:
            if "data" in r:
                r["data"] = bytes(r["data"])
        return out

    def view_steps(self, run_id: int, kind: str) -> list[int]:
        """The steps at which a view of ``kind`` is stored, in order."""
        query = select(views.c.step).where(views.c.run_id == run_id, views.c.kind == kind).order_by(views.c.step)
        return [int(s) for s in self._tx(lambda c: c.execute(query).scalars().all(), write=False)]

    def views_size(self, run_id: int) -> int:
        """Bytes the run's views take (meta text and data), for the bounded-space check."""
        query = select(func.coalesce(func.sum(func.length(views.c.meta) + func.length(views.c.data)), 0)) \
            .where(views.c.run_id == run_id)
        return int(self._tx(lambda c: c.execute(query).scalar(), write=False))
