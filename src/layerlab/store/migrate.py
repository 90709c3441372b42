"""The store's schema version: create a new database, upgrade an old one, refuse a newer one.

Apart from the queries because it runs once per :class:`~layerlab.store.Store` and must be
right under concurrency: many workers may open one new or old database at the same moment.

* The schema is versioned by Alembic (revisions in ``migrations/versions/``, run on the
  store's own connection, no ``alembic.ini``). The ``schema_version`` table keeps the plain
  number (:data:`SCHEMA_VERSION`) as well, so that code from before Alembic refuses a newer
  store clearly instead of failing on a missing column.
* Opening a database: a new one is created at the head (``create_all``, then stamped); one
  with ``schema_version`` but no ``alembic_version`` (written before Alembic) is stamped with
  its number's revision and upgraded; one at an older revision is upgraded. A database whose
  revision this code does not know, or whose ``schema_version`` is greater, was written by a
  newer layerlab: it is refused with a :class:`StoreUnavailable` (a StoreError) before anything is written.
* The check reads first and writes only when needed. Upgrades run in one write transaction
  that serialises them (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock) and reads
  the state again inside it, so a second process finds the work done and does nothing.
  DDL is transactional on both backends: a failed upgrade leaves the old schema whole.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, insert, inspect, select, text
from sqlalchemy.engine import Connection

from ..errors import StoreUnavailable
from .engine import StoreBase
from .schema import SCHEMA_VERSION, metadata, schema_version

__all__ = ["HEAD", "REVISIONS", "MIGRATIONS", "ensure_schema", "alembic_config"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")  # Alembic's script_location
REVISIONS = {1: "0001", 2: "0002", 3: "0003"}  # schema_version number -> the Alembic revision that makes it
HEAD = REVISIONS[SCHEMA_VERSION]
_PG_SCHEMA_LOCK = 0x6C617972  # advisory lock key serialising schema changes on PostgreSQL


@dataclass(frozen=True)
class _State:
    tables: frozenset[str]
    revisions: tuple[str, ...]  # alembic_version rows (one for a linear history)
    number: int | None  # max(schema_version.version)

    @property
    def current(self) -> bool:
        return self.revisions == (HEAD,) and self.number == SCHEMA_VERSION


def _read_state(conn: Connection) -> _State:
    tables = frozenset(inspect(conn).get_table_names())
    revisions: tuple[str, ...] = ()
    if "alembic_version" in tables:
        revisions = tuple(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    number = conn.execute(select(func.max(schema_version.c.version))).scalar() if "schema_version" in tables else None
    return _State(tables, revisions, number)


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}


def _refuse_newer(state: _State, url: str) -> None:
    found = None
    if state.number is not None and state.number > SCHEMA_VERSION:
        found = f"schema version {state.number}"
    elif state.revisions and state.revisions != (HEAD,):
        unknown = sorted(set(state.revisions) - _known_revisions())
        if unknown:
            found = f"schema revision {', '.join(unknown)}"
    if found:
        raise StoreUnavailable(f"the store at {url} was written by a newer layerlab ({found}); this layerlab knows up "
                         f"to schema version {SCHEMA_VERSION} (revision {HEAD}); upgrade layerlab")


def alembic_config(conn: Connection):
    """An Alembic ``Config`` whose migrations run on ``conn`` (in the caller's transaction)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = conn
    return config


def _upgrade(conn: Connection, url: str) -> None:
    from alembic.util import CommandError

    if conn.dialect.name == "postgresql":  # several processes may open a new database at once
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})")
    state = _read_state(conn)  # again, now that we hold the lock: another process may have done it
    _refuse_newer(state, url)
    if state.current:
        return
    try:
        _migrate(conn, state, url)
    except CommandError as e:
        raise StoreUnavailable(f"cannot upgrade the store at {url}: {e}") from e
    if conn.execute(select(func.max(schema_version.c.version))).scalar() != SCHEMA_VERSION:
        conn.execute(delete(schema_version))
        conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))


def _migrate(conn: Connection, state: _State, url: str) -> None:
    from alembic import command

    config = alembic_config(conn)
    if "runs" not in state.tables:
        metadata.create_all(conn)
        command.stamp(config, HEAD)
        log.info("created the store at %s (schema version %s, revision %s)", url, SCHEMA_VERSION, HEAD)
    else:
        if not state.revisions:  # written before Alembic: schema_version says which revision it is at
            number = state.number if state.number is not None else 1
            if number not in REVISIONS:
                raise StoreUnavailable(f"the store at {url} has schema version {number}, which no layerlab wrote")
            command.stamp(config, REVISIONS[number])
        command.upgrade(config, "head")
        log.info("upgraded the store at %s from %s to schema version %s (revision %s)", url,
                 f"revision {state.revisions[0]}" if state.revisions else f"schema version {state.number}",
                 SCHEMA_VERSION, HEAD)


def ensure_schema(store: StoreBase) -> None:
    """Bring the store's database to this code's schema, or refuse it (see the module doc)."""
    url = store._safe_url()
    state = store._tx(_read_state, write=False)
    _refuse_newer(state, url)
    if not state.current:
        store._tx(lambda conn: _upgrade(conn, url), write=True)
