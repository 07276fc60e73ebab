"""Domino's environments (ops 53-58, mounted at ``/api/environments``), the client's ``GET /v4/environments/
defaultEnvironment`` and ``GET /v4/projects/{id}/useableEnvironments``, and legacy ``GET /v1/environments``.

Each route parses its input (the Dockerfile instructions with dockerfile.py: Domino's grammar stays at this edge),
makes one core call (core/serving/environment_catalog.py) and maps the answer (mapping_environments.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import json_answer
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping_environments
from modelharbor.api.dialects.domino.dockerfile import requirements_of
from modelharbor.api.dialects.domino.mapping import metadata, paged
from modelharbor.api.dialects.domino.routes.users import offset_limit
from modelharbor.api.params import field, json_object
from modelharbor.core.serving.environment_catalog import EnvironmentIn, RevisionIn
from modelharbor.domain.errors import InvalidInput

router = APIRouter()  # /api/environments
v4_router = APIRouter()  # /v4
legacy = APIRouter()  # /v1/environments

_SCRIPTS = ("preSetupScript", "postSetupScript", "preRunScript", "postRunScript")
# fields kept with a revision and shown as given, and their JSON types
_KEPT = {
    "supportedClusters": list,
    "tags": list,
    "workspaceTools": list,
    "useVpn": bool,
    "skipCache": bool,
    "addBaseDependencies": bool,
    "isCurated": bool,
    "rebuildOnBaseChanges": str,
}


def _revision_in(body: dict[str, Any]) -> RevisionIn:
    """NewEnvironmentRevisionV1 (and its part of NewEnvironmentV1) as the core's RevisionIn."""
    instructions = field(body, "dockerfileInstructions", str) or ""
    requirements = requirements_of(instructions)
    extra = field(body, "requirements", list) or []
    if not all(isinstance(r, str) for r in extra):
        raise InvalidInput("'requirements' must be a list of requirement specifiers (strings)")
    if field(body, "environmentVariables", list):
        raise InvalidInput(
            "'environmentVariables' is not supported: an environment here is a base interpreter plus Python "
            "packages; set variables on the Model API or the project instead (send an empty list)"
        )
    for name in _SCRIPTS:
        if (field(body, name, str) or "").strip():
            raise InvalidInput(f"'{name}' is not supported: scripts do not run in ModelHarbor's environments")
    kept = {name: field(body, name, kind) for name, kind in _KEPT.items() if body.get(name) is not None}
    if kept.get("rebuildOnBaseChanges") not in (None, "never", "followActive"):
        raise InvalidInput("'rebuildOnBaseChanges' must be never or followActive")
    return RevisionIn(
        image=field(body, "image", str) or "",
        instructions=instructions,
        requirements=tuple(requirements + extra),
        summary=field(body, "summary", str) or "",
        kept=kept,
    )


def _envelope(request: Request, env) -> dict[str, Any]:
    return {"environment": mapping_environments.environment(env), "metadata": metadata(request)}


# --- ops 53-58 -------------------------------------------------------------------------------------------
@router.get("/beta/environments")
def list_environments(request: Request, principal: PrincipalDep, services: ServicesDep):
    offset, limit = offset_limit(request)
    envs, total = services.serving.environment_catalog.list_environments(principal, offset=offset, limit=limit)
    return json_answer(
        {
            "environments": [mapping_environments.environment(e) for e in envs],
            "metadata": paged(request, offset, limit, total),
        }
    )


@router.post("/beta/environments")
async def create_environment(request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request, missing="a JSON object body (NewEnvironmentV1) is required")
    if field(body, "duplicateFromEnvironmentId", str):
        raise InvalidInput("'duplicateFromEnvironmentId' is not supported: create the environment from its fields")
    new = EnvironmentIn(
        name=field(body, "name", str, required=True),
        visibility=field(body, "visibility", str, required=True),
        revision=_revision_in(body),
        description=field(body, "description", str) or "",
        team_id=field(body, "orgOwnerId", str) or None,
        restricted=bool(field(body, "isRestricted", bool)),
    )
    env = await run_in_threadpool(services.serving.environment_catalog.create_environment, principal, new)
    return _envelope(request, env)


@router.post("/beta/environments/{environment_id}/revisions")
async def create_revision(request: Request, environment_id: str, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request, missing="a JSON object body (NewEnvironmentRevisionV1) is required")
    new = _revision_in(body)
    rev = await run_in_threadpool(services.serving.environment_catalog.create_revision, principal, environment_id, new)
    return {"environmentRevision": mapping_environments.revision(rev), "metadata": metadata(request)}


@router.patch("/beta/environments/{environment_id}/revisions/{revision_id}")
async def restrict_revision(
    request: Request, environment_id: str, revision_id: str, principal: PrincipalDep, services: ServicesDep
):
    body = await json_object(request, missing="a JSON object body (UpdateEnvironmentRevisionV1) is required")
    restricted = field(body, "isRestricted", bool, required=True)
    rid = await run_in_threadpool(
        services.serving.environment_catalog.set_restricted, principal, environment_id, revision_id, restricted
    )
    return {"id": rid}


@router.get("/v1/environments/{environment_id}")
def get_environment(request: Request, environment_id: str, principal: PrincipalDep, services: ServicesDep):
    return _envelope(request, services.serving.environment_catalog.get_environment(principal, environment_id))


@router.delete("/v1/environments/{environment_id}")
def archive_environment(request: Request, environment_id: str, principal: PrincipalDep, services: ServicesDep):
    return _envelope(request, services.serving.environment_catalog.archive_environment(principal, environment_id))


# --- the client's v4 and legacy routes -------------------------------------------------------------------
@v4_router.get("/environments/defaultEnvironment")
def default_environment(principal: PrincipalDep, services: ServicesDep):
    return mapping_environments.v4_environment(services.serving.environment_catalog.default_environment(principal))


@v4_router.get("/projects/{project_id}/useableEnvironments")
def useable_environments(project_id: str, principal: PrincipalDep, services: ServicesDep):
    envs = services.serving.environment_catalog.usable_in_project(principal, project_id)
    return {"environments": [mapping_environments.v4_environment(e) for e in envs]}


@legacy.get("/")
def legacy_environments(principal: PrincipalDep, services: ServicesDep):
    envs, _ = services.serving.environment_catalog.list_environments(principal)
    return {"data": [mapping_environments.legacy_environment(e) for e in envs]}
