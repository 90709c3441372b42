"""Run rows: their life cycle (create, start, status, heartbeat, stop, results, rename, delete)
and their family (``kind`` and ``parent``). Reading them back is :mod:`.reads`.

Apart from the series because a run row is the one thing several processes change (the
trainer, a viewer asking it to stop, :meth:`~layerlab.store.Store.mark_interrupted`): every change
reads the current status under the row lock and checks it against :data:`TRANSITIONS` in the
same transaction, so two writers can never both win an illegal race.
"""
from __future__ import annotations

import operator
import os
import time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from ..errors import RunConflict, RunNotFound, StoreError
from .encoding import as_dict, dataset_of, dumps, model_summary, seed_of
from .engine import StoreBase
from .liveness import timed_out_but_mine
from .schema import RUN_KINDS, artifacts, events, metrics, runs, views
from .series import write_event

__all__ = ["RunsMixin", "STATUSES", "TRANSITIONS", "FINAL_STATUSES", "RUN_KINDS", "check_status", "check_kind",
           "check_run_id"]

STATUSES = ("queued", "running", "finished", "stopped", "diverged", "failed", "interrupted")

# Allowed status changes; the one table set_status and start_run check against.
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "stopped", "failed"}),
    "running": frozenset({"finished", "stopped", "diverged", "failed", "interrupted"}),
    "interrupted": frozenset({"running", "stopped", "failed"}),
    "stopped": frozenset({"running"}),
    "finished": frozenset(),
    "diverged": frozenset(),
    "failed": frozenset(),
}
FINAL_STATUSES = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
_ENDED = frozenset({"finished", "stopped", "diverged", "failed", "interrupted"})  # set finished_at
_MAX_DEPTH = 100  # parent chains longer than this are refused (they are one level deep in practice)


def check_status(status: str) -> str:
    if status not in TRANSITIONS:
        raise StoreError(f"unknown run status {status!r}; expected one of {', '.join(STATUSES)}")
    return status


def check_kind(kind: str) -> str:
    if kind not in RUN_KINDS:
        raise StoreError(f"unknown run kind {kind!r}; expected one of {', '.join(RUN_KINDS)}")
    return kind


def check_run_id(value: Any, what: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise StoreError(f"{what} must be a run id (an integer) or None. Received: {value!r}") from None


def _check_name(name: str) -> str:
    name = str(name).strip()
    if not name or len(name) > 200:
        raise StoreError(f"a run name must have 1 to 200 characters. Received: {name!r}")
    return name


def _transition_error(run_id: int, old: str, new: str) -> StoreError:
    allowed = ", ".join(sorted(TRANSITIONS[old])) or "none, it is final"
    return RunConflict(f"run {run_id} cannot go from {old!r} to {new!r} (allowed from {old!r}: {allowed})")


def _status_for_update(conn: Connection, run_id: int) -> str:
    row = conn.execute(select(runs.c.status).where(runs.c.id == run_id).with_for_update()).first()
    if row is None:
        raise RunNotFound(f"run {run_id} not found")
    return row[0]


def _parent_of(conn: Connection, run_id: int) -> tuple[bool, int | None]:
    """``(exists, parent)`` of a run."""
    row = conn.execute(select(runs.c.parent).where(runs.c.id == run_id)).first()
    return (False, None) if row is None else (True, row[0])


class RunsMixin(StoreBase):
    """Run rows of :class:`~layerlab.store.Store`."""

    def create_run(
        self,
        spec: dict,
        *,
        name: str | None = None,
        seed: int | None = None,
        status: str = "queued",
        device: str | None = None,
        versions: dict | None = None,
        dataset: str | None = None,
        model: str | None = None,
        kind: str = "run",
        parent: int | None = None,
    ) -> int:
        """Record a new run and return its id.

        ``dataset`` and ``model`` (a one-line summary) default to what the spec says; ``name``
        to the spec's ``name``, else ``run <id>``; ``seed`` to the spec's (top level or
        ``train``). ``status`` is ``queued``, or ``running`` for a run this process starts
        at once (then host, pid and started_at are recorded as by :meth:`start_run`).
        ``kind`` is ``run`` or, for a study's record run, one of :data:`RUN_KINDS`;
        ``parent`` the id of the run (a record) this one belongs to.
        """
        if model is None and callable(getattr(spec, "model_label", None)):
            model = spec.model_label()  # a Spec knows its preset's name
        spec = as_dict(spec)
        if check_status(status) not in ("queued", "running"):
            raise StoreError(f"a new run's status must be 'queued' or 'running'. Received: {status!r}")
        check_kind(kind)
        if parent is not None:
            parent = check_run_id(parent, "a run's parent")
        if name is not None:
            name = _check_name(name)
        elif isinstance(spec.get("name"), str) and spec["name"].strip():
            name = _check_name(spec["name"])
        now = time.time()
        row = {
            "name": name or "",
            "spec": dumps(spec, "the spec"),
            "dataset": (dataset if dataset is not None else dataset_of(spec))[:100],
            "model": (model if model is not None else model_summary(spec))[:500],
            "seed": seed if seed is not None else seed_of(spec),
            "status": status,
            "created_at": now,
            "updated_at": now,
            "device": device,
            "versions": dumps(versions, "versions") if versions is not None else None,
            "step": 0,
            "examples": 0,
            "stop_requested": False,
            "kind": kind,
            "parent": parent,
        }
        if status == "running":
            row.update(started_at=now, host=self._host, pid=os.getpid())

        def do(conn: Connection) -> int:
            if parent is not None and not _parent_of(conn, parent)[0]:
                raise RunNotFound(f"the parent run {parent} of a new run was not found")
            run_id = conn.execute(insert(runs).values(**row)).inserted_primary_key[0]
            if not name:
                conn.execute(update(runs).where(runs.c.id == run_id).values(name=f"run {run_id}"))
            write_event(conn, run_id, "status", {"status": status, "from": None}, now)
            return int(run_id)

        return self._tx(do)

    def start_run(self, run_id: int, *, device: str, versions: dict, resume: bool = False) -> None:
        """Mark the run ``running`` in this process: started_at, device, versions, host, pid.

        Allowed from ``queued`` and ``interrupted``; from ``stopped`` only with ``resume=True``
        (so a cancelled queued run is not started by accident). Clears ``stop_requested``.
        """
        now = time.time()
        values = {"status": "running", "started_at": now, "finished_at": None, "updated_at": now,
                  "device": device, "versions": dumps(versions, "versions"), "host": self._host,
                  "pid": os.getpid(), "stop_requested": False}

        def do(conn: Connection) -> None:
            old = _status_for_update(conn, run_id)
            if "running" not in TRANSITIONS[old]:
                raise _transition_error(run_id, old, "running")
            if old == "stopped" and not resume:
                raise RunConflict(f"run {run_id} was stopped; pass resume=True to start it again")
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            write_event(conn, run_id, "status", {"status": "running", "from": old, "device": device}, now)

        self._tx(do)

    def set_status(self, run_id: int, status: str, *, diagnosis: str | None = None, error: str | None = None) -> None:
        """Move the run to ``status`` (see the module doc for the allowed transitions).

        Ending statuses set ``finished_at``; ``diagnosis``/``error`` are stored when given.
        """
        check_status(status)
        now = time.time()

        def do(conn: Connection) -> None:
            old = _status_for_update(conn, run_id)
            # A run wrongly marked interrupted (a quiet run on another host) that its own,
            # evidently alive, process ends: judge the change as from 'running'.
            judged = "running" if old == "interrupted" and timed_out_but_mine(conn, run_id, self._host) else old
            if status not in TRANSITIONS[judged]:
                raise _transition_error(run_id, old, status)
            values: dict[str, Any] = {"status": status, "updated_at": now,
                                      "finished_at": now if status in _ENDED else None}
            payload: dict[str, Any] = {"status": status, "from": old}
            for key, text in (("diagnosis", diagnosis), ("error", error)):
                if text is not None:
                    values[key] = payload[key] = text
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            write_event(conn, run_id, "status", payload, now)

        self._tx(do)

    def heartbeat(self, run_id: int, *, step: int | None = None, examples: int | None = None) -> None:
        """Record that the run's process is alive, with its progress.

        A heartbeat from the very process of a run that :meth:`mark_interrupted` marked
        ``interrupted`` for a stale heartbeat (a quiet run on another host) puts it back to
        ``running``; so does :meth:`set_status` judge its next change as from ``running``.
        """
        now = time.time()
        values: dict[str, Any] = {"updated_at": now}
        if step is not None:
            values["step"] = int(step)
        if examples is not None:
            values["examples"] = int(examples)

        def do(conn: Connection) -> None:
            old = _status_for_update(conn, run_id)
            revive = old == "interrupted" and timed_out_but_mine(conn, run_id, self._host)
            if revive:
                values.update(status="running", finished_at=None)
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            if revive:
                write_event(conn, run_id, "status", {"status": "running", "from": "interrupted",
                                                     "reason": "its process is alive after all"}, now)

        self._tx(do)

    def request_stop(self, run_id: int) -> None:
        """Ask the run to stop: the trainer polls :meth:`stop_requested`. A queued run stops now."""
        now = time.time()

        def do(conn: Connection) -> None:
            old = _status_for_update(conn, run_id)
            values: dict[str, Any] = {"stop_requested": True}
            if old == "queued":
                values.update(status="stopped", finished_at=now, updated_at=now)
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            write_event(conn, run_id, "stop_requested", {"status": old}, now)
            if old == "queued":
                write_event(conn, run_id, "status", {"status": "stopped", "from": "queued"}, now)

        self._tx(do)

    def stop_requested(self, run_id: int) -> bool:
        """Whether someone asked the run to stop since it (re)started."""
        flag = self._tx(lambda c: c.execute(select(runs.c.stop_requested).where(runs.c.id == run_id)).first(),
                        write=False)
        if flag is None:
            raise RunNotFound(f"run {run_id} not found")
        return bool(flag[0])

    def set_results(self, run_id: int, results: dict) -> None:
        """Store the run's final results (JSON; NaN and inf survive)."""
        text = dumps(results, "the results")
        self._update_run(run_id, results=text, updated_at=time.time())

    def rename_run(self, run_id: int, name: str) -> None:
        self._update_run(run_id, name=_check_name(name))

    def set_parent(self, run_id: int, parent: int | None) -> None:
        """Make ``parent`` (a run id, e.g. a study's record) the run's parent; ``None`` clears it.

        Refused: a parent that does not exist, the run itself, or one of its descendants.
        """
        if parent is not None:
            parent = check_run_id(parent, "a run's parent")

        def do(conn: Connection) -> None:
            _status_for_update(conn, run_id)  # not found -> StoreError
            ancestor, depth = parent, 0
            while ancestor is not None:
                exists, up = _parent_of(conn, ancestor)
                if not exists:
                    raise StoreError(f"cannot make run {parent} the parent of run {run_id}: run {ancestor} not found")
                if ancestor == run_id or depth >= _MAX_DEPTH:
                    raise StoreError(f"cannot make run {parent} the parent of run {run_id}: that makes a cycle")
                ancestor, depth = up, depth + 1
            conn.execute(update(runs).where(runs.c.id == run_id).values(parent=parent))

        self._tx(do)

    def delete_run(self, run_id: int, *, force: bool = False) -> None:
        """Delete the run with its metrics, events and artifacts; its children lose their parent.

        A ``running`` run is refused unless ``force=True`` (its trainer would keep writing).
        """

        def do(conn: Connection) -> None:
            old = _status_for_update(conn, run_id)
            if old == "running" and not force:
                raise RunConflict(f"run {run_id} is running; stop it before deleting it (or pass force=True)")
            for table in (metrics, events, artifacts, views):  # explicit, not only ON DELETE CASCADE
                conn.execute(delete(table).where(table.c.run_id == run_id))
            conn.execute(update(runs).where(runs.c.parent == run_id).values(parent=None))  # and SET NULL
            conn.execute(delete(runs).where(runs.c.id == run_id))

        self._tx(do)

    def _update_run(self, run_id: int, **values: Any) -> None:
        def do(conn: Connection) -> None:
            if conn.execute(update(runs).where(runs.c.id == run_id).values(**values)).rowcount == 0:
                raise RunNotFound(f"run {run_id} not found")

        self._tx(do)
