"""UbiOps' routes, one module per noun, and what they share: the path prefixes, the multipart form of uploads, the
input of a request (JSON or plain text), ``timeout``, ``True``/``False`` flags, ``limit``/``offset``, label
filters and zip downloads.

Every route is an ``APIRouter`` route: it parses, makes one core call, and maps the answer (mapping.py). A route
that exists for a deployment (or pipeline) and for one of its versions is one function under both paths; it reads
the version from the path (``version_of``), never from the query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response

from modelharbor.api.common import file_response, request_parts
from modelharbor.api.dialects.ubiops.schemas import EV, EX, IM, PL, PV, D, E, P, R, T, V
from modelharbor.api.jsonbody import MAX_INPUT_BODY, blank, loads, read_body
from modelharbor.api.multipart import MultipartError, Part
from modelharbor.api.params import flag, int_param, json_value
from modelharbor.domain.errors import InvalidInput

__all__ = ["D", "E", "EV", "EX", "IM", "P", "PL", "PV", "R", "T", "V"]  # the path templates (schemas.py)


def version_of(request: Request) -> str | None:
    """The ``{version}`` of a route that also exists without one (None there)."""
    return request.path_params.get("version")


def true_false(value: str | None, name: str, default: bool | None = None) -> bool | None:
    """A query or form boolean as the client writes it: ``True``/``False`` (also true/false/1/0)."""
    return flag(value, name, default, spelled="True or False")


def whole(value: str | None, name: str, what: str = "a whole number") -> int | None:
    """An optional integer query value (its range is the core's to check)."""
    return int_param(value, name, None, low=None, high=None, what=what)


def labels_filter(value: str | None) -> dict[str, str]:
    """``labels=k:v,k2:v2``."""
    out: dict[str, str] = {}
    for pair in (value or "").split(","):
        if pair.strip():
            key, _, val = pair.partition(":")
            out[key.strip()] = val.strip()
    return out


def timeout(request: Request) -> int | None:
    return whole(request.query_params.get("timeout"), "timeout", "a whole number of seconds")


async def json_body(request: Request, *, required: bool = True, nan: bool = False) -> Any:
    """The body's JSON (within MAX_INPUT_BODY; ``nan`` for requests' inputs, which may hold NaN and Infinity); an
    empty body is refused, or ``{}``."""
    return await json_value(request, limit=MAX_INPUT_BODY, required=required, empty={}, nan=nan)


async def json_object(request: Request, *, required: bool = True, what: str = "") -> dict[str, Any]:
    """The body's JSON object (``what`` adds what it is to the message when it is something else)."""
    body = await json_body(request, required=required)
    if not isinstance(body, dict):
        raise InvalidInput(f"the request body must be a JSON object{what}")
    return body


def parse_input(raw: bytes, content_type: str) -> Any:
    """A request's input: structured input arrives as JSON (checked: api/jsonbody.py; NaN and Infinity pass, as
    Python clients write them); plain input as the raw text (the client sends text/plain)."""
    if "json" in content_type:
        return None if blank(raw) else loads(raw, nan=True)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise InvalidInput("plain input must be UTF-8 text") from None


async def request_input(request: Request) -> Any:
    raw = await read_body(request, limit=MAX_INPUT_BODY)
    return parse_input(raw, request.headers.get("content-type", ""))


async def read_form(
    request: Request,
    on_file: Callable[[Part], Awaitable[Any]],
    *,
    missing: str,
    discard: Callable[[Any], Awaitable[None]] | None = None,
    check: Callable[[Any, dict[str, str]], None] | None = None,
    field_limit: int = 4096,
    file_needs_filename: bool = True,
) -> tuple[Any, dict[str, str]]:
    """A multipart form: ``on_file(part)`` takes the one ``file`` part (a core upload; its result is returned), the
    other parts are text fields; ``check(taken, fields)`` then refuses a form of the wrong shape. Not multipart →
    InvalidInput(``missing``). On any failure after the file was taken, ``discard(result)`` drops it again."""
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
        if check is not None:
            check(taken, fields)
    except BaseException:
        if taken is not None and discard is not None:
            await discard(taken)
        raise
    return taken, fields


def zip_download(opened: tuple, name: str) -> Response:
    """A package or zip (``opened``: what the core's ``open_…`` gives) as a download named ``name``."""
    record, rng, stream = opened
    response = file_response(record, rng, stream, download_name=name)
    response.headers["content-type"] = "application/zip"
    return response


def safe_zip_name(stem: str) -> str:
    """``stem``.zip with anything but letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) + ".zip"
