"""Request parsing every dialect shares: JSON bodies, boolean flags, integers, typed fields.

Each helper raises :class:`InvalidInput` (or the body reader's TooLarge / JSON errors) naming the field and what
it must be; the dialect renders the error in its own envelope (``Dialect.render``), so one parser serves every
error shape. Vendor spellings are parameters (UbiOps writes ``True``/``False``, Domino ``true``/``false``), and so
are a dialect's own messages where its wire has them (a :class:`Wording`: Kore.ai's ``field 'totalChunks' must be
≥ 1``, its ``INVALID_CHUNK_NUMBER`` code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from modelharbor.api.jsonbody import MAX_JSON_BODY, MISSING, read_json
from modelharbor.domain.errors import HarborError, InvalidInput


async def json_value(
    request: Request,
    *,
    limit: int = MAX_JSON_BODY,
    required: bool = True,
    empty: Any = None,
    missing: str = "a JSON body is required",
    code: str | None = None,
    nan: bool = False,
) -> Any:
    """The body's JSON value (api/jsonbody.py: size-limited, checked); an empty body is refused with ``missing``
    when ``required``, else ``empty``."""
    body = await read_json(request, limit=limit, code=code, nan=nan)
    if body is MISSING:
        if required:
            raise InvalidInput(missing, **({"code": code} if code else {}))
        return empty
    return body


async def json_object(
    request: Request,
    *,
    limit: int = MAX_JSON_BODY,
    required: bool = True,
    missing: str = "a JSON body is required",
    code: str | None = None,
    nan: bool = False,
) -> dict[str, Any]:
    """The body's JSON object; anything but an object is a 400 (``{}`` for an empty body when not required)."""
    body = await json_value(request, limit=limit, required=required, empty={}, missing=missing, code=code, nan=nan)
    if not isinstance(body, dict):
        if code:
            raise HarborError("the request body must be a JSON object", code=code)
        raise InvalidInput("the request body must be a JSON object")
    return body


@dataclass(frozen=True)
class Wording:
    """How a dialect words a bad value: templates over ``name``, ``value`` (as sent), ``what``, ``spelled``,
    ``low`` and ``high``; ``code`` is the error's code (None: InvalidInput's)."""

    missing: str = "'{name}' is required"
    invalid: str = "'{name}' must be {what}, not {value!r}"
    out_of_range: str = "'{name}' must be between {low} and {high}"
    code: str | None = None

    def error(self, template: str, **fields: Any) -> InvalidInput:
        message = template.format(**fields)
        return InvalidInput(message, code=self.code) if self.code else InvalidInput(message)


WORDING = Wording()
FLAG_WORDING = Wording(invalid="'{name}' must be {spelled}, not {value!r}")
DIGITS = re.compile(r"-?[0-9]{1,19}")


def flag(
    value: Any,
    name: str,
    default: bool | None = None,
    *,
    spelled: str = "true or false",
    loose: bool = True,
    blank_is_default: bool = True,
    wording: Wording = FLAG_WORDING,
) -> bool | None:
    """A boolean query, form or JSON value: a JSON boolean, or ``true``/``false`` in any case (and ``1``/``0`` when
    ``loose``). None and ``""`` give ``default`` when ``blank_is_default``, else they are refused like any other
    value."""
    if isinstance(value, bool):
        return value
    if blank_is_default and (value is None or value == ""):
        return default
    low = value.strip().lower() if isinstance(value, str) else None
    if low == "true" or loose and low == "1":
        return True
    if low == "false" or loose and low == "0":
        return False
    raise wording.error(wording.invalid, name=name, value=value, spelled=spelled)


def int_param(
    value: Any,
    name: str,
    default: int | None = None,
    *,
    low: int | None = 0,
    high: int | None = 1000,
    what: str = "an integer",
    required: bool = False,
    blank_is_missing: bool = True,
    digits: bool = False,
    wording: Wording = WORDING,
) -> int | None:
    """An integer query, form or JSON value within ``[low, high]`` (``None``: unbounded; the core may bound it);
    ``what`` names the kind in the message (UbiOps: "a whole number"). A string is read as Python's ``int`` reads it,
    or, with ``digits``, only as an optional ``-`` and up to 19 digits (spaces around them allowed). Absent (None, or
    ``""`` when ``blank_is_missing``): ``default``, or refused when ``required``; a JSON boolean is no number (a
    required one is worded as missing)."""
    fields = {"name": name, "value": value, "what": what, "low": low, "high": high}
    if value is None or (blank_is_missing and value == ""):
        if required:
            raise wording.error(wording.missing, **fields)
        return default
    if isinstance(value, bool):
        raise wording.error(wording.missing if required else wording.invalid, **fields)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and (not digits or DIGITS.fullmatch(value.strip())):
        try:
            number = int(value)
        except ValueError:
            raise wording.error(wording.invalid, **fields) from None
    else:
        raise wording.error(wording.invalid, **fields)
    if (low is not None and number < low) or (high is not None and number > high):
        raise wording.error(wording.out_of_range, **fields)
    return number


def iso_time(value: str | None, name: str) -> datetime | None:
    """An ISO-8601 date-time (UTC when it names no zone; ``Z`` accepted); None when absent, anything else (an empty
    value too: the documents say ``date-time``) a 400 naming the parameter."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"'{name}' must be an ISO-8601 date-time, not {value[:40]!r}", field=name) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
    """``body[name]`` checked against ``kind``; a missing required field or a wrong type is a 400 naming it."""
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"'{name}' is required")
        return None
    if isinstance(value, bool) and kind in (int, (int,)) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InvalidInput(f"'{name}' must be of type {names.replace('str', 'string').replace('dict', 'object')}")
    return value
