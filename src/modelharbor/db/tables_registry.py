"""Registry tables (projects, registered models, versions, tags, aliases, stages).

Everything hangs off an organisation; a registered model's name is unique within its organisation. Versions are
numbered per model from ``registered_models.next_version`` so numbers are never reused after a delete.
A project may carry its own ordered list of stages (``stages``, JSON; NULL = the default MLflow list) and
collaborators with Domino roles. Reviews ask named reviewers to approve moving a version into a stage.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from modelharbor.db.tables import Base


class RegistryProjectRow(Base):
    """A project (Domino: 24-hex id) that registered models may belong to."""

    __tablename__ = "registry_projects"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        # listings (core/project_settings.py): filter, order and count from the index alone
        Index(
            "ix_registry_projects_listing",
            "org_id",
            "archived",
            "name",
            "visibility",
            "owner_id",
            "owner_team_id",
            "id",
        ),
    )
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(Text, default="")
    stages: Mapped[str | None] = mapped_column(Text)  # JSON list of stage names, NULL = the default list
    created_at: Mapped[datetime]
    # Domino's project entity (core/projects.py): who sees it, archive (read-only), status, result settings
    visibility: Mapped[str] = mapped_column(String(16), default="Public", server_default="Public")
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    is_blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    blocked_reason: Mapped[str | None] = mapped_column(Text)
    completed_message: Mapped[str | None] = mapped_column(Text)
    results_branch: Mapped[str] = mapped_column(String(16), default="main", server_default="main")
    owner_team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    updated_at: Mapped[datetime | None]


class ProjectCollaboratorRow(Base):
    __tablename__ = "registry_project_collaborators"
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )  # index: "projects I collaborate on"
    role: Mapped[str] = mapped_column(String(32))


class RegisteredModelRow(Base):
    __tablename__ = "registered_models"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    project_id: Mapped[str | None] = mapped_column(ForeignKey("registry_projects.id", ondelete="SET NULL"), index=True)
    discoverable: Mapped[bool] = mapped_column(Boolean, default=False)
    creator_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    next_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RegisteredModelTagRow(Base):
    __tablename__ = "registered_model_tags"
    model_pk: Mapped[int] = mapped_column(ForeignKey("registered_models.pk", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_pk", "version"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("registered_models.pk", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    run_link: Mapped[str | None] = mapped_column(Text)
    model_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default="READY")
    description: Mapped[str] = mapped_column(Text, default="")
    current_stage: Mapped[str] = mapped_column(String(64), default="None")
    creator_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ModelVersionTagRow(Base):
    __tablename__ = "model_version_tags"
    version_pk: Mapped[int] = mapped_column(ForeignKey("model_versions.pk", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")


class RegisteredModelAliasRow(Base):
    __tablename__ = "registered_model_aliases"
    model_pk: Mapped[int] = mapped_column(ForeignKey("registered_models.pk", ondelete="CASCADE"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(256), primary_key=True)
    version_pk: Mapped[int] = mapped_column(ForeignKey("model_versions.pk", ondelete="CASCADE"), index=True)


class ModelReviewRow(Base):
    """A request that named reviewers approve moving one version into ``target_stage``."""

    __tablename__ = "model_version_reviews"
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    version_pk: Mapped[int] = mapped_column(ForeignKey("model_versions.pk", ondelete="CASCADE"), index=True)
    target_stage: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # Open | Approved | Rejected | Canceled
    notes: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ModelReviewerRow(Base):
    __tablename__ = "model_version_reviewers"
    review_id: Mapped[str] = mapped_column(ForeignKey("model_version_reviews.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    decision: Mapped[str | None] = mapped_column(String(16))  # Approved | Rejected, NULL = not yet
    notes: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime | None]
