"""domino datasets: datasets, snapshots, tags, grants, shared datasets

Revision ID: a3d5f7b9c1e2
Revises: fc169dfeccb7
Create Date: 2026-12-12 09:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a3d5f7b9c1e2"
down_revision: str | None = "fc169dfeccb7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("head_tree", sa.String(length=40), nullable=True),
        sa.Column("creator_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["creator_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["registry_projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "name"),
    )
    op.create_index(op.f("ix_datasets_project_id"), "datasets", ["project_id"], unique=False)
    op.create_table(
        "dataset_snapshots",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("dataset_id", sa.String(length=24), nullable=False),
        sa.Column("tree", sa.String(length=40), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("creator_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["creator_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_dataset_snapshots_dataset_id"), "dataset_snapshots", ["dataset_id"], unique=False)
    op.create_table(
        "dataset_tags",
        sa.Column("dataset_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("snapshot_id", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["snapshot_id"], ["dataset_snapshots.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id", "name"),
    )
    op.create_index(op.f("ix_dataset_tags_snapshot_id"), "dataset_tags", ["snapshot_id"], unique=False)
    op.create_table(
        "dataset_grants",
        sa.Column("dataset_id", sa.String(length=24), nullable=False),
        sa.Column("target_id", sa.String(length=32), nullable=False),
        sa.Column("is_team", sa.Boolean(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id", "target_id"),
    )
    op.create_index(op.f("ix_dataset_grants_target_id"), "dataset_grants", ["target_id"], unique=False)
    op.create_table(
        "project_shared_datasets",
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("dataset_id", sa.String(length=24), nullable=False),
        sa.Column("linked_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["linked_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["registry_projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "dataset_id"),
    )
    op.create_index(
        op.f("ix_project_shared_datasets_dataset_id"), "project_shared_datasets", ["dataset_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_project_shared_datasets_dataset_id"), table_name="project_shared_datasets")
    op.drop_table("project_shared_datasets")
    op.drop_index(op.f("ix_dataset_grants_target_id"), table_name="dataset_grants")
    op.drop_table("dataset_grants")
    op.drop_index(op.f("ix_dataset_tags_snapshot_id"), table_name="dataset_tags")
    op.drop_table("dataset_tags")
    op.drop_index(op.f("ix_dataset_snapshots_dataset_id"), table_name="dataset_snapshots")
    op.drop_table("dataset_snapshots")
    op.drop_index(op.f("ix_datasets_project_id"), table_name="datasets")
    op.drop_table("datasets")
