"""UFDL's domains (``/v1/domains``): the five seeded ones, listed and read by anyone; every change is refused (403),
to admins too."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from modelharbor.api.dialect import ServicesDep
from modelharbor.api.dialects.ufdl import PrincipalDep
from modelharbor.api.dialects.ufdl.mapping import domain_out
from modelharbor.api.dialects.ufdl.routes import Router, json_body
from modelharbor.api.filterspec import parse_filter_spec

router = Router(prefix="/domains")


@router.post("/list")
async def list_domains(request: Request, principal: PrincipalDep, services: ServicesDep):
    query = parse_filter_spec(await json_body(request))
    return [domain_out(d) for d in await run_in_threadpool(services.catalogue.list_domains, principal, query)]


@router.get("/{pk:int}")
def get_domain(pk: int, principal: PrincipalDep, services: ServicesDep):
    return domain_out(services.catalogue.get_domain(principal, pk))


@router.post("/create")
def create_domain(principal: PrincipalDep, services: ServicesDep):
    services.catalogue.change_domain(principal)


@router.put("/{pk:int}")
@router.patch("/{pk:int}")
@router.delete("/{pk:int}")
def change_domain(pk: int, principal: PrincipalDep, services: ServicesDep):
    services.catalogue.change_domain(principal)
