"""UbiOps deployment requests: the prediction (``POST …/deployments/{d}[/versions/{v}]/requests``), batch requests
and kept requests (list, collect, cancel, delete, one by id, its input and output). Core: core/serving/requests.py,
request_history.py.

The prediction is the dialect's hot route (api/hot.py): :func:`predict` takes the request as bytes — path match,
query, headers, body (bytes, or an ASGI ``receive`` to read it from once the credentials passed) — and answers
``(status, JSON, extra headers)``. The HTTP protocol (api/http.py) and the application's front (the hot table)
call it ahead of FastAPI; the FastAPI routes below call the same function (``answer_asgi``), so every way in
answers alike: credentials, the core call, answers and errors (unexpected ones logged and answered 500).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api import failures
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ubiops import PrincipalDep, principal_of
from modelharbor.api.dialects.ubiops.mapping import error_message, kept_file, request_detail_json, request_json
from modelharbor.api.dialects.ubiops.routes import (
    D,
    V,
    json_body,
    json_object,
    parse_input,
    timeout,
    true_false,
    version_of,
    whole,
)
from modelharbor.api.hot import Answer, answer_asgi, read_receive
from modelharbor.api.inputs import request_ids, request_status
from modelharbor.api.jsonbody import MAX_INPUT_BODY
from modelharbor.domain.errors import HarborError, TooLarge

router = APIRouter()
PREDICT = re.compile(
    r"^/v2(?:\.1)?/projects/(?P<project>[^/]+)/deployments/(?P<deployment>[^/]+)(?:/versions/(?P<version>[^/]+))?"
    r"/requests$"
)
_JSON = json.JSONEncoder(separators=(",", ":")).encode
_CHALLENGE = [(b"www-authenticate", b"Token")]


# --- the prediction (hot) -----------------------------------------------------------------------
async def predict(services: Any, found: re.Match, query: bytes, headers: dict[bytes, bytes], body: Any) -> Answer:
    """One prediction, answered in the dialect's shapes (its 500 too: this runs ahead of api/failures.py)."""
    try:
        status, answer = 200, await _predict(services, found, query, headers, body)
    except HarborError as exc:
        status, answer = exc.status, {"error": error_message(exc)}
    except Exception as exc:
        status, answer = 500, {"error": failures.message(failures.logged(f"POST {found.group(0)}", exc))}
    return status, _JSON(answer).encode(), (_CHALLENGE if status == 401 else [])


async def _predict(services: Any, found: re.Match, query: bytes, headers: dict[bytes, bytes], body: Any) -> Any:
    principal = await principal_of(services, headers.get(b"authorization", b"").decode("latin-1"))
    if not isinstance(body, bytes):
        length = headers.get(b"content-length", b"").strip()
        if length.isdigit() and int(length) > MAX_INPUT_BODY:
            raise TooLarge(f"the request body is larger than {MAX_INPUT_BODY} bytes")
        body = await read_receive(body, MAX_INPUT_BODY)
    data = parse_input(body, headers.get(b"content-type", b"").decode("latin-1"))
    seconds = None
    if query:
        values = parse_qs(query.decode("latin-1")).get("timeout")
        if values and values[0]:
            seconds = whole(values[0], "timeout", "a whole number of seconds")
    version = found["version"]
    result = await services.serving.request(
        principal,
        unquote(found["project"]),
        unquote(found["deployment"]),
        data,
        version=unquote(version) if version else None,
        timeout=seconds,
    )
    return request_json(result)


@router.post(D + "/requests")
async def deployment_request(project_name: str, deployment_name: str, request: Request):
    """A request to the deployment's default version (the hot route's own function)."""
    return await answer_asgi(predict, request, PREDICT)


@router.post(V + "/requests")
async def version_request(project_name: str, deployment_name: str, version: str, request: Request):
    """A request to one version (the hot route's own function)."""
    return await answer_asgi(predict, request, PREDICT)


# --- batch requests -----------------------------------------------------------------------------
@router.post(D + "/requests/batch", status_code=201)
@router.post(V + "/requests/batch", status_code=201)
async def batch_requests(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    items = await json_body(request, nan=True)  # inputs, as for a direct request
    results = await run_in_threadpool(
        services.serving.submit_batch,
        principal,
        project_name,
        deployment_name,
        items,
        version=version_of(request),
        timeout=timeout(request),
    )
    return [request_detail_json(r) for r in results]


# --- kept requests ------------------------------------------------------------------------------
@router.get(D + "/requests")
@router.get(V + "/requests")
def list_requests(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    q = request.query_params
    items = services.serving.list_requests(
        principal,
        project_name,
        deployment_name,
        status=q.get("status") or None,
        limit=whole(q.get("limit"), "limit"),
        offset=whole(q.get("offset"), "offset"),
        start_date=q.get("start_date") or None,
        end_date=q.get("end_date") or None,
        search_id=q.get("search_id") or None,
        version=version_of(request),
    )
    return [request_detail_json(r) for r in items]


@router.post(D + "/requests/collect")
@router.post(V + "/requests/collect")
async def collect_requests(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    ids = request_ids(await json_body(request))
    items = await run_in_threadpool(
        services.serving.get_requests, principal, project_name, deployment_name, ids, version=version_of(request)
    )
    return [request_detail_json(r) for r in items]


@router.post(D + "/requests/delete")
@router.post(V + "/requests/delete")
async def delete_requests(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    ids = request_ids(await json_body(request))
    n = await run_in_threadpool(
        services.serving.delete_requests, principal, project_name, deployment_name, ids, version=version_of(request)
    )
    return {"success": True, "deleted": n}


@router.post(D + "/requests/cancel")
@router.post(V + "/requests/cancel")
async def cancel_requests(
    project_name: str, deployment_name: str, request: Request, principal: PrincipalDep, services: ServicesDep
):
    ids = request_ids(await json_body(request))
    n = await run_in_threadpool(
        services.serving.cancel_requests,
        principal,
        project_name,
        deployment_name,
        ids,
        status=request.query_params.get("status") or None,
        version=version_of(request),
    )
    return {"success": True, "cancelled": n}


@router.get(D + "/requests/{request_id}")
@router.get(V + "/requests/{request_id}")
def get_request(
    project_name: str,
    deployment_name: str,
    request_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    metadata_only = true_false(request.query_params.get("metadata_only"), "metadata_only", False)
    r = services.serving.get_request(principal, project_name, deployment_name, request_id, version=version_of(request))
    return request_detail_json(r, metadata_only=bool(metadata_only))


@router.patch(D + "/requests/{request_id}")
@router.patch(V + "/requests/{request_id}")
async def update_request(
    project_name: str,
    deployment_name: str,
    request_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    status = request_status(await json_object(request))
    r = await run_in_threadpool(
        services.serving.update_request,
        principal,
        project_name,
        deployment_name,
        request_id,
        status,
        version=version_of(request),
    )
    return request_detail_json(r)


@router.delete(D + "/requests/{request_id}", status_code=204)
@router.delete(V + "/requests/{request_id}", status_code=204)
def delete_request(
    project_name: str,
    deployment_name: str,
    request_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    services.serving.delete_request(principal, project_name, deployment_name, request_id, version=version_of(request))
    return Response(status_code=204)


@router.get(D + "/requests/{request_id}/input")
@router.get(V + "/requests/{request_id}/input")
def request_input(
    project_name: str,
    deployment_name: str,
    request_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    serving, version = services.serving, version_of(request)
    value, kind = serving.request_io(principal, project_name, deployment_name, request_id, "input", version=version)
    return kept_file(value, kind, request_id, "input")


@router.get(D + "/requests/{request_id}/output")
@router.get(V + "/requests/{request_id}/output")
def request_output(
    project_name: str,
    deployment_name: str,
    request_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
):
    serving, version = services.serving, version_of(request)
    value, kind = serving.request_io(principal, project_name, deployment_name, request_id, "output", version=version)
    return kept_file(value, kind, request_id, "output")
