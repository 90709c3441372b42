"""Study records get their own columns, runs.kind and runs.parent (schema version 2).

Revision ID: 0002
Revises: 0001

Before, a record run was told by its ``model`` column (``sweep``, ``lr-find``,
``study:<name>``) and a member only by its ``study`` event. This adds ``kind`` (``run`` for
every other run) and ``parent`` (a member's record; SET NULL when the record is deleted),
indexes both, and backfills them from those markers and events.

The columns are added with plain ``ALTER TABLE ... ADD COLUMN`` on both backends
(``batch_alter_table(recreate="never")``): SQLite's table-copy batch mode would ``DROP TABLE
runs`` with foreign keys on, which cascades and deletes every metric, event and artifact,
and would lose AUTOINCREMENT's high-water mark (a deleted run's id must never come back).
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_RECORD_MARKERS = (("sweep", "model = 'sweep'"), ("lr-find", "model = 'lr-find'"), ("study", "model LIKE 'study:%'"))


def upgrade() -> None:
    with op.batch_alter_table("runs", recreate="never") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="run"))
        batch.add_column(sa.Column("parent", sa.Integer, sa.ForeignKey("runs.id", ondelete="SET NULL")),
                         inline_references=True)  # SQLite cannot add a foreign key after the column
        batch.create_index("ix_runs_kind", ["kind"])
        batch.create_index("ix_runs_parent", ["parent"])
    conn = op.get_bind()
    for kind, marker in _RECORD_MARKERS:
        conn.execute(sa.text(f"UPDATE runs SET kind = :kind WHERE {marker}"), {"kind": kind})

    # A member's study event says {"record": <record id>, ...}; its first one names its record.
    records = set(conn.execute(sa.text("SELECT id FROM runs WHERE kind <> 'run'")).scalars())
    parents: dict[int, int] = {}
    for run_id, payload in conn.execute(sa.text("SELECT run_id, payload FROM events WHERE kind = 'study' ORDER BY id")):
        try:
            record = json.loads(payload).get("record")
        except (ValueError, AttributeError):  # not a study event layerlab wrote: leave the run alone
            continue
        if isinstance(record, int) and record in records and record != run_id:
            parents.setdefault(run_id, record)
    if parents:
        conn.execute(sa.text("UPDATE runs SET parent = :parent WHERE id = :id"),
                     [{"id": run_id, "parent": record} for run_id, record in parents.items()])
    op.execute("UPDATE schema_version SET version = 2")


def downgrade() -> None:
    raise NotImplementedError("layerlab does not downgrade a store; an older layerlab refuses this one clearly")
