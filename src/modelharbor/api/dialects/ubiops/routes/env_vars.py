"""UbiOps environment variables at project, deployment and version level (``…/environment-variables``) and
``copy-environment-variables``; deployment and version lists include what they inherit. Core:
core/serving/env_vars.py. A deployment-level route and its version-level twin are one function."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ubiops import PrincipalDep
from modelharbor.api.dialects.ubiops.mapping import env_var_json
from modelharbor.api.dialects.ubiops.routes import EV, D, P, V, json_object, version_of
from modelharbor.api.inputs import env_var_in
from modelharbor.domain.errors import InvalidInput
from modelharbor.domain.inputs import name_in

router = APIRouter()


# --- project level -------------------------------------------------------------------------------
@router.get(P + EV)
def list_project_env_vars(project_name: str, principal: PrincipalDep, services: ServicesDep):
    return [env_var_json(e, inherited_shape=False) for e in services.serving.list_env_vars(principal, project_name)]


@router.post(P + EV, status_code=201)
async def create_project_env_var(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    var = env_var_in(await json_object(request), creating=True)
    e = await run_in_threadpool(services.serving.create_env_var, principal, project_name, var)
    return env_var_json(e, inherited_shape=False)


@router.get(P + EV + "/{var_id}")
def get_project_env_var(project_name: str, var_id: str, principal: PrincipalDep, services: ServicesDep):
    return env_var_json(services.serving.get_env_var(principal, project_name, var_id), inherited_shape=False)


@router.patch(P + EV + "/{var_id}")
async def update_project_env_var(
    project_name: str, var_id: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    change = env_var_in(await json_object(request), creating=False)
    e = await run_in_threadpool(services.serving.update_env_var, principal, project_name, var_id, change)
    return env_var_json(e, inherited_shape=False)


@router.delete(P + EV + "/{var_id}", status_code=204)
def delete_project_env_var(project_name: str, var_id: str, principal: PrincipalDep, services: ServicesDep):
    services.serving.delete_env_var(principal, project_name, var_id)
    return Response(status_code=204)


# --- deployment and version level ----------------------------------------------------------------
@router.get(D + EV)
@router.get(V + EV)
def list_env_vars(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    items = services.serving.list_env_vars(principal, project_name, deployment_name, version_of(request))
    return [env_var_json(e, inherited_shape=True) for e in items]


@router.post(D + EV, status_code=201)
@router.post(V + EV, status_code=201)
async def create_env_var(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    var = env_var_in(await json_object(request), creating=True)
    e = await run_in_threadpool(
        services.serving.create_env_var, principal, project_name, var, deployment_name, version_of(request)
    )
    return env_var_json(e, inherited_shape=True)


@router.get(D + EV + "/{var_id}")
@router.get(V + EV + "/{var_id}")
def get_env_var(
    project_name: str,
    deployment_name: str,
    var_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    e = services.serving.get_env_var(principal, project_name, var_id, deployment_name, version_of(request))
    return env_var_json(e, inherited_shape=True)


@router.patch(D + EV + "/{var_id}")
@router.patch(V + EV + "/{var_id}")
async def update_env_var(
    project_name: str,
    deployment_name: str,
    var_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    change = env_var_in(await json_object(request), creating=False)
    e = await run_in_threadpool(
        services.serving.update_env_var, principal, project_name, var_id, change, deployment_name, version_of(request)
    )
    return env_var_json(e, inherited_shape=True)


@router.delete(D + EV + "/{var_id}", status_code=204)
@router.delete(V + EV + "/{var_id}", status_code=204)
def delete_env_var(
    project_name: str,
    deployment_name: str,
    var_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    services.serving.delete_env_var(principal, project_name, var_id, deployment_name, version_of(request))
    return Response(status_code=204)


@router.post(D + "/copy-environment-variables")
@router.post(V + "/copy-environment-variables")
async def copy_env_vars(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    """``{source_deployment, source_version?}``: that level's own variables, copied here (same names overwritten)."""
    body = await json_object(request)
    source = body.get("source_deployment")
    if not isinstance(source, str) or not source:
        raise InvalidInput("'source_deployment' is required.")
    items = await run_in_threadpool(
        services.serving.copy_env_vars,
        principal,
        project_name,
        source,
        name_in(body.get("source_version")),
        deployment_name,
        version_of(request),
    )
    return [env_var_json(e, inherited_shape=True) for e in items]
