"""Wire models of the native API. The SDK imports these; the core never does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorOut(BaseModel):
    error: ErrorBody


class FileOut(BaseModel):
    id: str
    name: str
    extension: str
    size: int
    sha256: str
    content_type: str
    context: str
    owner_id: str
    created_at: datetime


class FileList(BaseModel):
    items: list[FileOut]
    total: int
    limit: int
    offset: int


class LinkIn(Strict):
    expires_in: int | None = Field(None, ge=1, description="Seconds the link stays valid (default LINK_TTL).")


class LinkOut(BaseModel):
    url: str
    expires_at: datetime


class UploadStartIn(Strict):
    name: str = Field(min_length=1, max_length=1024)
    total_chunks: int = Field(ge=1)
    size: int | None = Field(None, ge=0)
    context: str = Field("", max_length=200)


class ChunkOut(BaseModel):
    number: int
    size: int


class UploadOut(BaseModel):
    id: str
    name: str
    size: int | None
    total_chunks: int
    context: str
    state: str
    expires_at: datetime
    created_at: datetime
    received_bytes: int
    chunks: list[ChunkOut]
    missing_chunks: list[int]
    file_id: str | None = None


class CompleteOut(BaseModel):
    upload: UploadOut
    file: FileOut
    result: dict[str, Any] = {}


class KeyIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    username: str | None = None
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    user_id: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None
    key: str | None = Field(None, description="The secret; returned only once, when the key is created.")


class MeOut(BaseModel):
    user_id: str
    username: str
    org_id: str
    role: str
    is_superuser: bool


class TaskOut(BaseModel):
    id: str
    kind: str
    status: str
    percent: int
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime


class ImportedModelOut(BaseModel):
    id: str
    name: str
    is_adapter: bool
    status: str
    file_id: str | None
    error: str | None
    created_at: datetime
