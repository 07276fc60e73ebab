"""Data sources (Domino's): connection settings, grants, sealed credentials and an audit log

Revision ID: e3b9d1f5a7c2
Revises: a3d5f7b9c1e2
Create Date: 2026-12-07 17:21:54.445837
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3b9d1f5a7c2"
down_revision: str | None = "a3d5f7b9c1e2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_source_audit",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("data_source_id", sa.String(length=24), nullable=False),
        sa.Column("data_source_name", sa.String(length=200), nullable=False),
        sa.Column("data_source_type", sa.String(length=40), nullable=False),
        sa.Column("event_kind", sa.String(length=60), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("performed_by", sa.String(length=200), nullable=False),
        sa.Column("performed_by_id", sa.String(length=32), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_data_source_audit_org_id_organisations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_source_audit")),
    )
    with op.batch_alter_table("data_source_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_source_audit_data_source_id"), ["data_source_id"], unique=False)
        batch_op.create_index("ix_data_source_audit_org_id_at", ["org_id", "at"], unique=False)

    op.create_table(
        "data_sources",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("data_source_type", sa.String(length=40), nullable=False),
        sa.Column("auth_type", sa.String(length=40), nullable=False),
        sa.Column("credential_type", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("is_everyone", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_data_sources_org_id_organisations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_data_sources_owner_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_sources")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_data_sources_org_id")),
    )
    with op.batch_alter_table("data_sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_sources_org_id"), ["org_id"], unique=False)

    op.create_table(
        "data_source_credentials",
        sa.Column("data_source_id", sa.String(length=24), nullable=False),
        sa.Column("holder", sa.String(length=32), nullable=False),
        sa.Column("visible", sa.Text(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_source_id"],
            ["data_sources.id"],
            name=op.f("fk_data_source_credentials_data_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("data_source_id", "holder", name=op.f("pk_data_source_credentials")),
    )
    op.create_table(
        "data_source_grants",
        sa.Column("data_source_id", sa.String(length=24), nullable=False),
        sa.Column("grantee_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_source_id"],
            ["data_sources.id"],
            name=op.f("fk_data_source_grants_data_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("data_source_id", "grantee_id", name=op.f("pk_data_source_grants")),
    )
    with op.batch_alter_table("data_source_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_source_grants_grantee_id"), ["grantee_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("data_source_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_source_grants_grantee_id"))

    op.drop_table("data_source_grants")
    op.drop_table("data_source_credentials")
    with op.batch_alter_table("data_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_sources_org_id"))

    op.drop_table("data_sources")
    with op.batch_alter_table("data_source_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_data_source_audit_org_id_at")
        batch_op.drop_index(batch_op.f("ix_data_source_audit_data_source_id"))

    op.drop_table("data_source_audit")
