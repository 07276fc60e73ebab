"""Reading JSON request bodies: one reader for every route of every dialect and of the native API.

The size limit is checked against ``content-length`` first and again while the bytes stream in (413, nothing
kept); the text is parsed by ``core.jsontext.loads`` (depth, lone surrogates, 64-bit integers, finite numbers:
400 naming the problem). The dialects call :func:`read_json` (or :func:`read_body` and ``loads``) from their own
body helpers and render the errors in their envelopes; hot routes (``api/hot.py``, ``api/http.py``) call ``loads``
on the bytes they were given. FastAPI parses a route's body model itself, and turns any exception of its parsing
into a bare ``{"detail": …}`` 400: routes whose routers use :class:`JsonRoute` read and check the body before
FastAPI does (raising the error to the application's own handlers) and hand FastAPI the result.

What a :class:`JsonRoute` takes as JSON: a body sent with ``Content-Type: application/json`` (or any ``…/json`` or
``…+json`` type), and a body sent without a ``Content-Type`` — FastAPI would leave that one unparsed and answer
"Input should be a valid dictionary", which says nothing of the header. A body sent with another type (``curl -d``
sends ``application/x-www-form-urlencoded``) is a 415 that names the header to send.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from modelharbor.core.jsontext import MAX_DEPTH, JsonRejected, loads
from modelharbor.domain.errors import TooLarge, UnsupportedType

__all__ = [  # loads, JsonRejected and MAX_DEPTH are core.jsontext's, here for the edges
    "MAX_DEPTH",
    "MAX_INPUT_BODY",
    "MAX_JSON_BODY",
    "MISSING",
    "JsonRejected",
    "JsonRequest",
    "JsonRoute",
    "blank",
    "json_media_type",
    "loads",
    "read_body",
    "read_json",
]

MAX_JSON_BODY = 16 * 1024 * 1024  # a JSON body of an API call
MAX_INPUT_BODY = 64 * 1024 * 1024  # a prediction's input (native predict, UbiOps requests) and other UbiOps bodies


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # what read_json answers for an empty body unless told otherwise


async def read_body(request: Request, *, limit: int, what: str = "the request body") -> bytes:
    """The whole body, refused with 413 when ``content-length`` says, or the bytes show, it is over ``limit``."""
    length = request.headers.get("content-length", "").strip()
    if length.isascii() and length.isdigit() and int(length) > limit:
        raise TooLarge(f"{what} is larger than {limit} bytes")
    pieces, size = [], 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise TooLarge(f"{what} is larger than {limit} bytes")
        pieces.append(piece)
    return b"".join(pieces)


def blank(raw: bytes) -> bool:
    return not raw or raw.isspace()


async def read_json(
    request: Request,
    *,
    limit: int = MAX_JSON_BODY,
    empty: Any = MISSING,
    code: str | None = None,
    nan: bool = False,
) -> Any:
    """The body's JSON value (whatever Content-Type says), or ``empty`` when the body is empty or blank."""
    raw = await read_body(request, limit=limit)
    if blank(raw):
        return empty
    return loads(raw, code=code, nan=nan)


class JsonRequest(Request):
    """A request whose body is read within ``MAX_JSON_BODY`` and parsed by the checked reader."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):  # Starlette's own cache, which stream() and FastAPI read
            self._body = await read_body(self, limit=MAX_JSON_BODY)
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class JsonRoute(APIRoute):
    """``APIRouter(route_class=JsonRoute)``: a route with a JSON body model gets its body read and checked here,
    ahead of FastAPI's parsing, so a body over the limit or hostile JSON raises a HarborError the application
    renders in its envelope (FastAPI would answer its own bare 400). FastAPI then finds the parsed value cached."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        field = self.body_field
        if field is None or isinstance(field.field_info, params.Form):
            return handler

        async def checked(request: Request) -> Response:
            declared = request.headers.get("content-type", "").strip()
            scope = request.scope
            if not declared or (json_media_type(declared) and not _fastapi_parses(declared)):
                # no type, or a JSON type FastAPI leaves unparsed (text/json): presented to it as application/json
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
            request = JsonRequest(scope, request.receive)
            raw = await request.body()
            if raw:
                if declared and not json_media_type(declared):
                    raise UnsupportedType(_not_json(declared), content_type=declared)
                await request.json()  # checked here; FastAPI finds it parsed
            return await handler(request)

        return checked


def json_media_type(content_type: str) -> bool:
    """Whether a ``Content-Type`` value names JSON: ``application/json``, ``text/json``, ``…+json`` (parameters
    such as ``charset`` aside)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media.endswith(("/json", "+json"))


def _fastapi_parses(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("application/") and media.endswith(("/json", "+json"))


def _not_json(declared: str) -> str:
    shown = declared if len(declared) <= 80 else declared[:80] + "…"
    message = (
        f"This route takes a JSON body: send it with the header 'Content-Type: application/json' (or with no "
        f"Content-Type); this request's Content-Type is {shown!r}."
    )
    if declared.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        message += " (curl -d sends that type: use curl --json, or add -H 'Content-Type: application/json'.)"
    return message
