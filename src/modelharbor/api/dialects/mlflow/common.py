"""MLflow conventions: auth (Bearer key/token or HTTP Basic), error bodies, and the two sub-apps."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import Mount

from modelharbor.api import failures
from modelharbor.api.common import bearer_token, services_of
from modelharbor.api.jsonbody import read_json
from modelharbor.api.paging import encode_token
from modelharbor.domain.errors import HarborError, Unauthenticated
from modelharbor.domain.principal import Principal
from modelharbor.domain.query import Page
from modelharbor.services import Services

# Core error class/code -> (MLflow error_code, HTTP status). MLflow answers 400 for "already exists".
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
}


def mlflow_error(status: int, error_code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": error_code, "message": message}, status_code=status)


def render(exc: HarborError) -> JSONResponse:
    """A core error as MLflow's ``{"error_code", "message"}``. Services may raise with an MLflow code directly."""
    if exc.code in ERROR_CODES:
        code, status = ERROR_CODES[exc.code]
    elif exc.code.isupper() and "_" in exc.code:  # already an MLflow-style code chosen by the core
        code, status = exc.code, exc.status
    else:
        code, status = (
            {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST"}.get(
                exc.status, "INVALID_PARAMETER_VALUE"
            ),
            exc.status,
        )
    response = mlflow_error(status, code, exc.message)
    if status == 401:
        response.headers["www-authenticate"] = 'Basic realm="mlflow", Bearer'
    return response


def paged(page: Page, key: str, to_json) -> dict[str, Any]:
    """MLflow's paged answer: ``{key: [...]}`` plus ``next_page_token`` when there is a next page."""
    out: dict[str, Any] = {key: [to_json(item) for item in page.items]}
    if page.next_offset is not None:
        out["next_page_token"] = encode_token(page.next_offset)
    return out


def get_principal(request: Request) -> Principal:
    """``Authorization: Bearer <API key>`` (MLFLOW_TRACKING_TOKEN) or Basic auth (MLFLOW_TRACKING_USERNAME /
    MLFLOW_TRACKING_PASSWORD: a user's password, or an API key as the password)."""
    services = services_of(request)
    token = bearer_token(request)
    if token:
        return services.identity.authenticate_key(token)
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            username, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise Unauthenticated("malformed Basic credentials") from None
        try:
            return services.identity.authenticate_password(username, password)
        except Unauthenticated:
            return services.identity.authenticate_key(password)
    raise Unauthenticated(
        "credentials required: set MLFLOW_TRACKING_TOKEN to a ModelHarbor API key "
        "(or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (MLflow clients send JSON even on some GETs); {} when empty."""
    body = await read_json(request, empty={}, code="MALFORMED_REQUEST")
    if not isinstance(body, dict):
        raise HarborError("the request body must be a JSON object", code="MALFORMED_REQUEST")
    return body


def internal_error(rid: str) -> JSONResponse:
    """An unexpected failure (api/failures.py): MLflow's envelope with its INTERNAL_ERROR code."""
    return mlflow_error(500, "INTERNAL_ERROR", failures.message(rid))


def _sub_app(services: Services) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.services = services
    failures.install(app, internal_error)

    @app.exception_handler(HarborError)
    async def _harbor(_r: Request, exc: HarborError):
        return render(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return mlflow_error(400, "INVALID_PARAMETER_VALUE", "; ".join(parts) or "invalid request")

    @app.exception_handler(404)
    async def _nf(_r: Request, _e):
        return mlflow_error(404, "ENDPOINT_NOT_FOUND", "this MLflow endpoint is not supported by ModelHarbor")

    @app.exception_handler(405)
    async def _405(_r: Request, _e):
        return mlflow_error(405, "BAD_REQUEST", "method not allowed on this endpoint")

    return app


def mounts(services: Services) -> list[Mount]:
    from modelharbor.api.dialects.mlflow import artifacts, registry, tracking
    from modelharbor.api.exact import ExactRoutes

    api = _sub_app(services)
    api.include_router(registry.router)  # first: the registry's routes are the hot ones (bench/registry.py)
    api.include_router(tracking.router)
    # the registry's calls skip FastAPI's layers (same endpoints, same errors): api/exact.py
    hot = ExactRoutes(
        api, registry.router.routes, services=services, principal=registry.principal, render=render, fail=internal_error
    )
    files = _sub_app(services)
    files.include_router(artifacts.router)
    return [Mount("/api/2.0/mlflow-artifacts", app=files), Mount("/api/2.0/mlflow", app=hot)]
