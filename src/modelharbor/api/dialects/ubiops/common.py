"""UbiOps conventions: ``Authorization: Token <key>`` (or Bearer), ``{"error": "..."}`` bodies, Python-style
booleans in query strings and form fields, no trailing-slash redirects, and the two mounts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Mount, Route

from modelharbor.api import failures
from modelharbor.api.common import principal_of_key, request_parts, services_of, token_of
from modelharbor.api.jsonbody import MAX_INPUT_BODY, MISSING, read_json
from modelharbor.api.multipart import MultipartError, Part
from modelharbor.domain.errors import HarborError, InvalidInput, Unauthenticated
from modelharbor.domain.principal import Principal
from modelharbor.services import Services


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def internal_error(rid: str) -> JSONResponse:
    """An unexpected failure (api/failures.py; the hot path in fast.py answers the same)."""
    return error(500, failures.message(rid))


async def get_principal(request: Request) -> Principal:
    """``Authorization: Token <API key>`` as the client sends it (``Bearer`` works too)."""
    return await principal_of(services_of(request), request.headers.get("authorization", ""))


async def principal_of(services: Services, authorization: str) -> Principal:
    """The principal of an ``Authorization`` header value (also for the ASGI hot path in fast.py)."""
    token = token_of(authorization)
    if not token:
        raise Unauthenticated("credentials required: send 'Authorization: Token <ModelHarbor API key>'")
    return await principal_of_key(services, token)


async def read_form(
    request: Request,
    on_file: Callable[[Part], Awaitable[Any]],
    *,
    missing: str,
    discard: Callable[[Any], Awaitable[None]] | None = None,
    field_limit: int = 4096,
    file_needs_filename: bool = True,
) -> tuple[Any, dict[str, str]]:
    """A multipart form: ``on_file(part)`` takes the one ``file`` part (its result is returned), the other parts
    are text fields. Not multipart → InvalidInput(``missing``). On any failure after the file was taken,
    ``discard(result)`` drops it again."""
    parts = await request_parts(request)
    if parts is None:
        raise InvalidInput(missing)
    fields: dict[str, str] = {}
    taken = None
    try:
        async for part in parts:
            if part.name == "file" and (part.filename is not None or not file_needs_filename):
                if taken is not None:
                    raise InvalidInput("Send one 'file' part.")
                taken = await on_file(part)
            else:
                try:
                    fields[part.name or ""] = (await part.read_all(field_limit)).decode().strip()
                except UnicodeDecodeError:
                    raise MultipartError(f"form field {part.name!r} is not UTF-8 text") from None
    except BaseException:
        if taken is not None and discard is not None:
            await discard(taken)
        raise
    return taken, fields


async def get_services(request: Request) -> Services:
    return services_of(request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
ServicesDep = Annotated[Services, Depends(get_services)]


async def json_body(request: Request, *, required: bool = True, nan: bool = False) -> Any:
    """The body's JSON (api/jsonbody.py: within MAX_INPUT_BODY, checked; ``nan`` for requests' inputs, which may
    hold NaN and Infinity); an empty body is refused, or {}."""
    body = await read_json(request, limit=MAX_INPUT_BODY, nan=nan)
    if body is MISSING:
        if required:
            raise InvalidInput("a JSON body is required")
        return {}
    return body


async def json_object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def flag(value: str | None, name: str, default: bool | None = None) -> bool | None:
    """``True``/``False`` as the client writes them (also true/false/1/0)."""
    if value is None or value == "":
        return default
    low = value.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise InvalidInput(f"'{name}' must be True or False, not {value!r}")


def sub_app(services: Services) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    app.state.services = services
    failures.install(app, internal_error)

    @app.exception_handler(HarborError)
    async def _harbor(_r: Request, exc: HarborError):
        response = error(exc.status, exc.message)
        if exc.status == 401:
            response.headers["www-authenticate"] = "Token"
        return response

    @app.exception_handler(MultipartError)
    async def _multipart(_r: Request, exc: MultipartError):
        return error(400, f"malformed multipart body: {exc}")

    @app.exception_handler(ClientDisconnect)
    async def _gone(_r: Request, _exc: ClientDisconnect):
        return error(400, "the client disconnected before the body arrived")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return error(404, "no such UbiOps API route in ModelHarbor; see docs/dialects/ubiops.md")
        if exc.status_code == 405:
            return error(405, "method not allowed on this route")
        return error(exc.status_code, str(exc.detail))

    return app


async def status(_request: Request) -> JSONResponse:
    """``GET /status``: open, and ``fail`` when the database does not answer."""
    services = services_of(_request)
    ok = await run_in_threadpool(services.db.ping)
    return JSONResponse({"status": "ok"} if ok else {"status": "fail", "reason": "database unreachable"})


def routes(_services: Services) -> list[Route]:
    return [Route("/status", status, methods=["GET"])]


def mounts(services: Services) -> list[Mount]:
    from modelharbor.api.dialects.ubiops import deployments, environments, logs, pipelines, projects, transfer

    app = sub_app(services)
    app.include_router(projects.router)
    app.include_router(environments.router)
    app.include_router(deployments.router)
    app.include_router(pipelines.router)
    app.include_router(transfer.router)
    app.include_router(logs.router)
    return [Mount("/v2.1", app=app), Mount("/v2", app=app)]
