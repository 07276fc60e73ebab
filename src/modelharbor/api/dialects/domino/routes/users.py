"""Domino's users (mounted under ``/api``): the caller, the users they see, a user's git-credential accessors.

Each route parses, makes one core call (core/directory.py, core/git_credentials.py) and maps the answer.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping
from modelharbor.api.params import int_param

router = APIRouter()


def offset_limit(request: Request, default_limit: int = 10) -> tuple[int, int]:
    q = request.query_params
    offset = int_param(q.get("offset"), "offset", 0, high=10**9)
    return offset, int_param(q.get("limit"), "limit", default_limit, low=1, high=1000)


@router.get("/users/v1/self")
def current_user(request: Request, principal: PrincipalDep, services: ServicesDep):
    return {"user": mapping.user(services.directory.me(principal)), "metadata": mapping.metadata(request)}


@router.get("/users/v1/users")
def visible_users(request: Request, principal: PrincipalDep, services: ServicesDep):
    offset, limit = offset_limit(request)
    page = services.directory.visible_users(principal, offset=offset, limit=limit)
    return {
        "users": [mapping.user(p) for p in page.items],
        "metadata": mapping.paged(request, page.offset, page.limit, page.total),
    }


@router.get("/users/beta/credentials/{user_id}")
def git_credentials(request: Request, user_id: str, principal: PrincipalDep, services: ServicesDep):
    creds = services.git_credentials.list(principal, user_id)
    return {"credentials": [mapping.git_credential(c) for c in creds], "metadata": mapping.metadata(request)}
