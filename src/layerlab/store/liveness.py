"""Is a ``running`` run's process still alive? Finding and marking the dead ones.

Apart from the run writes because it is a judgement, not a write: on the run's own host the
process id decides (gone, a zombie, or reused by a newer process means dead; a live process
is never interrupted however quiet). For a run on another host, whose process cannot be
checked, a heartbeat older than ``heartbeat_timeout`` decides; should that very process
(host and pid) heartbeat or set a status again, the mark was wrong and
:func:`timed_out_but_mine` lets the run writes undo it.
"""
from __future__ import annotations

import logging
import os
import time

import psutil
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from ..errors import StoreError
from .encoding import loads
from .engine import StoreBase
from .schema import events, runs
from .series import write_event

__all__ = ["LivenessMixin", "process_gone", "timed_out_but_mine"]

log = logging.getLogger(__name__)

_PID_SLACK_S = 2.0  # a process created this long after its run started is a reused pid


def process_gone(pid: int, started_at: float | None) -> bool:
    """True when ``pid`` on this host no longer runs the process that started the run."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
        return started_at is not None and proc.create_time() > started_at + _PID_SLACK_S
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:  # exists, owned by someone else: assume alive
        return False


def timed_out_but_mine(conn: Connection, run_id: int, host: str) -> bool:
    """Whether an interrupted run was marked so for a stale heartbeat, yet this very
    process (``host`` and our pid) runs it: then the process is alive and the mark was wrong.
    A run its own trainer marked interrupted (say on Ctrl-C) is not revived this way."""
    row = conn.execute(select(runs.c.host, runs.c.pid).where(runs.c.id == run_id)).first()
    if row is None or (row[0], row[1]) != (host, os.getpid()):
        return False
    last = conn.execute(select(events.c.payload).where(events.c.run_id == run_id, events.c.kind == "status")
                        .order_by(events.c.id.desc()).limit(1)).scalar()
    return last is not None and loads(last).get("cause") == "heartbeat timeout"


class LivenessMixin(StoreBase):
    """:meth:`mark_interrupted` of :class:`~layerlab.store.Store`, and its throttled call by readers."""

    def mark_interrupted(self, *, timeout: float | None = None) -> list[int]:
        """Mark ``running`` runs whose process is gone as ``interrupted``; return their ids.

        Same host: the pid decides. Other hosts: a heartbeat older than ``timeout``
        (default ``heartbeat_timeout``) does.
        """
        timeout = self.heartbeat_timeout if timeout is None else float(timeout)
        self._last_check = time.monotonic()
        rows = self._tx(lambda c: c.execute(
            select(runs.c.id, runs.c.host, runs.c.pid, runs.c.started_at, runs.c.updated_at)
            .where(runs.c.status == "running")).all(), write=False)
        now = time.time()
        dead = []
        for run_id, host, pid, started_at, updated_at in rows:
            if host == self._host and pid is not None:
                if process_gone(pid, started_at):
                    # Only if the same process still holds it (a resume may have come between).
                    dead.append((run_id, runs.c.pid == pid, {"reason": f"process {pid} on {host} is gone",
                                                             "cause": "process gone"}))
            elif now - updated_at > timeout:
                age = f"no heartbeat for {now - updated_at:.0f} s (from {host or 'an unknown host'})"
                dead.append((run_id, runs.c.updated_at <= updated_at, {"reason": age, "cause": "heartbeat timeout"}))
        if not dead:
            return []

        def do(conn: Connection) -> list[int]:
            marked = []
            for run_id, unchanged, why in dead:
                done = conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status == "running", unchanged)
                                    .values(status="interrupted", finished_at=now))
                if done.rowcount:
                    write_event(conn, run_id, "status", {"status": "interrupted", "from": "running", **why}, now)
                    marked.append(run_id)
            return marked

        marked = self._tx(do)
        if marked:
            log.info("marked runs %s interrupted", marked)
        return marked

    def _maybe_mark_interrupted(self) -> None:
        """What readers call: :meth:`mark_interrupted` at most once every ``check_interval`` s."""
        if self.check_interval is None or time.monotonic() - self._last_check < self.check_interval:
            return
        try:
            self.mark_interrupted()
        except StoreError as e:  # a viewer must still see the runs
            log.warning("could not check for interrupted runs: %s", e)
