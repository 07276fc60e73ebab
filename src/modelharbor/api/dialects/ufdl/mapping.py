"""UFDL shapes: the JSON of models, frameworks, licences and domains, DRF-style error bodies, and the small
request checks UFDL makes itself (download parameters, upload filename). Pure functions."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import Message
from typing import Any

from fastapi.responses import JSONResponse

from modelharbor.api import failures
from modelharbor.core.catalogue import FieldErrors
from modelharbor.core.jsontext import JsonRejected, loads
from modelharbor.domain.entities import Domain, Framework, Licence, PretrainedModel
from modelharbor.domain.errors import (
    Conflict,
    Forbidden,
    HarborError,
    InvalidInput,
    NotFound,
    Unauthenticated,
    UnsupportedType,
)

WWW_AUTHENTICATE = 'Bearer realm="api"'
NOT_PROVIDED = "Authentication credentials were not provided."
FORBIDDEN = "You do not have permission to perform this action."
NOT_FOUND = "Not found."
NO_ACCOUNT = "No active account found with the given credentials"
TOKEN_INVALID = "Token is invalid or expired"
# A protected route answers this for a bad, expired or revoked token (simplejwt's JWTAuthentication).
TOKEN_NOT_VALID = {
    "detail": "Given token not valid for any token type",
    "code": "token_not_valid",
    "messages": [{"token_class": "AccessToken", "token_type": "access", "message": TOKEN_INVALID}],
}
MISSING_FILENAME = "Missing filename. Request should include a Content-Disposition header with a filename parameter."
DATA_FILENAME = "model.data"
DATA_MEDIA_TYPE = "application/data"

# Error codes the dialect itself raises (as InvalidInput / Unauthenticated codes).
PARSE_ERROR = "PARSE_ERROR"
NOT_AUTHENTICATED = "NOT_AUTHENTICATED"


# --- output ---------------------------------------------------------------------------------------


def iso(dt: datetime | None) -> str | None:
    """UTC, microseconds, ``Z``: ``2024-07-29T08:39:56.123456Z``."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def framework_out(f: Framework) -> dict[str, Any]:
    return {"pk": f.pk, "name": f.name, "version": f.version}


def licence_out(lic: Licence) -> dict[str, Any]:
    return {
        "pk": lic.pk,
        "name": lic.name,
        "url": lic.url,
        "permissions": list(lic.permissions),
        "conditions": list(lic.conditions),
        "limitations": list(lic.limitations),
        "domains": list(lic.domains),
    }


def domain_out(d: Domain) -> dict[str, Any]:
    return {"pk": d.pk, "name": d.name, "description": d.description}


def model_out(m: PretrainedModel) -> dict[str, Any]:
    return {
        "url": m.url,
        "description": m.description,
        "name": m.name,
        "metadata": m.metadata,
        "pk": m.pk,
        "framework": framework_out(m.framework),
        "domain": m.domain.description,
        "licence": m.licence.name,
        "data": m.file is not None,
        "creator": m.creator_number,
        "creation_time": iso(m.creation_time),
        "deletion_time": iso(m.deletion_time),
    }


# --- errors ---------------------------------------------------------------------------------------


def detail(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def unauthorized(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": WWW_AUTHENTICATE})


def method_not_allowed(method: str, allow: str | None = None) -> JSONResponse:
    return detail(405, f'Method "{method}" not allowed.', {"Allow": allow} if allow else None)


def internal_error(rid: str) -> JSONResponse:
    """An unexpected failure (api/failures.py): DRF's ``{"detail": …}``, naming the id it is logged under."""
    return detail(500, failures.message(rid))


def render_error(exc: HarborError) -> JSONResponse:
    """One place that turns a core (or dialect) error into UFDL's status and body."""
    if isinstance(exc, FieldErrors):
        return JSONResponse(exc.details.get("fields") or {"non_field_errors": [exc.message]}, status_code=400)
    if isinstance(exc, Unauthenticated):
        return unauthorized({"detail": NOT_PROVIDED} if exc.code == NOT_AUTHENTICATED else TOKEN_NOT_VALID)
    if isinstance(exc, Forbidden):
        return detail(403, FORBIDDEN)
    if isinstance(exc, NotFound):
        return detail(404, NOT_FOUND)
    if isinstance(exc, InvalidInput) and exc.code == "INVALID_FILTER":
        return detail(400, f"Unable to parse JSON: {exc.message}")
    if isinstance(exc, Conflict) and exc.code == "DUPLICATE":
        return detail(400, exc.message)  # UFDL answers unique violations with 400
    if isinstance(exc, UnsupportedType):
        return detail(415, exc.message)
    return detail(exc.status, exc.message)


# --- request checks -------------------------------------------------------------------------------


def parse_json(raw: bytes) -> Any:
    """DRF's JSONParser: strict JSON (NaN/Infinity refused), checked by the server's reader (api/jsonbody.py);
    errors read ``JSON parse error - <reason>``."""
    try:
        return loads(raw)
    except JsonRejected as exc:
        raise InvalidInput(f"JSON parse error - {exc.reason}", code=PARSE_ERROR, problem=exc.problem) from None


def required_strings(body: Any, names: tuple[str, ...]) -> dict[str, str]:
    """DRF CharFields: each required, not null, not blank; numbers are taken as their text."""
    if not isinstance(body, dict):
        raise FieldErrors({"non_field_errors": [f"Invalid data. Expected a dictionary, but got {_kind(body)}."]})
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for name in names:
        v = body.get(name)
        if name not in body:
            errors[name] = ["This field is required."]
        elif v is None:
            errors[name] = ["This field may not be null."]
        elif isinstance(v, bool) or not isinstance(v, (str, int, float)):
            errors[name] = ["Not a valid string."]
        elif not str(v).strip():
            errors[name] = ["This field may not be blank."]
        else:
            values[name] = str(v)
    if errors:
        raise FieldErrors(errors)
    return values


def _kind(v: Any) -> str:
    return {list: "list", str: "str", int: "int", float: "float", bool: "bool"}.get(type(v), type(v).__name__)


def _bad_argument(parameter: str, expected: str, value: Any) -> InvalidInput:
    # UFDL's BadArgumentType wording
    return InvalidInput(
        f"The type passed to download parameter '{parameter}' should be '{expected}', but received '{value}'",
        code="BAD_ARGUMENT_TYPE",
    )


def check_download_body(body: Any) -> None:
    """``{"filetype": "data", "params": {str: str | [str]}}``, both optional; params are ignored."""
    if body is None:
        return
    if not isinstance(body, dict):
        raise InvalidInput(f"Invalid data. Expected a dictionary, but got {_kind(body)}.", code="BAD_ARGUMENT_TYPE")
    params = body.get("params", {})
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and (isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)))
        for k, v in params.items()
    ):
        raise _bad_argument("params", "mapping from strings to strings/arrays of strings", params)
    filetype = body.get("filetype", "data")
    if not isinstance(filetype, str):
        raise _bad_argument("filetype", "string", filetype)
    if filetype != "data":
        raise UnsupportedType(f'Unsupported media type "{filetype}" in request.')


def upload_filename(header: str | None) -> str | None:
    """The ``filename`` (or RFC 2231 ``filename*``) of a Content-Disposition header; None if absent or empty."""
    if not header or len(header) > 8192:
        return None
    msg = Message()
    try:
        msg["content-disposition"] = header
        name = msg.get_filename()
    except (ValueError, TypeError, LookupError):
        return None
    return name.strip() if isinstance(name, str) and name.strip() else None
