"""versioned project files: commits, content-addressed directory nodes, the project's blobs

Revision ID: c7e2f9a41b58
Revises: 91cec2b8a92d
Create Date: 2026-12-11 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c7e2f9a41b58"
down_revision: str | None = "91cec2b8a92d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "project_file_commits",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.String(length=40), nullable=True),
        sa.Column("tree", sa.String(length=40), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["registry_projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "seq"),
    )
    op.create_table(
        "project_file_trees",
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("hash", sa.String(length=40), nullable=False),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["registry_projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "hash"),
    )
    op.create_table(
        "project_file_blobs",
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=24), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["registry_projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "key"),
    )
    op.create_index(op.f("ix_project_file_blobs_file_id"), "project_file_blobs", ["file_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_project_file_blobs_file_id"), table_name="project_file_blobs")
    op.drop_table("project_file_blobs")
    op.drop_table("project_file_trees")
    op.drop_table("project_file_commits")
