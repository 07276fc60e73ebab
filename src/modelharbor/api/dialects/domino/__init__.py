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


# --- hardware tiers and compute providers (issue 16) ---
def _hardware_tier_routers():
    from modelharbor.api.dialects.domino.routes import hardware_tiers

    return [hardware_tiers.router]


def _admin_routers():
    from modelharbor.api.dialects.domino.routes import hardware_tiers

    return [hardware_tiers.admin_router]


# --- users, organizations, v4, legacy /v1 (issue 16) ---------------------------------------------
def _public_routers():
    """Domino's public API under ``/api``: the mount of every ``/api/...`` path no other API claims (the native
    ``/api/v1``, Kore.ai's, MLflow's and ``/api/registeredmodels`` are longer prefixes, so they win), so unknown
    ``/api/...`` paths answer Domino's error envelope too."""
    from modelharbor.api.dialects.domino.routes import organizations, users

    return [users.router, organizations.router]


def _v4_routers():
    from modelharbor.api.dialects.domino.routes import (
        collaborators,
        copy,
        dataset_uploads,
        environments,
        hardware_tiers,
        v4_projects,
        v4_users,
    )

    return [
        v4_users.router,
        hardware_tiers.v4_router,
        environments.v4_router,
        v4_projects.router,
        collaborators.v4,
        copy.v4,
        dataset_uploads.router,
    ]


# --- environments (issue 16) ---
def _environment_routers():
    from modelharbor.api.dialects.domino.routes import environments

    return [environments.router]


def _legacy_environment_routers():
    from modelharbor.api.dialects.domino.routes import environments

    return [environments.legacy]


def _legacy_routers(noun: str):
    """The legacy ``/v1/<noun>`` routes the client calls, mounted at ``/v1/<noun>`` beside UFDL's ``/v1`` (the
    more specific prefix wins: api/dialect.py ``PrefixMount``)."""

    def routers():
        from modelharbor.api.dialects.domino.routes import legacy

        return [getattr(legacy, noun)]

    return routers


def _legacy_project_routers():
    """``/v1/projects/{owner}/{project}/...``: the client's legacy file routes (UFDL has no /v1/projects; the longer
    prefix wins), and the legacy project routes to come (routes/legacy.py)."""
    from modelharbor.api.dialects.domino.routes import files, legacy

    return [files.legacy, legacy.projects]


def _public_project_routers():
    from modelharbor.api.dialects.domino.routes import (
        collaborators,
        copy,
        datasets,
        files,
        goals,
        projects,
        repositories,
    )

    return [
        files.public,
        projects.router,
        collaborators.public,
        copy.public,
        goals.router,
        repositories.router,
        datasets.shared,
    ]


def _legacy_form_routers():
    """``POST /project``: the client's ``project_create`` (a form), the mount's route ``/``."""
    from modelharbor.api.dialects.domino.routes import v4_projects

    return [v4_projects.legacy_form]


def _data_source_routers():
    """Data sources (ops 47–52, routes/data_sources.py)."""
    from modelharbor.api.dialects.domino.routes import data_sources

    return [data_sources.router]


def _project_tag_routers():
    """``GET /projectTags/{id}``: the client's ``tag_details``."""
    from modelharbor.api.dialects.domino.routes import v4_projects

    return [v4_projects.tags_root]


# --- datasets (issue 17) ---
def _dataset_routers():
    from modelharbor.api.dialects.domino.routes import datasets

    return [datasets.router]


def _legacy_dataset_routers():
    """``/dataset[/{id}]``: the client's ``datasets_*`` calls (the mount's route ``/`` is ``/dataset``)."""
    from modelharbor.api.dialects.domino.routes import datasets

    return [datasets.legacy]


def _root_routes():
    from modelharbor.api.dialects.domino.routes.collaborators import LegacyCollaborators
    from modelharbor.api.dialects.domino.routes.version import version

    # GET /{owner}/{project}/collaborators yields to every mount (routes/collaborators.py)
    return [Route("/version", version, methods=["GET"]), LegacyCollaborators()]


DIALECT = Dialect(
    name="domino",
    title="Domino",
    apis=(
        Api(("/api/registeredmodels",), _routers),
        Api(("/api/hardwaretiers",), _hardware_tier_routers),
        Api(("/api/admin",), _admin_routers),
        Api(("/api",), _public_routers),
        Api(("/v4",), _v4_routers),
        Api(("/v1/projects",), _legacy_project_routers),  # versioned project files (routes/files.py)
        Api(("/api/projects",), _public_project_routers),
        Api(("/api/environments",), _environment_routers),
        Api(("/api/datasource",), _data_source_routers),
        Api(("/v1/environments",), _legacy_environment_routers),  # GET /v1/environments (routes/environments.py)
        Api(("/project",), _legacy_form_routers),
        Api(("/projectTags",), _project_tag_routers),
        Api(("/v1/models",), _legacy_routers("models")),
        Api(("/api/datasetrw",), _dataset_routers),
        Api(("/dataset",), _legacy_dataset_routers),
    ),
    authenticate=authenticate,
    render=render,
    internal=internal_error,
    root_routes=_root_routes,
    security=schemas.SECURITY,
    error_schema=schemas.FailureEnvelopeV1.model_json_schema(),
    # never 409 (the client reads it as expired credentials); 501 for what ModelHarbor does not do
    statuses=frozenset({400, 401, 403, 404, 405, 413, 500, 501}),
    inputs=schemas.INPUTS,
)

__all__ = ["DIALECT", "PrincipalDep"]
