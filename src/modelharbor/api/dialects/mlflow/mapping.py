"""MLflow's wire shapes: core registry and tracking objects as MLflow's protobuf JSON (milliseconds, ``{key, value}``
tag lists, string version numbers), its paged answers, and its error body ``{"error_code", "message"}`` for every
error the dialect answers (:func:`render`). The other way, a request's wire values into the core's typed arguments,
is inputs.py. Pure: no services, no queries.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from modelharbor.api import failures
from modelharbor.api.dialect import (
    CLIENT_GONE,
    INVALID_REQUEST,
    MALFORMED_MULTIPART,
    METHOD_NOT_ALLOWED,
    ROUTE_NOT_FOUND,
    EdgeError,
)
from modelharbor.api.paging import encode_token
from modelharbor.core.registry import ms
from modelharbor.core.tracking import finite
from modelharbor.domain.entities import (
    ArtifactEntry,
    Experiment,
    LoggedModel,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
)
from modelharbor.domain.errors import HarborError
from modelharbor.domain.query import Page

MALFORMED_REQUEST = "MALFORMED_REQUEST"  # a body that is not a JSON object (api/params.json_object's code)

# HarborError code -> (MLflow error_code, HTTP status). MLflow answers 400 for "already exists".
ERROR_CODES = {
    "INVALID_INPUT": ("INVALID_PARAMETER_VALUE", 400),
    "INVALID_FILTER": ("INVALID_PARAMETER_VALUE", 400),
    "INVALID_FIELDS": ("INVALID_PARAMETER_VALUE", 400),
    "UNAUTHENTICATED": ("UNAUTHENTICATED", 401),
    "FORBIDDEN": ("PERMISSION_DENIED", 403),
    "NOT_FOUND": ("RESOURCE_DOES_NOT_EXIST", 404),
    "CONFLICT": ("RESOURCE_ALREADY_EXISTS", 400),
    "DUPLICATE": ("RESOURCE_ALREADY_EXISTS", 400),
    "GONE": ("RESOURCE_DOES_NOT_EXIST", 404),
    "TOO_LARGE": ("INVALID_PARAMETER_VALUE", 413),
    "FILE_TOO_LARGE": ("INVALID_PARAMETER_VALUE", 413),
    # what the edge finds itself (api/dialect.py)
    INVALID_REQUEST: ("INVALID_PARAMETER_VALUE", 400),
    MALFORMED_MULTIPART: (MALFORMED_REQUEST, 400),
    CLIENT_GONE: ("BAD_REQUEST", 400),
    ROUTE_NOT_FOUND: ("ENDPOINT_NOT_FOUND", 404),
    METHOD_NOT_ALLOWED: ("BAD_REQUEST", 405),
}
MESSAGES = {  # the edge's own messages, as the dialect has always answered them
    ROUTE_NOT_FOUND: "this MLflow endpoint is not supported by ModelHarbor",
    METHOD_NOT_ALLOWED: "method not allowed on this endpoint",
}
BY_STATUS = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST"}

MODEL_STATUS_OUT = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
MODEL_STATUS_IN = {v: k for k, v in MODEL_STATUS_OUT.items()} | {
    "PENDING": "PENDING",
    "READY": "READY",
    "FAILED": "FAILED",
}
MODEL_STATUS_IN |= {"1": "PENDING", "2": "READY", "3": "FAILED"}


# --- errors ---------------------------------------------------------------------------------------------------
def mlflow_error(status: int, error_code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": error_code, "message": message}, status_code=status)


def render(_request: Request, exc: HarborError) -> JSONResponse:
    """Every error as MLflow's ``{"error_code", "message"}``. The core may raise with an MLflow code directly."""
    if exc.code in ERROR_CODES:
        code, status = ERROR_CODES[exc.code]
    elif exc.code.isupper() and "_" in exc.code and not isinstance(exc, EdgeError):  # an MLflow code from the core
        code, status = exc.code, exc.status
    else:
        code, status = BY_STATUS.get(exc.status, "INVALID_PARAMETER_VALUE"), exc.status
    response = mlflow_error(status, code, MESSAGES.get(exc.code, exc.message))
    if status == 401:
        response.headers["www-authenticate"] = 'Basic realm="mlflow", Bearer'
    return response


def internal_error(rid: str) -> JSONResponse:
    """An unexpected failure (api/failures.py): MLflow's envelope with its INTERNAL_ERROR code."""
    return mlflow_error(500, "INTERNAL_ERROR", failures.message(rid))


# --- shared -----------------------------------------------------------------------------------------------------
def paged(page: Page, key: str, to_json) -> dict[str, Any]:
    """MLflow's paged answer: ``{key: [...]}`` plus ``next_page_token`` when there is a next page."""
    out: dict[str, Any] = {key: [to_json(item) for item in page.items]}
    if page.next_offset is not None:
        out["next_page_token"] = encode_token(page.next_offset)
    return out


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _kv(d: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(d.items())]


# --- model registry ---------------------------------------------------------------------------------------------
def model_version_json(v: ModelVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": ms(v.creation_time),
        "last_updated_timestamp": ms(v.last_updated_time),
        "current_stage": v.current_stage,
        "description": v.description,
        "source": v.source,
        "status": v.status,
        "tags": _tags(v.tags),
        "aliases": list(v.aliases),
    }
    for key in ("run_id", "run_link", "model_id"):
        if getattr(v, key):
            out[key] = getattr(v, key)
    return out


def registered_model_json(m: RegisteredModel) -> dict[str, Any]:
    return {
        "name": m.name,
        "creation_timestamp": ms(m.creation_time),
        "last_updated_timestamp": ms(m.last_updated_time),
        "description": m.description,
        "latest_versions": [model_version_json(v) for v in m.latest_versions],
        "tags": _tags(m.tags),
        "aliases": [{"alias": a, "version": str(n)} for a, n in m.aliases],
    }


# --- tracking ---------------------------------------------------------------------------------------------------
def experiment_json(e: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": e.id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "last_update_time": e.last_update_time,
        "creation_time": e.creation_time,
        "tags": _kv(e.tags),
    }


def metric_json(m: Metric) -> dict[str, Any]:
    """MLflow's Metric; ``model_id``, ``run_id`` and the dataset only where known (history rows: the model given)."""
    out: dict[str, Any] = {"key": m.key, "value": finite(m.value), "timestamp": m.timestamp, "step": m.step}
    for name in ("model_id", "run_id", "dataset_name", "dataset_digest"):
        if (value := getattr(m, name)) is not None:
            out[name] = value
    return out


def run_json(r: Run) -> dict[str, Any]:
    info = {
        "run_id": r.id,
        "run_uuid": r.id,
        "run_name": r.name,
        "experiment_id": r.experiment_id,
        "user_id": r.user_id,
        "status": r.status,
        "start_time": r.start_time,
        "artifact_uri": r.artifact_uri,
        "lifecycle_stage": r.lifecycle_stage,
    }
    if r.end_time is not None:
        info["end_time"] = r.end_time
    return {
        "info": info,
        "data": {"metrics": [metric_json(m) for m in r.metrics], "params": _kv(r.params), "tags": _kv(r.tags)},
        "inputs": {
            "dataset_inputs": r.inputs.get("dataset_inputs", []),
            "model_inputs": r.inputs.get("model_inputs", []),
        },
        "outputs": {"model_outputs": r.outputs.get("model_outputs", [])},
    }


def model_json(m: LoggedModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": m.id,
        "experiment_id": m.experiment_id,
        "name": m.name,
        "creation_timestamp_ms": m.creation_timestamp_ms,
        "last_updated_timestamp_ms": m.last_updated_timestamp_ms,
        "artifact_uri": m.artifact_uri,
        "status": MODEL_STATUS_OUT.get(m.status, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
        "tags": _kv(m.tags),
    }
    for key, value in (
        ("model_type", m.model_type),
        ("source_run_id", m.source_run_id),
        ("status_message", m.status_message),
    ):
        if value:
            info[key] = value
    return {"info": info, "data": {"params": _kv(m.params), "metrics": [metric_json(x) for x in m.metrics]}}


# --- artifacts --------------------------------------------------------------------------------------------------
def file_info_json(entry: ArtifactEntry) -> dict[str, Any]:
    """A listed artifact: ``{path, is_dir, file_size?}``."""
    item: dict[str, Any] = {"path": entry.path, "is_dir": entry.is_dir}
    if entry.file_size is not None:
        item["file_size"] = entry.file_size
    return item
