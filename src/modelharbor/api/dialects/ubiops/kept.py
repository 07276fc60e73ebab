"""The UbiOps routes over kept requests, one set for deployments and pipelines.

Each exists under ``…/{deployments|pipelines}/{name}/requests…`` (any version) and
``…/{name}/versions/{version}/requests…`` (that version): list (``GET …/requests``), ``collect`` (several by id),
``delete`` and ``cancel`` (several by id), and per request GET (``metadata_only``), PATCH (``{"status":
"cancelled"}``), DELETE, ``/input``, ``/output``. The work is the service's (``core/serving/request_history.py`` holds what
the two share): both take ``(principal, project, name, …, version=…)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialects.ubiops.common import PrincipalDep, ServicesDep, flag, json_body, json_object
from modelharbor.domain.errors import InvalidInput


def int_query(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"'{name}' must be a whole number, not {value!r}") from None


def add_routes(
    router: APIRouter,
    bases: tuple[str, ...],
    *,
    owner: str,
    service: Callable[[Any], Any],
    listed: Callable[[Any], dict[str, Any]],
    detail: Callable[..., dict[str, Any]],
) -> None:
    """Add the kept-request routes under each of ``bases``; ``owner`` is the path parameter naming the deployment
    or pipeline, ``service(services)`` the service, ``listed``/``detail`` the JSON of a list item / one request
    (``detail(r, metadata_only=…)``)."""

    def where(request: Request, services: Any) -> tuple[Any, str, str, dict[str, Any]]:
        path = request.path_params
        return service(services), path["project_name"], path[owner], {"version": path.get("version")}

    async def list_requests(request: Request, principal: PrincipalDep, services: ServicesDep):
        svc, project, name, version = where(request, services)
        q = request.query_params
        items = await run_in_threadpool(
            lambda: svc.list_requests(
                principal,
                project,
                name,
                status=q.get("status") or None,
                limit=int_query(q.get("limit"), "limit"),
                offset=int_query(q.get("offset"), "offset"),
                start_date=q.get("start_date") or None,
                end_date=q.get("end_date") or None,
                search_id=q.get("search_id") or None,
                **version,
            )
        )
        return [listed(r) for r in items]

    async def collect(request: Request, principal: PrincipalDep, services: ServicesDep):
        svc, project, name, version = where(request, services)
        ids = await json_body(request)
        items = await run_in_threadpool(lambda: svc.get_requests(principal, project, name, ids, **version))
        return [detail(r) for r in items]

    async def delete_many(request: Request, principal: PrincipalDep, services: ServicesDep):
        svc, project, name, version = where(request, services)
        ids = await json_body(request)
        n = await run_in_threadpool(lambda: svc.delete_requests(principal, project, name, ids, **version))
        return {"success": True, "deleted": n}

    async def cancel_many(request: Request, principal: PrincipalDep, services: ServicesDep):
        svc, project, name, version = where(request, services)
        ids = await json_body(request)
        status = request.query_params.get("status") or None
        n = await run_in_threadpool(
            lambda: svc.cancel_requests(principal, project, name, ids, status=status, **version)
        )
        return {"success": True, "cancelled": n}

    async def get_one(request: Request, request_id: str, principal: PrincipalDep, services: ServicesDep):
        svc, project, name, version = where(request, services)
        metadata_only = flag(request.query_params.get("metadata_only"), "metadata_only", False)
        r = await run_in_threadpool(lambda: svc.get_request(principal, project, name, request_id, **version))
        return detail(r, metadata_only=bool(metadata_only))

    async def update_one(request: Request, request_id: str, principal: PrincipalDep, services: ServicesDep):
        svc, project, name, version = where(request, services)
        body = await json_object(request)
        r = await run_in_threadpool(lambda: svc.update_request(principal, project, name, request_id, body, **version))
        return detail(r)

    async def delete_one(request: Request, request_id: str, principal: PrincipalDep, services: ServicesDep):
        svc, project, name, version = where(request, services)
        await run_in_threadpool(lambda: svc.delete_request(principal, project, name, request_id, **version))
        return Response(status_code=204)

    def io(which: str):
        async def handler(request: Request, request_id: str, principal: PrincipalDep, services: ServicesDep):
            svc, project, name, version = where(request, services)
            value, kind = await run_in_threadpool(
                lambda: svc.request_io(principal, project, name, request_id, which, **version)
            )
            if kind == "plain" and isinstance(value, str):
                body, media, ext = value.encode(), "text/plain; charset=utf-8", "txt"
            else:
                body, media, ext = json.dumps(value).encode(), "application/json", "json"
            disposition = f"attachment; filename={request_id}_{which}.{ext}"
            return Response(body, media_type=media, headers={"Content-Disposition": disposition})

        return handler

    for base in bases:
        router.add_api_route(base + "/requests", list_requests, methods=["GET"])
        router.add_api_route(base + "/requests/collect", collect, methods=["POST"])
        router.add_api_route(base + "/requests/delete", delete_many, methods=["POST"])
        router.add_api_route(base + "/requests/cancel", cancel_many, methods=["POST"])
        router.add_api_route(base + "/requests/{request_id}", get_one, methods=["GET"])
        router.add_api_route(base + "/requests/{request_id}", update_one, methods=["PATCH"])
        router.add_api_route(base + "/requests/{request_id}", delete_one, methods=["DELETE"], status_code=204)
        router.add_api_route(base + "/requests/{request_id}/input", io("input"), methods=["GET"])
        router.add_api_route(base + "/requests/{request_id}/output", io("output"), methods=["GET"])
