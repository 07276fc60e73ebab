"""UFDL's frameworks (``/v1/frameworks``): shared by every organisation; anyone lists and reads them, a superuser
creates, changes and deletes them (409 while models use one)."""

from __future__ import annotations

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.catalogue_inputs import framework_in
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ufdl import PrincipalDep
from modelharbor.api.dialects.ufdl.mapping import framework_out
from modelharbor.api.dialects.ufdl.routes import Router, json_body, read_later
from modelharbor.api.filterspec import parse_filter_spec

router = Router(prefix="/frameworks")


@router.post("/list")
async def list_frameworks(request: Request, principal: PrincipalDep, services: ServicesDep):
    query = parse_filter_spec(await json_body(request))
    return [framework_out(f) for f in await run_in_threadpool(services.catalogue.list_frameworks, principal, query)]


@router.post("/create", status_code=201)
async def create_framework(request: Request, principal: PrincipalDep, services: ServicesDep):
    fields = framework_in(await json_body(request, {}))
    return framework_out(await run_in_threadpool(services.catalogue.save_framework, principal, fields))


@router.get("/{pk:int}")
def get_framework(pk: int, principal: PrincipalDep, services: ServicesDep):
    return framework_out(services.catalogue.get_framework(principal, pk))


@router.put("/{pk:int}")
async def replace_framework(pk: int, request: Request, principal: PrincipalDep, services: ServicesDep):
    read = await read_later(request, {})
    fields = lambda: framework_in(read(), partial=False)  # noqa: E731
    return framework_out(
        await run_in_threadpool(services.catalogue.update_framework_from, principal, pk, fields, partial=False)
    )


@router.patch("/{pk:int}")
async def patch_framework(pk: int, request: Request, principal: PrincipalDep, services: ServicesDep):
    read = await read_later(request, {})
    fields = lambda: framework_in(read(), partial=True)  # noqa: E731
    return framework_out(
        await run_in_threadpool(services.catalogue.update_framework_from, principal, pk, fields, partial=True)
    )


@router.delete("/{pk:int}", status_code=204)
def delete_framework(pk: int, principal: PrincipalDep, services: ServicesDep):
    services.catalogue.delete_framework(principal, pk)
    return Response(status_code=204)
