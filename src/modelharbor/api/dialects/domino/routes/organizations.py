"""Domino's organizations (mounted under ``/api``): teams inside the caller's ModelHarbor organisation
(core/teams.py). Each route parses, makes one core call and maps the answer."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping
from modelharbor.api.dialects.domino.routes.users import offset_limit
from modelharbor.api.params import field, json_object
from modelharbor.core.teams import TeamRole, team_role
from modelharbor.domain.errors import InvalidInput

router = APIRouter()
BASE = "/organizations/v1/organizations"


def _member(value: object, where: str) -> tuple[str, TeamRole]:
    """``OrganizationMemberV1``: ``{userId, organizationRole}``."""
    if not isinstance(value, dict):
        raise InvalidInput(f"'{where}' must be an object {{userId, organizationRole}}")
    user_id = field(value, "userId", str, required=True)
    return user_id, team_role(field(value, "organizationRole", str, required=True))


def _envelope(request: Request, team) -> dict:
    return {"org": mapping.organization(team), "metadata": mapping.metadata(request)}


def _listing(request: Request, page) -> dict:
    return {
        "orgs": [mapping.organization(t) for t in page.items],
        "metadata": mapping.paged(request, page.offset, page.limit, page.total),
    }


@router.get(BASE)
def my_organizations(request: Request, principal: PrincipalDep, services: ServicesDep):
    offset, limit = offset_limit(request)
    name = request.query_params.get("nameFilter") or None
    return _listing(request, services.teams.list_mine(principal, name=name, offset=offset, limit=limit))


@router.post(BASE)
async def create_organization(request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request, missing="a JSON object body is required")
    name = field(body, "name", str, required=True)
    members = [_member(m, f"members[{i}]") for i, m in enumerate(field(body, "members", list, required=True))]
    team = await run_in_threadpool(partial(services.teams.create, principal, name, members))
    return _envelope(request, team)


@router.get(BASE + "/all")
def all_organizations(request: Request, principal: PrincipalDep, services: ServicesDep):
    offset, limit = offset_limit(request)
    q = request.query_params
    page = services.teams.list_all(
        principal, name=q.get("nameFilter") or None, user_id=q.get("userIdFilter") or None, offset=offset, limit=limit
    )
    return _listing(request, page)


@router.get(BASE + "/{organization_id}")
def get_organization(request: Request, organization_id: str, principal: PrincipalDep, services: ServicesDep):
    return _envelope(request, services.teams.get(principal, organization_id))


@router.put(BASE + "/{organization_id}/user")
async def add_user(request: Request, organization_id: str, principal: PrincipalDep, services: ServicesDep):
    user_id, role = _member(await json_object(request, missing="a JSON object body is required"), "body")
    team = await run_in_threadpool(services.teams.add_member, principal, organization_id, user_id, role)
    return _envelope(request, team)


@router.delete(BASE + "/{organization_id}/user")
def remove_user(request: Request, organization_id: str, principal: PrincipalDep, services: ServicesDep):
    member = request.query_params.get("memberToRemoveId")
    if not member:
        raise InvalidInput("'memberToRemoveId' (query) is required")
    return _envelope(request, services.teams.remove_member(principal, organization_id, member))
