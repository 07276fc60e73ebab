"""Domino's v4 user routes (mounted at ``/v4``) that the ``dominodatalab`` client and Domino's UI call: the users
list (``get_user_id``) and a user's git credentials (added here; their secrets are never answered). Times are
epoch milliseconds, as v4 gives them.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.domino import PrincipalDep, mapping
from modelharbor.api.params import field, json_object
from modelharbor.domain.errors import InvalidInput

router = APIRouter()
MAX_V4_USERS = 1000  # v4's list has no paging; ModelHarbor answers the first 1,000 by username


@router.get("/users")
def users(principal: PrincipalDep, services: ServicesDep):
    page = services.directory.visible_users(principal, offset=0, limit=MAX_V4_USERS)
    return [mapping.person_v4(p) for p in page.items]


@router.get("/accounts/{user_id}/gitcredentials")
def list_git_credentials(user_id: str, principal: PrincipalDep, services: ServicesDep):
    return [mapping.git_credential_v4(c) for c in services.git_credentials.list(principal, user_id)]


@router.post("/accounts/{user_id}/gitcredentials")
async def add_git_credential(request: Request, user_id: str, principal: PrincipalDep, services: ServicesDep):
    """``{name, domain, gitServiceProvider?, type: "TokenGitCredentialDto", token}`` or ``{…, type:
    "SshGitCredentialDto", key, passphrase?}``."""
    body = await json_object(request, missing="a JSON object body is required")
    kind = field(body, "type", str, required=True)
    if kind not in ("TokenGitCredentialDto", "SshGitCredentialDto"):
        raise InvalidInput(f"'type' must be TokenGitCredentialDto or SshGitCredentialDto, not {kind!r}")
    token = field(body, "token", str, required=True) if kind == "TokenGitCredentialDto" else None
    key = field(body, "key", str, required=True) if kind == "SshGitCredentialDto" else None
    cred = await run_in_threadpool(
        partial(
            services.git_credentials.add,
            principal,
            user_id,
            name=field(body, "name", str, required=True),
            domain=field(body, "domain", str, required=True),
            token=token,
            private_key=key,
            passphrase=field(body, "passphrase", str) if key is not None else None,
            provider=field(body, "gitServiceProvider", str),
        )
    )
    return mapping.git_credential_v4(cred)


@router.delete("/accounts/{user_id}/gitcredentials/{credential_id}", status_code=204)
def delete_git_credential(user_id: str, credential_id: str, principal: PrincipalDep, services: ServicesDep):
    services.git_credentials.delete(principal, user_id, credential_id)
    return Response(status_code=204)
