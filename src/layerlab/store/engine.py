"""Where the store is and how to talk to it: URL resolution, engines, one-transaction writes.

Kept apart from the queries because it is the part that differs between SQLite and
PostgreSQL and between processes: SQLite gets WAL, a 30 s busy timeout, foreign keys and
``BEGIN IMMEDIATE`` for writes (so a read-then-write transaction never fails at once with
"database is locked"), plus a few retries with backoff after that; every process lazily
opens its own engine, so a :class:`StoreBase` survives ``fork`` and pickles as its settings.
"""
from __future__ import annotations

import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.pool import StaticPool

from ..errors import StoreError, StoreUnavailable

__all__ = ["StoreBase", "default_path", "resolve_url"]

_SQLITE_BUSY_MS = 30_000  # how long SQLite waits for another writer before "database is locked"
_LOCK_RETRIES = 5  # then retry the whole transaction this many times with backoff

T = TypeVar("T")


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


def _is_locked(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "locked" in text or "busy" in text


# What SQLite says of a file that is not a database, or one whose pages are damaged.
_DAMAGED = ("not a database", "malformed", "file is encrypted", "disk image")


def _is_damaged(exc: DatabaseError) -> bool:
    text = str(exc.orig).lower()
    return any(words in text for words in _DAMAGED)


def _sqlite_engine(url: str) -> Engine:
    memory = make_url(url).database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": _SQLITE_BUSY_MS / 1000, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

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


class StoreBase:
    """Settings, this process's engine and :meth:`_tx`; the query mixins build on it."""

    url: str
    heartbeat_timeout: float
    check_interval: float | None
    _backend: str

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()
        self._engine: Engine | None = None
        self._engine_pid: int | None = None
        self._last_check = -math.inf
        self._host = socket.gethostname()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._safe_url()!r})"

    def __getstate__(self) -> dict:
        """Pickles as its settings (for spawn-started workers, Ray); connections stay here."""
        return {"url": self.url, "heartbeat_timeout": self.heartbeat_timeout,
                "check_interval": self.check_interval, "_backend": self._backend}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()

    def __enter__(self):
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
                    self._engine = (create_engine(self.url, pool_pre_ping=True) if self._backend == "postgresql"
                                    else _sqlite_engine(self.url))
                    self._engine_pid = pid
        return self._engine

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
                if self._backend == "sqlite" and _is_damaged(e):
                    raise self._damaged(e) from e
                raise StoreUnavailable(f"the store at {self._safe_url()} failed: {e.orig}") from e
            except DatabaseError as e:  # not IntegrityError and the like: those are the caller's
                if self._backend == "sqlite" and type(e) is DatabaseError and _is_damaged(e):
                    raise self._damaged(e) from e
                raise
        raise AssertionError("unreachable")

    def _damaged(self, e: DatabaseError) -> StoreUnavailable:
        """The error for a SQLite file that is not a database (100 random bytes, a truncated copy)."""
        path = make_url(self.url).database or self._safe_url()
        return StoreUnavailable(f"the store at {path} is not a SQLite database (or is damaged): {e.orig}; "
                                f"move it away (e.g. `mv {path} {path}.damaged`) and a new, empty store is made "
                                "there, or choose another store with --db or LAYERLAB_DB")
