"""UbiOps' wire shapes: core serving objects as the 4.15 client's JSON (what the client requires is always present,
empty strings the client would reject are null, times are ISO-8601, lists are bare arrays), and its error body
``{"error": "..."}`` for every error the dialect answers (401s with ``WWW-Authenticate: Token``). Pure: no queries.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from modelharbor.api import failures
from modelharbor.api.dialect import MALFORMED_MULTIPART, METHOD_NOT_ALLOWED
from modelharbor.core.hardware_tiers import HardwareTier
from modelharbor.core.projects import Project
from modelharbor.core.serving import (
    Deployment,
    DeploymentVersion,
    EnvironmentInfo,
    EnvVar,
    Field,
    RequestResult,
    Revision,
    truncate,
)
from modelharbor.core.serving.entities import Pipeline, PipelineResult, PipelineVersion
from modelharbor.core.serving.environment_tags import EnvironmentBuild, EnvironmentRevision, EnvironmentTag, TagUsage
from modelharbor.core.serving.validation import MAX_TIMEOUT
from modelharbor.core.transfer import Export, Import
from modelharbor.domain.errors import HarborError
from modelharbor.domain.logs import LogEntry

CHALLENGE = {"www-authenticate": "Token"}  # on every 401, as the vendor answers


# --- errors ---------------------------------------------------------------------------------------
def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=CHALLENGE if status == 401 else None)


def error_message(exc: HarborError) -> str:
    if exc.code == MALFORMED_MULTIPART:
        return f"malformed multipart body: {exc.message}"
    if exc.code == METHOD_NOT_ALLOWED:
        return "method not allowed on this route"
    return exc.message


def render(_request: Request, exc: HarborError) -> JSONResponse:
    """Every error the dialect answers (api/dialect.py), the edge's own included: ``{"error": message}``."""
    return error(exc.status, error_message(exc))


def internal_error(rid: str) -> JSONResponse:
    """An unexpected failure (api/failures.py; the prediction hot path answers the same)."""
    return error(500, failures.message(rid))


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def instance_type_group_json(t: HardwareTier) -> dict[str, Any]:
    """A hardware tier as UbiOps' instance type group (``InstanceTypeGroupList``) of one instance type: the tier's
    id and name; its instance type's CPU cores, memory in MiB and GPUs are what an instance may use (the limits)."""
    limits = t.limits
    return {
        "id": t.id,
        "name": t.name,
        "time_created": iso(t.created_at),
        "time_updated": iso(t.updated_at),
        "instance_types": [
            {
                "id": t.id,
                "time_created": iso(t.created_at),
                "name": t.id,
                "display_name": t.name,
                "cpu": limits.cpus,
                "memory": (limits.memory or 0) / 2**20,
                "storage": None,
                "accelerator": limits.gpus or 0,
                "credit_rate": None,
                "dedicated_node": False,
                "node_pool": None,
                "priority": 0,
                "schedule_timeout": None,
            }
        ],
    }


def project_json(p: Project, org_name: str) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "organization_name": org_name,
        "creation_date": iso(p.created_at),
        "advanced_permissions": False,
        "credits": None,
        "labels": {},
        "suspended": False,
        "suspended_reason": None,
        "cors_origins": [],
    }


def environment_json(e: EnvironmentInfo) -> dict[str, Any]:
    return {
        "id": e.id or e.name,
        "name": e.name,
        "project": e.project,
        "display_name": e.name,
        "description": e.description or None,
        "labels": e.labels,
        "system": e.system,
        "base_environment": e.base_environment if not e.system else None,
        "creation_date": iso(e.created_at),
        "last_updated": iso(e.updated_at),
        "supports_request_format": True,
        "implicit": False,
        "hidden": False,
        "deprecated": False,
        "status": "active",
        # API v2.1 (clients <= 4.12): the tag 'latest''s newest and newest successful build
        "latest_revision": e.latest_revision,
        "latest_build": e.latest_build,
        "active_revision": e.active_revision,
        "active_build": e.active_build,
    }


def environment_tag_json(t: EnvironmentTag, *, build_log: str | None = None) -> dict[str, Any]:
    """EnvironmentTagList. ``build_log`` (the newest build's log) is a ModelHarbor addition of the tag detail."""
    out = {
        "id": t.id,
        "name": t.name,
        "environment": t.environment,
        "status": t.status,
        "creation_date": iso(t.created_at),
        "last_updated": iso(t.updated_at),
        "supports_request_format": t.supports_request_format,
        "implicit": t.system,
        "deprecated": False,
        "size": t.size,
        "error_message": truncate(t.error_message),
        "base_environment_name": t.base_environment,
        "base_environment_tag": "latest" if t.base_environment else None,
        "built": t.built,
    }
    if build_log is not None:
        out["build_log"] = build_log
    return out


def environment_revision_json(r: EnvironmentRevision) -> dict[str, Any]:
    """EnvironmentRevisionDetail (API v2.1)."""
    return {
        "id": r.id,
        "environment": r.environment,
        "creation_date": iso(r.created_at),
        "created_by": r.created_by,
        "expired": False,
    }


def environment_build_json(b: EnvironmentBuild) -> dict[str, Any]:
    """EnvironmentBuildList (API v2.1)."""
    return {
        "id": b.id,
        "revision": b.revision,
        "creation_date": iso(b.created_at),
        "status": b.status,
        "error_message": truncate(b.error_message),
        "trigger": b.trigger,
    }


def tag_usage_json(u: TagUsage) -> dict[str, Any]:
    """EnvironmentTagUsage."""
    return {
        "id": u.id,
        "deployment": u.deployment,
        "version": u.version,
        "environment_name": u.environment,
        "environment_tag": u.tag,
        "status": u.status,
    }


def _field(f: Field, *, widget: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "data_type": f.data_type}
    if widget:
        out["widget"] = f.widget or {}
    return out


def deployment_json(d: Deployment, *, detail: bool = True) -> dict[str, Any]:
    out = {
        "id": d.id,
        "project": d.project,
        "name": d.name,
        "description": d.description or None,
        "input_type": d.input_type,
        "output_type": d.output_type,
        "input_fields": [_field(f, widget=detail) for f in d.input_fields],
        "output_fields": [_field(f, widget=detail) for f in d.output_fields],
        "labels": d.labels,
        "supports_request_format": d.supports_request_format,
        "creation_date": iso(d.created_at),
        "last_updated": iso(d.updated_at),
    }
    if detail:
        out["default_version"] = d.default_version
    return out


def version_json(v: DeploymentVersion) -> dict[str, Any]:
    settings = v.settings
    return {
        "id": v.id,
        "deployment": v.deployment,
        "version": v.version,
        "default": v.is_default,
        "description": v.description or None,
        "labels": v.labels,
        "environment": v.environment,
        "environment_display_name": v.environment,
        "environment_name": v.environment,
        "environment_tag": v.environment_tag,
        "status": v.status,
        "active_revision": v.active_revision,
        "latest_revision": v.latest_revision,
        "minimum_instances": v.minimum_instances,
        "maximum_instances": v.maximum_instances,
        "maximum_idle_time": v.maximum_idle_time,
        "request_retention_mode": v.request_retention_mode,
        "request_retention_time": v.request_retention_time,
        "maximum_queue_size": v.maximum_queue_size,
        "instance_type_group_id": settings.get("instance_type_group_id"),
        "instance_type_group_name": v.instance_type_group_name,
        "instance_type": settings.get("instance_type"),
        "scaling_strategy": settings.get("scaling_strategy") or "default",
        "instance_processes": settings.get("instance_processes") or 1,
        "restart_request_interruption": bool(settings.get("restart_request_interruption", False)),
        "ports": settings.get("ports") or [],
        "health_check": settings.get("health_check"),
        "command": settings.get("command"),
        "args": settings.get("args"),
        "static_ip": False,
        "has_request_method": v.has_request_method,
        "has_requests_method": v.has_requests_method,
        "last_file_upload": iso(v.last_file_upload),
        "creation_date": iso(v.created_at),
        "last_updated": iso(v.updated_at),
    }


def revision_json(r: Revision) -> dict[str, Any]:
    return {
        "id": r.id,
        "version": r.version,
        "creation_date": iso(r.created_at),
        "created_by": r.created_by,
        "status": r.status,
        "error_message": truncate(r.error_message),
        "has_request_method": r.has_request_method,
        "has_requests_method": r.has_requests_method,
        "empty": r.file_id is None,
    }


def request_json(r: RequestResult) -> dict[str, Any]:
    return {
        "id": r.id,
        "deployment": r.deployment,
        "version": r.version,
        "status": r.status,
        "success": r.status == "completed",
        "result": r.result,
        "error_message": truncate(r.error_message),
        "timeout": r.timeout,
        "creation_date": iso(r.created_at),
    }


def request_detail_json(r: RequestResult, *, metadata_only: bool = False) -> dict[str, Any]:
    """DeploymentRequestSingleDetail / DeploymentRequestDetail / DeploymentRequestList /
    DeploymentRequestBatchCreateResponse (``metadata_only``: without data and result)."""
    return {
        **request_json(r),
        "result": None if metadata_only else r.result,
        "time_created": iso(r.created_at),
        "time_started": iso(r.started_at),
        "time_completed": iso(r.finished_at),
        "request_data": None if metadata_only else r.request_data,
        "input_size": None,
        "output_size": None,
        "origin": {},
    }


def kept_file(value: Any, kind: str, request_id: str, which: str) -> Response:
    """A kept request's input or output (``which``) as a file: ``<id>_<which>.txt`` for plain text, else ``.json``."""
    if kind == "plain" and isinstance(value, str):
        body, media, ext = value.encode(), "text/plain; charset=utf-8", "txt"
    else:
        body, media, ext = json.dumps(value).encode(), "application/json", "json"
    disposition = f"attachment; filename={request_id}_{which}.{ext}"
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})


def env_var_json(e: EnvVar, *, inherited_shape: bool) -> dict[str, Any]:
    out = {"id": e.id, "name": e.name, "value": None if e.secret else e.value, "secret": e.secret}
    if inherited_shape:
        out["inheritance_type"] = e.inheritance_type
        out["inheritance_name"] = e.inheritance_name
    return out


def pipeline_json(p: Pipeline, *, detail: bool = True) -> dict[str, Any]:
    out = {
        "id": p.id,
        "project": p.project,
        "name": p.name,
        "description": p.description or None,
        "input_type": p.input_type,
        "output_type": p.output_type,
        "input_fields": [_field(f, widget=detail) for f in p.input_fields],
        "output_fields": [_field(f, widget=detail) for f in p.output_fields],
        "labels": p.labels,
        "creation_date": iso(p.created_at),
        "last_updated": iso(p.updated_at),
    }
    if detail:
        out["default_version"] = p.default_version
    return out


def pipeline_version_json(v: PipelineVersion, *, detail: bool = True) -> dict[str, Any]:
    out = {
        "id": v.id,
        "pipeline": v.pipeline,
        "version": v.version,
        "default": v.is_default,
        "description": v.description or None,
        "labels": v.labels,
        "request_retention_mode": v.request_retention_mode,
        "request_retention_time": v.request_retention_time,
        "metadata": v.metadata,
        "creation_date": iso(v.created_at),
        "last_updated": iso(v.updated_at),
    }
    if detail:
        out["objects"] = [
            {**o, "reference_version": o.get("version"), "input_type": None, "output_type": None} for o in v.objects
        ]
        out["attachments"] = list(v.attachments)
    return out


def pipeline_steps_json(r: PipelineResult) -> list[dict[str, Any]]:
    """PipelineRequestDeploymentRequest: what each object did (its deployment request), in finishing order."""
    return [
        {
            "id": step.id,
            "pipeline_object": step.object_name,
            "deployment": step.deployment,
            "version": step.version,
            "status": step.status,
            "success": step.status == "completed",
            "error_message": truncate(step.error_message),
            "sequence_id": str(i),
            "time_created": iso(step.started_at),
            "time_started": iso(step.started_at),
            "time_completed": iso(step.finished_at),
            "input_size": None,
            "output_size": None,
        }
        for i, step in enumerate(r.steps)
    ]


def pipeline_request_json(r: PipelineResult) -> dict[str, Any]:
    """PipelineRequestCreateResponse (a direct request's answer)."""
    return {
        "id": r.id,
        "pipeline": r.pipeline,
        "version": r.version,
        "status": r.status,
        "success": r.status == "completed",
        "result": r.result,
        "error_message": truncate(r.error_message),
        "pipeline_timeout": r.timeout,
        "deployment_timeout": min(r.timeout, MAX_TIMEOUT),
        "deployment_requests": pipeline_steps_json(r),
        "operator_requests": [],
        "pipeline_requests": [],
    }


def pipeline_request_list_json(r: PipelineResult) -> dict[str, Any]:
    """PipelineRequestList / PipelineRequestBatchCreateResponse (both need id, status, time_created)."""
    return {
        "id": r.id,
        "pipeline": r.pipeline,
        "version": r.version,
        "status": r.status,
        "success": r.status == "completed",
        "time_created": iso(r.created_at),
        "time_started": iso(r.started_at),
        "time_completed": iso(r.finished_at),
        "input_size": None,
        "output_size": None,
    }


def pipeline_request_detail_json(r: PipelineResult, *, metadata_only: bool = False) -> dict[str, Any]:
    """PipelineRequestSingleDetail / PipelineRequestDetail: a kept request (data and result with retention full)."""
    return {
        **pipeline_request_json(r),
        **pipeline_request_list_json(r),
        "request_data": None if metadata_only else r.request_data,
        "result": None if metadata_only else r.result,
        "origin": {},
    }


# --- logs -----------------------------------------------------------------------------------------
def log_json(e: LogEntry) -> dict[str, Any]:
    """LogList: ``timestamp`` in nanoseconds since the epoch (Loki's unit; inferred, the vendor does not say)."""
    t = datetime.fromtimestamp(e.time, tz=UTC)
    return {
        "timestamp": int(round(e.time * 1e9)),
        "timestamp_str": t.isoformat().replace("+00:00", "Z"),
        "log": e.text,
        "metadata": {
            "deployment_name": e.deployment,
            "deployment_version": e.version,
            "instance_id": e.instance,
            "process_id": e.pid,
            "system": e.stream == "system",
            "level": e.level,
        },
    }


# --- exports and imports --------------------------------------------------------------------------
_TRANSFERRED = ("deployments", "pipelines", "environment_variables", "environments")


def export_json(e: Export, *, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": e.id,
        "exported_by": e.created_by,
        "creation_date": iso(e.created_at),
        "status": e.status,
        "error_message": truncate(e.error_message) or "",
        "size": e.size,
        "description": e.description or None,
    }
    if detail:
        for kind in _TRANSFERRED:
            out[kind] = e.selection.get(kind) or {}
        out["services"] = {}
    return out


def import_json(i: Import, *, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": i.id,
        "imported_by": i.created_by,
        "creation_date": iso(i.created_at),
        "status": i.status,
        "error_message": truncate(i.error_message) or "",
        "size": i.size,
    }
    if detail:
        for kind in _TRANSFERRED:
            out[kind] = i.content.get(kind) or {}
        out["services"] = {}
    return out
