"""Domino conventions: credentials (``X-Domino-Api-Key`` or ``Authorization: Bearer``), request ids, the
``FailureEnvelopeV1`` error body, metadata envelopes and the sub-apps.

Domino's client turns any 409 into "credentials expired", so a duplicate answers 400 here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount, Route

from modelharbor import __version__
from modelharbor.api import failures
from modelharbor.api.common import bearer_token, services_of
from modelharbor.api.jsonbody import MISSING, read_json
from modelharbor.domain.errors import HarborError, InvalidInput, Unauthenticated
from modelharbor.domain.principal import Principal
from modelharbor.services import Services

# The Domino release whose API this dialect follows; the client gates features on it (>= 4.1.0 required).
DOMINO_VERSION = "6.3.0"
STATUS = {"CONFLICT": 400, "DUPLICATE": 400}  # never 409 (see above)


def request_id(request: Request) -> str:
    return failures.request_id(request.scope)  # the id an unexpected failure is logged under, too


def failure(request: Request, status: int, *messages: str, headers: dict | None = None) -> JSONResponse:
    """``FailureEnvelopeV1``: ``{"errors": [...], "requestId": ...}``."""
    return JSONResponse(
        {"errors": list(messages), "requestId": request_id(request)}, status_code=status, headers=headers
    )


def internal_error(rid: str) -> JSONResponse:
    """An unexpected failure (api/failures.py): the failure envelope, ``requestId`` the id it is logged under."""
    return JSONResponse({"errors": [failures.message(rid)], "requestId": rid}, status_code=500)


def render(request: Request, exc: HarborError) -> JSONResponse:
    status = STATUS.get(exc.code, exc.status)
    if status == 409:
        status = 400
    headers = {"www-authenticate": 'Bearer realm="domino"'} if status == 401 else None
    return failure(request, status, exc.message, headers=headers)


def metadata(request: Request, **extra: Any) -> dict[str, Any]:
    return {"requestId": request_id(request), "notices": [], **extra}


def get_principal(request: Request) -> Principal:
    """``X-Domino-Api-Key: <key>`` (the client's ``api_key``) or ``Authorization: Bearer <key>`` (its
    ``auth_token`` / token file). Either takes a ModelHarbor API key."""
    services = services_of(request)
    key = request.headers.get("x-domino-api-key", "").strip() or bearer_token(request)
    if not key:
        raise Unauthenticated(
            "credentials required: send X-Domino-Api-Key or Authorization: Bearer with a ModelHarbor API key"
        )
    return services.identity.authenticate_key(key)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def json_body(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if body is MISSING:
        raise InvalidInput("a JSON object body is required")
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
    """``body[name]`` checked against ``kind``; a missing required field or a wrong type is a 400 naming it."""
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"'{name}' is required")
        return None
    if isinstance(value, bool) and kind in (int, (int,)) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InvalidInput(f"'{name}' must be of type {names.replace('str', 'string').replace('dict', 'object')}")
    return value


def int_param(value: str | None, name: str, default: int, *, low: int = 0, high: int = 1000) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"'{name}' must be an integer, not {value!r}") from None
    if not low <= number <= high:
        raise InvalidInput(f"'{name}' must be between {low} and {high}")
    return number


def bool_param(value: str | None, name: str, default: bool | None) -> bool | None:
    if value in (None, ""):
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidInput(f"'{name}' must be true or false, not {value!r}")


def sub_app(services: Services) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    app.state.services = services
    failures.install(app, internal_error)

    @app.exception_handler(HarborError)
    async def _harbor(request: Request, exc: HarborError):
        return render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return failure(request, 400, *(parts or ["invalid request"]))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return failure(request, 404, "no such Domino API route in ModelHarbor; see docs/dialects/domino.md")
        if exc.status_code == 405:
            return failure(request, 405, f"method {request.method} is not allowed on this route")
        return failure(request, exc.status_code, str(exc.detail))

    return app


async def version(_request: Request) -> JSONResponse:
    """``GET /version``: unauthenticated, as the client calls it before anything else."""
    return JSONResponse(
        {"version": DOMINO_VERSION, "buildId": f"modelharbor-{__version__}", "commitId": "", "timestamp": ""}
    )


def routes(_services: Services) -> list[Route]:
    return [Route("/version", version, methods=["GET"])]


def mounts(services: Services) -> list[Mount]:
    from modelharbor.api.dialects.domino import registered_models

    app = sub_app(services)
    app.include_router(registered_models.router)
    return [Mount("/api/registeredmodels", app=app)]
