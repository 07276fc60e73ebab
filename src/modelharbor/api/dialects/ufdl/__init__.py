"""UFDL dialect: the University of Waikato's UFDL pretrained-model API (plus its JWT auth, frameworks, licences
and domains), so UFDL's Python and TypeScript clients work against ModelHarbor. Mounted at ``/v1``; every path
takes an optional trailing slash, detail routes match integer pks only. See docs/dialects/ufdl.md for coverage and
deliberate differences.

Credentials: ``Authorization: Bearer <access JWT>`` (from ``POST /v1/auth/obtain``) or ``Bearer <ModelHarbor API
key>``. Errors: Django REST Framework's bodies (mapping.py), checked in DRF's order — 401, 403, 404, then the body.
"""

from __future__ import annotations

from fastapi import Request

from modelharbor.api.common import services_of
from modelharbor.api.dialect import Api, Dialect, principal_dep
from modelharbor.api.dialects.ufdl import schemas
from modelharbor.api.dialects.ufdl.mapping import NOT_AUTHENTICATED, NOT_PROVIDED, internal_error, render
from modelharbor.core.tokens import looks_like_jwt
from modelharbor.domain.errors import Unauthenticated
from modelharbor.domain.principal import Principal


def authenticate(request: Request) -> Principal:
    """``Authorization: Bearer <access JWT>`` or ``Bearer <ModelHarbor API key>``; anything else is 401."""
    parts = request.headers.get("authorization", "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise Unauthenticated(NOT_PROVIDED, code=NOT_AUTHENTICATED)
    services, token = services_of(request), parts[1]
    if looks_like_jwt(token):
        return services.tokens.authenticate(token)
    return services.identity.authenticate_key(token)


PrincipalDep = principal_dep(authenticate)


def _routers():
    from modelharbor.api.dialects.ufdl.routes import auth, domains, frameworks, licences, pretrained_models

    return [auth.router, pretrained_models.router, frameworks.router, licences.router, domains.router]


DIALECT = Dialect(
    name="ufdl",
    title="UFDL",
    apis=(Api(("/v1",), _routers),),
    authenticate=authenticate,
    render=render,
    internal=internal_error,
    security=schemas.SECURITY,
    error_schema=schemas.Error.model_json_schema(),
    statuses=frozenset({400, 401, 403, 404, 405, 409, 413, 415, 500}),
    inputs=schemas.INPUTS,
)

__all__ = ["DIALECT", "PrincipalDep"]
