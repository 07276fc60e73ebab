"""A project's collaborators: the public ``/api/projects/v1/projects/{projectId}/collaborators`` (ops 118–119), the
client's v4 ``/v4/projects/{id}/collaborators`` and the legacy ``GET /{owner}/{project}/collaborators`` (a root
route that yields to every mount, :class:`LegacyCollaborators`). Each route parses, makes one core call
(``ProjectService.set_collaborator`` / ``remove_collaborator`` / ``get_project``) and maps the answer.

Domino's roles are the core's (core/projects.py ``PROJECT_ROLES``), in any case: ``contributor`` … on ``/api``,
``Contributor`` … on ``/v4``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Match, Mount, Route

from modelharbor.api import failures
from modelharbor.api.common import services_of
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping, mapping_collab
from modelharbor.api.params import field, json_object
from modelharbor.core.projects import Project
from modelharbor.domain.errors import HarborError

public = APIRouter()  # mounted at /api/projects
v4 = APIRouter()  # mounted at /v4
BASE = "/v1/projects/{project_id}/collaborators"


def _one(project: Project, user: str) -> Any:
    for c in project.collaborators:
        if user in (c.user_id, c.username):
            return c
    raise AssertionError("the core answers the project with the collaborator it set")  # pragma: no cover


async def _set(services, principal, project_id: str, user: str, role: str):
    project = await run_in_threadpool(services.projects.set_collaborator, principal, project_id, user, role)
    return _one(project, user)


@public.post(BASE)
async def add_collaborator(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    """``ProjectCollaboratorV1`` ``{id, role}`` (``collaboratorId`` / ``projectRole`` accepted too)."""
    body = await json_object(request, missing="a JSON object body {id, role} is required")
    user = field(body, "collaboratorId" if "collaboratorId" in body and "id" not in body else "id", str, required=True)
    role = field(body, "projectRole" if "projectRole" in body and "role" not in body else "role", str, required=True)
    found = await _set(services, principal, project_id, user, role)
    return {"collaborator": mapping_collab.collaborator(found), "metadata": mapping.metadata(request)}


@public.delete(BASE + "/{collaborator_id}")
def remove_collaborator(
    request: Request, project_id: str, collaborator_id: str, principal: PrincipalDep, services: ServicesDep
):
    services.projects.remove_collaborator(principal, project_id, collaborator_id)
    return mapping_collab.deleted(request)


@v4.get("/projects/{project_id}/collaborators")
def v4_collaborators(project_id: str, principal: PrincipalDep, services: ServicesDep):
    project = services.projects.get_project(principal, project_id)
    return [mapping_collab.collaborator_v4(c) for c in project.collaborators]


@v4.post("/projects/{project_id}/collaborators")
async def v4_add_collaborator(request: Request, project_id: str, principal: PrincipalDep, services: ServicesDep):
    """The client's ``collaborators_add``: ``{collaboratorId, projectRole: "Contributor"}``."""
    body = await json_object(request, missing="a JSON object body {collaboratorId, projectRole} is required")
    user = field(body, "collaboratorId", str, required=True)
    role = field(body, "projectRole", str) or "Contributor"
    found = await _set(services, principal, project_id, user, role)
    return mapping_collab.collaborator_v4(found)


@v4.delete("/projects/{project_id}/collaborators/{user_id}")
def v4_remove_collaborator(project_id: str, user_id: str, principal: PrincipalDep, services: ServicesDep):
    project = services.projects.remove_collaborator(principal, project_id, user_id)
    return [mapping_collab.collaborator_v4(c) for c in project.collaborators]


# --- the legacy root route ---------------------------------------------------------------------------------------
LEGACY = re.compile(r"/(?P<owner>[^/]+)/(?P<project>[^/]+)/collaborators")


class LegacyCollaborators(Route):
    """``GET /{owner}/{project}/collaborators`` at the root, shadowing nothing: a path any mount of the application
    takes (``/v1/…``, ``/v4/…``, ``/api/…``, another dialect's prefix) is left to it, so only owners whose
    username is no mount's first segment reach this route (tests/api/test_routing.py)."""

    def __init__(self) -> None:
        super().__init__("/{owner}/{project}/collaborators", _legacy_collaborators, methods=["GET"])

    def matches(self, scope: Any) -> tuple[Match, dict]:
        match, child = super().matches(scope)
        if match is Match.NONE:
            return match, child
        app = scope.get("app")
        for route in getattr(getattr(app, "router", None), "routes", ()):
            if isinstance(route, Mount) and route.matches(scope)[0] is not Match.NONE:
                return Match.NONE, {}
        return match, child


async def _legacy_collaborators(request: Request) -> JSONResponse:
    from modelharbor.api.dialects.domino import authenticate  # the package imports this module lazily

    try:
        principal = await run_in_threadpool(authenticate, request)
        owner, name = request.path_params["owner"], request.path_params["project"]
        project = await run_in_threadpool(services_of(request).projects.find_by_owner_and_name, principal, owner, name)
    except HarborError as exc:
        return mapping.render(request, exc)
    except Exception as exc:  # a root route: the 500 in Domino's envelope, not the root app's
        return failures.answer(request.scope, exc, mapping.internal_error)
    return JSONResponse([mapping_collab.collaborator_legacy(c) for c in project.collaborators])
