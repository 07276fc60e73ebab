"""UbiOps projects (``/projects``): each answer carries the organisation's name; the serving facade's project
methods (core/serving/projects.py) hold the rules (deployable names, the caller's own organisation, no renaming)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ubiops import PrincipalDep
from modelharbor.api.dialects.ubiops.mapping import project_json
from modelharbor.api.dialects.ubiops.routes import P, json_object, labels_filter
from modelharbor.core.serving.projects import project_name_fault, valid_project_name
from modelharbor.domain.inputs import name_in

router = APIRouter()


@router.post("/projects", status_code=201)
async def create_project(request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request)
    name, organization = body.get("name"), body.get("organization_name")
    if not isinstance(name, str):
        raise project_name_fault(name)
    valid_project_name(name)
    p, org = await run_in_threadpool(
        services.serving.create_project, principal, name, organization=name_in(organization)
    )
    return project_json(p, org)


@router.get("/projects")
def list_projects(request: Request, principal: PrincipalDep, services: ServicesDep):
    q = request.query_params
    projects, org = services.serving.list_projects(
        principal, organization=q.get("organization"), labels=labels_filter(q.get("labels"))
    )
    return [project_json(p, org) for p in projects]


@router.get(P)
def get_project(project_name: str, principal: PrincipalDep, services: ServicesDep):
    return project_json(*services.serving.get_project(principal, project_name))


@router.patch(P)
async def update_project(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request)
    new_name = name_in(body.get("name"))
    p, org = await run_in_threadpool(services.serving.update_project, principal, project_name, new_name=new_name)
    return project_json(p, org)


@router.delete(P, status_code=204)
def delete_project(project_name: str, principal: PrincipalDep, services: ServicesDep):
    services.serving.delete_project(principal, project_name)
    return Response(status_code=204)
