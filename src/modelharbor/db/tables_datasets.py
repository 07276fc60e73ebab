"""Domino datasets (core/datasets.py): a project's read-write dataset, its immutable snapshots, tags naming
snapshots, and grants to users and teams.

A dataset's files live in its project's content store, the one versioned project files use
(tables_project_files.py): its head is the hash of a root directory node (``project_file_trees`` of its project),
its files are blobs of its project (``project_file_blobs``). A snapshot records the head's root hash: one row, no
byte and no node copied. An upload into a dataset (core/dataset_uploads.py) is a batch of files, each an upload
session of the upload engine (``upload_sessions``), landed in the head together when it ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelharbor.db.tables import Base


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    head_tree: Mapped[str | None] = mapped_column(String(40))  # the head's root node; None: no file yet
    creator_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class DatasetSnapshotRow(Base):
    __tablename__ = "dataset_snapshots"
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    tree: Mapped[str | None] = mapped_column(String(40))  # the frozen root node; None: an empty snapshot
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    creator_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class DatasetTagRow(Base):
    __tablename__ = "dataset_tags"
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("dataset_snapshots.id", ondelete="CASCADE"), index=True)


class DatasetGrantRow(Base):
    """A role on a dataset given to a user or a team (Domino's organizations): DatasetRwOwner, DatasetRwEditor or
    DatasetRwReader."""

    __tablename__ = "dataset_grants"
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)  # a user's or a team's id
    is_team: Mapped[bool] = mapped_column(Boolean, default=False)
    role: Mapped[str] = mapped_column(String(20))


class ProjectSharedDatasetRow(Base):
    """A dataset of another project linked into a project (Domino's shared datasets): reading it still takes a role
    on the dataset."""

    __tablename__ = "project_shared_datasets"
    project_id: Mapped[str] = mapped_column(ForeignKey("registry_projects.id", ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True, index=True)
    linked_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class DatasetUploadRow(Base):
    """A resumable upload of files into a dataset's head (Domino's upload key): its files' sessions gather chunks;
    ending it lands them all at once with its collision setting."""

    __tablename__ = "dataset_uploads"
    __table_args__ = (Index("ix_dataset_uploads_dataset_owner_state", "dataset_id", "owner_id", "state"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the upload key
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    collision: Mapped[str] = mapped_column(String(16))  # Ignore | Overwrite | Rename
    state: Mapped[str] = mapped_column(String(16))  # open | ended | cancelled
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # what ending landed (a repeated end answers it)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    files: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # its files (MAX_FILES at most)


class DatasetUploadFileRow(Base):
    """One file of a dataset upload: its relative path, the client's identifier and its upload-engine session.
    ``adopted``: taken over from an earlier unfinished upload of the same user (``confirmed``: the chunk numbers a
    test of this upload matched, so files with the same identifier each keep their own)."""

    __tablename__ = "dataset_upload_files"
    __table_args__ = (
        UniqueConstraint("upload_id", "path_key"),
        Index("ix_dataset_upload_files_upload_identifier", "upload_id", "identifier"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    upload_id: Mapped[str] = mapped_column(ForeignKey("dataset_uploads.id", ondelete="CASCADE"))
    path_key: Mapped[str] = mapped_column(String(40))  # SHA-1 of the path (the path itself may be 1,024 characters)
    path: Mapped[str] = mapped_column(Text)
    identifier: Mapped[str] = mapped_column(String(300))
    session_id: Mapped[str] = mapped_column(ForeignKey("upload_sessions.id", ondelete="CASCADE"), index=True)
    adopted: Mapped[bool] = mapped_column(Boolean, default=False)
    confirmed: Mapped[list[int]] = mapped_column(JSON, default=list)
