"""UbiOps pipelines, pipeline versions and pipeline requests (direct, batch, kept: read, list, cancel, delete).

The request routes exist twice — ``…/pipelines/{p}/requests…`` (the default version) and
``…/pipelines/{p}/versions/{v}/requests…`` — with the same handlers; core/serving/pipelines.py does the work."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialects.ubiops import kept
from modelharbor.api.dialects.ubiops.common import PrincipalDep, ServicesDep, json_body, json_object
from modelharbor.api.dialects.ubiops.deployments import _request_data, _timeout
from modelharbor.api.dialects.ubiops.mapping import (
    pipeline_json,
    pipeline_request_detail_json,
    pipeline_request_json,
    pipeline_request_list_json,
    pipeline_version_json,
)
from modelharbor.domain.errors import NotFound

router = APIRouter()
PL = "/projects/{project_name}/pipelines"
ONE = PL + "/{pipeline_name}"
PV = ONE + "/versions/{version}"


@router.post(PL)
async def create_pipeline(project_name: str, request: Request, principal: PrincipalDep, services: ServicesDep):
    body = await json_object(request)
    p = await run_in_threadpool(services.pipelines.create_pipeline, principal, project_name, body)
    return JSONResponse(pipeline_json(p), status_code=201)


@router.get(PL)
async def list_pipelines(project_name: str, principal: PrincipalDep, services: ServicesDep):
    return [
        pipeline_json(p, detail=False)
        for p in await run_in_threadpool(services.pipelines.list_pipelines, principal, project_name)
    ]


@router.get(ONE)
async def get_pipeline(project_name: str, pipeline_name: str, principal: PrincipalDep, services: ServicesDep):
    return pipeline_json(
        await run_in_threadpool(services.pipelines.get_pipeline, principal, project_name, pipeline_name)
    )


@router.patch(ONE)
async def update_pipeline(
    project_name: str, pipeline_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    body = await json_object(request)
    return pipeline_json(
        await run_in_threadpool(services.pipelines.update_pipeline, principal, project_name, pipeline_name, body)
    )


@router.delete(ONE, status_code=204)
async def delete_pipeline(project_name: str, pipeline_name: str, principal: PrincipalDep, services: ServicesDep):
    await run_in_threadpool(services.pipelines.delete_pipeline, principal, project_name, pipeline_name)
    return Response(status_code=204)


@router.post(ONE + "/versions")
async def create_pipeline_version(
    project_name: str, pipeline_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    body = await json_object(request)
    v = await run_in_threadpool(services.pipelines.create_version, principal, project_name, pipeline_name, body)
    return JSONResponse(pipeline_version_json(v), status_code=201)


@router.get(ONE + "/versions")
async def list_pipeline_versions(project_name: str, pipeline_name: str, principal: PrincipalDep, services: ServicesDep):
    items = await run_in_threadpool(services.pipelines.list_versions, principal, project_name, pipeline_name)
    return [pipeline_version_json(v, detail=False) for v in items]


@router.get(PV)
async def get_pipeline_version(
    project_name: str, pipeline_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    return pipeline_version_json(
        await run_in_threadpool(services.pipelines.get_version, principal, project_name, pipeline_name, version)
    )


@router.patch(PV)
async def update_pipeline_version(
    project_name: str,
    pipeline_name: str,
    version: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    body = await json_object(request)
    v = await run_in_threadpool(
        services.pipelines.update_version, principal, project_name, pipeline_name, version, body
    )
    return pipeline_version_json(v)


@router.delete(PV, status_code=204)
async def delete_pipeline_version(
    project_name: str, pipeline_name: str, version: str, principal: PrincipalDep, services: ServicesDep
):
    await run_in_threadpool(services.pipelines.delete_version, principal, project_name, pipeline_name, version)
    return Response(status_code=204)


# --- requests -----------------------------------------------------------------------------------
def _where(request: Request) -> tuple[str, str, dict[str, Any]]:
    """(project, pipeline, {'version': …}) from the path: the version only on the versions/{v} routes."""
    path = request.path_params
    return path["project_name"], path["pipeline_name"], {"version": path.get("version")}


async def _direct(request: Request, principal: PrincipalDep, services: ServicesDep):
    project, pipeline, version = _where(request)
    data = await _request_data(request)
    r = await services.pipelines.request(principal, project, pipeline, data, timeout=_timeout(request), **version)
    return pipeline_request_json(r)


async def _batch(request: Request, principal: PrincipalDep, services: ServicesDep):
    project, pipeline, version = _where(request)
    items = await json_body(request, nan=True)  # inputs, as for a direct request
    timeout = _timeout(request)
    results = await run_in_threadpool(
        lambda: services.pipelines.submit_batch(principal, project, pipeline, items, timeout=timeout, **version)
    )
    return JSONResponse([pipeline_request_list_json(r) for r in results], status_code=201)


for _base in (ONE, PV):
    router.add_api_route(_base + "/requests", _direct, methods=["POST"])
    router.add_api_route(_base + "/requests/batch", _batch, methods=["POST"])
kept.add_routes(
    router,
    (ONE, PV),
    owner="pipeline_name",
    service=lambda services: services.pipelines,
    listed=pipeline_request_list_json,
    detail=pipeline_request_detail_json,
)


@router.get(PV + "/object-requests/{request_id}")
@router.get(PV + "/object-requests/{request_id}/input")
@router.get(PV + "/object-requests/{request_id}/output")
async def object_request(
    project_name: str,
    pipeline_name: str,
    version: str,
    request_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
):
    """Operator requests: pipelines here hold only deployment objects (read those with the deployment's
    requests API, by the ids under ``deployment_requests``). Credentials and access to the version are checked
    first, like every other route."""
    await run_in_threadpool(services.pipelines.get_version, principal, project_name, pipeline_name, version)
    raise NotFound(
        f"Object request {request_id!r} not found: ModelHarbor pipelines have no operator objects; a deployment "
        "object's request is read with GET …/deployments/{deployment}/requests/{id} (ids in 'deployment_requests')."
    )
