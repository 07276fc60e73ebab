"""UFDL's routes, one module per noun, and what they share: the router that serves every path with and without a
trailing slash, and the reader of JSON bodies.

A body is JSON whatever ``Content-Type`` says, at most Django's 2.5 MiB, empty meaning none; its problems render
as DRF's ``JSON parse error - …`` (mapping.py). A change whose object must be found before its body is judged
hands the core the body through :func:`read_later` (core/catalogue.py, the ``…_from`` methods).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from modelharbor.api.params import json_value
from modelharbor.domain.errors import InvalidInput, TooLarge

JSON_LIMIT = 2_621_440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE: a JSON body larger than this is refused


class Router(APIRouter):
    """UFDL's ``/?$``: each route is added at its path and at the path with a trailing slash (only the first in the
    OpenAPI document); nothing redirects."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **kwargs)
        super().add_api_route(path + "/", endpoint, **{**kwargs, "include_in_schema": False})


async def json_body(request: Request, default: Any = None) -> Any:
    """The body's JSON value, ``default`` when the body is empty."""
    return await json_value(request, limit=JSON_LIMIT, required=False, empty=default)


async def read_later(request: Request, default: Any = None) -> Callable[[], Any]:
    """The body for a core ``…_from`` method: read now, but a body that is not JSON or too large raises only when
    the core calls for it, after its permission and lookup checks (DRF answers 403 and 404 first)."""
    try:
        body = await json_body(request, default)
    except (InvalidInput, TooLarge) as exc:
        problem = exc

        def fail() -> Any:
            raise problem

        return fail
    return lambda: body
