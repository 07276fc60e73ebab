"""UFDL's wire shapes: catalogue entities as UFDL's JSON (models, frameworks, licences, domains) and every error as
Django REST Framework answers it (``{"detail": …}``, field → messages, simplejwt's ``token_not_valid``). Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from modelharbor.api import failures
from modelharbor.api.dialect import CLIENT_GONE, INVALID_REQUEST, METHOD_NOT_ALLOWED, ROUTE_NOT_FOUND
from modelharbor.core.catalogue import FieldErrors
from modelharbor.core.jsontext import JsonRejected
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
CLIENT_LEFT = "The client disconnected before the request body was complete."

# The code of the Unauthenticated the dialect raises when no credentials came (authenticate, in __init__.py).
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


def internal_error(rid: str) -> JSONResponse:
    """An unexpected failure (api/failures.py): DRF's ``{"detail": …}``, naming the id it is logged under."""
    return detail(500, failures.message(rid))


def render(request: Request, exc: HarborError) -> JSONResponse:
    """Every error the dialect answers (api/dialect.py), as DRF would."""
    if exc.code == ROUTE_NOT_FOUND:
        return detail(404, NOT_FOUND)
    if exc.code == METHOD_NOT_ALLOWED:  # the Allow header is set by api/dialect.py
        return detail(405, f'Method "{request.method}" not allowed.')
    if exc.code == CLIENT_GONE:
        return detail(400, CLIENT_LEFT)
    if exc.code == INVALID_REQUEST:
        return detail(400, "; ".join(msg for _, msg in exc.details.get("problems", ())) or "Bad request.")
    if isinstance(exc, JsonRejected):  # DRF's JSONParser
        return detail(400, f"JSON parse error - {exc.reason}")
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
