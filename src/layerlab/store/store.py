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
``interrupted``, say on Ctrl-C, is not revived that way; it only resumes). :meth:`get_run` and :meth:`list_runs` call it themselves, at most once
every ``check_interval`` seconds (5 s; ``None`` turns that off), so viewers never show a dead
run as running.

Ordering: metric and event ids increase in commit order for one writer per run (the
trainer), so ``after_id`` paging never skips a row; with several writers to one run on
PostgreSQL, rows committed late with a lower id may be missed by a streamer.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import psutil
from sqlalchemy import and_, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from ..errors import StoreError
from . import schema
from .schema import SCHEMA_VERSION, artifacts, events, metadata, metrics, runs

__all__ = [
    "Store",
    "STATUSES",
    "TRANSITIONS",
    "FINAL_STATUSES",
    "resolve_url",
    "default_path",
]

log = logging.getLogger(__name__)

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

_SQLITE_BUSY_MS = 30_000  # how long SQLite waits for another writer before "database is locked"
_LOCK_RETRIES = 5  # then retry the whole transaction this many times with backoff
_PG_SCHEMA_LOCK = 0x6C617972  # advisory lock key serialising create_all on PostgreSQL
_METRIC_FIELDS = ("name", "step", "examples", "wall_time", "value")
_RUN_JSON = ("spec", "versions", "results")
_PID_SLACK_S = 2.0  # a process created this long after its run started is a reused pid

T = TypeVar("T")


# --------------------------------------------------------------------------- location


def default_path() -> Path:
    """``$XDG_DATA_HOME/layerlab/runs.db``, ``~/.local/share/layerlab/runs.db`` without it."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "layerlab" / "runs.db"


def resolve_url(url: str | os.PathLike | None = None) -> str:
    """The SQLAlchemy URL for ``url``, else ``$LAYERLAB_DB``, else :func:`default_path`.

    Plain paths become ``sqlite:///<absolute path>``; ``postgresql://`` and ``postgres://``
    get the psycopg 3 driver. Creates a SQLite file's parent directories.
    """
    raw = os.fspath(url) if url is not None else (os.environ.get("LAYERLAB_DB") or "")
    raw = raw.strip() or str(default_path())
    if raw == ":memory:":
        return "sqlite://"
    if "://" not in raw:
        path = Path(raw).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    for bare in ("postgresql://", "postgres://"):
        if raw.startswith(bare):
            raw = "postgresql+psycopg://" + raw[len(bare):]
    try:
        parsed = make_url(raw)
    except ArgumentError as e:
        raise StoreError(f"cannot parse the store URL {raw!r}: {e}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    return raw


# --------------------------------------------------------------------------- encoding


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):  # pydantic models
        return obj.model_dump(mode="json")
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON data")


def _dumps(obj: Any, what: str) -> str:
    """JSON text; NaN and inf are written as ``NaN``/``Infinity`` so they read back."""
    try:
        return json.dumps(obj, allow_nan=True, default=_json_default, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise StoreError(f"cannot store {what}: {e}") from None


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _as_dict(spec: Any) -> dict:
    """The spec as JSON data: a dict as is, a ``layerlab.spec.Spec`` by ``to_dict()``."""
    if hasattr(spec, "to_dict"):
        spec = spec.to_dict()
    elif hasattr(spec, "model_dump"):
        spec = spec.model_dump(mode="json")
    if not isinstance(spec, dict):
        raise StoreError(f"a run's spec must be a dict. Received: {type(spec).__name__}")
    return spec


def _dataset_of(spec: dict) -> str:
    """The data set's name, wherever a spec keeps it (``data: {dataset: mnist}``, ``data: mnist``)."""
    data = spec.get("data", spec.get("dataset"))
    if isinstance(data, dict):
        data = data.get("dataset", data.get("name"))
    return str(data) if data is not None else ""


def _model_summary(spec: dict) -> str:
    """Layer kinds in order, ``flatten-fc128-relu-fc10``, as ``Spec.model_label()`` writes them.

    Layers may be ``"relu"``, ``{"fc": {"units": 128}}`` or ``{"kind": "fc", "units": 128}``.
    """
    model = spec.get("model")
    if isinstance(model, dict):
        model = model.get("layers")
    if not isinstance(model, list):
        return ""
    parts = []
    for layer in model:
        kind, params = str(layer), {}
        if isinstance(layer, dict) and "kind" in layer:
            kind, params = str(layer["kind"]), layer.get("params", layer)
        elif isinstance(layer, dict) and len(layer) == 1:
            kind, params = next(iter(layer.items()))
        units = params.get("units") if isinstance(params, dict) else None
        parts.append(f"{kind}{units}" if units is not None else str(kind))
    return "-".join(parts)[:500]


def _seed_of(spec: dict) -> int | None:
    for section in (spec, spec.get("train"), spec.get("training")):
        if isinstance(section, dict) and isinstance(section.get("seed"), int):
            return section["seed"]
    return None


def _check_status(status: str) -> str:
    if status not in TRANSITIONS:
        raise StoreError(f"unknown run status {status!r}; expected one of {', '.join(STATUSES)}")
    return status


def _transition_error(run_id: int, old: str, new: str) -> StoreError:
    allowed = ", ".join(sorted(TRANSITIONS[old])) or "none, it is final"
    return StoreError(f"run {run_id} cannot go from {old!r} to {new!r} (allowed from {old!r}: {allowed})")


def _is_locked(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "locked" in text or "busy" in text


def _process_gone(pid: int, started_at: float | None) -> bool:
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


# --------------------------------------------------------------------------- the store


class Store:
    """Runs, metric series, events and artifacts in a SQLite file or a PostgreSQL database.

    ``url``: see :func:`resolve_url`. ``heartbeat_timeout``: seconds without a heartbeat after
    which a run on another host counts as interrupted. ``check_interval``: how often
    :meth:`get_run`/:meth:`list_runs` run :meth:`mark_interrupted` (``None``: never).
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
        self._create_schema()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()
        self._engine: Engine | None = None
        self._engine_pid: int | None = None
        self._last_check = -math.inf
        self._host = socket.gethostname()

    def __repr__(self) -> str:
        return f"Store({self._safe_url()!r})"

    def __getstate__(self) -> dict:
        """Pickles as its settings (for spawn-started workers, Ray); connections stay here."""
        return {"url": self.url, "heartbeat_timeout": self.heartbeat_timeout,
                "check_interval": self.check_interval, "_backend": self._backend}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close this process's connections (the store may still be used; it reopens)."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose(close=self._engine_pid == os.getpid())
            self._engine = None
            self._engine_pid = None

    # ----------------------------------------------------------------- engine & transactions

    def _safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """This process's engine; a forked child makes its own instead of sharing sockets."""
        pid = os.getpid()
        if self._lock_pid != pid:  # forked: the parent's lock may have been held at fork time
            self._lock, self._lock_pid = threading.Lock(), pid
        if self._engine is None or self._engine_pid != pid:
            with self._lock:
                if self._engine is not None and self._engine_pid != pid:
                    self._engine.dispose(close=False)  # the parent's connections stay the parent's
                    self._engine = None
                if self._engine is None:
                    self._engine = self._make_engine()
                    self._engine_pid = pid
        return self._engine

    def _make_engine(self) -> Engine:
        if self._backend == "postgresql":
            return create_engine(self.url, pool_pre_ping=True)
        memory = make_url(self.url).database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {"connect_args": {"timeout": _SQLITE_BUSY_MS / 1000, "check_same_thread": False}}
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(self.url, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
            if not memory:
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe in WAL
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection):
            # A write takes the write lock up front: a deferred transaction that reads and
            # then writes fails at once with "database is locked" when another writer got in
            # between, whatever busy_timeout says.
            immediate = conn.get_execution_options().get("layerlab_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def _tx(self, fn: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run ``fn`` in one transaction; retry it when SQLite says the database is locked."""
        for attempt in range(_LOCK_RETRIES + 1):
            try:
                with self.engine.connect() as conn:
                    if write:
                        conn.execution_options(layerlab_write=True)
                    with conn.begin():
                        return fn(conn)
            except OperationalError as e:
                if self._backend == "sqlite" and _is_locked(e) and attempt < _LOCK_RETRIES:
                    time.sleep((0.05 * 2**attempt) * (1 + random.random()))
                    continue
                raise StoreError(f"the store at {self._safe_url()} failed: {e.orig}") from e
        raise AssertionError("unreachable")

    def _create_schema(self) -> None:
        def create(conn: Connection) -> None:
            if self._backend == "postgresql":  # several processes may open a new database at once
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})")
            metadata.create_all(conn)
            found = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
            if found is None:
                conn.execute(insert(schema.schema_version).values(version=SCHEMA_VERSION))
            elif found > SCHEMA_VERSION:
                raise StoreError(
                    f"the store at {self._safe_url()} has schema version {found}, newer than this "
                    f"layerlab's {SCHEMA_VERSION}; upgrade layerlab"
                )
            # found < SCHEMA_VERSION: migrations go here when version 2 exists.

        self._tx(create)

    # ----------------------------------------------------------------- runs

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
    ) -> int:
        """Record a new run and return its id.

        ``dataset`` and ``model`` (a one-line summary) default to what the spec says; ``name``
        to the spec's ``name``, else ``run <id>``; ``seed`` to the spec's (top level or
        ``train``). ``status`` is ``queued``, or ``running`` for a run this process starts
        at once (then host, pid and started_at are recorded as by :meth:`start_run`).
        """
        if model is None and callable(getattr(spec, "model_label", None)):
            model = spec.model_label()  # a Spec knows its preset's name
        spec = _as_dict(spec)
        if _check_status(status) not in ("queued", "running"):
            raise StoreError(f"a new run's status must be 'queued' or 'running'. Received: {status!r}")
        if name is not None:
            name = self._check_name(name)
        elif isinstance(spec.get("name"), str) and spec["name"].strip():
            name = self._check_name(spec["name"])
        now = time.time()
        row = {
            "name": name or "",
            "spec": _dumps(spec, "the spec"),
            "dataset": (dataset if dataset is not None else _dataset_of(spec))[:100],
            "model": (model if model is not None else _model_summary(spec))[:500],
            "seed": seed if seed is not None else _seed_of(spec),
            "status": status,
            "created_at": now,
            "updated_at": now,
            "device": device,
            "versions": _dumps(versions, "versions") if versions is not None else None,
            "step": 0,
            "examples": 0,
            "stop_requested": False,
        }
        if status == "running":
            row.update(started_at=now, host=self._host, pid=os.getpid())

        def do(conn: Connection) -> int:
            run_id = conn.execute(insert(runs).values(**row)).inserted_primary_key[0]
            if not name:
                conn.execute(update(runs).where(runs.c.id == run_id).values(name=f"run {run_id}"))
            self._event(conn, run_id, "status", {"status": status, "from": None}, now)
            return int(run_id)

        return self._tx(do)

    def start_run(self, run_id: int, *, device: str, versions: dict, resume: bool = False) -> None:
        """Mark the run ``running`` in this process: started_at, device, versions, host, pid.

        Allowed from ``queued`` and ``interrupted``; from ``stopped`` only with ``resume=True``
        (so a cancelled queued run is not started by accident). Clears ``stop_requested``.
        """
        now = time.time()
        values = {
            "status": "running",
            "started_at": now,
            "finished_at": None,
            "updated_at": now,
            "device": device,
            "versions": _dumps(versions, "versions"),
            "host": self._host,
            "pid": os.getpid(),
            "stop_requested": False,
        }

        def do(conn: Connection) -> None:
            old = self._status_for_update(conn, run_id)
            if "running" not in TRANSITIONS[old]:
                raise _transition_error(run_id, old, "running")
            if old == "stopped" and not resume:
                raise StoreError(f"run {run_id} was stopped; pass resume=True to start it again")
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            self._event(conn, run_id, "status", {"status": "running", "from": old, "device": device}, now)

        self._tx(do)

    def set_status(self, run_id: int, status: str, *, diagnosis: str | None = None, error: str | None = None) -> None:
        """Move the run to ``status`` (see the module doc for the allowed transitions).

        Ending statuses set ``finished_at``; ``diagnosis``/``error`` are stored when given.
        """
        _check_status(status)
        now = time.time()

        def do(conn: Connection) -> None:
            old = self._status_for_update(conn, run_id)
            # A run wrongly marked interrupted (a quiet run on another host) that its own,
            # evidently alive, process ends: judge the change as from 'running'.
            judged = "running" if old == "interrupted" and self._timed_out_but_mine(conn, run_id) else old
            if status not in TRANSITIONS[judged]:
                raise _transition_error(run_id, old, status)
            values: dict[str, Any] = {"status": status, "updated_at": now}
            if status in _ENDED:
                values["finished_at"] = now
            else:
                values["finished_at"] = None
            if diagnosis is not None:
                values["diagnosis"] = diagnosis
            if error is not None:
                values["error"] = error
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            payload = {"status": status, "from": old}
            if diagnosis is not None:
                payload["diagnosis"] = diagnosis
            if error is not None:
                payload["error"] = error
            self._event(conn, run_id, "status", payload, now)

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
            old = self._status_for_update(conn, run_id)
            revive = old == "interrupted" and self._timed_out_but_mine(conn, run_id)
            if revive:
                values.update(status="running", finished_at=None)
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            if revive:
                self._event(conn, run_id, "status", {"status": "running", "from": "interrupted",
                                                     "reason": "its process is alive after all"}, now)

        self._tx(do)

    def request_stop(self, run_id: int) -> None:
        """Ask the run to stop: the trainer polls :meth:`stop_requested`. A queued run stops now."""
        now = time.time()

        def do(conn: Connection) -> None:
            old = self._status_for_update(conn, run_id)
            values: dict[str, Any] = {"stop_requested": True}
            if old == "queued":
                values.update(status="stopped", finished_at=now, updated_at=now)
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            self._event(conn, run_id, "stop_requested", {"status": old}, now)
            if old == "queued":
                self._event(conn, run_id, "status", {"status": "stopped", "from": "queued"}, now)

        self._tx(do)

    def stop_requested(self, run_id: int) -> bool:
        """Whether someone asked the run to stop since it (re)started."""
        flag = self._tx(lambda c: c.execute(select(runs.c.stop_requested).where(runs.c.id == run_id)).first(),
                        write=False)
        if flag is None:
            raise StoreError(f"run {run_id} not found")
        return bool(flag[0])

    def set_results(self, run_id: int, results: dict) -> None:
        """Store the run's final results (JSON; NaN and inf survive)."""
        text = _dumps(results, "the results")
        self._update_run(run_id, results=text, updated_at=time.time())

    def rename_run(self, run_id: int, name: str) -> None:
        self._update_run(run_id, name=self._check_name(name))

    def delete_run(self, run_id: int, *, force: bool = False) -> None:
        """Delete the run with its metrics, events and artifacts.

        A ``running`` run is refused unless ``force=True`` (its trainer would keep writing).
        """

        def do(conn: Connection) -> None:
            old = self._status_for_update(conn, run_id)
            if old == "running" and not force:
                raise StoreError(f"run {run_id} is running; stop it before deleting it (or pass force=True)")
            for table in (metrics, events, artifacts):  # explicit, not only ON DELETE CASCADE
                conn.execute(delete(table).where(table.c.run_id == run_id))
            conn.execute(delete(runs).where(runs.c.id == run_id))

        self._tx(do)

    def get_run(self, run_id: int) -> dict:
        """Every field of the run, JSON decoded, plus ``best_test_accuracy`` (None without it)."""
        self._maybe_mark_interrupted()

        def do(conn: Connection) -> dict | None:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                return None
            return self._run_dict(row, self._best_accuracy(conn, [run_id]).get(run_id))

        run = self._tx(do, write=False)
        if run is None:
            raise StoreError(f"run {run_id} not found")
        return run

    def list_runs(
        self,
        *,
        status: str | None = None,
        dataset: str | None = None,
        search: str | None = None,
        limit: int = 200,
    ) -> list[dict]:
        """Runs, newest first, as :meth:`get_run` dicts.

        ``search`` matches a case-insensitive substring of the name, model summary or data set.
        """
        self._maybe_mark_interrupted()
        query = select(runs).order_by(runs.c.id.desc()).limit(max(0, int(limit)))
        if status is not None:
            query = query.where(runs.c.status == _check_status(status))
        if dataset is not None:
            query = query.where(runs.c.dataset == dataset)
        if search:
            pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(*(func.lower(col).like(pattern, escape="\\")
                                      for col in (runs.c.name, runs.c.model, runs.c.dataset))))

        def do(conn: Connection) -> list[dict]:
            rows = conn.execute(query).mappings().all()
            best = self._best_accuracy(conn, [r["id"] for r in rows])
            return [self._run_dict(r, best.get(r["id"])) for r in rows]

        return self._tx(do, write=False)

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
                if _process_gone(pid, started_at):
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
                    self._event(conn, run_id, "status", {"status": "interrupted", "from": "running", **why}, now)
                    marked.append(run_id)
            return marked

        marked = self._tx(do)
        if marked:
            log.info("marked runs %s interrupted", marked)
        return marked

    # ----------------------------------------------------------------- metrics & events

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
            raise StoreError(f"run {run_id} not found") from None

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

    def series(self, run_id: int, name: str) -> list[tuple[int, float]]:
        """One metric as ``(examples, value)`` pairs in the order written."""
        query = (select(metrics.c.examples, metrics.c.value)
                 .where(metrics.c.run_id == run_id, metrics.c.name == name).order_by(metrics.c.id))
        return [(int(e), float(v)) for e, v in self._tx(lambda c: c.execute(query).all(), write=False)]

    def add_event(self, run_id: int, kind: str, payload: dict) -> int:
        """Append an event (status change, prediction snapshot, diagnostic...); return its id."""
        if not kind:
            raise StoreError("an event needs a kind")
        text = _dumps(payload, f"the {kind!r} event")
        try:
            return self._tx(lambda c: self._event(c, run_id, kind, text, time.time()))
        except IntegrityError:
            raise StoreError(f"run {run_id} not found") from None

    def events(self, run_id: int, *, after_id: int = 0, kinds: list[str] | None = None,
               limit: int | None = None) -> list[dict]:
        """Events with id > ``after_id``, by id: ``{"id","run_id","kind","payload","time"}``."""
        query = select(events).where(events.c.run_id == run_id, events.c.id > after_id).order_by(events.c.id)
        if kinds is not None:
            query = query.where(events.c.kind.in_(list(kinds)))
        if limit is not None:
            query = query.limit(int(limit))
        rows = self._tx(lambda c: c.execute(query).mappings().all(), write=False)
        return [{**r, "payload": _loads(r["payload"])} for r in rows]

    # ----------------------------------------------------------------- artifacts

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
            raise StoreError(f"run {run_id} not found") from None

    def get_artifact(self, run_id: int, name: str) -> bytes:
        query = select(artifacts.c.data).where(artifacts.c.run_id == run_id, artifacts.c.name == name)
        row = self._tx(lambda c: c.execute(query).first(), write=False)
        if row is None:
            raise StoreError(f"run {run_id} has no artifact named {name!r}")
        return bytes(row[0])

    def list_artifacts(self, run_id: int) -> list[dict]:
        """``{"name","kind","media_type","size","created_at"}`` for each artifact, by name."""
        cols = [artifacts.c.name, artifacts.c.kind, artifacts.c.media_type, artifacts.c.size, artifacts.c.created_at]
        query = select(*cols).where(artifacts.c.run_id == run_id).order_by(artifacts.c.name)
        return [dict(r) for r in self._tx(lambda c: c.execute(query).mappings().all(), write=False)]

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def _check_name(name: str) -> str:
        name = str(name).strip()
        if not name or len(name) > 200:
            raise StoreError(f"a run name must have 1 to 200 characters. Received: {name!r}")
        return name

    @staticmethod
    def _status_for_update(conn: Connection, run_id: int) -> str:
        row = conn.execute(select(runs.c.status).where(runs.c.id == run_id).with_for_update()).first()
        if row is None:
            raise StoreError(f"run {run_id} not found")
        return row[0]

    def _timed_out_but_mine(self, conn: Connection, run_id: int) -> bool:
        """Whether an interrupted run was marked so for a stale heartbeat, yet this very
        process (host and pid) runs it: then the process is alive and the mark was wrong.
        A run its own trainer marked interrupted (say on Ctrl-C) is not revived this way."""
        row = conn.execute(select(runs.c.host, runs.c.pid).where(runs.c.id == run_id)).first()
        if row is None or (row[0], row[1]) != (self._host, os.getpid()):
            return False
        last = conn.execute(select(events.c.payload).where(events.c.run_id == run_id, events.c.kind == "status")
                            .order_by(events.c.id.desc()).limit(1)).scalar()
        return last is not None and _loads(last).get("cause") == "heartbeat timeout"

    def _update_run(self, run_id: int, **values: Any) -> None:
        def do(conn: Connection) -> None:
            if conn.execute(update(runs).where(runs.c.id == run_id).values(**values)).rowcount == 0:
                raise StoreError(f"run {run_id} not found")

        self._tx(do)

    @staticmethod
    def _event(conn: Connection, run_id: int, kind: str, payload: dict | str, now: float) -> int:
        text = payload if isinstance(payload, str) else _dumps(payload, "an event")
        result = conn.execute(insert(events).values(run_id=run_id, kind=kind, payload=text, time=now))
        return int(result.inserted_primary_key[0])

    @staticmethod
    def _best_accuracy(conn: Connection, run_ids: list[int]) -> dict[int, float]:
        """Best finite ``test_accuracy`` per run (NaN is NULL on SQLite, > everything on PostgreSQL)."""
        if not run_ids:
            return {}
        value = metrics.c.value
        query = (select(metrics.c.run_id, func.max(value))
                 .where(metrics.c.run_id.in_(run_ids), metrics.c.name == "test_accuracy",
                        and_(value <= 1.0e308, value >= -1.0e308))
                 .group_by(metrics.c.run_id))
        return {int(r): float(v) for r, v in conn.execute(query).all() if v is not None}

    @staticmethod
    def _run_dict(row: Any, best: float | None) -> dict:
        run = dict(row)
        for key in _RUN_JSON:
            run[key] = _loads(run[key])
        run["stop_requested"] = bool(run["stop_requested"])
        run["best_test_accuracy"] = best
        return run

    def _maybe_mark_interrupted(self) -> None:
        if self.check_interval is None or time.monotonic() - self._last_check < self.check_interval:
            return
        try:
            self.mark_interrupted()
        except StoreError as e:  # a viewer must still see the runs
            log.warning("could not check for interrupted runs: %s", e)
