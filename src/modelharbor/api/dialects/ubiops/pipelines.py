"""UbiOps pipelines, pipeline versions and pipeline requests."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialects.ubiops.common import PrincipalDep, ServicesDep, json_object
from modelharbor.api.dialects.ubiops.deployments import _request_data, _timeout
from modelharbor.api.dialects.ubiops.mapping import iso, pipeline_json, pipeline_version_json
from modelharbor.core.pipelines import PipelineResult

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


def _result_json(r: PipelineResult) -> dict[str, Any]:
    return {
        "id": r.id,
        "pipeline": r.pipeline,
        "version": r.version,
        "status": r.status,
        "success": r.status == "completed",
        "result": r.result,
        "error_message": r.error_message,
        "pipeline_timeout": r.timeout,
        "deployment_timeout": r.timeout,
        "deployment_requests": [
            {
                "id": s.id,
                "pipeline_object": s.object_name,
                "deployment": s.deployment,
                "version": s.version,
                "status": s.status,
                "success": s.status == "completed",
                "error_message": s.error_message,
                "sequence_id": str(i),
                "time_created": iso(s.started_at),
                "time_started": iso(s.started_at),
                "time_completed": iso(s.finished_at),
            }
            for i, s in enumerate(r.steps)
        ],
        "operator_requests": [],
        "pipeline_requests": [],
    }


@router.post(ONE + "/requests")
async def pipeline_request(
    project_name: str, pipeline_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    data = await _request_data(request)
    r = await services.pipelines.request(principal, project_name, pipeline_name, data, timeout=_timeout(request))
    return _result_json(r)


@router.post(PV + "/requests")
async def pipeline_version_request(
    project_name: str,
    pipeline_name: str,
    version: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    data = await _request_data(request)
    r = await services.pipelines.request(
        principal, project_name, pipeline_name, data, version=version, timeout=_timeout(request)
    )
    return _result_json(r)
