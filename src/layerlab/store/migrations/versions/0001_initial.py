"""The schema of the last release before Alembic (schema version 1).

Revision ID: 0001
Revises: none

A frozen copy of the v1 tables, not an import of ``schema.py`` (which moves on). Stores
written before Alembic are stamped with this revision and upgraded from it.
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table("schema_version", sa.Column("version", sa.Integer, primary_key=True, autoincrement=False))
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("dataset", sa.String(100), nullable=False),
        sa.Column("model", sa.String(500), nullable=False),
        sa.Column("seed", sa.BigInteger),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("started_at", sa.Double),
        sa.Column("finished_at", sa.Double),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("device", sa.String(100)),
        sa.Column("versions", sa.Text),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer),
        sa.Column("diagnosis", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("results", sa.Text),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("examples", sa.BigInteger, nullable=False),
        sa.Column("stop_requested", sa.Boolean, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_dataset", "runs", ["dataset"])
    run_fk = {"ondelete": "CASCADE"}
    op.create_table(
        "metrics",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", **run_fk), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("examples", sa.BigInteger, nullable=False),
        sa.Column("wall_time", sa.Double, nullable=False),
        sa.Column("value", sa.Double),
    )
    op.create_index("ix_metrics_run_id", "metrics", ["run_id", "id"])
    op.create_index("ix_metrics_run_name", "metrics", ["run_id", "name", "id"])
    op.create_table(
        "events",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", **run_fk), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("time", sa.Double, nullable=False),
    )
    op.create_index("ix_events_run_id", "events", ["run_id", "id"])
    op.create_table(
        "artifacts",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", **run_fk), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.UniqueConstraint("run_id", "name", name="uq_artifacts_run_name"),
    )
    op.execute("INSERT INTO schema_version (version) VALUES (1)")


def downgrade() -> None:
    for table in ("artifacts", "events", "metrics", "runs", "schema_version"):
        op.drop_table(table)
