"""pending objects (intents of store keys no blob may reference yet)

Revision ID: b3f4a1c8d2e7
Revises: 934d46d96a56
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b3f4a1c8d2e7"
down_revision: str | None = "934d46d96a56"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_objects",
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("context", sa.String(length=64), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_pending_objects")),
    )
    with op.batch_alter_table("pending_objects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_objects_claimed_at"), ["claimed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_pending_objects_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pending_objects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_objects_created_at"))
        batch_op.drop_index(batch_op.f("ix_pending_objects_claimed_at"))
    op.drop_table("pending_objects")
