"""project goals, imported git repositories and access requests

Revision ID: d8a1c3e5f702
Revises: d4a7c1e93b20
Create Date: 2026-12-12 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d8a1c3e5f702"
down_revision: str | None = "d4a7c1e93b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "project_goals",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("stage_id", sa.String(length=64), nullable=True),
        sa.Column("assignee_id", sa.String(length=32), nullable=True),
        sa.Column("creator_id", sa.String(length=32), nullable=True),
        sa.Column("is_complete", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["creator_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["registry_projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_project_goals_project_id"), "project_goals", ["project_id"], unique=False)
    op.create_table(
        "project_git_repositories",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("ref_type", sa.String(length=10), nullable=False),
        sa.Column("ref_value", sa.String(length=256), nullable=True),
        sa.Column("credential_id", sa.String(length=32), nullable=True),
        sa.Column("creator_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["credential_id"], ["git_credentials.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["creator_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["registry_projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "name"),
    )
    op.create_index(
        op.f("ix_project_git_repositories_project_id"), "project_git_repositories", ["project_id"], unique=False
    )
    op.create_table(
        "project_access_requests",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["registry_projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_project_access_requests_project_status", "project_access_requests", ["project_id", "status"], unique=False
    )
    op.create_index(op.f("ix_project_access_requests_user_id"), "project_access_requests", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_project_access_requests_user_id"), table_name="project_access_requests")
    op.drop_index("ix_project_access_requests_project_status", table_name="project_access_requests")
    op.drop_table("project_access_requests")
    op.drop_index(op.f("ix_project_git_repositories_project_id"), table_name="project_git_repositories")
    op.drop_table("project_git_repositories")
    op.drop_index(op.f("ix_project_goals_project_id"), table_name="project_goals")
    op.drop_table("project_goals")
