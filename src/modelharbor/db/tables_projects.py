"""Project tags (Domino's ``/v4/projects/{id}/tags``, ``GET /projectTags/{id}``): a tag is shared by name inside an
organisation (one row per name), projects link to tags. Approved tags are those an organisation admin created."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelharbor.db.tables import Base


class ProjectTagRow(Base):
    __tablename__ = "project_tags"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    is_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class ProjectTagLinkRow(Base):
    __tablename__ = "project_tag_links"
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[str] = mapped_column(ForeignKey("project_tags.id", ondelete="CASCADE"), primary_key=True, index=True)
