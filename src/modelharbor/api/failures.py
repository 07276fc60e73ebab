"""Unexpected exceptions: logged with a request id, answered in the API's own 500 envelope.

Starlette's last resort (``ServerErrorMiddleware``) answers a plain-text "Internal Server Error" and re-raises, and
uvicorn, seeing an exception after a response began, closes the connection. Every application of the server
therefore gets :class:`Unexpected` just inside that last resort (:func:`install`): an exception no handler took
is logged once, with its traceback, under a fresh request id, and answered with ``render(request_id)`` — the
dialect's own 500 body, naming the id — plus an ``x-request-id`` header; the connection stays open. Paths that
answer without Starlette (``api/hot.py``'s exact routes, the prediction hot path) call :func:`logged` themselves.

An exception after the response has started cannot be answered any more: it goes on to the server, which logs
it and closes the connection, as the half-sent response requires. A client's disconnect (``ClientDisconnect``)
goes on untouched, to ``app.HarborApp`` (api/disconnect.py): there is no one to answer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import Response

log = logging.getLogger("modelharbor.errors")

Render = Callable[[str], Response]


def request_id(scope: dict[str, Any]) -> str:
    """The request's id (made on first use, kept in the request's state, which ``request.state`` reads)."""
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        rid = state["request_id"] = uuid.uuid4().hex
    return rid


def message(rid: str) -> str:
    return f"Unexpected server error; the server log has the details under request id {rid}."


def logged(what: str, exc: BaseException, rid: str | None = None) -> str:
    """Log ``exc`` with its traceback under a request id (``rid``, or a new one); returns the id."""
    rid = rid or uuid.uuid4().hex
    log.error("request %s failed: unexpected %s (request id %s)", what, type(exc).__name__, rid, exc_info=exc)
    return rid


def answer(scope: dict[str, Any], exc: Exception, render: Render) -> Response:
    """``render``'s 500 for ``exc``, logged under the request's id, which the ``x-request-id`` header repeats."""
    rid = logged(f"{scope['method']} {scope['path']}", exc, request_id(scope))
    response = render(rid)
    response.headers["x-request-id"] = rid
    return response


class Unexpected:
    """ASGI middleware: an exception from ``app`` before its response began → logged, ``render(request_id)``."""

    def __init__(self, app: Any, render: Render):
        self.app = app
        self.render = render

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watch(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            raise
        except Exception as exc:
            if started:
                raise
            await answer(scope, exc, self.render)(scope, receive, send)


def install(app: Any, render: Render) -> None:
    """Answer ``app``'s unexpected exceptions with ``render(request_id)`` (call before it serves)."""
    app.add_middleware(Unexpected, render=render)
