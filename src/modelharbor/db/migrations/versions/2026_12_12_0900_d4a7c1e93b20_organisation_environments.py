"""organisation environments (Domino's): environments without a project, with an owner, a visibility, a default
flag, archiving and a restricted revision; builds given as fields (spec)

Revision ID: d4a7c1e93b20
Revises: c7e2f9a41b58
Create Date: 2026-12-12 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4a7c1e93b20"
down_revision: str | None = "c7e2f9a41b58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("serving_environments") as batch:
        batch.alter_column("project_id", existing_type=sa.String(length=24), nullable=True)
        batch.add_column(sa.Column("org_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("owner_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("team_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("visibility", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("archived", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("restricted_build_id", sa.String(length=36), nullable=True))
        batch.create_index(batch.f("ix_serving_environments_org_id"), ["org_id"], unique=False)
        batch.create_foreign_key(
            "fk_serving_environments_org_id_organisations", "organisations", ["org_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_foreign_key(
            "fk_serving_environments_owner_id_users", "users", ["owner_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key(
            "fk_serving_environments_team_id_teams", "teams", ["team_id"], ["id"], ondelete="SET NULL"
        )
    op.add_column("serving_environment_builds", sa.Column("spec", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("serving_environment_builds", "spec")
    # organisation environments cannot exist without the columns: they go, with their tags and builds
    gone = "SELECT id FROM serving_environments WHERE project_id IS NULL"
    tags = f"SELECT id FROM serving_environment_tags WHERE environment_id IN ({gone})"
    op.execute(f"DELETE FROM serving_environment_builds WHERE tag_id IN ({tags})")
    op.execute(f"DELETE FROM serving_environment_tags WHERE environment_id IN ({gone})")
    op.execute("DELETE FROM serving_environments WHERE project_id IS NULL")
    with op.batch_alter_table("serving_environments") as batch:
        batch.drop_constraint("fk_serving_environments_team_id_teams", type_="foreignkey")
        batch.drop_constraint("fk_serving_environments_owner_id_users", type_="foreignkey")
        batch.drop_constraint("fk_serving_environments_org_id_organisations", type_="foreignkey")
        batch.drop_index(batch.f("ix_serving_environments_org_id"))
        for column in ("restricted_build_id", "archived", "is_default", "visibility", "team_id", "owner_id", "org_id"):
            batch.drop_column(column)
        batch.alter_column("project_id", existing_type=sa.String(length=24), nullable=False)
