"""Native routes for organisations (superusers only): list, create, read, rename, their members, moving a user.

An organisation or a user in a path is its id or its name. Anyone else gets 403 (``FORBIDDEN``).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.openapi import errors
from modelharbor.api.native.schemas import Strict
from modelharbor.core.identity import Member, OrgSummary

router = APIRouter(prefix="/orgs", tags=["organisations"], route_class=JsonRoute)


class OrgOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    members: int = Field(description="How many users are members of it.")


class OrgIn(Strict):
    name: str = Field(description="1 to 200 printable characters, without leading or trailing spaces; unique.")


class MemberOut(BaseModel):
    user_id: str
    username: str
    org_id: str
    role: str
    is_superuser: bool


class MoveIn(Strict):
    role: str | None = Field(
        None,
        description="viewer, member, admin or owner. Default: `member` for a user new to the organisation; one "
        "already in it keeps their role.",
    )
    from_org: str | None = Field(
        None, description="The organisation (id or name) they leave; needed only when they belong to several."
    )


def org_out(o: OrgSummary) -> OrgOut:
    return OrgOut(id=o.id, name=o.name, created_at=o.created_at, members=o.members)


def member_out(m: Member) -> MemberOut:
    return MemberOut(
        user_id=m.user_id, username=m.username, org_id=m.org_id, role=m.role.value, is_superuser=m.is_superuser
    )


@router.get("", response_model=list[OrgOut], summary="Every organisation", responses=errors(403))
def list_orgs(principal: PrincipalDep, services: ServicesDep):
    return [org_out(o) for o in services.identity.list_orgs(principal)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrgOut, summary="Create an organisation")
def create_org(body: OrgIn, principal: PrincipalDep, services: ServicesDep):
    """The creating superuser becomes its owner, so keys can be made to act in it."""
    org = services.identity.create_org(principal, body.name)
    return org_out(services.identity.get_org(principal, org.id))


@router.get("/{org}", response_model=OrgOut, summary="One organisation (id or name)", responses=errors(403))
def get_org(org: str, principal: PrincipalDep, services: ServicesDep):
    return org_out(services.identity.get_org(principal, org))


@router.patch("/{org}", response_model=OrgOut, summary="Rename an organisation")
def rename_org(org: str, body: OrgIn, principal: PrincipalDep, services: ServicesDep):
    """``default`` (where the server ensures its admin at start) keeps its name; no other takes it (409)."""
    return org_out(services.identity.rename_org(principal, org, body.name))


@router.get(
    "/{org}/members", response_model=list[MemberOut], summary="The organisation's members", responses=errors(403)
)
def list_members(org: str, principal: PrincipalDep, services: ServicesDep):
    return [member_out(m) for m in services.identity.org_members(principal, org)]


@router.put("/{org}/members/{user}", response_model=MemberOut, summary="Move a user into the organisation")
def move_user(org: str, user: str, body: MoveIn, principal: PrincipalDep, services: ServicesDep):
    """The user (id or username) leaves the organisation they were in and is a member of this one. Their API keys
    move with them (they act here from now on); objects stay with the organisation that owns them."""
    return member_out(services.identity.move_user(principal, user, org, role=body.role, from_org=body.from_org))
