"""Kore.ai's wire shapes: ids (``cm-``, ``ds-``, ``f-`` prefixes), dates, media-link signatures, the dock-status
and job answers, and the error envelope ``{"errors": [{"msg", "code"}], ...}`` every error is rendered in
(:func:`render`, the dialect's one error renderer). Pure functions: no services, no queries.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import JSONResponse

from modelharbor.api import failures
from modelharbor.api.dialect import (
    CLIENT_GONE,
    INVALID_REQUEST,
    MALFORMED_MULTIPART,
    METHOD_NOT_ALLOWED,
    ROUTE_NOT_FOUND,
)
from modelharbor.core.catalogue import DEPLOY, EXPORT, UNDEPLOY
from modelharbor.core.catalogue.model_jobs import KINDS as JOB_ACTIONS
from modelharbor.core.files import SignedLink
from modelharbor.core.jsontext import loads
from modelharbor.domain.entities import FileRecord, Task
from modelharbor.domain.errors import HarborError, InvalidInput, RangeNotSatisfiable

MODEL_PREFIX = "cm-"
DOCK_PREFIX = "ds-"
STORED_PREFIX = "f-"

# Status per error code where Kore's spec differs from the core's natural status.
STATUS = {
    "SESSION_NOT_FOUND": 404,
    "SESSION_COMPLETED": 409,
    "SESSION_EXPIRED": 410,
    "SESSION_ABORTED": 410,
    "FILE_TOO_LARGE": 413,
    "UNSUPPORTED_FILE_TYPE": 415,
    "INVALID_SIGNATURE": 403,
    "URL_EXPIRED": 403,
}

# Extra top-level keys the envelope carries for some errors (core detail name -> Kore key).
EXTRA_KEYS = {
    "total_chunks": "totalChunks",
    "received_chunks": "receivedChunks",
    "missing_chunks": "missingChunks",
    "expected_size": "expectedSize",
    "received_size": "receivedSize",
}


def iso(dt: datetime) -> str:
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def error_response(status: int, msg: str, code: str, extra: dict | None = None) -> JSONResponse:
    body = {"errors": [{"msg": msg, "code": code}]}
    body.update(extra or {})
    return JSONResponse(body, status_code=status)


def internal_error(rid: str) -> JSONResponse:
    """An unexpected failure (api/failures.py), with the id it is logged under as ``requestId``."""
    return error_response(500, failures.message(rid), "INTERNAL_SERVER_ERROR", {"requestId": rid})


# The edge's own failures (api/dialect.py): Kore's code, and the message where Kore's differs from the edge's.
EDGE_CODES = {
    MALFORMED_MULTIPART: "BAD_REQUEST",
    CLIENT_GONE: "BAD_REQUEST",
    INVALID_REQUEST: "BAD_REQUEST",
    ROUTE_NOT_FOUND: "NOT_FOUND",
    METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
}
EDGE_MESSAGES = {
    ROUTE_NOT_FOUND: "no such Kore.ai API route",
    METHOD_NOT_ALLOWED: "method not allowed on this route",
}


def render(request: Request, exc: HarborError) -> JSONResponse:
    """Every error the dialect answers (api/dialect.py): the envelope, the session id where the route has one, and
    ``content-range: bytes */size`` on an unsatisfiable range."""
    response = render_error(exc, request.path_params.get("session_id"))
    if isinstance(exc, RangeNotSatisfiable) and "size" in exc.details:
        response.headers["content-range"] = f"bytes */{exc.details['size']}"
    return response


def render_error(exc: HarborError, session_id: str | None = None) -> JSONResponse:
    status = STATUS.get(exc.code, exc.status)
    code = exc.code
    message = EDGE_MESSAGES.get(code, exc.message)
    if code == INVALID_REQUEST:  # FastAPI's validation: its messages only, as before the dialect was declared
        message = "; ".join(msg for _, msg in exc.details.get("problems", ())) or exc.message
    code = EDGE_CODES.get(code, code)
    if code == "INVALID_INPUT":
        code = "BAD_REQUEST"
    extra = {EXTRA_KEYS[k]: v for k, v in exc.details.items() if k in EXTRA_KEYS}
    if extra and session_id:
        extra = {"sessionId": session_id, **extra}
    return error_response(status, message, code, extra)


def model_id_out(core_id: str) -> str:
    return MODEL_PREFIX + core_id


def dock_id_out(task_id: str) -> str:
    return DOCK_PREFIX + task_id


def strip_prefix(value: str, prefix: str) -> str | None:
    return value[len(prefix) :] if value.startswith(prefix) and len(value) > len(prefix) else None


def stored_name(file_id: str, extension: str) -> str:
    return f"{STORED_PREFIX}{file_id}.{extension}" if extension else f"{STORED_PREFIX}{file_id}"


def file_id_of(stored: str) -> str | None:
    rest = strip_prefix(stored, STORED_PREFIX)
    if rest is None:
        return None
    return rest.split(".", 1)[0] or None


def encode_signature(mac: bytes) -> str:
    """The vendor's look: base64 of a JSON-quoted base64 MAC, with '=' written as '$'."""
    inner = base64.b64encode(mac).decode()
    return base64.b64encode(json.dumps(inner).encode()).decode().replace("=", "$")


def decode_signature(s: str) -> bytes | None:
    try:
        inner = loads(base64.b64decode(s.replace("$", "="), validate=True), what="the signature")
        return base64.b64decode(inner, validate=True) if isinstance(inner, str) else None
    except (ValueError, TypeError, InvalidInput):
        return None


def link_extra(stored: str, delete: str, file_name: str) -> str:
    return f"kore\n{stored}\n{delete}\n{file_name}"


TASK_STATUS = {"queued": "IN_PROGRESS", "running": "IN_PROGRESS", "succeeded": "SUCCESS", "failed": "FAILED"}


def media_answer(base: str, record: FileRecord, link: SignedLink) -> dict[str, str]:
    """``{url, fileId}``: the file's signed media URL under ``base`` (``link`` signed over :func:`link_extra`)."""
    stored = stored_name(record.id, record.extension)
    query = urlencode(
        {"e": link.expires, "n": link.nonce, "del": "false", "s": encode_signature(link.mac), "fileName": record.name}
    )
    return {"url": f"{base}/api/getMediaStream/orgFiles/{stored}?{query}", "fileId": record.id}


def job_started(task: Task, model_id: str, kind: str) -> dict[str, Any]:
    """The answer to an export, deploy or undeploy: the dock status to poll."""
    dock = dock_id_out(task.id)
    return {
        "dock-statusId": dock,
        "dockStatusId": dock,
        "modelId": model_id,
        "jobType": "MODELS",
        "action": JOB_ACTIONS[kind],
        "status": TASK_STATUS[task.status],
    }


def dock_status(dock_id: str, task: Task, download_url: str | None = None) -> dict[str, Any]:
    """A dock-status document for a task: an import, or an export/deploy/undeploy job (``download_url``: the
    signed media URL of a succeeded export's archive)."""
    body: dict[str, Any] = {
        "_id": dock_id,
        "jobType": "MODELS",
        "action": JOB_ACTIONS.get(task.kind, "IMPORT"),
        "status": TASK_STATUS[task.status],
        "percentageComplete": task.percent,
    }
    if task.payload.get("model_id"):
        body["modelId"] = model_id_out(task.payload["model_id"])
    if task.status == "failed":
        body["error"] = task.error
    if task.status == "succeeded" and task.kind == EXPORT:
        body["response"] = {"downloadUrl": download_url}
    elif task.status == "succeeded" and task.kind in (DEPLOY, UNDEPLOY):
        body["response"] = {k: v for k, v in task.result.items() if k != "model_id"}
    return body
