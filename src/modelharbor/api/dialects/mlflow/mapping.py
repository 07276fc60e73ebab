"""MLflow's wire shapes: core registry and tracking objects as MLflow's protobuf JSON (milliseconds, ``{key, value}``
tag lists, string version numbers), its paged answers, and its error body ``{"error_code", "message"}`` for every
error the dialect answers (:func:`render`); and the other way, a request's wire values parsed into the core's typed
inputs (``MetricIn``, ``TagIn``, ``ViewType`` of :mod:`modelharbor.domain.inputs`) with MLflow's messages, so the core
takes typed arguments. Pure: no services, no queries.
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
from modelharbor.core.registry.validation import validate_tag
from modelharbor.core.tracking import finite, now_ms
from modelharbor.core.tracking.metrics import (
    MAX_DATASET_DIGEST,
    MAX_DATASET_NAME,
    check_batch_limits,
    check_key,
    check_text,
    to_int,
)
from modelharbor.core.tracking.validation import MAX_PARAM_VALUE, MAX_TAG_VALUE, check_value
from modelharbor.domain.entities import (
    ArtifactEntry,
    Experiment,
    LoggedModel,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
)
from modelharbor.domain.errors import HarborError, InvalidInput, NotFound
from modelharbor.domain.inputs import MetricIn, TagIn, ViewType
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


# --- registry requests: wire values into typed inputs ---------------------------------------------------------
def flag(value: Any, name: str) -> bool:
    """A boolean parameter: a JSON boolean or "true"/"false" (any case, as a query string carries it); False when
    absent."""
    if value in (None, ""):
        return False
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidInput(f"Parameter '{name}' must be a boolean.")
    return value


def tags_in(tags: Any) -> dict[str, str] | None:
    """A registry request's ``tags``: MLflow's list of ``{key, value}`` (or a mapping), each pair checked as the
    registry checks it (:func:`~modelharbor.core.registry.validate_tag`)."""
    if tags is None:
        return None
    if isinstance(tags, dict):
        pairs: list = list(tags.items())
    elif isinstance(tags, list):
        pairs = []
        for t in tags:
            if not isinstance(t, dict):
                raise InvalidInput("Parameter 'tags' must be a list of {key, value} objects.")
            pairs.append((t.get("key"), t.get("value")))
    else:
        raise InvalidInput("Parameter 'tags' must be a list of {key, value} objects.")
    return dict(validate_tag(k, v) for k, v in pairs)


# --- tracking requests: wire values into typed inputs ---------------------------------------------------------
def experiment_id_in(value: Any) -> str:
    """An experiment id: a string (``"0"`` the caller's default experiment), or a whole number as some clients send
    it; any other value names no experiment."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and str(value).isdigit() and len(str(value)) < 12:
        return str(value)
    raise NotFound(f"experiment {value!r} does not exist")


VIEW_TYPE_NUMBERS = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


def view_type(value: Any) -> ViewType | None:
    """A ``view_type`` / ``run_view_type``: its name (any case) or its protobuf number; None (active only) when
    absent."""
    if value is None:
        return None
    if isinstance(value, int) or str(value).isdigit():
        value = VIEW_TYPE_NUMBERS.get(int(value), "?")
    name = str(value).upper()
    if not name:
        return None
    if name not in ViewType.__members__:
        raise InvalidInput(f"unknown view type {value!r}: use ACTIVE_ONLY, DELETED_ONLY or ALL")
    return ViewType[name]


def to_float(value: Any) -> float:
    """A metric value: a number, or a string such as "NaN", "Infinity", "-Infinity" as protobuf JSON writes them."""
    if isinstance(value, bool):
        raise InvalidInput(f"metric value must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidInput(f"metric value must be a number, got {value!r}")


def metric_in(raw: Any) -> MetricIn:
    """One metric of a request (``key``, ``value``, ``timestamp``, ``step``, optional ``model_id``, ``dataset_name``
    and ``dataset_digest``), checked as MLflow checks it (in its order, so a request with several faults answers
    the first)."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"a metric must be an object with key, value, timestamp and step, got {raw!r}")
    key = check_key(raw.get("key"), "metric")
    if raw.get("value") is None:
        raise InvalidInput(f"missing value for required parameter 'value' of metric {key!r}")
    timestamp = to_int(raw.get("timestamp"), "timestamp", now_ms())
    if timestamp < 0:
        raise InvalidInput(f"metric {key!r}: timestamp must be a nonnegative long (64-bit integer), got {timestamp}")
    model_id = raw.get("model_id")
    if model_id in (None, ""):
        model_id = None
    elif not isinstance(model_id, str):
        raise InvalidInput(f"metric {key!r}: model_id must be a string, got {model_id!r}")
    dataset_name = check_text(raw.get("dataset_name"), "dataset_name", MAX_DATASET_NAME)
    dataset_digest = check_text(raw.get("dataset_digest"), "dataset_digest", MAX_DATASET_DIGEST)
    if (dataset_name is None) != (dataset_digest is None):
        raise InvalidInput(f"metric {key!r}: both dataset_name and dataset_digest must be given if one is")
    value, step = to_float(raw.get("value")), to_int(raw.get("step"), "step", 0)
    return MetricIn(key, value, timestamp, step, model_id, dataset_name, dataset_digest)


def tag_in(raw: Any, what: str) -> TagIn:
    """A param (``what`` "param") or tag ``{key, value}``; a value that is not a string is sent as its text."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"a {what} must be an object with key and value, got {raw!r}")
    limit = MAX_PARAM_VALUE if what == "param" else MAX_TAG_VALUE
    return TagIn(check_key(raw.get("key"), what), check_value(raw.get("value"), what, limit))


def batch_in(metrics: list, params: list, tags: list) -> tuple[list[MetricIn], list[TagIn], list[TagIn]]:
    """A ``log-batch`` request's metrics, params and tags, within MLflow's limits of one call."""
    check_batch_limits(len(metrics), len(params), len(tags))
    typed_params = [tag_in(p, "param") for p in params]
    return [metric_in(m) for m in metrics], typed_params, [tag_in(t, "tag") for t in tags]


# --- artifacts --------------------------------------------------------------------------------------------------
def file_info_json(entry: ArtifactEntry) -> dict[str, Any]:
    """A listed artifact: ``{path, is_dir, file_size?}``."""
    item: dict[str, Any] = {"path": entry.path, "is_dir": entry.is_dir}
    if entry.file_size is not None:
        item["file_size"] = entry.file_size
    return item
