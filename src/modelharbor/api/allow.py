"""405 answers that say which methods the path does take (``Allow``, RFC 9110 §15.5.6), for every API of the app.

Starlette answers 405 from the first route whose path matches, naming only that route's methods; a path served by
several routes (``GET /files`` and ``POST /files``) needs them all. :func:`allowed_methods` asks every route of an
application, through the routes' public ``matches``, which methods it would take at the request's path — so
included routers, and routes added later, are covered without a list. :func:`answer_405_with_allow` makes an
application's own 405 answer (whatever envelope its API uses) carry that header. Only 405 answers pay for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount

# The methods a route can be asked about, in the order ``Allow`` lists them.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Iterable[BaseRoute], scope: dict[str, Any]) -> list[str]:
    """The methods some route of ``routes`` answers at the path of ``scope`` (mounts are other applications)."""
    routes = [r for r in routes if not isinstance(r, Mount)]
    allowed = []
    for method in METHODS:
        probe = {  # a fresh scope: matching may note things in it
            "type": "http",
            "method": method,
            "path": scope["path"],
            "root_path": scope.get("root_path", ""),
            "headers": [],
            "query_string": b"",
        }
        if any(route.matches(probe)[0] == Match.FULL for route in routes):
            allowed.append(method)
    return allowed


def answer_405_with_allow(app: Any) -> None:
    """Make the 405 answers of ``app`` (a FastAPI or Starlette application, or an object forwarding to one) carry
    ``Allow`` with every method the path takes, keeping the body its own handler renders. Call it before the
    application serves its first request (its middleware is built then)."""
    handlers: dict[Any, Any] = app.exception_handlers
    own = handlers.get(405) or next((handlers[cls] for cls in HTTPException.__mro__ if cls in handlers), None)

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        if own is None:
            response: Response = Response(status_code=405)
        else:
            response = own(request, exc)
            if inspect.isawaitable(response):
                response = await response
        allowed = allowed_methods(app.router.routes, request.scope)
        if allowed:
            response.headers["allow"] = ", ".join(allowed)
        return response

    handlers[405] = method_not_allowed
