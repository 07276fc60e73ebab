"""UFDL's licences (``/v1/licences``, and ``/v1/licenses`` as UFDL routes both spellings to the same views): shared by
every organisation; anyone lists and reads them, a superuser creates, changes (and edits the permissions,
conditions, limitations and domains lists of) and deletes them (409 while models use one)."""

from __future__ import annotations

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from modelharbor.api.catalogue_inputs import licence_in, subdescriptor_edit
from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ufdl import PrincipalDep
from modelharbor.api.dialects.ufdl.mapping import licence_out
from modelharbor.api.dialects.ufdl.routes import Router, json_body, read_later
from modelharbor.api.filterspec import parse_filter_spec

router = Router()


@router.post("/licences/list")
@router.post("/licenses/list")
async def list_licences(request: Request, principal: PrincipalDep, services: ServicesDep):
    query = parse_filter_spec(await json_body(request))
    return [licence_out(x) for x in await run_in_threadpool(services.catalogue.list_licences, principal, query)]


@router.post("/licences/create", status_code=201)
@router.post("/licenses/create", status_code=201)
async def create_licence(request: Request, principal: PrincipalDep, services: ServicesDep):
    fields = licence_in(await json_body(request, {}))
    return licence_out(await run_in_threadpool(services.catalogue.save_licence, principal, fields))


@router.get("/licences/{pk:int}")
@router.get("/licenses/{pk:int}")
def get_licence(pk: int, principal: PrincipalDep, services: ServicesDep):
    return licence_out(services.catalogue.get_licence(principal, pk))


@router.put("/licences/{pk:int}")
@router.put("/licenses/{pk:int}")
async def replace_licence(pk: int, request: Request, principal: PrincipalDep, services: ServicesDep):
    read = await read_later(request, {})
    fields = lambda: licence_in(read(), partial=False)  # noqa: E731
    return licence_out(
        await run_in_threadpool(services.catalogue.update_licence_from, principal, pk, fields, partial=False)
    )


@router.patch("/licences/{pk:int}")
@router.patch("/licenses/{pk:int}")
async def patch_licence(pk: int, request: Request, principal: PrincipalDep, services: ServicesDep):
    read = await read_later(request, {})
    fields = lambda: licence_in(read(), partial=True)  # noqa: E731
    return licence_out(
        await run_in_threadpool(services.catalogue.update_licence_from, principal, pk, fields, partial=True)
    )


@router.delete("/licences/{pk:int}", status_code=204)
@router.delete("/licenses/{pk:int}", status_code=204)
def delete_licence(pk: int, principal: PrincipalDep, services: ServicesDep):
    services.catalogue.delete_licence(principal, pk)
    return Response(status_code=204)


@router.patch("/licences/{pk:int}/subdescriptors")
@router.patch("/licenses/{pk:int}/subdescriptors")
async def edit_subdescriptors(pk: int, request: Request, principal: PrincipalDep, services: ServicesDep):
    """``{"method": "add" | "remove", "type": "permissions" | …, "names": [...]}``."""
    read = await read_later(request, {})
    edit = lambda: subdescriptor_edit(read())  # noqa: E731
    return licence_out(await run_in_threadpool(services.catalogue.edit_subdescriptors_from, principal, pk, edit))
