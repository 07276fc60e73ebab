"""Dataset uploads (resumable, per-file upload sessions), the MD5 of a chunk, blobs only in datasets

Revision ID: 18c866074f78
Revises: e3b9d1f5a7c2
Create Date: 2026-12-07 20:10:12.384751
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "18c866074f78"
down_revision: str | None = "e3b9d1f5a7c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "dataset_uploads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=24), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("collision", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("files", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_uploads_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_dataset_uploads_org_id_organisations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_dataset_uploads_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_uploads")),
    )
    with op.batch_alter_table("dataset_uploads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dataset_uploads_dataset_owner_state", ["dataset_id", "owner_id", "state"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dataset_uploads_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "dataset_upload_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("upload_id", sa.String(length=36), nullable=False),
        sa.Column("path_key", sa.String(length=40), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("identifier", sa.String(length=300), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("adopted", sa.Boolean(), nullable=False),
        sa.Column("confirmed", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["upload_sessions.id"],
            name=op.f("fk_dataset_upload_files_session_id_upload_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["dataset_uploads.id"],
            name=op.f("fk_dataset_upload_files_upload_id_dataset_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_upload_files")),
        sa.UniqueConstraint("upload_id", "path_key", name=op.f("uq_dataset_upload_files_upload_id")),
    )
    with op.batch_alter_table("dataset_upload_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_upload_files_session_id"), ["session_id"], unique=False)
        batch_op.create_index("ix_dataset_upload_files_upload_identifier", ["upload_id", "identifier"], unique=False)

    with op.batch_alter_table("upload_chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("md5", sa.String(length=32), nullable=True))

    with op.batch_alter_table("project_file_blobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("in_files", sa.Boolean(), server_default=sa.text("true"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("project_file_blobs", schema=None) as batch_op:
        batch_op.drop_column("in_files")

    with op.batch_alter_table("upload_chunks", schema=None) as batch_op:
        batch_op.drop_column("md5")

    with op.batch_alter_table("dataset_upload_files", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_upload_files_upload_identifier")
        batch_op.drop_index(batch_op.f("ix_dataset_upload_files_session_id"))

    op.drop_table("dataset_upload_files")
    with op.batch_alter_table("dataset_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_uploads_expires_at"))
        batch_op.drop_index("ix_dataset_uploads_dataset_owner_state")

    op.drop_table("dataset_uploads")
