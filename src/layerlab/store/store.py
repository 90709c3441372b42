"""The run store: runs, metric series, events and artifacts in one database.

SQLite (one file, WAL) by default, PostgreSQL by URL. Every write is one short transaction,
so a crash or kill mid-write leaves no half-written row. On SQLite writes take the write lock
up front (``BEGIN IMMEDIATE``), wait up to 30 s for another writer, and are retried a few
times after that, so many processes may write to one file at once. Training runs in
worker processes, so a :class:`Store` may be shared across ``fork``: each process lazily
opens its own engine (connections are never shared between processes).

Where the database is (first that is set):

1. ``Store(url)``;
2. the environment variable ``LAYERLAB_DB``;
3. ``$XDG_DATA_HOME/layerlab/runs.db`` (``~/.local/share/layerlab/runs.db``).

Each may be a SQLAlchemy URL (``sqlite:///runs.db``, ``postgresql+psycopg://u:p@host/db``;
a bare ``postgresql://`` gets the psycopg 3 driver) or a plain file path (SQLite).

Run statuses and the transitions :meth:`Store.set_status` allows (anything else is a
:class:`~layerlab.errors.StoreError`)::

    queued      -> running | stopped | failed
    running     -> finished | stopped | diverged | failed | interrupted
    interrupted -> running (resume) | stopped | failed
    stopped     -> running (resume; start_run needs resume=True)
    finished, diverged, failed: final. Continuing one means a new run (e.g. from its
    checkpoint): a diverged or failed run re-run unchanged would diverge or fail again.

Interrupted runs: a run left ``running`` by a process that died is found by
:meth:`Store.mark_interrupted`. On the run's own host the process id decides (gone, a zombie,
or reused by a newer process means dead; a live process is never interrupted however quiet).
For a run on another host, whose process cannot be checked, a heartbeat older than
``heartbeat_timeout`` (120 s) decides; should that very process (host and pid) heartbeat
or set a status again, the mark was wrong and is undone (a run its own trainer marked
``interrupted``, say on Ctrl-C, is not revived that way; it only resumes). :meth:`get_run`
and :meth:`list_runs` call it themselves, at most once every ``check_interval`` seconds
(5 s; ``None`` turns that off), so viewers never show a dead run as running.

Study records (sweeps, lr-find, studies) are runs whose ``kind`` is not ``run``; their members
point at them by ``parent`` (see :mod:`layerlab.studies.record`).

Schema: versioned by Alembic and upgraded when a store is opened; a store written by a newer
layerlab is refused before anything is written (see :mod:`.migrate`).

How it is built, one job a module: :mod:`.engine` (URLs, engines, transactions, pickling),
:mod:`.encoding` (JSON and spec summaries), :mod:`.runs` (run life cycle), :mod:`.reads`
(run queries), :mod:`.liveness` (interrupted runs), :mod:`.series` (metrics and events),
:mod:`.artifacts`, :mod:`.views` (boundaries, histograms), :mod:`.migrate` (schema versions); :class:`Store` composes them.

Ordering: metric and event ids increase in commit order for one writer per run (the
trainer), so ``after_id`` paging never skips a row; with several writers to one run on
PostgreSQL, rows committed late with a lower id may be missed by a streamer.
"""
from __future__ import annotations

import os

from sqlalchemy.engine import make_url

from ..errors import StoreError
from .artifacts import ArtifactsMixin
from .engine import StoreBase, default_path, resolve_url
from .migrate import ensure_schema
from .reads import ReadsMixin
from .runs import FINAL_STATUSES, RUN_KINDS, STATUSES, TRANSITIONS, RunsMixin
from .series import SeriesMixin
from .views import ViewsMixin

__all__ = [
    "Store",
    "STATUSES",
    "TRANSITIONS",
    "FINAL_STATUSES",
    "RUN_KINDS",
    "resolve_url",
    "default_path",
]


class Store(RunsMixin, ReadsMixin, SeriesMixin, ArtifactsMixin, ViewsMixin, StoreBase):
    """Runs, metric series, events and artifacts in a SQLite file or a PostgreSQL database.

    ``url``: see :func:`resolve_url`. ``heartbeat_timeout``: seconds without a heartbeat after
    which a run on another host counts as interrupted. ``check_interval``: how often
    :meth:`get_run`/:meth:`list_runs` run :meth:`mark_interrupted` (``None``: never).
    Opening a store creates or upgrades its schema (:func:`~layerlab.store.migrate.ensure_schema`);
    a SQLite file that is not a database, or is damaged, is a ``StoreUnavailable`` naming it and the fix.
    """

    def __init__(
        self,
        url: str | os.PathLike | None = None,
        *,
        heartbeat_timeout: float = 120.0,
        check_interval: float | None = 5.0,
    ):
        self.url: str = resolve_url(url)
        self.heartbeat_timeout = float(heartbeat_timeout)
        self.check_interval = check_interval
        self._backend = make_url(self.url).get_backend_name()
        if self._backend not in ("sqlite", "postgresql"):
            raise StoreError(f"the store supports SQLite and PostgreSQL URLs. Received: {self._safe_url()}")
        self._reset()
        try:
            ensure_schema(self)
        except BaseException:
            self.close()  # a refused or broken store keeps no connection (nor SQLite's -wal file) open
            raise

    def __enter__(self) -> Store:
        return self
