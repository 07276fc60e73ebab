"""Tables of what people do around a project: goals, imported git repositories and access requests
(core/project_goals.py, core/project_repos.py, core/access_requests.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelharbor.db.tables import Base


class ProjectGoalRow(Base):
    """A goal of a project (Domino's project goals): a title, a description, complete or not."""

    __tablename__ = "project_goals"
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    stage_id: Mapped[str | None] = mapped_column(String(64))
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    creator_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    is_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class ProjectRepositoryRow(Base):
    """A git repository imported into a project: where it is (https or ssh) and which ref to check out. It is
    cloned when a job needs it (a later issue), with ``credential_id`` (one of the adder's git credentials)."""

    __tablename__ = "project_git_repositories"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    uri: Mapped[str] = mapped_column(String(2048))
    provider: Mapped[str] = mapped_column(String(40))
    ref_type: Mapped[str] = mapped_column(String(10))  # Head | Branch | Tag | Commit
    ref_value: Mapped[str | None] = mapped_column(String(256))
    credential_id: Mapped[str | None] = mapped_column(ForeignKey("git_credentials.id", ondelete="SET NULL"))
    creator_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class ProjectAccessRequestRow(Base):
    """A user's request for a collaborator role on a project, which the project's owner (or an organisation admin)
    approves (granting the role) or declines. At most one open (``Pending``) request per user and project."""

    __tablename__ = "project_access_requests"
    __table_args__ = (Index("ix_project_access_requests_project_status", "project_id", "status"),)
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))  # the role asked for (core/projects.py PROJECT_ROLES)
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10))  # Pending | Approved | Declined
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
