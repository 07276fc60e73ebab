"""Project exports and imports (the UbiOps dialect's ``…/exports`` and ``…/imports``): one row per export or
import with its status; the zip itself is a file of the files service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelharbor.db.tables import Base


class ProjectExportRow(Base):
    """An export of (part of) a project: the selection as stored, built into a zip by a background task."""

    __tablename__ = "project_exports"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(32))  # pending | processing | completed | failed
    error_message: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    selection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    packages: Mapped[bool] = mapped_column(Boolean, default=True)
    file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id", ondelete="SET NULL"), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProjectImportRow(Base):
    """An import of a zip into a project: scanned, (confirmed,) then its objects created by background tasks.

    ``content`` is what the zip holds (or, once confirmed, what is imported) in the shape the confirmation
    takes, secret values always null; ``confirmed`` is the confirmation with the re-supplied secret values,
    encrypted with the server key, kept only until the import finished."""

    __tablename__ = "project_imports"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # file | link | export
    import_link: Mapped[str | None] = mapped_column(Text)
    export_id: Mapped[str | None] = mapped_column(String(36))
    skip_confirmation: Mapped[bool] = mapped_column(Boolean, default=False)
    file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id", ondelete="SET NULL"), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    packages: Mapped[list[Any]] = mapped_column(JSON, default=list)  # package paths found in the zip
    root: Mapped[str] = mapped_column(Text, default="")  # the zip's root folder ("" or "name/")
    confirmed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created: Mapped[list[Any]] = mapped_column(JSON, default=list)  # objects made so far (undone on failure)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
