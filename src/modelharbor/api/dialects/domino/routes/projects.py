"""Domino's public project routes (mounted at ``/api/projects``; ops 112–117, 128 and ``POST /v2/projects``): the
projects the caller may see (paged), create, archive, get, result settings, status. Each route parses, makes one
core call (core/projects.py ``ProjectService``, core/project_settings.py ``ProjectSettingsService``) and maps the
answer (mapping_projects.py). Collaborators, goals, copies and git repositories are routes of their own.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelharbor.api.common import json_answer
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping, mapping_projects
from modelharbor.api.dialects.domino.routes.users import offset_limit
from modelharbor.api.params import field, json_object

router = APIRouter()
BETA, V1 = "/beta/projects", "/v1/projects"
BODY = "a JSON object body is required"
GIT_GAP = (
    "{} is not supported: ModelHarbor's projects keep their files in ModelHarbor (versioned project files), not in "
    "a git repository or from a template; create the project without it (see docs/dialects/domino.md)."
)


@router.get(BETA)
def projects(request: Request, principal: PrincipalDep, services: ServicesDep):
    """``PaginatedProjectsEnvelopeV1``: the projects the caller may see, not archived, by name."""
    offset, limit = offset_limit(request)
    page = services.project_settings.page(principal, offset=offset, limit=limit)
    return json_answer(
        {
            "projects": [mapping_projects.project(p) for p in page.items],
            "metadata": mapping.paged(request, page.offset, page.limit, page.total),
        }
    )


@router.post(BETA)
@router.post("/v2/projects")
async def create_project(request: Request, principal: PrincipalDep, services: ServicesDep):
    """``NewProjectV1`` / ``NewProjectV2`` → ``ProjectEnvelopeV1``."""
    body = await json_object(request, missing=BODY)
    name = field(body, "name", str, required=True)
    description = field(body, "description", str, required=True)
    visibility = field(body, "visibility", str, required=True)
    owner = field(body, "ownerId", str)
    field(body, "billingTag", dict)  # accepted, not kept (billing tags: a gap)
    for key in ("mainRepository", "repoToCreate", "templateDetails"):
        if field(body, key, dict) is not None:
            return mapping.failure(request, 501, GIT_GAP.format(f"'{key}'"))
    if field(body, "isRestricted", bool):
        return mapping.failure(
            request, 501, "Restricted projects are not supported: create it with isRestricted false."
        )
    created = await run_in_threadpool(
        partial(
            services.projects.create_project,
            principal,
            name,
            description=description,
            owner_id=owner,
            visibility=visibility,
        )
    )
    return mapping_projects.envelope(request, created)


@router.delete(BETA + "/{project_id}")
def archive_project(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    """Archive (Domino's soft delete): ``DeleteEnvelopeV1``; the project stays, read-only."""
    services.project_settings.archive(principal, project_id)
    return mapping_projects.deleted(request)


@router.get(BETA + "/{project_id}/results-settings")
def results_settings(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    branch = services.project_settings.results_settings(principal, project_id)
    return mapping_projects.results_settings(request, branch)


@router.put(BETA + "/{project_id}/results-settings")
async def set_results_settings(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request, missing=BODY)
    branch = field(body, "branch", str, required=True)
    saved = await run_in_threadpool(services.project_settings.set_results_settings, principal, project_id, branch)
    return mapping_projects.results_settings(request, saved)


@router.get(V1 + "/{project_id}")
def get_project(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    return mapping_projects.envelope(request, services.projects.get_project(principal, project_id))


@router.put(V1 + "/{project_id}/status")
async def set_status(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    """``ProjectStatusV1`` → ``ProjectStatusEnvelopeV1``."""
    body = await json_object(request, missing=BODY)
    changed = await run_in_threadpool(
        partial(
            services.project_settings.set_status,
            principal,
            project_id,
            field(body, "status", str, required=True),
            is_blocked=field(body, "isBlocked", bool, required=True),
            blocked_reason=field(body, "blockedReason", str),
            completed_message=field(body, "completedMessage", str),
        )
    )
    return JSONResponse(mapping_projects.status_envelope(request, changed))
