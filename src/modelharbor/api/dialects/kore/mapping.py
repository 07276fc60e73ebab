"""Kore.ai ids, dates, signatures and error envelopes. Pure functions."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from fastapi.responses import JSONResponse

from modelharbor.api import failures
from modelharbor.core.jsontext import loads
from modelharbor.domain.errors import HarborError, InvalidInput

MODEL_PREFIX = "cm-"
DOCK_PREFIX = "ds-"
STORED_PREFIX = "f-"

MEDIA_EXTENSIONS = {"m4a", "mp3", "webm", "mp4", "mpga", "wav", "mpeg", "png", "jpeg", "jpg", "webp", "gif"}

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


def render_error(exc: HarborError, session_id: str | None = None) -> JSONResponse:
    status = STATUS.get(exc.code, exc.status)
    code = exc.code
    if code == "INVALID_INPUT":
        code = "BAD_REQUEST"
    extra = {EXTRA_KEYS[k]: v for k, v in exc.details.items() if k in EXTRA_KEYS}
    if extra and session_id:
        extra = {"sessionId": session_id, **extra}
    return error_response(status, exc.message, code, extra)


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
