"""The prediction hot path, as plain ASGI in front of the application.

``POST /v2[.1]/projects/{p}/deployments/{d}[/versions/{v}]/requests`` is answered here, before FastAPI's
telemetry, middleware, routing and dependency layers (which cost more than the prediction itself; app.HarborApp
calls this first). It does exactly what the routes in deployments.py do — same credentials, the same core call,
the same answers and errors — and those routes stay (OpenAPI, docs); every other request passes straight through.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote

from modelharbor.api import failures
from modelharbor.api.dialects.ubiops.common import principal_of
from modelharbor.api.dialects.ubiops.deployments import parse_input
from modelharbor.api.dialects.ubiops.mapping import request_json
from modelharbor.api.jsonbody import MAX_INPUT_BODY
from modelharbor.domain.errors import HarborError, InvalidInput, TooLarge

_PATH = re.compile(
    r"^/v2(?:\.1)?/projects/(?P<project>[^/]+)/deployments/(?P<deployment>[^/]+)(?:/versions/(?P<version>[^/]+))?"
    r"/requests$"
)
_JSON = json.JSONEncoder(separators=(",", ":")).encode


class FastPath:
    """Answers prediction requests: as ASGI (``__call__``) or, from ``api.http``'s protocol, as plain bytes."""

    def __init__(self, app, services):
        self.app = app
        self.services = services

    match = staticmethod(_PATH.match)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        match = _PATH.match(scope["path"])
        if match is None:
            return await self.app(scope, receive, send)
        status, payload = await self.respond(match, scope.get("query_string"), dict(scope["headers"]), receive)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Token"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def respond(self, match, query: bytes | None, headers: dict[bytes, bytes], body) -> tuple[int, bytes]:
        """(status, JSON payload) for one request; ``body`` is the request body (bytes) or an ASGI ``receive``
        to read it from (after the credentials were checked)."""
        try:
            status, answer = 200, await self._answer(match, query, headers, body)
        except HarborError as exc:
            status, answer = exc.status, {"error": exc.message}
        except Exception as exc:  # what api/failures.py does for the applications, since this runs ahead of them
            status, answer = 500, {"error": failures.message(failures.logged(f"POST {match.group(0)}", exc))}
        return status, _JSON(answer).encode()

    async def _answer(self, match, query, headers, body) -> dict[str, Any]:
        principal = await principal_of(self.services, headers.get(b"authorization", b"").decode("latin-1"))
        if not isinstance(body, bytes):
            length = headers.get(b"content-length", b"").strip()
            if length.isdigit() and int(length) > MAX_INPUT_BODY:
                raise TooLarge(f"the request body is larger than {MAX_INPUT_BODY} bytes")
            body = await _body(body)
        data = parse_input(body, headers.get(b"content-type", b"").decode("latin-1"))
        timeout = None
        if query:
            values = parse_qs(query.decode("latin-1")).get("timeout")
            if values and values[0]:
                try:
                    timeout = int(values[0])
                except ValueError:
                    raise InvalidInput(f"'timeout' must be a whole number of seconds, not {values[0]!r}") from None
        version = match["version"]
        result = await self.services.serving.request(
            principal,
            unquote(match["project"]),
            unquote(match["deployment"]),
            data,
            version=unquote(version) if version else None,
            timeout=timeout,
        )
        return request_json(result)


async def _body(receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("the client disconnected before the body arrived")
        piece = message.get("body", b"")
        size += len(piece)
        if size > MAX_INPUT_BODY:
            raise TooLarge(f"the request body is larger than {MAX_INPUT_BODY} bytes")
        chunks.append(piece)
        if not message.get("more_body"):
            return b"".join(chunks)
