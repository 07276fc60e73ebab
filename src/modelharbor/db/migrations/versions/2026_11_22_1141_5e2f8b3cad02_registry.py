"""registry: projects, registered models, versions, tags, aliases, stages

Revision ID: 5e2f8b3cad02
Revises: 4d1e7a2b9c01
Create Date: 2026-11-22 11:41:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e2f8b3cad02"
down_revision: str | None = "4d1e7a2b9c01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    ref_table = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{ref_table}"), ondelete=ondelete)


def _stamp(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "registry_projects",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=True),
        _stamp("created_at"),
        _fk("registry_projects", "org_id", "organisations.id", "CASCADE"),
        _fk("registry_projects", "owner_id", "users.id", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_projects")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_registry_projects_org_id")),
    )
    op.create_index(op.f("ix_registry_projects_org_id"), "registry_projects", ["org_id"], unique=False)

    op.create_table(
        "registered_models",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("project_id", sa.String(length=24), nullable=True),
        sa.Column("discoverable", sa.Boolean(), nullable=False),
        sa.Column("creator_id", sa.String(length=32), nullable=True),
        sa.Column("next_version", sa.Integer(), nullable=False),
        _stamp("created_at"),
        _stamp("updated_at"),
        _fk("registered_models", "creator_id", "users.id", "SET NULL"),
        _fk("registered_models", "org_id", "organisations.id", "CASCADE"),
        _fk("registered_models", "project_id", "registry_projects.id", "SET NULL"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_registered_models")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_registered_models_org_id")),
    )
    op.create_index(op.f("ix_registered_models_org_id"), "registered_models", ["org_id"], unique=False)
    op.create_index(op.f("ix_registered_models_project_id"), "registered_models", ["project_id"], unique=False)

    op.create_table(
        "model_versions",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_pk", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("run_link", sa.Text(), nullable=True),
        sa.Column("model_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("current_stage", sa.String(length=20), nullable=False),
        sa.Column("creator_id", sa.String(length=32), nullable=True),
        _stamp("created_at"),
        _stamp("updated_at"),
        _fk("model_versions", "creator_id", "users.id", "SET NULL"),
        _fk("model_versions", "model_pk", "registered_models.pk", "CASCADE"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("model_pk", "version", name=op.f("uq_model_versions_model_pk")),
    )
    op.create_index(op.f("ix_model_versions_model_pk"), "model_versions", ["model_pk"], unique=False)
    op.create_index(op.f("ix_model_versions_run_id"), "model_versions", ["run_id"], unique=False)

    op.create_table(
        "registered_model_tags",
        sa.Column("model_pk", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _fk("registered_model_tags", "model_pk", "registered_models.pk", "CASCADE"),
        sa.PrimaryKeyConstraint("model_pk", "key", name=op.f("pk_registered_model_tags")),
    )
    op.create_table(
        "model_version_tags",
        sa.Column("version_pk", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _fk("model_version_tags", "version_pk", "model_versions.pk", "CASCADE"),
        sa.PrimaryKeyConstraint("version_pk", "key", name=op.f("pk_model_version_tags")),
    )
    op.create_table(
        "registered_model_aliases",
        sa.Column("model_pk", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=256), nullable=False),
        sa.Column("version_pk", sa.Integer(), nullable=False),
        _fk("registered_model_aliases", "model_pk", "registered_models.pk", "CASCADE"),
        _fk("registered_model_aliases", "version_pk", "model_versions.pk", "CASCADE"),
        sa.PrimaryKeyConstraint("model_pk", "alias", name=op.f("pk_registered_model_aliases")),
    )
    op.create_index(
        op.f("ix_registered_model_aliases_version_pk"), "registered_model_aliases", ["version_pk"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_registered_model_aliases_version_pk"), table_name="registered_model_aliases")
    op.drop_table("registered_model_aliases")
    op.drop_table("model_version_tags")
    op.drop_table("registered_model_tags")
    op.drop_index(op.f("ix_model_versions_run_id"), table_name="model_versions")
    op.drop_index(op.f("ix_model_versions_model_pk"), table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_index(op.f("ix_registered_models_project_id"), table_name="registered_models")
    op.drop_index(op.f("ix_registered_models_org_id"), table_name="registered_models")
    op.drop_table("registered_models")
    op.drop_index(op.f("ix_registry_projects_org_id"), table_name="registry_projects")
    op.drop_table("registry_projects")
