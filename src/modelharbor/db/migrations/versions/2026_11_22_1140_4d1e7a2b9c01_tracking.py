"""tracking: experiments, runs, metrics, params, tags, logged models, artifacts

Revision ID: 4d1e7a2b9c01
Revises: 2b7c1f74cf94
Create Date: 2026-11-22 11:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4d1e7a2b9c01"
down_revision: str | None = "2b7c1f74cf94"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tracking_experiments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_update_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_tracking_experiments_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_experiments")),
        sa.UniqueConstraint("org_id", "name", name="uq_tracking_experiments_org_name"),
    )
    op.create_table(
        "tracking_artifacts",
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.String(length=24), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["tracking_experiments.id"],
            name=op.f("fk_tracking_artifacts_experiment_id_tracking_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_tracking_artifacts_file_id_files")),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_tracking_artifacts")),
    )
    op.create_index(op.f("ix_tracking_artifacts_experiment_id"), "tracking_artifacts", ["experiment_id"], unique=False)
    op.create_index(op.f("ix_tracking_artifacts_file_id"), "tracking_artifacts", ["file_id"], unique=False)
    op.create_table(
        "tracking_experiment_tags",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["tracking_experiments.id"],
            name=op.f("fk_tracking_experiment_tags_experiment_id_tracking_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "key", name=op.f("pk_tracking_experiment_tags")),
    )
    op.create_table(
        "tracking_logged_models",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("model_type", sa.String(length=500), nullable=True),
        sa.Column("source_run_id", sa.String(length=32), nullable=True),
        sa.Column("creator_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("creation_timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_timestamp_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["tracking_experiments.id"],
            name=op.f("fk_tracking_logged_models_experiment_id_tracking_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_logged_models")),
    )
    op.create_index(
        op.f("ix_tracking_logged_models_experiment_id"), "tracking_logged_models", ["experiment_id"], unique=False
    )
    op.create_index(
        op.f("ix_tracking_logged_models_source_run_id"), "tracking_logged_models", ["source_run_id"], unique=False
    )
    op.create_table(
        "tracking_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["tracking_experiments.id"],
            name=op.f("fk_tracking_runs_experiment_id_tracking_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_runs")),
    )
    op.create_index(op.f("ix_tracking_runs_experiment_id"), "tracking_runs", ["experiment_id"], unique=False)
    op.create_table(
        "tracking_latest_metrics",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["tracking_runs.id"],
            name=op.f("fk_tracking_latest_metrics_run_id_tracking_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_tracking_latest_metrics")),
    )
    op.create_table(
        "tracking_metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["tracking_runs.id"], name=op.f("fk_tracking_metrics_run_id_tracking_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_metrics")),
    )
    op.create_index("ix_tracking_metrics_run_key", "tracking_metrics", ["run_id", "key"], unique=False)
    op.create_table(
        "tracking_params",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["tracking_runs.id"], name=op.f("fk_tracking_params_run_id_tracking_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_tracking_params")),
    )
    op.create_table(
        "tracking_run_tags",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["tracking_runs.id"], name=op.f("fk_tracking_run_tags_run_id_tracking_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_tracking_run_tags")),
    )


def downgrade() -> None:
    op.drop_table("tracking_run_tags")
    op.drop_table("tracking_params")
    op.drop_index("ix_tracking_metrics_run_key", table_name="tracking_metrics")
    op.drop_table("tracking_metrics")
    op.drop_table("tracking_latest_metrics")
    op.drop_index(op.f("ix_tracking_runs_experiment_id"), table_name="tracking_runs")
    op.drop_table("tracking_runs")
    op.drop_index(op.f("ix_tracking_logged_models_source_run_id"), table_name="tracking_logged_models")
    op.drop_index(op.f("ix_tracking_logged_models_experiment_id"), table_name="tracking_logged_models")
    op.drop_table("tracking_logged_models")
    op.drop_table("tracking_experiment_tags")
    op.drop_index(op.f("ix_tracking_artifacts_file_id"), table_name="tracking_artifacts")
    op.drop_index(op.f("ix_tracking_artifacts_experiment_id"), table_name="tracking_artifacts")
    op.drop_table("tracking_artifacts")
    op.drop_table("tracking_experiments")
