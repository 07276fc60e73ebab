"""Versioned project files (core/project_files/): commits, content-addressed directory nodes and the project's blobs.

A commit points at a root directory node; a node (``project_file_trees``) is one directory's entries, stored once per
project under the SHA-1 of its canonical JSON, so commits share every unchanged directory; a file entry names a blob
key (``project_file_blobs``: the first 40 hex digits of the content's SHA-256 → the file record holding the bytes).
A commit of one changed file writes the nodes of the directories on its path, one commit row and, for new content,
one blob row and one file record (docs/project-files.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from modelharbor.db.tables import Base


class ProjectFileCommitRow(Base):
    __tablename__ = "project_file_commits"
    __table_args__ = (UniqueConstraint("project_id", "seq"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # 40 hex, like a git commit id
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, …: the newest commit has the highest
    parent_id: Mapped[str | None] = mapped_column(String(40))
    tree: Mapped[str] = mapped_column(String(40))  # the root directory node
    path: Mapped[str] = mapped_column(Text)  # the path the commit wrote
    author_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class ProjectFileTreeRow(Base):
    __tablename__ = "project_file_trees"
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), primary_key=True)
    hash: Mapped[str] = mapped_column(String(40), primary_key=True)  # SHA-1 of ``entries``
    entries: Mapped[str] = mapped_column(Text)  # canonical JSON: [[name, "d"|"f", ref, size, modified ms], …]


class ProjectFileBlobRow(Base):
    __tablename__ = "project_file_blobs"
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)  # the content's SHA-256, first 40 hex digits
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # in the project's versioned files (False: only in its datasets, whose readers the blob route does not check)
    in_files: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
