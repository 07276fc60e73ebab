"""The serving entities the service returns: deployments, versions, revisions, environments, requests, env vars
and pipelines, their versions and results (frozen dataclasses; a pipeline step's result converts to and from its
stored JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelharbor.core.clock import aware


# --- entities -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    name: str
    data_type: str
    widget: dict[str, Any] | None = None


@dataclass(frozen=True)
class EnvironmentInfo:
    name: str
    project: str
    system: bool
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    base_environment: str | None = None
    id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # API v2.1's view of a custom environment's tag ``latest``: its newest and newest successful build
    latest_revision: str | None = None
    latest_build: str | None = None
    active_revision: str | None = None
    active_build: str | None = None


@dataclass(frozen=True)
class Deployment:
    id: str
    project: str
    name: str
    description: str
    input_type: str
    output_type: str
    input_fields: tuple[Field, ...]
    output_fields: tuple[Field, ...]
    labels: dict[str, str]
    supports_request_format: bool
    default_version: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DeploymentVersion:
    id: str
    project: str
    deployment: str
    version: str
    description: str
    labels: dict[str, str]
    environment: str
    environment_tag: str | None  # the custom environment's tag it runs on (None: a base environment)
    status: str  # available | unavailable | processing
    is_default: bool
    active_revision: str | None
    latest_revision: str | None
    minimum_instances: int
    maximum_instances: int
    maximum_idle_time: int
    request_retention_mode: str
    request_retention_time: int
    maximum_queue_size: int
    instance_type_group_name: str | None
    settings: dict[str, Any]
    has_request_method: bool | None
    has_requests_method: bool | None
    last_file_upload: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Revision:
    id: str
    version: str
    status: str
    error_message: str | None
    created_by: str | None
    created_at: datetime
    has_request_method: bool | None
    has_requests_method: bool | None
    file_id: str | None


@dataclass(frozen=True)
class RequestResult:
    id: str
    deployment: str
    version: str
    status: str  # completed | failed | pending | processing | cancelled
    result: Any
    error_message: str | None
    timeout: int
    created_at: datetime | None = None
    request_data: Any = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class EnvVar:
    id: str
    name: str
    value: str | None  # None for secrets
    secret: bool
    inheritance_type: str | None = None  # project | deployment | None (own)
    inheritance_name: str | None = None


# --- pipelines ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pipeline:
    id: str
    project: str
    name: str
    description: str
    input_type: str
    output_type: str
    input_fields: tuple[Field, ...]
    output_fields: tuple[Field, ...]
    labels: dict[str, str]
    default_version: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PipelineVersion:
    id: str
    project: str
    pipeline: str
    version: str
    description: str
    labels: dict[str, str]
    request_retention_mode: str
    request_retention_time: int
    is_default: bool
    objects: tuple[dict[str, Any], ...]
    attachments: tuple[dict[str, Any], ...]
    metadata: Any
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StepResult:
    id: str
    object_name: str
    deployment: str
    version: str
    status: str
    error_message: str | None
    started_at: datetime
    finished_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline_object": self.object_name,
            "deployment": self.deployment,
            "version": self.version,
            "status": self.status,
            "error_message": self.error_message,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
        }

    @staticmethod
    def of_json(raw: dict[str, Any]) -> StepResult:
        return StepResult(
            raw["id"],
            raw["pipeline_object"],
            raw["deployment"],
            raw.get("version") or "",
            raw["status"],
            raw.get("error_message"),
            aware(datetime.fromisoformat(raw["started_at"])),
            aware(datetime.fromisoformat(raw["finished_at"])),
        )


@dataclass(frozen=True)
class PipelineResult:
    id: str
    pipeline: str
    version: str
    status: str  # completed | failed (direct); pending | processing | completed | failed | cancelled (kept)
    result: Any
    error_message: str | None
    steps: tuple[StepResult, ...]
    timeout: int
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    request_data: Any = None  # kept with retention 'full' (and batch requests until answered)
    created_by: str | None = None
