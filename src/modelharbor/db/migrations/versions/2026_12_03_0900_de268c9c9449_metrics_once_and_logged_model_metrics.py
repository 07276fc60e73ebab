"""run metrics once per (run, key, step, timestamp, value); metrics of logged models; history rows' model_id

Existing duplicate history rows are collapsed (the first logged is kept), NaN moves from NULL to value 0 with
``is_nan`` (so NaN is one value in the unique index), and every latest value is recomputed by MLflow's rule
(highest step, then latest timestamp, then larger value).

Revision ID: de268c9c9449
Revises: f5705435fc9d
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "de268c9c9449"
down_revision: str | None = "f5705435fc9d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IDENTITY = ["run_id", "key", "step", "timestamp", "value", "is_nan"]


def _collapse_duplicates() -> None:
    """Keep the first row (lowest id) of every (run, key, step, timestamp, value); NULL values (NaN) are one value."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DELETE FROM tracking_metrics AS a USING tracking_metrics AS b "
            "WHERE a.run_id = b.run_id AND a.key = b.key AND a.step = b.step AND a.timestamp = b.timestamp "
            "AND a.value IS NOT DISTINCT FROM b.value AND a.id > b.id"
        )
    else:  # GROUP BY puts NULLs in one group; SQLite indexes the IN list once
        op.execute(
            "DELETE FROM tracking_metrics WHERE id NOT IN "
            "(SELECT MIN(id) FROM tracking_metrics GROUP BY run_id, key, step, timestamp, value)"
        )


def _recompute_latest() -> None:
    """Each latest value from the history: highest step, then latest timestamp, then larger value (NaN as 0)."""
    best = (
        "SELECT {col} FROM tracking_metrics AS m "
        "WHERE m.run_id = tracking_latest_metrics.run_id AND m.key = tracking_latest_metrics.key "
        "ORDER BY m.step DESC, m.timestamp DESC, m.value DESC, m.is_nan ASC LIMIT 1"
    )
    op.execute(
        "UPDATE tracking_latest_metrics SET "
        f"value = ({best.format(col='CASE WHEN m.is_nan THEN NULL ELSE m.value END')}), "
        f"timestamp = ({best.format(col='m.timestamp')}), "
        f"step = ({best.format(col='m.step')}) "
        "WHERE EXISTS (SELECT 1 FROM tracking_metrics AS h "
        "WHERE h.run_id = tracking_latest_metrics.run_id AND h.key = tracking_latest_metrics.key)"
    )


def upgrade() -> None:
    _collapse_duplicates()
    with op.batch_alter_table("tracking_metrics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_nan", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("model_id", sa.String(length=40), nullable=True))
    metrics = sa.table("tracking_metrics", sa.column("value", sa.Float()), sa.column("is_nan", sa.Boolean()))
    op.execute(metrics.update().values(is_nan=metrics.c.value.is_(None)))
    op.execute(metrics.update().where(metrics.c.value.is_(None)).values(value=0.0))
    with op.batch_alter_table("tracking_metrics", schema=None) as batch_op:
        batch_op.alter_column("is_nan", existing_type=sa.Boolean(), nullable=False)
        batch_op.alter_column("value", existing_type=sa.Float(), nullable=False)
        batch_op.drop_index("ix_tracking_metrics_run_key")
        batch_op.create_unique_constraint("uq_tracking_metrics_identity", IDENTITY)
    _recompute_latest()

    op.create_table(
        "tracking_logged_model_metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("dataset_name", sa.String(length=500), nullable=True),
        sa.Column("dataset_digest", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["tracking_logged_models.id"],
            name=op.f("fk_tracking_logged_model_metrics_model_id_tracking_logged_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["tracking_runs.id"],
            name=op.f("fk_tracking_logged_model_metrics_run_id_tracking_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_logged_model_metrics")),
        sa.UniqueConstraint(
            "model_id",
            "run_id",
            "key",
            "step",
            "timestamp",
            "value",
            "is_nan",
            name="uq_tracking_logged_model_metrics_identity",
        ),
    )
    with op.batch_alter_table("tracking_logged_model_metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracking_logged_model_metrics_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tracking_logged_model_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracking_logged_model_metrics_run_id"))
    op.drop_table("tracking_logged_model_metrics")

    with op.batch_alter_table("tracking_metrics", schema=None) as batch_op:
        batch_op.drop_constraint("uq_tracking_metrics_identity", type_="unique")
        batch_op.create_index("ix_tracking_metrics_run_key", ["run_id", "key"], unique=False)
        batch_op.alter_column("value", existing_type=sa.Float(), nullable=True)
    metrics = sa.table("tracking_metrics", sa.column("value", sa.Float()), sa.column("is_nan", sa.Boolean()))
    op.execute(metrics.update().where(metrics.c.is_nan == sa.true()).values(value=None))
    with op.batch_alter_table("tracking_metrics", schema=None) as batch_op:
        batch_op.drop_column("model_id")
        batch_op.drop_column("is_nan")
