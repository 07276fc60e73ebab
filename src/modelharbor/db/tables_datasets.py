"""Domino datasets (core/datasets.py): a project's read-write dataset, its immutable snapshots, tags naming
snapshots, and grants to users and teams.

A dataset's files live in its project's content store, the one versioned project files use
(tables_project_files.py): its head is the hash of a root directory node (``project_file_trees`` of its project),
its files are blobs of its project (``project_file_blobs``). A snapshot records the head's root hash: one row, no
byte and no node copied.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, Text, UniqueConstraint
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
