"""Kore.ai dialect: file upload (single and chunked sessions), model import, dock status, signed media URLs, so the
vendor's curl samples and scripts work against ModelHarbor. See docs/dialects/kore.md for coverage and gaps.

Two APIs: ``/api/public`` (credentials: an ``x-api-key: <ModelHarbor API key>`` header) and
``/api/getMediaStream`` (signed media links: the signature is the credential, its routes take no principal).
Errors: ``{"errors": [{"msg", "code"}], ...}`` (mapping.py ``render``).
"""

from __future__ import annotations

from fastapi import Request

from modelharbor.api.common import services_of
from modelharbor.api.dialect import Api, Dialect, principal_dep
from modelharbor.api.dialects.kore import schemas
from modelharbor.api.dialects.kore.mapping import internal_error, render
from modelharbor.domain.errors import Unauthenticated
from modelharbor.domain.principal import Principal


def authenticate(request: Request) -> Principal:
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        raise Unauthenticated("send your API key in the 'x-api-key' header")
    return services_of(request).identity.authenticate_key(key)


PrincipalDep = principal_dep(authenticate)


def _public_routers():
    from modelharbor.api.dialects.kore.routes import public

    return [public]


def _media_routers():
    from modelharbor.api.dialects.kore.routes import media

    return [media]


DIALECT = Dialect(
    name="kore",
    title="Kore.ai",
    apis=(
        Api(("/api/public",), _public_routers, redirect_slashes=True),
        Api(("/api/getMediaStream",), _media_routers, redirect_slashes=True, authenticated=False),
    ),
    authenticate=authenticate,
    render=render,
    internal=internal_error,
    security=schemas.SECURITY,
    error_schema=schemas.ErrorBody.model_json_schema(),
    statuses=frozenset({400, 401, 403, 404, 405, 409, 410, 413, 415, 500}),
    inputs=schemas.INPUTS,
)

__all__ = ["DIALECT", "PrincipalDep"]
