"""Domino Data Lab dialect: ``GET /version``, the registered-model API (``/api/registeredmodels/v1``, ``/v2``) and
versioned project files (legacy ``/v1/projects/{owner}/{project}/…``, ``/api/projects/…/content``), so scripts and the ``dominodatalab`` client work against ModelHarbor. Served at the root, as the client strips any
path from its host. See docs/dialects/domino.md for coverage.

Credentials: ``X-Domino-Api-Key: <key>`` (the client's ``api_key``) or ``Authorization: Bearer <key>`` (its
``auth_token`` / token file); either takes a ModelHarbor API key. Errors: ``FailureEnvelopeV1`` (mapping.py).
"""

from __future__ import annotations

from fastapi import Request
from starlette.routing import Route

from modelharbor.api.common import bearer_token, services_of
from modelharbor.api.dialect import Api, Dialect, principal_dep
from modelharbor.api.dialects.domino import schemas
from modelharbor.api.dialects.domino.mapping import internal_error, render
from modelharbor.domain.errors import Unauthenticated
from modelharbor.domain.principal import Principal


def authenticate(request: Request) -> Principal:
    services = services_of(request)
    key = request.headers.get("x-domino-api-key", "").strip() or bearer_token(request)
    if not key:
        raise Unauthenticated(
            "credentials required: send X-Domino-Api-Key or Authorization: Bearer with a ModelHarbor API key"
        )
    return services.identity.authenticate_key(key)


PrincipalDep = principal_dep(authenticate)


def _routers():
    from modelharbor.api.dialects.domino.routes import registered_models

    return [registered_models.router]


def _legacy_project_routers():
    from modelharbor.api.dialects.domino.routes import files

    return [files.legacy]


def _public_project_routers():
    from modelharbor.api.dialects.domino.routes import files

    return [files.public]


def _root_routes():
    from modelharbor.api.dialects.domino.routes.version import version

    return [Route("/version", version, methods=["GET"])]


DIALECT = Dialect(
    name="domino",
    title="Domino",
    apis=(
        Api(("/api/registeredmodels",), _routers),
        # versioned project files (routes/files.py); UFDL has no /v1/projects, and the longer prefix wins
        Api(("/v1/projects",), _legacy_project_routers),
        Api(("/api/projects",), _public_project_routers),
    ),
    authenticate=authenticate,
    render=render,
    internal=internal_error,
    root_routes=_root_routes,
    security=schemas.SECURITY,
    error_schema=schemas.FailureEnvelopeV1.model_json_schema(),
    statuses=frozenset({400, 401, 403, 404, 405, 413, 500}),  # never 409: the client reads it as expired credentials
)

__all__ = ["DIALECT", "PrincipalDep"]
