"""registry: project descriptions, stage lists and collaborators; version reviews; longer stage names

Revision ID: 7a3c9e1f2b44
Revises: 5e2f8b3cad02
Create Date: 2026-12-01 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a3c9e1f2b44"
down_revision: str | None = "5e2f8b3cad02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    ref_table = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{ref_table}"), ondelete=ondelete)


def upgrade() -> None:
    with op.batch_alter_table("registry_projects") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("stages", sa.Text(), nullable=True))
    with op.batch_alter_table("model_versions") as batch:
        batch.alter_column(
            "current_stage", existing_type=sa.String(length=20), type_=sa.String(length=64), existing_nullable=False
        )
    op.create_table(
        "registry_project_collaborators",
        sa.Column("project_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        _fk("registry_project_collaborators", "project_id", "registry_projects.id", "CASCADE"),
        _fk("registry_project_collaborators", "user_id", "users.id", "CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "user_id", name=op.f("pk_registry_project_collaborators")),
    )
    op.create_table(
        "model_version_reviews",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("version_pk", sa.Integer(), nullable=False),
        sa.Column("target_stage", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("model_version_reviews", "requested_by", "users.id", "SET NULL"),
        _fk("model_version_reviews", "version_pk", "model_versions.pk", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version_reviews")),
    )
    op.create_index(op.f("ix_model_version_reviews_version_pk"), "model_version_reviews", ["version_pk"], unique=False)
    op.create_table(
        "model_version_reviewers",
        sa.Column("review_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        _fk("model_version_reviewers", "review_id", "model_version_reviews.id", "CASCADE"),
        _fk("model_version_reviewers", "user_id", "users.id", "CASCADE"),
        sa.PrimaryKeyConstraint("review_id", "user_id", name=op.f("pk_model_version_reviewers")),
    )


def downgrade() -> None:
    op.drop_table("model_version_reviewers")
    op.drop_index(op.f("ix_model_version_reviews_version_pk"), table_name="model_version_reviews")
    op.drop_table("model_version_reviews")
    op.drop_table("registry_project_collaborators")
    with op.batch_alter_table("model_versions") as batch:
        batch.alter_column(
            "current_stage", existing_type=sa.String(length=64), type_=sa.String(length=20), existing_nullable=False
        )
    with op.batch_alter_table("registry_projects") as batch:
        batch.drop_column("stages")
        batch.drop_column("description")
