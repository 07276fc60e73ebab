"""Native routes for the caller's identity, API keys, tasks and imported models."""

from __future__ import annotations

from fastapi import APIRouter, Query, status

from modelharbor.api.jsonbody import JsonRoute
from modelharbor.api.native import schemas
from modelharbor.api.native.deps import PrincipalDep, ServicesDep
from modelharbor.api.native.mapping import imported_model_out, key_out, task_out
from modelharbor.api.native.openapi import errors

router = APIRouter(route_class=JsonRoute)


@router.get("/me", response_model=schemas.MeOut, tags=["identity"])
def me(principal: PrincipalDep):
    return schemas.MeOut(
        user_id=principal.user_id,
        username=principal.username,
        org_id=principal.org_id,
        role=principal.role,
        is_superuser=principal.is_superuser,
    )


@router.get("/keys", response_model=list[schemas.KeyOut], tags=["identity"], responses=errors(403, 404))
def list_keys(
    services: ServicesDep,
    principal: PrincipalDep,
    all_users: bool = Query(False, alias="all"),
    username: str | None = Query(None, min_length=1, max_length=200),
):
    """Your keys; admins: every key of the organisation (``all=true``) or one user's (``username``)."""
    return [key_out(k) for k in services.identity.list_keys(principal, all_users=all_users, username=username)]


@router.post(
    "/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.KeyOut,
    tags=["identity"],
    responses=errors(404),
)
def create_key(body: schemas.KeyIn, services: ServicesDep, principal: PrincipalDep):
    """Create an API key. The secret is in the response once and never again."""
    return key_out(
        services.identity.create_key(principal, body.name, username=body.username, expires_in_days=body.expires_in_days)
    )


@router.delete("/keys/{key_id}", response_model=schemas.KeyOut, tags=["identity"])
def revoke_key(key_id: str, services: ServicesDep, principal: PrincipalDep):
    """Revoke a key by its id or a unique prefix of it (at least 6 characters; several keys → 409
    ``AMBIGUOUS_KEY_PREFIX`` listing them)."""
    return key_out(services.identity.revoke_key(principal, key_id))


@router.get("/tasks/{task_id}", response_model=schemas.TaskOut, tags=["tasks"])
def get_task(task_id: str, services: ServicesDep, principal: PrincipalDep):
    """A background task's status and percent complete."""
    return task_out(services.tasks.get(principal, task_id))


@router.get("/imports/{model_id}", response_model=schemas.ImportedModelOut, tags=["models"])
def get_imported_model(model_id: str, services: ServicesDep, principal: PrincipalDep):
    """A model brought in by an import, with its status (importing, ready, failed)."""
    return imported_model_out(services.imports.get(principal, model_id))
