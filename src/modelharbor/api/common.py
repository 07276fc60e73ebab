"""Helpers every edge shares: reading credentials, streaming bodies and serving file bytes with ranges."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from modelharbor.api.multipart import Part, find_boundary, iter_parts
from modelharbor.core.files import ByteRange
from modelharbor.domain.entities import FileRecord
from modelharbor.domain.principal import Principal
from modelharbor.services import Services

_ANY: TypeAdapter[Any] = TypeAdapter(Any)


def json_answer(content: Any, status_code: int = 200) -> Response:
    """A JSON answer written by pydantic's serializer in one step. A route that returns a dict or list has FastAPI
    walk it with ``jsonable_encoder`` first (about 100 µs per object of a 1,000-entry listing, ten times the
    serialisation itself): listings return this instead (bench/projects.py)."""
    return Response(_ANY.dump_json(content), status_code=status_code, media_type="application/json")


def services_of(request: Request) -> Services:
    return request.app.state.services


def token_of(authorization: str) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` (or ``Token <key>``) header value, else None."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return None


def bearer_token(request: Request) -> str | None:
    return token_of(request.headers.get("authorization", ""))


async def principal_of_key(services: Services, token: str) -> Principal:
    """The API key's principal: answered on the event loop when the key was verified a moment ago (the identity
    service's 5-second cache), else verified in a worker thread (a database read)."""
    principal = services.identity.cached_key(token)
    if principal is not None:
        return principal
    return await run_in_threadpool(services.identity.authenticate_key, token)


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    async for piece in request.stream():
        if piece:
            yield piece


async def request_parts(request: Request) -> AsyncIterator[Part] | None:
    """The body's multipart parts, streamed, whatever Content-Type claims (the boundary may also be found in the
    body's first bytes); None when the body is not multipart."""
    body = body_stream(request)
    first = b""
    async for piece in body:
        first = piece
        break
    boundary = find_boundary(request.headers.get("content-type"), first)
    if boundary is None:
        return None

    async def replay():
        if first:
            yield first
        async for piece in body:
            yield piece

    return iter_parts(replay(), boundary)


def public_base(request: Request) -> str:
    configured = services_of(request).settings.public_url
    if configured:
        return configured.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("\\", "_")
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def file_response(
    record: FileRecord,
    rng: ByteRange | None,
    stream: AsyncIterator[bytes],
    *,
    head: bool = False,
    download_name: str | None = None,
) -> Response:
    """200 or 206 with Content-Length, Accept-Ranges, ETag and Content-Disposition; no body for HEAD."""
    headers = {
        "accept-ranges": "bytes",
        "etag": f'"{record.sha256}"',
        "content-disposition": content_disposition(download_name or record.name),
        "x-content-sha256": record.sha256,
        "cache-control": "private, no-store",
    }
    if rng is not None:
        headers["content-range"] = f"bytes {rng.start}-{rng.end - 1}/{record.size}"
        headers["content-length"] = str(rng.length)
        status = 206
    else:
        headers["content-length"] = str(record.size)
        status = 200
    if head:
        return Response(status_code=status, headers=headers, media_type=record.content_type)
    return StreamingResponse(stream, status_code=status, headers=headers, media_type=record.content_type)


def range_not_satisfiable(size: int, body: bytes, media_type: str = "application/json") -> Response:
    return Response(body, status_code=416, headers={"content-range": f"bytes */{size}"}, media_type=media_type)
