"""Native routes for access requests (core/access_requests.py): a member asks for a collaborator role on a project
(Domino's ``POST /api/registeredmodels/v1/access/{projectId}`` does the same), the project's owner or an organisation
admin lists the open ones and approves (granting the role) or declines each."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, status
from pydantic import Field

from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.openapi import errors
from modelharbor.api.native.schemas import AccessRequestOut, Strict
from modelharbor.core.access_requests import AccessRequest
from modelharbor.core.projects import PROJECT_ROLES

router = APIRouter(tags=["projects"], route_class=JsonRoute)
STATUS = Query("Pending", alias="status", description="Pending (default), Approved, Declined or all.")


class AccessRequestIn(Strict):
    role: str | None = Field(None, description=f"One of {', '.join(PROJECT_ROLES)} (any case); Contributor if absent.")
    message: str | None = Field(None, description="A note for the project's owner.")


class DecisionIn(Strict):
    role: str | None = Field(None, description="Approving: the role to grant instead of the one asked for.")


def out(a: AccessRequest) -> dict[str, Any]:
    return {
        "id": a.id,
        "project_id": a.project_id,
        "project_name": a.project_name,
        "user_id": a.user_id,
        "username": a.username,
        "role": a.role,
        "message": a.message,
        "status": a.status,
        "created_at": a.created_at,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at,
    }


@router.get(
    "/access-requests",
    response_model=list[AccessRequestOut],
    summary="Access requests on the projects you own (all the organisation's for an admin) and your own",
)
def my_requests(principal: PrincipalDep, services: ServicesDep, status_: str = STATUS):
    return [out(a) for a in services.access_requests.list_mine(principal, status=status_)]


@router.post(
    "/projects/{project_id}/access-requests",
    status_code=status.HTTP_201_CREATED,
    response_model=AccessRequestOut,
    summary="Ask the project's owner for a collaborator role",
)
def request_access(project_id: str, principal: PrincipalDep, services: ServicesDep, body: AccessRequestIn = Body(None)):
    body = body or AccessRequestIn()
    return out(services.access_requests.request(principal, project_id, role=body.role, message=body.message))


@router.get(
    "/projects/{project_id}/access-requests",
    response_model=list[AccessRequestOut],
    responses=errors(403),
    summary="The project's access requests (its owner and admins)",
)
def project_requests(project_id: str, principal: PrincipalDep, services: ServicesDep, status_: str = STATUS):
    return [out(a) for a in services.access_requests.list_for_project(principal, project_id, status=status_)]


@router.post(
    "/projects/{project_id}/access-requests/{request_id}/approve",
    response_model=AccessRequestOut,
    responses=errors(403),
    summary="Approve a request: the user becomes a collaborator with the role",
)
def approve(
    project_id: str, request_id: str, principal: PrincipalDep, services: ServicesDep, body: DecisionIn = Body(None)
):
    role = body.role if body else None
    return out(services.access_requests.decide(principal, project_id, request_id, approve=True, role=role))


@router.post(
    "/projects/{project_id}/access-requests/{request_id}/decline",
    response_model=AccessRequestOut,
    responses=errors(403),
    summary="Decline a request",
)
def decline(project_id: str, request_id: str, principal: PrincipalDep, services: ServicesDep):
    return out(services.access_requests.decide(principal, project_id, request_id, approve=False))
