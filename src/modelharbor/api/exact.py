"""Exact-path dispatch for hot routes, in front of a FastAPI (sub-)application.

FastAPI answers a request after two middleware stacks (the app's and a mounted sub-app's), a scan of every route's
pattern and a dependency solve: on the registry's create calls that machinery cost more server CPU than the
database work (bench/registry.py). Routes without path parameters whose endpoint takes exactly
``(request, principal, services)`` are answered here by one dict lookup on ``(method, path)``: the same endpoint
function, the same principal dependency and the same error rendering (``fail`` for unexpected exceptions, as the
application's api/failures.py middleware does), so behaviour does not change. Every other request — other paths,
other methods, other shapes of endpoint — goes to ``fallback`` untouched.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from modelharbor.api import failures
from modelharbor.domain.errors import HarborError

_SHAPE = ["request", "principal", "services"]


class ExactRoutes:
    def __init__(
        self,
        fallback: Callable,
        routes: Iterable[Any],
        *,
        services: Any,
        principal: Callable[[Request], Awaitable[Any]],
        render: Callable[[HarborError], Response],
        fail: failures.Render | None = None,
    ):
        self.fallback = fallback
        self.services = services
        self.principal = principal
        self.render = render
        self.fail = fail
        self.table: dict[tuple[str, str], Callable[..., Awaitable[Response]]] = {}
        for route in routes:
            if not isinstance(route, APIRoute) or route.param_convertors:
                continue
            if list(inspect.signature(route.endpoint).parameters) != _SHAPE:
                continue
            if not inspect.iscoroutinefunction(route.endpoint):
                continue
            for method in route.methods:
                self.table.setdefault((method, route.path), route.endpoint)

    def __getattr__(self, name: str) -> Any:
        # everything else (routes, state, openapi_url…) is the fronted application's: a Mount lists its routes
        return getattr(self.fallback, name)

    async def __call__(self, scope, receive, send) -> None:
        endpoint = None
        if scope["type"] == "http":
            path, root = scope["path"], scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            endpoint = self.table.get((scope["method"], path))
        if endpoint is None:
            return await self.fallback(scope, receive, send)
        request = Request(scope, receive)
        try:
            response = await endpoint(request, await self.principal(request), self.services)
        except HarborError as exc:
            response = self.render(exc)
        except Exception as exc:  # answered in the dialect's 500 shape, logged under the request's id
            if self.fail is None or isinstance(exc, failures.ClientDisconnect):
                raise
            response = failures.answer(scope, exc, self.fail)
        await response(scope, receive, send)
