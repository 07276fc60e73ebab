"""SQLAlchemy 2 tables. Every change here ships with an Alembic migration (a test runs ``alembic check``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class OrganisationRow(Base):
    __tablename__ = "organisations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class MembershipRow(Base):
    __tablename__ = "memberships"
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class BlobRow(Base):
    """Content-addressed bytes: one row per distinct SHA-256, however many files point at it.

    ``segments`` lists the store keys that, concatenated, make the content: ``[[key, size], ...]``.
    A chunked upload keeps its chunks as the segments, so completing never copies bytes.
    """

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    segments: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime]


class PendingObjectRow(Base):
    """An intent: a store key (or, ending in ``/``, a key prefix) whose bytes may be referenced by no blob.

    A fresh object's row is committed before its first byte is written and deleted by the commit that makes a blob
    point at it; the sweep (``core/files/pending.py``) deletes the bytes of rows older than the grace period that no blob
    references, then the rows. ``claimed_at`` is set once the sweep (or a deletion that needs no grace) owns the
    row: from then on no commit may reference the key. ``blob_sha256`` names a blob whose segments a prefix keeps.
    """

    __tablename__ = "pending_objects"
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    context: Mapped[str] = mapped_column(String(64))
    blob_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(index=True)


class FileRow(Base):
    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(1024))
    extension: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    content_type: Mapped[str] = mapped_column(String(200))
    context: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_files_org_created", "org_id", "created_at"),)


class UploadSessionRow(Base):
    __tablename__ = "upload_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(1024))
    extension: Mapped[str] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    total_chunks: Mapped[int] = mapped_column(Integer)
    context: Mapped[str] = mapped_column(String(200))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), index=True)
    file_id: Mapped[str | None] = mapped_column(String(24))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    # resuming and deduplication (docs/uploads.md): bytes per chunk (declared, or seen in the first full chunk), the
    # client's fingerprint of the file (what a resume is found by), the SHA-256 it declared (checked on completion),
    # and whether the session completed at once from content the organisation held
    chunk_size: Mapped[int | None] = mapped_column(BigInteger)
    fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    deduplicated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class UploadChunkRow(Base):
    __tablename__ = "upload_chunks"
    session_id: Mapped[str] = mapped_column(ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    md5: Mapped[str | None] = mapped_column(String(32))  # the client's MD5 of the chunk, checked as it arrived


class ImportedModelRow(Base):
    """A model archive brought in through an import (Kore.ai ``fileContext=model``)."""

    __tablename__ = "imported_models"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(1024))
    is_adapter: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    file_id: Mapped[str | None] = mapped_column(String(24))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class TaskRow(Base):
    """The background-work queue: runners lease rows (``lease_until``), so N server replicas can share it."""

    __tablename__ = "tasks"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str | None] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    percent: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_tasks_status_run_after", "status", "run_after"),)


# --- pretrained-model catalogue (integer keys: the UFDL dialect addresses objects by pk) -----------------


class FrameworkRow(Base):
    __tablename__ = "frameworks"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(32))

    __table_args__ = (UniqueConstraint("name", "version", name="uq_frameworks_name_version"),)


class LicenceRow(Base):
    __tablename__ = "licences"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(String(200))
    permissions: Mapped[list] = mapped_column(JSON, default=list)
    conditions: Mapped[list] = mapped_column(JSON, default=list)
    limitations: Mapped[list] = mapped_column(JSON, default=list)
    domains: Mapped[list] = mapped_column(JSON, default=list)


class DomainRow(Base):
    __tablename__ = "domains"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(2), unique=True)
    description: Mapped[str] = mapped_column(String(32))


class PretrainedModelRow(Base):
    __tablename__ = "pretrained_models"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[str] = mapped_column("metadata", Text, default="")
    framework_pk: Mapped[int] = mapped_column(ForeignKey("frameworks.pk"))
    domain_pk: Mapped[int] = mapped_column(ForeignKey("domains.pk"))
    licence_pk: Mapped[int] = mapped_column(ForeignKey("licences.pk"))
    file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id", ondelete="SET NULL"))
    creator_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    creation_time: Mapped[datetime]
    deletion_time: Mapped[datetime | None]


class UserNumberRow(Base):
    """An integer per user, for dialects that show users by integer pk (UFDL's ``creator``)."""

    __tablename__ = "user_numbers"
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)


# Registry and tracking tables live in their own modules; importing them here puts them on Base.metadata.
from modelharbor.db import (  # noqa: E402, F401
    tables_collab,
    tables_compute,
    tables_data_sources,
    tables_datasets,
    tables_people,
    tables_project_files,
    tables_projects,
    tables_registry,
    tables_serving,
    tables_tracking,
    tables_transfer,
)
