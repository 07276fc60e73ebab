"""Native routes for projects: create, list, read, change (description, visibility, archive), collaborators and the
project's model-version stages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Response, status
from pydantic import BaseModel, Field

from modelharbor.api.inputs import stage_list
from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.openapi import errors
from modelharbor.api.native.schemas import Strict
from modelharbor.core.projects import PROJECT_ROLES, VISIBILITIES, Project
from modelharbor.domain.inputs import UNSET

router = APIRouter(prefix="/projects", tags=["projects"], route_class=JsonRoute)


class CollaboratorOut(BaseModel):
    user_id: str
    username: str
    role: str


class ProjectOut(BaseModel):
    id: str
    name: str
    description: str
    owner_id: str | None
    owner_username: str | None
    created_at: datetime
    stages: list[str] = Field(description="The stages versions of this project's models may be in, in order.")
    default_stages: bool = Field(description="True while the project uses the default list.")
    collaborators: list[CollaboratorOut]
    visibility: str = Field(description=f"One of {', '.join(VISIBILITIES)}.")
    archived: bool = Field(description="An archived project is read-only.")
    tags: list[str] = Field(description="The names of the project's tags.")
    status: str = Field(description="active or complete.")
    owner_team_id: str | None = Field(description="The team that owns it, if one does.")


class ProjectIn(Strict):
    name: str
    description: str | None = None
    owner_id: str | None = Field(
        None, description="Admins may create a project for another member; a team's admins for the team (its id)."
    )
    visibility: str = Field("Public", description=f"One of {', '.join(VISIBILITIES)} (any case).")
    tags: list[str] = Field(default_factory=list, description="Tag names (shared by name in the organisation).")


class ProjectPatch(Strict):
    description: str | None = None
    visibility: str | None = Field(None, description=f"One of {', '.join(VISIBILITIES)} (any case).")
    archived: bool | None = Field(None, description="true archives (read-only); false un-archives.")


class CollaboratorIn(Strict):
    role: str = Field(description=f"One of {', '.join(PROJECT_ROLES)} (any case).")


def project_out(p: Project) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "owner_id": p.owner_id,
        "owner_username": p.owner_username,
        "created_at": p.created_at,
        "stages": list(p.effective_stages),
        "default_stages": p.stages is None,
        "collaborators": [{"user_id": c.user_id, "username": c.username, "role": c.role} for c in p.collaborators],
        "visibility": p.visibility,
        "archived": p.archived,
        "tags": [t.name for t in p.tags],
        "status": p.status,
        "owner_team_id": p.owner_team_id,
    }


@router.get("", response_model=list[ProjectOut], summary="The organisation's projects, by name")
def list_projects(principal: PrincipalDep, services: ServicesDep):
    return [project_out(p) for p in services.projects.list_projects(principal)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectOut, summary="Create a project")
def create_project(body: ProjectIn, principal: PrincipalDep, services: ServicesDep):
    return project_out(
        services.projects.create_project(
            principal,
            body.name,
            description=body.description,
            owner_id=body.owner_id,
            visibility=body.visibility,
            tags=body.tags,
        )
    )


@router.get("/{project_id}", response_model=ProjectOut, summary="One project")
def get_project(project_id: str, principal: PrincipalDep, services: ServicesDep):
    return project_out(services.projects.get_project(principal, project_id))


@router.patch(
    "/{project_id}",
    response_model=ProjectOut,
    responses=errors(403),
    summary="Change a project's description or visibility, archive it (read-only) or un-archive it",
)
def update_project(project_id: str, body: ProjectPatch, principal: PrincipalDep, services: ServicesDep):
    given = body.model_fields_set
    return project_out(
        services.project_settings.update(
            principal,
            project_id,
            description=body.description if "description" in given else UNSET,
            visibility=body.visibility if "visibility" in given else UNSET,
            archived=body.archived if "archived" in given else UNSET,
        )
    )


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(403),
    summary="Delete a project with its deployments, pipelines, environments and variables (its models stay)",
)
def delete_project(project_id: str, principal: PrincipalDep, services: ServicesDep):
    services.serving.delete_project_by_id(principal, project_id)
    return Response(status_code=204)


@router.put(
    "/{project_id}/collaborators/{user}",
    response_model=ProjectOut,
    summary="Add a collaborator (user id or username) or change their role",
)
def set_collaborator(project_id: str, user: str, body: CollaboratorIn, principal: PrincipalDep, services: ServicesDep):
    return project_out(services.projects.set_collaborator(principal, project_id, user, body.role))


@router.delete(
    "/{project_id}/collaborators/{user}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a collaborator"
)
def remove_collaborator(project_id: str, user: str, principal: PrincipalDep, services: ServicesDep):
    services.projects.remove_collaborator(principal, project_id, user)
    return Response(status_code=204)


@router.put("/{project_id}/stages", response_model=ProjectOut, summary="Set the project's stage list")
def set_stages(
    project_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    stages: list[Any] = Body(..., embed=True),
):
    return project_out(services.projects.set_stages(principal, project_id, stage_list(stages)))
