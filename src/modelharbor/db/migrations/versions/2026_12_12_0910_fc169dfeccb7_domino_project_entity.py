"""Domino's project entity: visibility, archive, status, result settings, an owning team, tags

Revision ID: fc169dfeccb7
Revises: d8a1c3e5f702
Create Date: 2026-12-07 12:43:41.868391
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fc169dfeccb7"
down_revision: str | None = "d8a1c3e5f702"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "project_tags",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("is_approved", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_project_tags_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_project_tags_org_id_organisations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_tags")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_project_tags_org_id")),
    )
    op.create_table(
        "project_tag_links",
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("tag_id", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["registry_projects.id"],
            name=op.f("fk_project_tag_links_project_id_registry_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["project_tags.id"], name=op.f("fk_project_tag_links_tag_id_project_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("project_id", "tag_id", name=op.f("pk_project_tag_links")),
    )
    with op.batch_alter_table("project_tag_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_project_tag_links_tag_id"), ["tag_id"], unique=False)

    with op.batch_alter_table("registry_project_collaborators", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_project_collaborators_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("registry_projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visibility", sa.String(length=16), server_default="Public", nullable=False))
        batch_op.add_column(sa.Column("archived", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("status", sa.String(length=16), server_default="active", nullable=False))
        batch_op.add_column(sa.Column("is_blocked", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("blocked_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("completed_message", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("results_branch", sa.String(length=16), server_default="main", nullable=False))
        batch_op.add_column(sa.Column("owner_team_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_registry_projects_owner_team_id"), ["owner_team_id"], unique=False)
        batch_op.create_index(
            "ix_registry_projects_listing",
            ["org_id", "archived", "name", "visibility", "owner_id", "owner_team_id", "id"],
            unique=False,
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_registry_projects_owner_team_id_teams"),
            "teams",
            ["owner_team_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.execute("UPDATE registry_projects SET updated_at = created_at WHERE updated_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("registry_projects", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_registry_projects_owner_team_id_teams"), type_="foreignkey")
        batch_op.drop_index("ix_registry_projects_listing")
        batch_op.drop_index(batch_op.f("ix_registry_projects_owner_team_id"))
        batch_op.drop_column("updated_at")
        batch_op.drop_column("owner_team_id")
        batch_op.drop_column("results_branch")
        batch_op.drop_column("completed_message")
        batch_op.drop_column("blocked_reason")
        batch_op.drop_column("is_blocked")
        batch_op.drop_column("status")
        batch_op.drop_column("archived")
        batch_op.drop_column("visibility")

    with op.batch_alter_table("registry_project_collaborators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_project_collaborators_user_id"))

    with op.batch_alter_table("project_tag_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_tag_links_tag_id"))

    op.drop_table("project_tag_links")
    op.drop_table("project_tags")
