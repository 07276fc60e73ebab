"""upload sessions: chunk size, fingerprint and declared SHA-256 (resume whatever the chunk size; deduplication)

Plain ``ADD COLUMN``s and an index: no table is rebuilt (on SQLite a rebuild of ``upload_sessions`` would cascade to
its chunks).

Revision ID: a91c4e7d2f30
Revises: de268c9c9449
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a91c4e7d2f30"
down_revision: str | None = "de268c9c9449"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("upload_sessions", sa.Column("chunk_size", sa.BigInteger(), nullable=True))
    op.add_column("upload_sessions", sa.Column("fingerprint", sa.String(length=64), nullable=True))
    op.add_column("upload_sessions", sa.Column("sha256", sa.String(length=64), nullable=True))
    op.add_column(
        "upload_sessions",
        sa.Column("deduplicated", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index(op.f("ix_upload_sessions_fingerprint"), "upload_sessions", ["fingerprint"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_upload_sessions_fingerprint"), table_name="upload_sessions")
    for column in ("deduplicated", "sha256", "fingerprint", "chunk_size"):
        op.drop_column("upload_sessions", column)  # SQLite ≥ 3.35 drops a column in place
