"""Stored views of a run's insides get their own table, views (schema version 3).

Revision ID: 0003
Revises: 0002

At each evaluation point the trainer may store the decision boundary of a 2-D input plane
(with per-neuron maps) and per-layer weight/gradient histograms (``layerlab.train.views``).
They are small but many, read by run and kind, and not events: the run's stream would carry
kilobytes of grids to every viewer. A new table only; no existing row changes.
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "views",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("examples", sa.BigInteger, nullable=False),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.UniqueConstraint("run_id", "kind", "step", name="uq_views_run_kind_step"),
    )
    op.execute("UPDATE schema_version SET version = 3")


def downgrade() -> None:
    raise NotImplementedError("layerlab does not downgrade a store; an older layerlab refuses this one clearly")
