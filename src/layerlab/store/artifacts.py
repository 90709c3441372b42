"""A run's named blobs: weights, checkpoints, figures, study results.

Apart from the other rows because they are big and replaced whole: ``put_artifact`` is an
upsert on ``(run_id, name)``, so a reader sees the old bytes or the new ones, never a mix.
"""
from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..errors import RunNotFound, StoreError
from .engine import StoreBase
from .schema import artifacts

__all__ = ["ArtifactsMixin"]


class ArtifactsMixin(StoreBase):
    """Artifacts of :class:`~layerlab.store.Store`."""

    def put_artifact(self, run_id: int, name: str, data: bytes, *, kind: str,
                     media_type: str = "application/octet-stream") -> None:
        """Store bytes under ``name``; an existing artifact of that name is replaced atomically."""
        if not name:
            raise StoreError("an artifact needs a name")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StoreError(f"artifact {name!r} must be bytes. Received: {type(data).__name__}")
        data = bytes(data)
        row = {"run_id": run_id, "name": name, "kind": kind, "media_type": media_type,
               "size": len(data), "data": data, "created_at": time.time()}
        if self._backend == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        stmt = upsert(artifacts).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[artifacts.c.run_id, artifacts.c.name],
            set_={k: stmt.excluded[k] for k in ("kind", "media_type", "size", "data", "created_at")},
        )
        try:
            self._tx(lambda c: c.execute(stmt))
        except IntegrityError:
            raise RunNotFound(f"run {run_id} not found") from None

    def get_artifact(self, run_id: int, name: str) -> bytes:
        query = select(artifacts.c.data).where(artifacts.c.run_id == run_id, artifacts.c.name == name)
        row = self._tx(lambda c: c.execute(query).first(), write=False)
        if row is None:
            raise RunNotFound(f"run {run_id} has no artifact named {name!r}")
        return bytes(row[0])

    def list_artifacts(self, run_id: int) -> list[dict]:
        """``{"name","kind","media_type","size","created_at"}`` for each artifact, by name."""
        cols = [artifacts.c.name, artifacts.c.kind, artifacts.c.media_type, artifacts.c.size, artifacts.c.created_at]
        query = select(*cols).where(artifacts.c.run_id == run_id).order_by(artifacts.c.name)
        return [dict(r) for r in self._tx(lambda c: c.execute(query).mappings().all(), write=False)]
