"""The run store's tables, portable between SQLite and PostgreSQL.

Portability choices, each on purpose:

- JSON lives in ``Text`` columns (spec, versions, results, event payloads), written with
  ``allow_nan`` so a NaN accuracy in ``results`` round-trips on every backend.
- Timestamps are ``Double`` seconds since the epoch (``time.time()``): no time-zone handling
  differs between backends, heartbeat ages are one subtraction, and the browser gets numbers.
- Metric values use :class:`FaithfulFloat`: PostgreSQL stores NaN and +/-inf natively, but
  SQLite silently turns a bound NaN into NULL, so the column is nullable and NULL reads back
  as NaN (a metric value is never "missing").
- Study records (sweeps, lr-find, studies) are runs too, told apart by ``runs.kind``
  (:data:`RUN_KINDS`); a member run points at its record by ``runs.parent``.
- Big row-id columns are ``BIGINT`` on PostgreSQL and ``INTEGER`` on SQLite, where only an
  ``INTEGER PRIMARY KEY`` is the auto-incrementing rowid. ``runs`` uses SQLite's
  ``AUTOINCREMENT`` so a deleted run's id is never handed to a new run.
"""
from __future__ import annotations

import math

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "SCHEMA_VERSION",
    "RUN_KINDS",
    "metadata",
    "schema_version",
    "runs",
    "metrics",
    "events",
    "artifacts",
    "views",
    "VIEW_KINDS",
    "FaithfulFloat",
]

# Bump when a table changes, together with a new Alembic revision under migrations/versions/
# (see migrate.py); the schema_version table keeps this number so older code refuses clearly.
SCHEMA_VERSION = 3

# What a run is: an ordinary (training) run, or the record run of a sweep, lr-find or study.
RUN_KINDS = ("run", "sweep", "lr-find", "study")

# What a stored view of a run's insides is (``views`` table, layerlab.train.views): the decision
# boundary of a 2-D input plane with per-neuron maps, or per-layer weight/gradient histograms.
VIEW_KINDS = ("boundary", "histograms")

RowId = BigInteger().with_variant(Integer(), "sqlite")


class FaithfulFloat(TypeDecorator):
    """A double that round-trips NaN and +/-inf on SQLite too (NaN is stored as NULL there)."""

    impl = Double
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = float(value)
        if math.isnan(value) and dialect.name == "sqlite":
            return None
        return value

    def process_result_value(self, value, dialect):
        return math.nan if value is None else float(value)


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("spec", Text, nullable=False),  # JSON
    Column("dataset", String(100), nullable=False, default=""),  # denormalised from spec
    Column("model", String(500), nullable=False, default=""),  # one-line model summary
    Column("seed", BigInteger),
    Column("status", String(16), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("started_at", Double),
    Column("finished_at", Double),
    Column("updated_at", Double, nullable=False),  # heartbeat
    Column("device", String(100)),
    Column("versions", Text),  # JSON {"torch": "2.13.0", ...}
    Column("host", String(255)),
    Column("pid", Integer),
    Column("diagnosis", Text),
    Column("error", Text),
    Column("results", Text),  # JSON, may hold NaN
    Column("step", BigInteger, nullable=False, default=0),
    Column("examples", BigInteger, nullable=False, default=0),
    Column("stop_requested", Boolean, nullable=False, default=False),
    Column("kind", String(16), nullable=False, default="run", server_default="run"),  # one of RUN_KINDS
    Column("parent", Integer, ForeignKey("runs.id", ondelete="SET NULL")),  # a member's record run
    Index("ix_runs_status", "status"),
    Index("ix_runs_dataset", "dataset"),
    Index("ix_runs_kind", "kind"),
    Index("ix_runs_parent", "parent"),
    sqlite_autoincrement=True,
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("examples", BigInteger, nullable=False),
    Column("wall_time", Double, nullable=False),
    Column("value", FaithfulFloat),
    Index("ix_metrics_run_id", "run_id", "id"),  # "rows after id N" for one run
    Index("ix_metrics_run_name", "run_id", "name", "id"),  # one series
)

events = Table(
    "events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("time", Double, nullable=False),
    Index("ix_events_run_id", "run_id", "id"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("run_id", "name", name="uq_artifacts_run_name"),
)

# One evaluation point's view of the network (schema version 3): small, written once per
# (run, kind, step) and replaced whole if a resumed run passes that step again.
views = Table(
    "views",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),  # one of VIEW_KINDS
    Column("step", BigInteger, nullable=False),
    Column("examples", BigInteger, nullable=False),
    Column("meta", Text, nullable=False),  # JSON: shapes, ranges, min/max, layer names, histogram counts
    Column("data", LargeBinary, nullable=False),  # zlib-compressed uint8 grids (empty for histograms)
    Column("created_at", Double, nullable=False),
    UniqueConstraint("run_id", "kind", "step", name="uq_views_run_kind_step"),
)
