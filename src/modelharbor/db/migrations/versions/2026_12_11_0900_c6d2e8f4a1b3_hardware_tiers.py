"""hardware tiers (per organisation; the first one is seeded on first use, see core/hardware_tiers.py)

Revision ID: c6d2e8f4a1b3
Revises: a91c4e7d2f30
Create Date: 2026-12-11 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c6d2e8f4a1b3"
down_revision: str | None = "a91c4e7d2f30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hardware_tiers",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("tier_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("cores", sa.Float(), nullable=False),
        sa.Column("cores_limit", sa.Float(), nullable=True),
        sa.Column("memory", sa.BigInteger(), nullable=False),
        sa.Column("memory_limit", sa.BigInteger(), nullable=True),
        sa.Column("memory_units", sa.String(length=8), nullable=False),
        sa.Column("gpu_key", sa.String(length=100), nullable=True),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("cents_per_minute", sa.Float(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("is_visible", sa.Boolean(), nullable=False),
        sa.Column("is_global", sa.Boolean(), nullable=False),
        sa.Column("is_archived", sa.Boolean(), nullable=False),
        sa.Column("node_pool", sa.String(length=256), nullable=False),
        sa.Column("max_executions", sa.Integer(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_hardware_tiers_org_id_organisations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_hardware_tiers")),
        sa.UniqueConstraint("org_id", "tier_id", name=op.f("uq_hardware_tiers_org_id")),
    )
    op.create_index(op.f("ix_hardware_tiers_org_id"), "hardware_tiers", ["org_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_hardware_tiers_org_id"), table_name="hardware_tiers")
    op.drop_table("hardware_tiers")
