"""pipeline requests (kept per the pipeline version's retention mode; batch ones always)

Revision ID: f5705435fc9d
Revises: b3f4a1c8d2e7
Create Date: 2026-12-01 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f5705435fc9d"
down_revision: str | None = "b3f4a1c8d2e7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "serving_pipeline_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request_data", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("deployment_requests", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_serving_pipeline_requests_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["serving_pipelines.id"],
            name=op.f("fk_serving_pipeline_requests_pipeline_id_serving_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["serving_pipeline_versions.id"],
            name=op.f("fk_serving_pipeline_requests_version_id_serving_pipeline_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_pipeline_requests")),
    )
    with op.batch_alter_table("serving_pipeline_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_serving_pipeline_requests_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_serving_pipeline_requests_pipeline_id"), ["pipeline_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_serving_pipeline_requests_version_id"), ["version_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("serving_pipeline_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serving_pipeline_requests_version_id"))
        batch_op.drop_index(batch_op.f("ix_serving_pipeline_requests_pipeline_id"))
        batch_op.drop_index(batch_op.f("ix_serving_pipeline_requests_created_at"))

    op.drop_table("serving_pipeline_requests")
