"""The one hot-route table: requests answered ahead of FastAPI's layers.

FastAPI answers a request after two middleware stacks (the root's and a mounted sub-app's), a scan of every route's
pattern and a dependency solve; on the calls that are all a benchmark does (a prediction, a registry create) that
machinery costs more CPU than the work. The dialects declare those routes (``Dialect.hot``); the application puts
them in one :class:`HotTable`, which the application's front (``app.HarborApp``) and the HTTP protocol
(``api/http.py``) consult. Each entry is one of two kinds:

- **plain** (:class:`PlainRoute`): an endpoint that takes the request as bytes — path match, query, headers,
  body — and answers ``(status, JSON payload, extra headers)``. The HTTP protocol calls it with a whole request
  cut out of the connection's bytes; the ASGI front calls it with the body read from ``receive``; the dialect's
  FastAPI route for the same path calls the same function (:func:`answer_asgi`), so the three agree by
  construction.
- **exact** (:class:`ExactRoute`): a FastAPI route without path parameters whose endpoint takes exactly
  ``(request, principal, services)``, answered by one dict lookup with the dialect's own principal dependency and
  error rendering (and its 500 shape for unexpected exceptions, as api/failures.py does).

Everything else passes to the application untouched. No entry names a vendor here: the dialects declare them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from modelharbor.api import failures
from modelharbor.domain.errors import HarborError, InvalidInput, TooLarge

Headers = dict[bytes, bytes]
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]
# (services, path match, query string, headers, body bytes or an ASGI receive) -> (status, payload, extra headers)
PlainEndpoint = Callable[[Any, re.Match, bytes, Headers, Any], Awaitable[Answer]]

_SHAPE = ["request", "principal", "services"]


@dataclass(frozen=True)
class PlainRoute:
    """``method`` + a full-path regex answered by ``endpoint`` on bytes (see the module docstring)."""

    method: str
    pattern: re.Pattern[str]
    endpoint: PlainEndpoint
    head: bytes  # the first bytes of such a request on the wire (e.g. b"POST /v2"): the protocol's cheap filter


@dataclass(frozen=True)
class ExactRoutes:
    """The exact-path routes of a mounted sub-application (``prefix``) answered with the dialect's conventions."""

    prefix: str
    routes: Iterable[Any]
    principal: Callable[[Request], Any]  # the dialect's authenticate (sync or async)
    render: Callable[[Request, HarborError], Response]
    fail: failures.Render
    app: Any = None  # the sub-application they belong to: ``request.app`` (its state), as under the mount


@dataclass
class HotTable:
    """The application's hot routes; ``fallback`` (the FastAPI application) answers everything else."""

    fallback: Callable
    services: Any
    plain: list[PlainRoute] = field(default_factory=list)
    exact: dict[tuple[str, str], tuple[Callable, ExactRoutes]] = field(default_factory=dict)

    def add(self, entry: PlainRoute | ExactRoutes) -> None:
        if isinstance(entry, PlainRoute):
            self.plain.append(entry)
            return
        for route in entry.routes:
            if not isinstance(route, APIRoute) or route.param_convertors:
                continue
            if list(inspect.signature(route.endpoint).parameters) != _SHAPE:
                continue
            if not inspect.iscoroutinefunction(route.endpoint):
                continue
            for method in route.methods:
                self.exact.setdefault((method, entry.prefix + route.path), (route.endpoint, entry))

    @property
    def heads(self) -> tuple[bytes, ...]:
        """The first bytes of a request the protocol may answer itself (a cheap filter before ``match``)."""
        return tuple({route.head for route in self.plain})

    def match(self, method: str, path: str) -> tuple[PlainRoute, re.Match] | None:
        for route in self.plain:
            if route.method == method:
                found = route.pattern.match(path)
                if found is not None:
                    return route, found
        return None

    async def respond(
        self, hit: tuple[PlainRoute, re.Match], query: bytes, headers: Headers, body: Any
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        route, found = hit
        return await route.endpoint(self.services, found, query, headers, body)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            hit = self.match(scope["method"], scope["path"])
            if hit is not None:
                status, payload, extra = await self.respond(
                    hit, scope.get("query_string") or b"", dict(scope["headers"]), receive
                )
                await send_json(send, status, payload, extra)
                return
            exact = self.exact.get((scope["method"], scope["path"]))
            if exact is not None:
                await _exact(scope, receive, send, exact, self.services)
                return
        await self.fallback(scope, receive, send)


async def send_json(send, status: int, payload: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def answer_asgi(endpoint: PlainEndpoint, request: Request, pattern: re.Pattern[str]) -> Response:
    """A FastAPI route's answer from a plain endpoint: the same function the hot table calls."""
    scope = request.scope
    found = pattern.match(scope["path"])  # the whole path, as Starlette keeps it under a mount
    if found is None:  # the route and the pattern disagree: a programming error, not the client's
        raise RuntimeError(f"{scope['path']!r} does not match the hot pattern {pattern.pattern!r}")
    status, payload, extra = await endpoint(
        request.app.state.services, found, scope.get("query_string") or b"", dict(scope["headers"]), request.receive
    )
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in extra}
    return Response(payload, status_code=status, media_type="application/json", headers=headers)


async def read_receive(receive, limit: int) -> bytes:
    """A body from an ASGI ``receive``, refused (413) past ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("the client disconnected before the body arrived")
        piece = message.get("body", b"")
        size += len(piece)
        if size > limit:
            raise TooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(piece)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _exact(scope, receive, send, hit: tuple[Callable, ExactRoutes], services: Any) -> None:
    endpoint, spec = hit
    scope = dict(scope, root_path=scope.get("root_path", "") + spec.prefix)  # as the mount would (path stays whole)
    if spec.app is not None:
        scope["app"] = spec.app
    request = Request(scope, receive)
    try:
        principal = spec.principal(request)
        if inspect.isawaitable(principal):
            principal = await principal
        response = await endpoint(request, principal, services)
    except HarborError as exc:
        response = spec.render(request, exc)
    except Exception as exc:  # answered in the dialect's 500 shape, logged under the request's id
        if isinstance(exc, failures.ClientDisconnect):
            raise
        response = failures.answer(scope, exc, spec.fail)
    await response(scope, receive, send)
