"""UbiOps pipelines and pipeline versions (``…/pipelines[/{p}[/versions[/{v}]]]``). Core:
core/serving/pipelines.py. Their requests are routes/pipeline_requests.py."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ubiops import PrincipalDep
from modelharbor.api.dialects.ubiops.mapping import pipeline_json, pipeline_version_json
from modelharbor.api.dialects.ubiops.routes import PL, PV, P, json_object
from modelharbor.api.inputs import deployment_patch, pipeline_in, pipeline_version_in

router = APIRouter()


@router.post(P + "/pipelines", status_code=201)
async def create_pipeline(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    spec = pipeline_in(await json_object(request))
    return pipeline_json(await run_in_threadpool(services.pipelines.create_pipeline, principal, project_name, spec))


@router.get(P + "/pipelines")
def list_pipelines(project_name: str, principal: PrincipalDep, services: ServicesDep):
    return [pipeline_json(p, detail=False) for p in services.pipelines.list_pipelines(principal, project_name)]


@router.get(PL)
def get_pipeline(project_name: str, pipeline_name: str, principal: PrincipalDep, services: ServicesDep):
    return pipeline_json(services.pipelines.get_pipeline(principal, project_name, pipeline_name))


@router.patch(PL)
async def update_pipeline(
    project_name: str, pipeline_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    change = deployment_patch(await json_object(request), "pipeline")
    p = await run_in_threadpool(services.pipelines.update_pipeline, principal, project_name, pipeline_name, change)
    return pipeline_json(p)


@router.delete(PL, status_code=204)
def delete_pipeline(project_name: str, pipeline_name: str, principal: PrincipalDep, services: ServicesDep):
    services.pipelines.delete_pipeline(principal, project_name, pipeline_name)
    return Response(status_code=204)


@router.post(PL + "/versions", status_code=201)
async def create_pipeline_version(
    project_name: str, pipeline_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    spec = pipeline_version_in(await json_object(request), creating=True)
    v = await run_in_threadpool(services.pipelines.create_version, principal, project_name, pipeline_name, spec)
    return pipeline_version_json(v)


@router.get(PL + "/versions")
def list_pipeline_versions(project_name: str, pipeline_name: str, principal: PrincipalDep, services: ServicesDep):
    items = services.pipelines.list_versions(principal, project_name, pipeline_name)
    return [pipeline_version_json(v, detail=False) for v in items]


@router.get(PV)
def get_pipeline_version(
    project_name: str, pipeline_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    return pipeline_version_json(services.pipelines.get_version(principal, project_name, pipeline_name, version))


@router.patch(PV)
async def update_pipeline_version(
    project_name: str,
    pipeline_name: str,
    version: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    change = pipeline_version_in(await json_object(request), creating=False)
    v = await run_in_threadpool(
        services.pipelines.update_version, principal, project_name, pipeline_name, version, change
    )
    return pipeline_version_json(v)


@router.delete(PV, status_code=204)
def delete_pipeline_version(
    project_name: str, pipeline_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    services.pipelines.delete_version(principal, project_name, pipeline_name, version)
    return Response(status_code=204)
