"""UbiOps projects, environments and project-level environment variables."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialects.ubiops.common import PrincipalDep, ServicesDep, flag, json_object, status
from modelharbor.api.dialects.ubiops.mapping import env_var_json, environment_json, project_json
from modelharbor.domain.errors import InvalidInput, NotFound

router = APIRouter()
_PROJECT_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")


def _labels_filter(value: str | None) -> dict[str, str]:
    """``labels=k:v,k2:v2``."""
    out: dict[str, str] = {}
    for pair in (value or "").split(","):
        if pair.strip():
            key, _, val = pair.partition(":")
            out[key.strip()] = val.strip()
    return out


def _matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


@router.get("/status")
async def service_status(request: Request):
    """What the client's ``service_status()`` calls (``<host>/v2/status``): open, no credentials."""
    return await status(request)


# --- projects -----------------------------------------------------------------------------------
@router.post("/projects")
async def create_project(request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request)
    name = body.get("name")
    if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name):
        raise InvalidInput(
            f"Invalid project name {name!r}: 1 to 64 lowercase letters, digits and dashes, starting with a letter."
        )
    org = await run_in_threadpool(services.identity.org_name, principal.org_id)
    given = body.get("organization_name")
    if given is not None and (not isinstance(given, str) or given.lower() != org.lower()):
        raise NotFound(f"Organization {given!r} not found: your API key belongs to organization {org!r}.")
    p = await run_in_threadpool(services.projects.create_project, principal, name)
    return JSONResponse(project_json(p, org), status_code=201)


@router.get("/projects")
async def list_projects(request: Request, principal: PrincipalDep, services: ServicesDep):
    org = await run_in_threadpool(services.identity.org_name, principal.org_id)
    wanted_org = request.query_params.get("organization")
    if wanted_org and wanted_org.lower() != org.lower():
        return []
    projects = await run_in_threadpool(services.projects.list_projects, principal)
    if _labels_filter(request.query_params.get("labels")):
        return []  # projects carry no labels here
    return [project_json(p, org) for p in projects]


@router.get("/projects/{project_name}")
async def get_project(project_name: str, principal: PrincipalDep, services: ServicesDep):
    p = await run_in_threadpool(services.projects.get_by_name, principal, project_name)
    return project_json(p, await run_in_threadpool(services.identity.org_name, principal.org_id))


@router.patch("/projects/{project_name}")
async def update_project(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request)
    p = await run_in_threadpool(services.projects.get_by_name, principal, project_name)
    if body.get("name") not in (None, p.name):
        raise InvalidInput("Projects cannot be renamed.")
    return project_json(p, await run_in_threadpool(services.identity.org_name, principal.org_id))


@router.delete("/projects/{project_name}", status_code=204)
async def delete_project(project_name: str, principal: PrincipalDep, services: ServicesDep):
    await run_in_threadpool(services.serving.delete_project, principal, project_name)
    return Response(status_code=204)


# --- environments -------------------------------------------------------------------------------
@router.get("/projects/{project_name}/environments")
async def list_environments(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    system = flag(request.query_params.get("system"), "system")
    envs = await run_in_threadpool(services.serving.list_environments, principal, project_name, system=system)
    wanted = _labels_filter(request.query_params.get("labels"))
    return [environment_json(e) for e in envs if _matches(e.labels, wanted)]


@router.post("/projects/{project_name}/environments")
async def create_environment(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request)
    env = await run_in_threadpool(
        lambda: services.serving.create_environment(
            principal,
            project_name,
            name=body.get("name"),
            description=body.get("description"),
            labels=body.get("labels"),
            base_environment=body.get("base_environment"),
        )
    )
    return JSONResponse(environment_json(env), status_code=201)


@router.get("/projects/{project_name}/environments/{environment_name}")
async def get_environment(project_name: str, environment_name: str, principal: PrincipalDep, services: ServicesDep):
    return environment_json(
        await run_in_threadpool(services.serving.get_environment, principal, project_name, environment_name)
    )


@router.patch("/projects/{project_name}/environments/{environment_name}")
async def update_environment(
    project_name: str, environment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    body = await json_object(request)
    env = await run_in_threadpool(
        lambda: services.serving.update_environment(
            principal, project_name, environment_name, description=body.get("description"), labels=body.get("labels")
        )
    )
    return environment_json(env)


@router.delete("/projects/{project_name}/environments/{environment_name}", status_code=204)
async def delete_environment(project_name: str, environment_name: str, principal: PrincipalDep, services: ServicesDep):
    await run_in_threadpool(services.serving.delete_environment, principal, project_name, environment_name)
    return Response(status_code=204)


# --- project environment variables ---------------------------------------------------------------
@router.get("/projects/{project_name}/environment-variables")
async def list_project_env_vars(project_name: str, principal: PrincipalDep, services: ServicesDep):
    items = await run_in_threadpool(services.serving.list_env_vars, principal, project_name)
    return [env_var_json(e, inherited_shape=False) for e in items]


@router.post("/projects/{project_name}/environment-variables")
async def create_project_env_var(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request)
    e = await run_in_threadpool(services.serving.create_env_var, principal, project_name, body)
    return JSONResponse(env_var_json(e, inherited_shape=False), status_code=201)


@router.get("/projects/{project_name}/environment-variables/{var_id}")
async def get_project_env_var(project_name: str, var_id: str, principal: PrincipalDep, services: ServicesDep):
    e = await run_in_threadpool(services.serving.get_env_var, principal, project_name, var_id)
    return env_var_json(e, inherited_shape=False)


@router.patch("/projects/{project_name}/environment-variables/{var_id}")
async def update_project_env_var(
    project_name: str, var_id: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    body = await json_object(request)
    e = await run_in_threadpool(services.serving.update_env_var, principal, project_name, var_id, body)
    return env_var_json(e, inherited_shape=False)


@router.delete("/projects/{project_name}/environment-variables/{var_id}", status_code=204)
async def delete_project_env_var(project_name: str, var_id: str, principal: PrincipalDep, services: ServicesDep):
    await run_in_threadpool(services.serving.delete_env_var, principal, project_name, var_id)
    return Response(status_code=204)
