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
    internal: bool = False  # kept by the server for one of its own objects (core/files/usage.py)


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
    chunk_size: int | None = None  # bytes per chunk (the last may be shorter): declared, or seen in a full chunk
    fingerprint: str | None = None  # the client's hash of the file's size, first and last MiB (docs/uploads.md)
    sha256: str | None = None  # the whole file's SHA-256 as the client declared it; completing checks it
    deduplicated: bool = False  # completed at once from content the organisation already held

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


# --- the model registry (core/registry/) ----------------------------------------------------------
@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    creation_time: datetime
    last_updated_time: datetime
    current_stage: str
    description: str
    source: str
    run_id: str | None
    run_link: str | None
    model_id: str | None
    status: str
    creator_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    org_id: str
    description: str
    creation_time: datetime
    last_updated_time: datetime
    project_id: str | None
    discoverable: bool
    creator_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[tuple[str, int], ...] = ()  # (alias, version), sorted by alias
    latest_versions: tuple[ModelVersion, ...] = ()  # the newest version in each stage that has one


@dataclass(frozen=True)
class VersionFile:
    """One file of a registered version."""

    path: str  # relative to the version's root, '/'-separated
    size: int
    sha256: str
    file_id: str


@dataclass(frozen=True)
class Reviewer:
    user_id: str
    username: str | None
    decision: str | None
    notes: str | None
    responded_at: datetime | None


@dataclass(frozen=True)
class Review:
    id: str
    model_name: str
    model_version: int
    target_stage: str
    status: str
    notes: str
    requested_by_id: str | None
    requested_by_username: str | None
    reviewers: tuple[Reviewer, ...]
    created_at: datetime
    updated_at: datetime


# --- experiment tracking (core/tracking/); times in milliseconds since the epoch, as MLflow carries them -----------
@dataclass(frozen=True)
class Metric:
    """A metric value as MLflow carries it; ``model_id``, ``run_id`` and the dataset only where known."""

    key: str
    value: float
    timestamp: int
    step: int
    model_id: str | None = None
    run_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass(frozen=True)
class Experiment:
    id: str
    org_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str]
    is_default: bool = False


@dataclass(frozen=True)
class Run:
    id: str
    experiment_id: str
    name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str
    metrics: tuple[Metric, ...] = ()
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedModel:
    id: str
    experiment_id: str
    name: str
    artifact_uri: str
    status: str
    status_message: str | None
    model_type: str | None
    source_run_id: str | None
    creator_id: str | None
    lifecycle_stage: str
    creation_timestamp_ms: int
    last_updated_timestamp_ms: int
    params: dict[str, str]
    tags: dict[str, str]
    metrics: tuple[Metric, ...] = ()


@dataclass(frozen=True)
class ArtifactEntry:
    """A tracking artifact, or a directory of them, as a listing shows it."""

    path: str  # relative to the listed directory
    is_dir: bool
    file_size: int | None


# --- tasks ---------------------------------------------------------------------------------------------------------
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
class TaskBacklog:
    """Unfinished tasks of one kind and status (queued or running): how many, and the oldest one's creation."""

    kind: str
    status: str
    count: int
    oldest: datetime


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
