"""Request parsing every dialect shares: JSON bodies, boolean flags, integers, typed fields.

Each helper raises :class:`InvalidInput` (or the body reader's TooLarge / JSON errors) naming the field and what
it must be; the dialect renders the error in its own envelope (``Dialect.render``), so one parser serves every
error shape. Vendor spellings are parameters (UbiOps writes ``True``/``False``, Domino ``true``/``false``).
"""

from __future__ import annotations

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


def flag(
    value: str | None, name: str, default: bool | None = None, *, spelled: str = "true or false", loose: bool = True
) -> bool | None:
    """A boolean query or form value: ``true``/``false`` in any case (and ``1``/``0`` when ``loose``)."""
    if value is None or value == "":
        return default
    low = value.strip().lower()
    if low == "true" or loose and low == "1":
        return True
    if low == "false" or loose and low == "0":
        return False
    raise InvalidInput(f"'{name}' must be {spelled}, not {value!r}")


def int_param(
    value: str | None,
    name: str,
    default: int | None,
    *,
    low: int | None = 0,
    high: int | None = 1000,
    what: str = "an integer",
) -> int | None:
    """An integer query value within ``[low, high]`` (``None``: unbounded; the core may bound it); ``what`` names
    the kind in the message (UbiOps: "a whole number")."""
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"'{name}' must be {what}, not {value!r}") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise InvalidInput(f"'{name}' must be between {low} and {high}")
    return number


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
