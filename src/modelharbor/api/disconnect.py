"""A client that goes away before its request body is complete: one warning line, no traceback.

Starlette's ``Request.stream()`` raises ``ClientDisconnect`` when the server reports the disconnect; the core
cleans up what the request began (an upload's bytes and intent go, ``core/files/service.py``, ``core/files/uploads.py``), and
the exception travels on. No handler of the native API (nor of most dialects) takes it, so it reached uvicorn,
which logged it as an ERROR with a traceback ("Exception in ASGI application").

:class:`BodyWatch` sits where every HTTP request enters the application (``app.HarborApp``): it sees the request's
``receive`` and logs the disconnect once, whichever route or reader was reading the body and whether or not a
dialect answered it (UbiOps and UFDL render it as 400, which the gone client never reads); the application then
swallows the ``ClientDisconnect`` that would otherwise reach uvicorn.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("modelharbor.http")


class BodyWatch:
    """Wraps one request's ``receive``: notes the body bytes that arrived and logs a disconnect before its end."""

    __slots__ = ("_receive", "_scope", "received", "complete", "logged")

    def __init__(self, scope: dict[str, Any], receive):
        self._scope = scope
        self._receive = receive
        self.received = 0
        self.complete = False  # the whole body arrived (a later disconnect is the client leaving after it)
        self.logged = False

    async def receive(self) -> dict[str, Any]:
        message = await self._receive()
        kind = message["type"]
        if kind == "http.request":
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
        elif kind == "http.disconnect" and not self.complete and self._declared() != (None, False):
            self.gone()  # (a request without a body whose client left early, e.g. a download cut off, says nothing)
        return message

    def _declared(self) -> tuple[str | None, bool]:
        """The request's Content-Length and whether its body is chunked."""
        length, chunked = None, False
        for name, value in self._scope.get("headers", ()):
            if name == b"content-length":
                length = value.decode("latin-1")
            elif name == b"transfer-encoding":
                chunked = True
        if length is not None and length.strip() == "0":
            return None, False
        return length, chunked

    def gone(self) -> None:
        """Log the disconnect (once per request)."""
        if self.logged:
            return
        self.logged = True
        declared, chunked = self._declared()
        client = self._scope.get("client")
        who = f"{client[0]}:{client[1]}" if client else "a client"
        method, path = self._scope.get("method"), self._scope.get("path")
        if self.complete or (declared is None and not chunked):  # it left while being answered
            log.warning("%s disconnected before the answer was complete: %s %s", who, method, path)
            return
        of = f" of {declared}" if declared is not None else ""
        log.warning(
            "%s disconnected before the request body was complete: %s %s after %d%s bytes; the request was dropped",
            who,
            method,
            path,
            self.received,
            of,
        )
