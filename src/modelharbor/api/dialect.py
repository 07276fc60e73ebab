"""A dialect, declared once: what every vendor API has, in one place, and the one way it is mounted.

A dialect package (``api/dialects/<name>/``) has the same files as every other: ``__init__.py`` (its
:class:`Dialect`), ``schemas.py`` (pydantic models of its wire shapes), ``routes.py`` or ``routes/<noun>.py``
(``APIRouter``\\ s: each route parses, makes one core call, maps the answer) and a pure ``mapping.py`` (entities to
wire shapes; no queries). The spec says:

- **where** it is served: one or more :class:`Api` (a FastAPI sub-application, its mount prefixes and routers),
  plus ``root_routes`` for exact paths outside any mount (``GET /version``, ``GET /status``);
- **who** calls: ``authenticate(request) -> Principal`` (the dependency its routes take, :func:`principal_dep`);
- **how errors look**: ``render(request, error) -> Response`` renders every :class:`HarborError`; failures the
  edge itself detects arrive as the :class:`EdgeError` codes below, so one function decides every error body the
  dialect answers (its not-found and method-not-allowed shapes too), and ``internal`` is its 500;
- **what is hot**: ``hot`` entries for the one hot-route table (``api/hot.py``);
- **its OpenAPI document**, made from its routes and ``schemas.py`` (``error_schema``, ``security``,
  ``statuses``, and ``inputs``: what each route reads by hand, its body and query parameters) by api/openapi.py and
  served at ``/openapi/<name>.json`` (:func:`openapi_path`).

``app.create_app`` loops over ``api.dialects.DIALECTS`` and calls :func:`mount`; it names no vendor.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, get_route_path

from modelharbor.api import failures
from modelharbor.api.allow import answer_405_with_allow
from modelharbor.api.hot import ExactRoutes, PlainRoute
from modelharbor.api.multipart import MultipartError
from modelharbor.api.openapi import Inputs, dialect_document
from modelharbor.domain.errors import HarborError
from modelharbor.domain.principal import Principal

# The codes of failures the edge detects before any core call (HarborError.code; status as given):
MALFORMED_MULTIPART = "MALFORMED_MULTIPART"  # 400: a multipart body that does not parse (message: the problem)
CLIENT_GONE = "CLIENT_GONE"  # 400: the client left before its body was complete
INVALID_REQUEST = "INVALID_REQUEST"  # 400: FastAPI's validation; details["problems"] = [(location, message)]
ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"  # 404: no route of the dialect has this path
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"  # 405: details["allow"] = "GET, POST" (the Allow header is set too)


class EdgeError(HarborError):
    """A failure found at the edge (see the codes above); rendered by the dialect like any domain error."""

    def __init__(self, status: int, code: str, message: str, **details: Any):
        super().__init__(message, code=code, **details)
        self.status = status


@dataclass(frozen=True)
class Api:
    """One FastAPI sub-application: the prefixes it is mounted at and its routers (imported lazily by the
    dialect's ``__init__``, as routes import the dialect's own helpers). ``hot_exact`` puts its exact-path
    ``(request, principal, services)`` routes into the hot table under its first prefix."""

    prefixes: tuple[str, ...]
    routers: Callable[[], Sequence[APIRouter]]
    redirect_slashes: bool = False
    hot_exact: bool = False
    authenticated: bool = True  # False: its routes check their own credentials (signed links)


@dataclass(frozen=True)
class Dialect:
    name: str  # "ubiops": the package name and the docs page docs/dialects/<name>.md
    title: str  # "UbiOps"
    apis: tuple[Api, ...]
    authenticate: Callable[[Request], Principal | Awaitable[Principal]]  # sync when it reads the database
    render: Callable[[Request, HarborError], Response]
    internal: failures.Render
    root_routes: Callable[[], list[BaseRoute]] = list
    hot: Callable[[], list[PlainRoute]] = list
    security: dict[str, Any] = field(default_factory=dict)  # OpenAPI securitySchemes
    error_schema: dict[str, Any] = field(default_factory=dict)  # JSON schema of its error body
    # the error statuses it answers (api/openapi.py derives which apply to each operation)
    statuses: frozenset[int] = frozenset({400, 401, 403, 404, 405, 409, 413, 500})
    # what its routes read by hand, for the document: (METHOD, path without the mount prefix) -> Takes
    inputs: Inputs = field(default_factory=dict)

    @property
    def docs(self) -> str:
        return f"docs/dialects/{self.name}.md"


async def services(request: Request) -> Any:
    """The application's services (the composition root's ``Services``)."""
    return request.app.state.services


ServicesDep = Annotated[Any, Depends(services)]


def principal_dep(dialect_authenticate: Callable[[Request], Any]) -> Any:
    """``Annotated[Principal, Depends(...)]`` for a dialect's routes."""
    return Annotated[Principal, Depends(dialect_authenticate)]


def sub_app(dialect: Dialect, api: Api, services: Any) -> FastAPI:
    """The FastAPI application of one :class:`Api`, every error rendered by the dialect."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=api.redirect_slashes)
    app.state.services = services
    app.state.dialect = dialect
    failures.install(app, dialect.internal)
    render = dialect.render

    @app.exception_handler(HarborError)
    async def _harbor(request: Request, exc: HarborError):
        return render(request, exc)

    @app.exception_handler(MultipartError)
    async def _multipart(request: Request, exc: MultipartError):
        return render(request, EdgeError(400, MALFORMED_MULTIPART, str(exc)))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _exc: ClientDisconnect):
        return render(request, EdgeError(400, CLIENT_GONE, "the client disconnected before the body arrived"))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = [(".".join(str(p) for p in e.get("loc", ())), str(e.get("msg"))) for e in exc.errors()]
        message = "; ".join(f"{loc}: {msg}" for loc, msg in problems) or "invalid request"
        return render(request, EdgeError(400, INVALID_REQUEST, message, problems=problems))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            error = EdgeError(
                404, ROUTE_NOT_FOUND, f"no such {dialect.title} API route in ModelHarbor; see {dialect.docs}"
            )
        elif exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            error = EdgeError(405, METHOD_NOT_ALLOWED, f"method {request.method} is not allowed on this route")
            error.details["allow"] = allow
        else:
            error = EdgeError(exc.status_code, "HTTP_ERROR", str(exc.detail))
        response = render(request, error)
        if exc.status_code == 405 and (exc.headers or {}).get("Allow"):
            response.headers["allow"] = exc.headers["Allow"]
        return response

    for router in api.routers():
        for route in router.routes:  # the document says which operations take no credentials (links, logins)
            if isinstance(route, APIRoute) and (not api.authenticated or not _authenticates(route.dependant, dialect)):
                route.openapi_extra = {**(route.openapi_extra or {}), "security": []}
        app.include_router(router)
    answer_405_with_allow(app)  # every 405 names the methods the path takes
    return app


def _authenticates(dependant: Any, dialect: Dialect) -> bool:
    """Whether a route depends (at any depth) on the dialect's ``authenticate``."""
    return any(d.call is dialect.authenticate or _authenticates(d, dialect) for d in dependant.dependencies)


class PrefixMount(Mount):
    """A mount that owns its prefix as a path too: ``GET /v1/environments`` reaches the sub-application mounted at
    ``/v1/environments`` (as its route ``/``) instead of falling through to a shorter prefix's mount (``/v1``).

    With the app's mounts ordered longest prefix first (app.py), the most specific prefix wins: a dialect can claim
    ``/v1/models`` while another owns the rest of ``/v1`` (tests/api/test_routing.py proves neither shadows the
    other)."""

    def __init__(self, path: str, app: Any):
        super().__init__(path, app=app)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)  # a path may hold %0A like any byte

    def matches(self, scope: Any) -> tuple[Match, Any]:
        if scope["type"] == "http" and get_route_path(scope) == self.path:
            match, child = super().matches({**scope, "path": scope["path"] + "/"})
            if match is Match.FULL:
                child["path"] = scope["path"] + "/"
            return match, child
        return super().matches(scope)


@dataclass
class Mounted:
    """What :func:`mount` gives the application: mounts, root routes and hot-table entries."""

    mounts: list[Mount] = field(default_factory=list)
    routes: list[BaseRoute] = field(default_factory=list)
    hot: list[PlainRoute | ExactRoutes] = field(default_factory=list)
    apps: dict[str, FastAPI] = field(default_factory=dict)  # first prefix -> sub-application (OpenAPI)


def openapi_path(dialect: Dialect) -> str:
    return f"/openapi/{dialect.name}.json"


def document(dialect: Dialect, apps: dict[str, FastAPI] | None = None) -> dict[str, Any]:
    """The dialect's OpenAPI document (api/openapi.py); describing it needs no services."""
    if apps is None:
        apps = {api.prefixes[0]: sub_app(dialect, api, None) for api in dialect.apis}
    return dialect_document(dialect, apps)


def mount(dialect: Dialect, services: Any) -> Mounted:
    out = Mounted(routes=list(dialect.root_routes()), hot=list(dialect.hot()))
    cached: dict[str, Any] = {}

    async def openapi(_request: Request) -> JSONResponse:
        if "doc" not in cached:
            cached["doc"] = document(dialect, out.apps)
        return JSONResponse(cached["doc"])

    out.routes.append(Route(openapi_path(dialect), openapi, methods=["GET"]))
    for api in dialect.apis:
        app = sub_app(dialect, api, services)
        out.apps[api.prefixes[0]] = app
        for prefix in api.prefixes:
            out.mounts.append(PrefixMount(prefix, app))
        if api.hot_exact:
            routes = [r for router in api.routers() for r in router.routes]
            out.hot.append(
                ExactRoutes(api.prefixes[0], routes, dialect.authenticate, dialect.render, dialect.internal, app)
            )
    return out
