"""UbiOps pipeline requests: direct and batch requests, kept requests (list, collect, cancel, delete, one by id,
its input and output) and operator object requests (always 404 here). Each route exists for the pipeline (its
default version) and for one version: one function under both paths. Core: core/serving/pipeline_requests.py,
request_history.py."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ubiops import PrincipalDep
from modelharbor.api.dialects.ubiops.mapping import (
    kept_file,
    pipeline_request_detail_json,
    pipeline_request_json,
    pipeline_request_list_json,
)
from modelharbor.api.dialects.ubiops.routes import (
    PL,
    PV,
    json_body,
    json_object,
    request_input,
    timeout,
    true_false,
    version_of,
    whole,
)
from modelharbor.api.inputs import request_ids, request_status

router = APIRouter()


@router.post(PL + "/requests")
@router.post(PV + "/requests")
async def pipeline_request(
    project_name: str, pipeline_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    data = await request_input(request)
    r = await services.pipelines.request(
        principal, project_name, pipeline_name, data, timeout=timeout(request), version=version_of(request)
    )
    return pipeline_request_json(r)


@router.post(PL + "/requests/batch", status_code=201)
@router.post(PV + "/requests/batch", status_code=201)
async def batch_requests(
    project_name: str, pipeline_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    items = await json_body(request, nan=True)  # inputs, as for a direct request
    results = await run_in_threadpool(
        services.pipelines.submit_batch,
        principal,
        project_name,
        pipeline_name,
        items,
        timeout=timeout(request),
        version=version_of(request),
    )
    return [pipeline_request_list_json(r) for r in results]


# --- kept requests ------------------------------------------------------------------------------
@router.get(PL + "/requests")
@router.get(PV + "/requests")
def list_requests(
    project_name: str, pipeline_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    q = request.query_params
    items = services.pipelines.list_requests(
        principal,
        project_name,
        pipeline_name,
        status=q.get("status") or None,
        limit=whole(q.get("limit"), "limit"),
        offset=whole(q.get("offset"), "offset"),
        start_date=q.get("start_date") or None,
        end_date=q.get("end_date") or None,
        search_id=q.get("search_id") or None,
        version=version_of(request),
    )
    return [pipeline_request_list_json(r) for r in items]


@router.post(PL + "/requests/collect")
@router.post(PV + "/requests/collect")
async def collect_requests(
    project_name: str, pipeline_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    ids = request_ids(await json_body(request))
    items = await run_in_threadpool(
        services.pipelines.get_requests, principal, project_name, pipeline_name, ids, version=version_of(request)
    )
    return [pipeline_request_detail_json(r) for r in items]


@router.post(PL + "/requests/delete")
@router.post(PV + "/requests/delete")
async def delete_requests(
    project_name: str, pipeline_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    ids = request_ids(await json_body(request))
    n = await run_in_threadpool(
        services.pipelines.delete_requests, principal, project_name, pipeline_name, ids, version=version_of(request)
    )
    return {"success": True, "deleted": n}


@router.post(PL + "/requests/cancel")
@router.post(PV + "/requests/cancel")
async def cancel_requests(
    project_name: str, pipeline_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    ids = request_ids(await json_body(request))
    n = await run_in_threadpool(
        services.pipelines.cancel_requests,
        principal,
        project_name,
        pipeline_name,
        ids,
        status=request.query_params.get("status") or None,
        version=version_of(request),
    )
    return {"success": True, "cancelled": n}


@router.get(PL + "/requests/{request_id}")
@router.get(PV + "/requests/{request_id}")
def get_request(
    project_name: str,
    pipeline_name: str,
    request_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    metadata_only = true_false(request.query_params.get("metadata_only"), "metadata_only", False)
    r = services.pipelines.get_request(principal, project_name, pipeline_name, request_id, version=version_of(request))
    return pipeline_request_detail_json(r, metadata_only=bool(metadata_only))


@router.patch(PL + "/requests/{request_id}")
@router.patch(PV + "/requests/{request_id}")
async def update_request(
    project_name: str,
    pipeline_name: str,
    request_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    status = request_status(await json_object(request))
    r = await run_in_threadpool(
        services.pipelines.update_request,
        principal,
        project_name,
        pipeline_name,
        request_id,
        status,
        version=version_of(request),
    )
    return pipeline_request_detail_json(r)


@router.delete(PL + "/requests/{request_id}", status_code=204)
@router.delete(PV + "/requests/{request_id}", status_code=204)
def delete_request(
    project_name: str,
    pipeline_name: str,
    request_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    services.pipelines.delete_request(principal, project_name, pipeline_name, request_id, version=version_of(request))
    return Response(status_code=204)


@router.get(PL + "/requests/{request_id}/input")
@router.get(PV + "/requests/{request_id}/input")
def request_input_file(
    project_name: str,
    pipeline_name: str,
    request_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    pipelines, version = services.pipelines, version_of(request)
    value, kind = pipelines.request_io(principal, project_name, pipeline_name, request_id, "input", version=version)
    return kept_file(value, kind, request_id, "input")


@router.get(PL + "/requests/{request_id}/output")
@router.get(PV + "/requests/{request_id}/output")
def request_output_file(
    project_name: str,
    pipeline_name: str,
    request_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    pipelines, version = services.pipelines, version_of(request)
    value, kind = pipelines.request_io(principal, project_name, pipeline_name, request_id, "output", version=version)
    return kept_file(value, kind, request_id, "output")


# --- operator object requests --------------------------------------------------------------------
@router.get(PV + "/object-requests/{request_id}")
@router.get(PV + "/object-requests/{request_id}/input")
@router.get(PV + "/object-requests/{request_id}/output")
def object_request(
    project_name: str,
    pipeline_name: str,
    version: str,
    request_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
):
    """Operator requests: pipelines here hold only deployment objects, so always 404 (once the version is known
    to be readable, like every other route)."""
    services.pipelines.get_object_request(principal, project_name, pipeline_name, version, request_id)
