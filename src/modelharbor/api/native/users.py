"""Native routes for users: list, create, read, set a password, delete (``core/users.py`` checks who may).

A user in a path is their id or username (URL-encoded). Organisation admins manage the users of their
organisation; superusers everyone's (``org``); every user reads themselves and changes their own password.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status

from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native import schemas
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.mapping import user_out
from modelharbor.api.native.openapi import errors

router = APIRouter(prefix="/users", tags=["users"], route_class=JsonRoute)


@router.get("", response_model=list[schemas.UserOut], summary="Users of an organisation", responses=errors(403, 404))
def list_users(
    services: ServicesDep,
    principal: PrincipalDep,
    org: str | None = Query(
        None, min_length=1, max_length=200, description="Superusers: an organisation (id or name)."
    ),
):
    """Admins: the users of their organisation. Superusers: every user of every organisation (one row per
    membership), or of ``org``."""
    return [user_out(u) for u in services.users.list_users(principal, org=org)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.UserOut,
    summary="Create a user",
    responses=errors(404),
)
def create_user(body: schemas.UserIn, services: ServicesDep, principal: PrincipalDep):
    """A new member of your organisation (superusers: of ``org``) with ``role`` (default member, at most your own)
    and ``password`` (at least 12 characters), or none: then they use API keys only. 409 ``USER_EXISTS``."""
    return user_out(
        services.users.add_user(principal, body.username, password=body.password, role=body.role, org=body.org)
    )


@router.get("/{user}", response_model=schemas.UserOut, summary="One user (id or username)", responses=errors(403))
def get_user(user: str, services: ServicesDep, principal: PrincipalDep):
    return user_out(services.users.get_user(principal, user))


@router.put("/{user}/password", response_model=schemas.UserOut, summary="Set a user's password")
def set_password(user: str, body: schemas.PasswordIn, services: ServicesDep, principal: PrincipalDep):
    """Your own (with ``current_password`` when you have one), or, for admins, a user's of your organisation who
    belongs to no other (superusers: anyone's). 400 ``WEAK_PASSWORD``; 403 ``WRONG_PASSWORD``."""
    return user_out(services.users.set_password(principal, user, body.password, current_password=body.current_password))


@router.delete("/{user}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a user")
def delete_user(user: str, services: ServicesDep, principal: PrincipalDep):
    """Removes the user from your organisation (superusers: from every one): their keys there are revoked, their open
    uploads there expire, what they made stays. A user left in no organisation is deleted for good. Not yourself
    (409 ``CANNOT_DELETE_SELF``)."""
    services.users.delete_user(principal, user)
    return Response(status_code=204)
