"""UFDL's JWT exchange (``/v1/auth``, no credentials needed): obtain a pair, refresh the access token, verify one.

Bodies are DRF CharFields (each required, not null, not blank; numbers taken as their text); a refused login or
token answers simplejwt's 401 bodies.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ufdl import mapping as m
from modelharbor.api.dialects.ufdl.routes import Router, json_body
from modelharbor.core.catalogue import FieldErrors
from modelharbor.domain.errors import Unauthenticated

router = Router(prefix="/auth")
TOKEN_INVALID = {"detail": m.TOKEN_INVALID, "code": "token_not_valid"}


def required_strings(body: Any, names: tuple[str, ...]) -> dict[str, str]:
    """DRF CharFields: each required, not null, not blank; numbers are taken as their text."""
    if not isinstance(body, dict):
        kind = {list: "list", str: "str", int: "int", float: "float", bool: "bool"}.get(type(body), type(body).__name__)
        raise FieldErrors({"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]})
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for name in names:
        v = body.get(name)
        if name not in body:
            errors[name] = ["This field is required."]
        elif v is None:
            errors[name] = ["This field may not be null."]
        elif isinstance(v, bool) or not isinstance(v, (str, int, float)):
            errors[name] = ["Not a valid string."]
        elif not str(v).strip():
            errors[name] = ["This field may not be blank."]
        else:
            values[name] = str(v)
    if errors:
        raise FieldErrors(errors)
    return values


@router.post("/obtain")
async def obtain(request: Request, services: ServicesDep):
    fields = required_strings(await json_body(request, {}), ("username", "password"))
    try:
        refresh, access = await run_in_threadpool(
            services.tokens.obtain, fields["username"].strip(), fields["password"]
        )
    except Unauthenticated:
        return m.unauthorized({"detail": m.NO_ACCOUNT})
    return {"refresh": refresh, "access": access}


@router.post("/refresh")
async def refresh(request: Request, services: ServicesDep):
    token = required_strings(await json_body(request, {}), ("refresh",))["refresh"]
    try:
        access = await run_in_threadpool(services.tokens.refresh, token)
    except Unauthenticated:
        return m.unauthorized(TOKEN_INVALID)
    return {"access": access}


@router.post("/verify")
async def verify(request: Request, services: ServicesDep):
    token = required_strings(await json_body(request, {}), ("token",))["token"]
    try:
        await run_in_threadpool(services.tokens.verify, token)
    except Unauthenticated:
        return m.unauthorized(TOKEN_INVALID)
    return {}
