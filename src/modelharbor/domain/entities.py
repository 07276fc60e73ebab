"""Frozen dataclasses the core services return. No ORM row ever leaves ``db/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class User:
    id: str
    username: str
    email: str | None
    is_superuser: bool
    created_at: datetime


@dataclass(frozen=True)
class ApiKey:
    id: str
    user_id: str
    org_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None
    secret: str | None = None  # set only on the value returned by create(), never stored


@dataclass(frozen=True)
class FileRecord:
    id: str
    org_id: str
    owner_id: str
    name: str
    extension: str
    size: int
    sha256: str
    content_type: str
    context: str
    created_at: datetime


@dataclass(frozen=True)
class ChunkInfo:
    number: int
    size: int


@dataclass(frozen=True)
class UploadSession:
    id: str
    org_id: str
    owner_id: str
    name: str
    extension: str
    size: int | None
    total_chunks: int
    context: str
    state: str  # open | completed | aborted
    expires_at: datetime
    created_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)
    file_id: str | None = None
    chunks: tuple[ChunkInfo, ...] = ()

    @property
    def received_bytes(self) -> int:
        return sum(c.size for c in self.chunks)

    @property
    def missing_chunks(self) -> list[int]:
        have = {c.number for c in self.chunks}
        return [n for n in range(self.total_chunks) if n not in have]


@dataclass(frozen=True)
class ImportedModel:
    id: str
    org_id: str
    owner_id: str
    name: str
    is_adapter: bool
    status: str  # importing | ready | failed
    file_id: str | None
    error: str | None
    created_at: datetime


@dataclass(frozen=True)
class Task:
    id: str
    org_id: str | None
    kind: str
    status: str  # queued | running | succeeded | failed
    percent: int
    payload: dict[str, Any]
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Page:
    items: list
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class Framework:
    pk: int
    name: str
    version: str


@dataclass(frozen=True)
class Licence:
    pk: int
    name: str
    url: str
    permissions: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    limitations: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Domain:
    pk: int
    name: str
    description: str


@dataclass(frozen=True)
class PretrainedModel:
    pk: int
    org_id: str
    name: str
    url: str
    description: str
    metadata: str
    framework: Framework
    domain: Domain
    licence: Licence
    file: FileRecord | None
    creator_id: str | None
    creator_number: int | None
    creation_time: datetime
    deletion_time: datetime | None
